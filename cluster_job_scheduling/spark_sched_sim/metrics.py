"""Average job completion time, as the original computes it: over every job that has arrived, the time from
its arrival to its completion (or to now, if it is still running)."""
import numpy as np


def average_jct_s(env) -> float:
    return float(np.mean(env.job_durations_ms()) * 1e-3)
