"""A saved policy made ready to decide: LoRA folded into the weights, at the chosen inference precision.

    float32    as trained
    bfloat16   backbone weights, activations and caches in bfloat16 (the encoder and heads stay float32)
    int8       dynamic quantization of the backbone's linear layers (int8 weights, activations quantized on
               the fly; PyTorch runs it on the CPU only)
"""
import warnings
from pathlib import Path

import torch
from torch import nn

from common.errors import InputError

from .checkpoint import load_policy
from .placement import Placement, place_policy

PRECISIONS = ["float32", "bfloat16", "int8"]


def load_for_inference(policy_dir: Path, plm_dir: Path, precision: str, placement: Placement):
    """(model, saved settings, return scaling) of the policy in `policy_dir`, in eval mode where `placement` says."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision '{precision}'; choose from {', '.join(PRECISIONS)}", "dtype")
    if precision == "int8" and (placement.device.type != "cpu" or placement.split):
        raise InputError("int8 (dynamic quantization) runs on the CPU only; use bfloat16 on a GPU", "dtype")
    model, saved, scaling = load_policy(policy_dir, plm_dir, placement=placement,
                                        dtype=torch.bfloat16 if precision == "bfloat16" else torch.float32)
    model.backbone.merge_lora()
    if precision == "int8":
        with warnings.catch_warnings():  # PyTorch announces that its quantized tensors will move to torchao
            warnings.simplefilter("ignore")
            model.backbone.model = torch.ao.quantization.quantize_dynamic(model.backbone.model, {nn.Linear},
                                                                           dtype=torch.qint8)
    return place_policy(model, placement).eval(), saved, scaling
