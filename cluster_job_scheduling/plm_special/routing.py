"""What APC's routers share in both tasks: the threshold calibration (a router sends a request to the LLM
when its difficulty score exceeds a threshold, set so that about a share p of a calibration run's requests
do), the learned router's model and the quality curve run_apc.py writes.

The learned router (plm_special/learned_router.py in each task) scores a request by `DisagreementModel`: the
probability that the LLM decides otherwise than the fast policy, from a vector of the request's features
(one hidden layer of 32, fitted on a calibration run where the LLM decides and the fast policy decides the
same requests beside it)."""
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

from common.files import atomic_folder


def calibrate_threshold(scores, share: float) -> float:
    """The score above which about `share` of `scores` lie (share 0: +inf, nothing; share 1: -inf, all)."""
    if share <= 0:
        return float("inf")
    if share >= 1:
        return float("-inf")
    return float(np.quantile(np.asarray(scores), 1.0 - share))


def disagreement_network(num_features: int) -> nn.Module:
    return nn.Sequential(nn.Linear(num_features, 32), nn.ReLU(), nn.Linear(32, 1))


@dataclass
class DisagreementModel:
    network: nn.Module
    mean: np.ndarray
    std: np.ndarray
    features: Callable  # observation -> 1-D array, the task's router features

    def __call__(self, observation) -> float:
        """The probability that the LLM decides otherwise than the fast policy."""
        x = torch.from_numpy(((self.features(observation) - self.mean) / self.std).astype(np.float32))
        with torch.no_grad():
            return float(torch.sigmoid(self.network(x[None]))[0, 0])


def fit_disagreement(features: Callable, rows: np.ndarray, labels: np.ndarray, seed: int,
                     steps: int = 500) -> tuple[DisagreementModel, list[float]]:
    """The model fitted on the calibration run's feature rows and disagreement labels (full-batch Adam, its
    initialisation seeded without touching the global generator) and its scores of those rows."""
    mean, std = rows.mean(axis=0), rows.std(axis=0) + 1e-6
    x = torch.from_numpy(((rows - mean) / std).astype(np.float32))
    y = torch.from_numpy(np.asarray(labels, dtype=np.float32))[:, None]
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    network = disagreement_network(x.shape[1])
    torch.random.set_rng_state(generator_state)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.binary_cross_entropy_with_logits(network(x), y).backward()
        optimizer.step()
    with torch.no_grad():
        scores = torch.sigmoid(network(x))[:, 0].tolist()
    return DisagreementModel(network.eval(), mean, std, features), scores


def write_curve(curve: pd.DataFrame, output: Path, quality: str, quality_label: str, fast_name: str) -> None:
    """curve.csv and curve.png (quality against the realised LLM share, one line per router, the fast policy
    and the LLM alone as horizontal lines where shares 0 and 1 were played) into the folder `output`, written
    atomically."""
    figure, axis = plt.subplots(figsize=(5, 3.5))
    for router, points in curve.groupby("router", sort=False):
        axis.plot(points["llm_share"], points[quality], marker="o", label=f"{router} router")
    for share, style, label in ((0.0, ":", f"{fast_name} alone"), (1.0, "--", "LLM alone")):
        end = curve[curve["target_share"] == share]
        if len(end):
            axis.axhline(end[quality].iloc[0], color="grey" if share == 0 else "black", linestyle=style, label=label)
    axis.set_xlabel("share of requests decided by the LLM")
    axis.set_ylabel(quality_label)
    axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic_folder(output) as staging:
        curve.to_csv(staging / "curve.csv", index=False)
        figure.savefig(staging / "curve.png", dpi=120)
    plt.close(figure)
