"""Conventional ABR policies behind the one Policy interface: BBA, MPC/RobustMPC, Hold and the Pensieve family."""
from pathlib import Path

import numpy as np

from abr_sim.datasets import Video
from common.errors import InputError
from abr_sim.policy import Policy

from .bba import BBA
from .hold import Hold
from .mpc import MPC
from .pensieve import CHECKPOINT_EPOCHS, PensieveActor, PensievePolicy, checkpoint_prefix, torch_probabilities

BASELINES = ["bba", "mpc", "robustmpc", "hold", *CHECKPOINT_EPOCHS]


def make_baseline(name: str, video: Video, data_root: Path, rng: np.random.RandomState,
                  backend: str = "torch", deterministic: bool = False, checkpoint: Path | None = None,
                  fresh_episodes: bool = False) -> Policy:
    """Build a baseline by name; `rng` drives the Pensieve family's action sampling.

    `checkpoint` is a TF1 checkpoint prefix for the Pensieve family (default: the data root's original one).
    `fresh_episodes`: MPC and RobustMPC forget a client's bandwidth-error history at every episode (servers);
    the default keeps the original's carry-over.
    """
    if name == "bba":
        return BBA()
    if name == "hold":
        return Hold()
    if name in ("mpc", "robustmpc"):
        return MPC(video, jump_plans_only=name == "mpc", fresh_episodes=fresh_episodes)
    if name not in CHECKPOINT_EPOCHS:
        raise InputError(f"unknown model '{name}'; choose from {', '.join(BASELINES)}")
    prefix = checkpoint or checkpoint_prefix(data_root, name)
    if backend == "tf":
        from .pensieve_tf import tf_probabilities

        probabilities = tf_probabilities(prefix)
    else:
        probabilities = torch_probabilities(PensieveActor.from_tf_checkpoint(prefix))
    return PensievePolicy(name, probabilities, rng, deterministic)
