"""Saved policies and training checkpoints: safetensors and JSON only, written atomically.

A policy folder holds
    settings.json        the run's settings (backbone, early exit, LoRA rank, context length, state-feature
                         size...) and what training derived: the return scaling from the pool, hidden size
    modules.safetensors  every module outside the backbone: state encoder, embeddings, heads
    adapter/             the LoRA adapter (peft format), when the rank is > 0
    backbone.safetensors the fine-tuned backbone, when the rank is -1 (full fine-tuning)
A training checkpoint adds training_state.safetensors (optimizer tensors, random generator states) and
training_state.json (completed rounds, scheduler, best validation score, optimizer hyper-parameters).
"""
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from common.errors import InputError
from common.files import atomic_folder

from .return_scaling import ReturnScaling
from .rl_policy import OfflineRLPolicy


def non_backbone_state(model: OfflineRLPolicy) -> dict:
    return {name: tensor for name, tensor in model.state_dict().items() if not name.startswith("backbone.")}


def _write_policy(model: OfflineRLPolicy, settings: dict, folder: Path) -> None:
    (folder / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    save_file({k: v.contiguous() for k, v in non_backbone_state(model).items()}, folder / "modules.safetensors")
    backbone = model.backbone
    if backbone.peft_model is not None:
        backbone.peft_model.save_pretrained(folder / "adapter")
    elif settings["rank"] == -1 and not settings.get("freeze_plm"):
        save_file({k: v.contiguous() for k, v in backbone.model.state_dict().items()}, folder / "backbone.safetensors")


def save_policy(model: OfflineRLPolicy, settings: dict, folder: Path, training_state: dict | None = None) -> None:
    """Write a policy folder (and, for a checkpoint, the training state) under a temporary name, then rename."""
    with atomic_folder(folder) as staging:
        _write_policy(model, settings, staging)
        if training_state is not None:
            tensors, scalars = training_state
            save_file(tensors, staging / "training_state.safetensors")
            (staging / "training_state.json").write_text(json.dumps(scalars, indent=2) + "\n")


def policy_folder(folder: Path) -> Path:
    """The saved policy a --model-dir names: a training run's folder stands for its best_model/."""
    folder = Path(folder)
    return folder / "best_model" if (folder / "best_model" / "settings.json").is_file() else folder


def read_settings(folder: Path) -> dict:
    path = Path(folder) / "settings.json"
    if not path.is_file():
        raise InputError(f"{folder} is not a saved policy (no settings.json); pass a folder that run_plm.py's "
                         "training wrote (the run folder, its best_model/ or checkpoint/)", "model_dir")
    return json.loads(path.read_text())


def load_policy(folder: Path, plm_dir: Path, **load_options):
    """Rebuild a saved policy: (model, settings, return scaling); `load_options` go to load_backbone (precision,
    placement)."""
    folder = Path(folder)
    settings = read_settings(folder)
    adapter = folder / "adapter"
    if settings["rank"] > 0 and not settings.get("freeze_plm") and not (adapter / "adapter_config.json").is_file():
        raise InputError(f"{folder} lacks its LoRA adapter ({adapter}); the folder is incomplete")
    model = OfflineRLPolicy.from_settings(settings, plm_dir, adapter if adapter.is_dir() else None, **load_options)
    if model.backbone.hidden_size != settings["hidden_size"]:
        raise InputError(f"{folder} was trained on a backbone with hidden size {settings['hidden_size']}, but "
                         f"{settings['plm_type']}/{settings['plm_size']} now has {model.backbone.hidden_size}")
    try:
        modules = load_file(folder / "modules.safetensors")
        model.load_state_dict(modules, strict=False)
        if (folder / "backbone.safetensors").is_file():
            model.backbone.model.load_state_dict(load_file(folder / "backbone.safetensors"))
    except (RuntimeError, OSError) as error:
        raise InputError(f"{folder} does not match the policy it describes ({str(error).splitlines()[0]})") from None
    missing = set(non_backbone_state(model)) - set(modules)
    if missing:
        raise InputError(f"{folder}/modules.safetensors lacks {sorted(missing)[0]} and {len(missing) - 1} more")
    return model, settings, ReturnScaling(**settings["return_scaling"])


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split an optimizer's state into tensors (for safetensors) and JSON-able values."""
    state = optimizer.state_dict()
    tensors = {f"optimizer.{index}.{key}": value for index, values in state["state"].items()
               for key, value in values.items()}
    return tensors, {"param_groups": state["param_groups"]}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, scalars: dict) -> None:
    state: dict = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": scalars["param_groups"]})
