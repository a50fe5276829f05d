"""What APC's routers share in both tasks: the threshold calibration (a router sends a request to the LLM
when its difficulty score exceeds a threshold, set so that about a share p of a calibration run's requests
do) and the quality curve run_apc.py writes."""
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from common.files import atomic_folder


def calibrate_threshold(scores, share: float) -> float:
    """The score above which about `share` of `scores` lie (share 0: +inf, nothing; share 1: -inf, all)."""
    if share <= 0:
        return float("inf")
    if share >= 1:
        return float("-inf")
    return float(np.quantile(np.asarray(scores), 1.0 - share))


def write_curve(curve: pd.DataFrame, output: Path, quality: str, quality_label: str, fast_name: str) -> None:
    """curve.csv and curve.png (quality against the realised LLM share, one line per router, the fast policy
    and the LLM alone as horizontal lines) into the folder `output`, written atomically."""
    figure, axis = plt.subplots(figsize=(5, 3.5))
    for router, points in curve.groupby("router", sort=False):
        axis.plot(points["llm_share"], points[quality], marker="o", label=f"{router} router")
    ends = curve.sort_values("target_share")
    axis.axhline(ends[quality].iloc[0], color="grey", linestyle=":", label=f"{fast_name} alone")
    axis.axhline(ends[quality].iloc[-1], color="black", linestyle="--", label="LLM alone")
    axis.set_xlabel("share of requests decided by the LLM")
    axis.set_ylabel(quality_label)
    axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic_folder(output) as staging:
        curve.to_csv(staging / "curve.csv", index=False)
        figure.savefig(staging / "curve.png", dpi=120)
    plt.close(figure)
