"""Task durations drawn from the recorded TPC-H runs (the original's `spark_sched_sim/datagen/task_duration.py`),
from the environment's generator.

The recorded durations are keyed by how many executors the job had. A job with n local executors draws
the key between the two recorded levels around n, the lower one with probability (n - lower) / (upper -
lower), exactly as the original computes it (which looks inverted, but the parity numbers depend on it). An idle executor (fresh at the stage, or just moved between jobs) takes a 'fresh'
duration, or a first-wave one plus the warm-up delay; an executor continuing on the same stage takes a
'rest_wave' duration; otherwise a 'first_wave' one.
"""
import numpy as np

EXECUTOR_LEVELS = [5, 10, 20, 40, 50, 60, 80, 100]


def executor_intervals(num_executors: int) -> list[tuple[int, int]]:
    """(lower, upper) recorded levels around every executor count 0..num_executors."""
    intervals = []
    for n in range(num_executors + 1):
        if n <= EXECUTOR_LEVELS[0]:
            intervals.append((EXECUTOR_LEVELS[0], EXECUTOR_LEVELS[0]))
        elif n >= EXECUTOR_LEVELS[-1]:
            intervals.append((EXECUTOR_LEVELS[-1], EXECUTOR_LEVELS[-1]))
        else:
            upper = next(level for level in EXECUTOR_LEVELS if level >= n)
            lower = EXECUTOR_LEVELS[EXECUTOR_LEVELS.index(upper) - 1]
            intervals.append((n, n) if n == upper else (lower, upper))
    return intervals


class TaskDurationSampler:
    def __init__(self, num_executors: int, warmup_delay: float):
        self.warmup_delay = warmup_delay
        self.intervals = executor_intervals(num_executors)
        self.rng: np.random.Generator | None = None

    def _executor_key(self, durations: dict, num_local_executors: int) -> int:
        lower, upper = self.intervals[num_local_executors]
        key = lower
        if lower != upper and 1 + int(self.rng.random() * (upper - lower)) > num_local_executors - lower:
            key = upper
        return key if key in durations["first_wave"] else max(durations["first_wave"])

    def _choose(self, durations: dict, wave: str, key: int) -> float | None:
        values = durations[wave].get(key)
        return values[self.rng.integers(len(values))] if values else None

    def sample(self, durations: dict, num_local_executors: int, executor_is_idle: bool, same_stage: bool) -> float:
        key = self._executor_key(durations, num_local_executors)
        if executor_is_idle:
            fresh = self._choose(durations, "fresh_durations", key)
            return fresh if fresh is not None else self._choose(durations, "first_wave", key) + self.warmup_delay
        if same_stage:
            rest = self._choose(durations, "rest_wave", key)
            if rest is not None:
                return rest
        first = self._choose(durations, "first_wave", key)
        return first if first is not None else self._choose(durations, "fresh_durations", key)
