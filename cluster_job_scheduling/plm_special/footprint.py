"""What an adaptation run will hold in memory, printed before it starts, so that a user with a small card
knows before it fails.

Per device: the weights as stored; for every trained parameter a float32 gradient and AdamW's two moments;
and the activations autograd keeps for one batch, estimated from the backbone's shape (per token and kept
block: about 16 hidden-size vectors and 4 intermediate-size ones, as in Korthikanti et al.'s count for a
transformer block, at the compute precision; plus the attention probabilities where the attention kernel
keeps them, i.e. on the CPU). An estimate: the first batch's measured peak follows (trainer.py).
"""
import resource
from collections import defaultdict

import torch
from torch import nn

from .placement import block_names

ACTIVATION_VECTORS_PER_TOKEN = {"hidden": 16, "intermediate": 4}


def size_text(size: float) -> str:
    return f"{size / 2 ** 30:.2f} GiB" if size >= 2 ** 30 else f"{size / 2 ** 20:.0f} MiB"


def duration_text(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(all parameters, trained parameters)."""
    parameters = list(model.parameters())
    return sum(p.numel() for p in parameters), sum(p.numel() for p in parameters if p.requires_grad)


def intermediate_size(config) -> int:
    for name in ("intermediate_size", "ffn_dim", "d_ff", "n_inner"):
        if getattr(config, name, None):
            return getattr(config, name)
    return 4 * getattr(config, "hidden_size", getattr(config, "d_model", 0))


def memory_estimate(model: nn.Module, tokens_per_sequence: int, sequences_per_batch: int) -> dict[str, dict]:
    """device -> bytes of weights, training state (gradients + AdamW moments) and activations."""
    estimate = defaultdict(lambda: {"weights": 0, "training state": 0, "activations": 0})
    for p in model.parameters():
        device = str(p.device)
        estimate[device]["weights"] += p.numel() * p.element_size()
        if p.requires_grad:
            estimate[device]["training state"] += 3 * p.numel() * 4
    backbone = model.backbone
    config = backbone.model.config
    compute = backbone.autocast_dtype or backbone.dtype
    bytes_per_value = torch.finfo(compute).bits // 8
    hidden = backbone.hidden_size
    per_token = (ACTIVATION_VECTORS_PER_TOKEN["hidden"] * hidden
                 + ACTIVATION_VECTORS_PER_TOKEN["intermediate"] * intermediate_size(config)) * bytes_per_value
    tokens = tokens_per_sequence * sequences_per_batch
    block_devices = [str(next(backbone.model.get_submodule(name).parameters()).device)
                     for name in block_names(backbone.model)]
    heads = getattr(config, "num_attention_heads", getattr(config, "num_heads", 1))
    for device in block_devices:
        attention = sequences_per_batch * heads * tokens_per_sequence ** 2 * bytes_per_value if device == "cpu" else 0
        estimate[device]["activations"] += tokens * per_token + attention
    return dict(estimate)


def describe(model: nn.Module, tokens_per_sequence: int, sequences_per_batch: int) -> str:
    """The lines printed at the start of an adaptation run."""
    total, trained = parameter_counts(model)
    backbone = model.backbone
    precision = str(backbone.autocast_dtype or backbone.dtype).removeprefix("torch.")
    lines = [f"policy: {total / 1e6:.1f}M parameters, {trained / 1e6:.2f}M trained ({100 * trained / total:.1f}%); "
             f"backbone {backbone.plm_type} with {backbone.num_layers} blocks, computing in {precision}",
             f"estimated memory per device (batches of {sequences_per_batch} x {tokens_per_sequence} tokens):"]
    estimate = memory_estimate(model, tokens_per_sequence, sequences_per_batch)
    for device, parts in estimate.items():
        detail = ", ".join(f"{name} {size_text(size)}" for name, size in parts.items())
        lines.append(f"  {device}: {size_text(sum(parts.values()))} ({detail})")
    if precision == "bfloat16" and "cpu" in estimate and not cpu_has_bfloat16_units():
        lines.append("note: this CPU has no bfloat16 units (AVX-512 BF16 or AMX), so bfloat16 is emulated and much "
                     "slower than float32 here")
    return "\n".join(lines)


def cpu_has_bfloat16_units() -> bool:
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def measured_peaks() -> str:
    """Peak memory so far: the process's, and per GPU that the run used, as PyTorch's allocator counts it."""
    peaks = [f"process {size_text(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)}"]
    if torch.cuda.is_available():
        peaks += [f"cuda:{i} {size_text(torch.cuda.max_memory_allocated(i))}"
                  for i in range(torch.cuda.device_count()) if torch.cuda.max_memory_allocated(i) > 0]
    return ", ".join(peaks)
