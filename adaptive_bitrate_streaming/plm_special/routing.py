"""APC's threshold calibration, the same in both tasks: a router sends a request to the LLM when its
difficulty score exceeds a threshold, set so that about a share p of a calibration run's requests do."""
import numpy as np


def calibrate_threshold(scores, share: float) -> float:
    """The score above which about `share` of `scores` lie (share 0: +inf, nothing; share 1: -inf, all)."""
    if share <= 0:
        return float("inf")
    if share >= 1:
        return float("-inf")
    return float(np.quantile(np.asarray(scores), 1.0 - share))
