"""Average job completion time, as the original computes it: over every job that has arrived, the time from
its arrival to its completion (or to the episode's end, if it is still running), from the job records of
evaluation.job_records; over several episodes, the mean of their averages."""
import numpy as np


def average_jct_s(jobs: list[dict]) -> float:
    return float(np.mean([job["duration_s"] for job in jobs]))


def average_jct_per_seed(per_seed: dict[int, list[dict]]) -> dict[int, float]:
    return {seed: average_jct_s(jobs) for seed, jobs in per_seed.items()}


def mean_average_jct_s(per_seed: dict[int, list[dict]]) -> float:
    return float(np.mean(list(average_jct_per_seed(per_seed).values())))
