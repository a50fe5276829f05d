"""Where a policy's parts live: all on one device, or with the backbone's blocks split across devices.

    --device D                       everything on D (default: cuda:0 if there is a GPU, else cpu)
    --device-mid M, --device-out O   the original's split (NetLLM's answer to a 7B backbone that does not fit
                                     one card): the blocks in consecutive, near-equal shares over D, M, O (those given,
                                     in that order), the input embeddings on D, the final norm on the last
    --device-map auto                accelerate places the blocks by free memory: the GPUs in order, then the CPU

The state encoder, the embeddings of the policy's tokens and the heads stay on --device: the backbone takes
its inputs there and, split or not, hands its hidden states back there (accelerate's hooks move every
block's inputs to the block's device and the backbone's output back), so between devices only the hidden
states at a block boundary travel. Each block's keys and values stay on its own device.
"""
import copy
from dataclasses import dataclass

import torch
from accelerate import init_empty_weights
from torch import nn
from transformers import AutoModel

from common.errors import InputError


@dataclass(frozen=True)
class Placement:
    device: torch.device  # the policy's own modules, and the backbone's inputs and outputs
    block_devices: tuple[torch.device, ...] = ()  # an explicit split: the blocks' devices, in order
    auto: bool = False  # accelerate decides the split

    @property
    def split(self) -> bool:
        return self.auto or len(self.block_devices) > 1

    def describe(self) -> str:
        if self.auto:
            return f"backbone placed by accelerate (device_map auto), the rest on {self.device}"
        if self.split:
            return f"backbone blocks split over {', '.join(map(str, self.block_devices))}, the rest on {self.device}"
        return f"everything on {self.device}"

    def device_map(self, config, depth_override: dict) -> dict | str:
        """What `from_pretrained(device_map=...)` takes: "auto", a module -> device map, or one device."""
        if self.auto:
            return "auto"
        if not self.split:
            return str(self.device)
        kept = copy.deepcopy(config)  # early exit: from_config hands keywords to the model, not to its config
        for key, value in depth_override.items():
            setattr(kept, key, value)
        with init_empty_weights():  # module names without allocating weights
            skeleton = AutoModel.from_config(kept)
        return split_device_map(skeleton, [str(d) for d in self.block_devices])


def make_placement(device: str | None, device_mid: str | None = None, device_out: str | None = None,
                   device_map: str | None = None) -> Placement:
    """The placement that the --device, --device-mid, --device-out and --device-map flags ask for."""
    try:
        main = torch.device(device or ("cuda:0" if torch.cuda.is_available() else "cpu"))
        others = [torch.device(d) for d in (device_mid, device_out) if d is not None]
    except RuntimeError as error:
        raise InputError(f"{error}; name devices as cpu, cuda or cuda:N", "device") from None
    for d in [main, *others]:
        if d.type == "cuda" and (not torch.cuda.is_available() or (d.index or 0) >= torch.cuda.device_count()):
            raise InputError(f"device {d} is not available here ({torch.cuda.device_count()} GPUs visible); "
                             "pass --device cpu or a GPU that exists", "device")
    if device_map not in (None, "auto"):
        raise InputError(f"--device-map takes only 'auto', not '{device_map}'; split by hand with --device-mid and "
                         "--device-out", "device_map")
    if device_map == "auto" and others:
        raise InputError("--device-map auto decides the split itself; leave out --device-mid and --device-out",
                         "device_map")
    blocks = tuple(dict.fromkeys([main, *others]))  # distinct, in order
    return Placement(main, blocks if len(blocks) > 1 else (), device_map == "auto")


def block_names(model: nn.Module) -> list[str]:
    """The transformer blocks of a Hugging Face base model, in order (its `_no_split_modules` classes)."""
    block_classes = set(model._no_split_modules or [])
    return [name for name, module in model.named_modules() if type(module).__name__ in block_classes]


def split_device_map(model: nn.Module, devices: list[str]) -> dict[str, str]:
    """Module name -> device for a Hugging Face base model: its blocks (the `_no_split_modules` classes, in
    order) in consecutive shares as equal as they can be over `devices` (the original's rounding left the
    last device empty whenever the blocks did not divide evenly); what comes before the first block (embeddings) on the
    first device, what comes after it (final norm, rotary tables) on the last."""
    blocks = block_names(model)
    if not blocks:
        raise InputError(f"{type(model).__name__} names no blocks to split; use --device-map auto", "device_mid")
    device_map = {name: devices[i * len(devices) // len(blocks)] for i, name in enumerate(blocks)}
    after_blocks = False
    for name, module in model.named_modules():
        if name in device_map:
            after_blocks = True
            continue
        if any(name.startswith(block + ".") for block in blocks):
            continue
        if next(module.parameters(recurse=False), None) is not None or next(module.buffers(recurse=False), None) is not None:
            device_map[name] = devices[-1] if after_blocks else devices[0]
    return device_map


def place_policy(model: nn.Module, placement: Placement) -> nn.Module:
    """Move the policy's own modules to the placement's device; a split backbone stays where it was loaded."""
    for name, child in model.named_children():
        if not (name == "backbone" and placement.split):
            child.to(placement.device)
    return model
