"""The settings of run_plm.py that both tasks share: the backbone, its adaptation and how the adapted policy
decides. Each task's run_plm.py adds its own (context, training length, data, evaluation) in a subclass."""
from dataclasses import dataclass

import torch

from common.errors import InputError
from common.settings import setting

from .backbones import DEFAULT_PLM_DIR, PLM_TYPES
from .inference import PRECISIONS
from .placement import Placement, make_placement


@dataclass
class LLMSettings:
    # the backbone and the policy around it
    plm_type: str = setting("smollm2", "LLM backbone type", choices=list(PLM_TYPES), kind="policy")
    plm_size: str = setting("135m", "backbone size: a folder name under downloaded_plms/<plm-type>/",
                            kind="policy")
    plm_dir: str = setting(str(DEFAULT_PLM_DIR), "where the <plm-type>/<plm-size>/ folders live")
    rank: int = setting(128, "LoRA rank of the adapters on the attention projections; -1 = full fine-tuning",
                        aliases=("--peft-rank",), kind="policy")
    which_layer: int = setting(-1, "early exit after this block (0-based); -1 = use all blocks", kind="policy")
    freeze_plm: bool = setting(False, "train nothing in the backbone (no LoRA either)", kind="policy")
    freeze_encoder: bool = setting(False, "do not train the state encoder", kind="policy")
    # adaptation
    exp_pool_path: str | None = setting(None, "experience pool (the folder generate_exp_pool.py wrote)",
                                        kind="training")
    resume: bool = setting(False, "continue the run in --model-dir from its checkpoint, with its saved settings")
    grad_accum_steps: int = setting(1, "forward passes per optimizer step", kind="training", minimum=1)
    lr: float = setting(1e-4, "peak learning rate (AdamW)", kind="training")
    lr_schedule: str = setting("constant", "after the warm-up: constant (the original's) or cosine (decays to 0 at "
                                           "the end of the last round)", choices=["constant", "cosine"],
                               kind="training")
    weight_decay: float = setting(1e-4, "AdamW weight decay", kind="training")
    average_decay: float = setting(0.0, "> 0 (below 1): validate and keep an exponential moving average of the "
                                        "trained weights with this decay per optimizer step (train_log.csv also "
                                        "scores the raw weights); 0: the raw weights (the original's)",
                                   kind="training", minimum=0)
    warmup_steps: int | None = setting(None, "linear warm-up in optimizer steps (default: 5% of them)",
                                       kind="training")
    gamma: float = setting(1.0, "discount of the returns to go", kind="training")
    scale: float = setting(1000.0, "returns to go are divided by this", kind="training")
    return_unit: float = setting(0.0, "0: rewards min-max normalised with the pool's extremes (the original's); "
                                      "> 0: rewards divided by this instead", kind="training", minimum=0)
    reward_floor_quantile: float = setting(0.0, "min-max normalisation's floor: this quantile of the pool's "
                                                "rewards (lower ones are clipped to it) instead of their minimum "
                                                "(0, the original's)", kind="training", minimum=0)
    # decisions
    target_return_scale: float = setting(1.0, "target return at the start of an episode = the pool's best x this",
                                         kind="training")
    sample: bool = setting(False, "sample the actions (seeded) instead of taking the most likely ones",
                           kind="training")
    results_dir: str | None = setting(None, "test results folder (default: artifacts/results/...)")
    overwrite: bool = setting(False, "replace an existing results folder")
    device: str | None = setting(None, "e.g. cpu or cuda:0: the policy, or with a split its own modules and the "
                                       "first blocks (default: cuda:0 if available, else cpu)")
    device_mid: str | None = setting(None, "split the backbone: its middle blocks on this device")
    device_out: str | None = setting(None, "split the backbone: its last blocks on this device (as the original's)")
    device_map: str | None = setting(None, "auto: accelerate spreads the backbone over the GPUs (then the CPU) by "
                                           "free memory")
    dtype: str = setting("float32", "precision of the backbone: training computes under autocast in it (frozen "
                                    "weights stored in it, trained ones float32); testing loads the weights in it "
                                    "(int8: testing on the CPU only)", choices=PRECISIONS, kind="training")

    def placement(self) -> Placement:
        return make_placement(self.device, self.device_mid, self.device_out, self.device_map)

    def training_dtype(self) -> torch.dtype:
        if self.dtype == "int8":
            raise InputError("int8 is for testing on the CPU; train in float32 or bfloat16", "dtype")
        return torch.bfloat16 if self.dtype == "bfloat16" else torch.float32
