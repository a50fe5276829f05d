"""RobustMPC (the original's `run_baseline.py` `mpc`), with the plan search vectorised in NumPy over
the tree of the plans' prefixes.

`MPC(video)` is the original's "MPC": RobustMPC restricted to "jump" plans, where each chunk's quality
differs by at most one level from the previous one, starting from the current quality.
`MPC(video, jump_plans_only=False)` is the standard RobustMPC over all 6^5 plans. Both keep the
original's quirks: the look-ahead reads the chunk after the one it plans for (Pensieve's off-by-one),
ties go to the later plan, and the bandwidth-error history of a client is never reset between episodes.
"""
import itertools
from dataclasses import dataclass

import numpy as np

from abr_sim.constants import BITRATE_LEVELS, REBUF_PENALTY, TOTAL_VIDEO_CHUNKS, VIDEO_BIT_RATE, VIDEO_CHUNK_LEN_MS
from abr_sim.datasets import Video
from abr_sim.policy import Policy

HORIZON = 5
BITRATES = np.array(VIDEO_BIT_RATE)


def all_plans() -> np.ndarray:
    return np.array(list(itertools.product(range(BITRATE_LEVELS), repeat=HORIZON)))


def jump_plans(quality: int) -> np.ndarray:
    """Plans (in itertools.product order) whose successive qualities, starting at `quality`, differ by <= 1."""
    plans = all_plans()
    steps = np.diff(np.concatenate([np.full((len(plans), 1), quality), plans], axis=1), axis=1)
    return plans[np.all(np.abs(steps) <= 1, axis=1)]


@dataclass
class PrefixLevel:
    parent: np.ndarray
    quality: np.ndarray
    first_quality: np.ndarray
    bitrate_sum: np.ndarray
    smoothness: np.ndarray


class PlanSet:
    """The plans searched from one current quality, as a tree of their prefixes: level k holds the distinct
    prefixes of k + 1 chunks in plan order, each with its parent prefix, its last quality, its first quality,
    and its bitrate sum and smoothness (which do not depend on the network), computed once."""

    def __init__(self, plans: np.ndarray, quality: int):
        self.plans, self.quality = plans, quality
        previous = np.concatenate([np.full((len(plans), 1), quality), plans[:, :-1]], axis=1)
        bitrate_sums = np.cumsum(BITRATES[plans], axis=1)
        smoothness = np.cumsum(np.abs(BITRATES[plans] - BITRATES[previous]), axis=1)
        self.levels, parents = [], np.zeros(len(plans), dtype=np.int64)
        for k in range(HORIZON):
            _, first_rows, rows = np.unique(plans[:, : k + 1], axis=0, return_index=True, return_inverse=True)
            self.levels.append(PrefixLevel(parents[first_rows], plans[first_rows, k], plans[first_rows, 0],
                                           bitrate_sums[first_rows, k], smoothness[first_rows, k]))
            parents = rows.reshape(-1)


class MPC(Policy):
    """`fresh_episodes=False` keeps the original's quirk: a client's bandwidth-error history carries over from
    one episode to its next (the first error of an episode compares with the last estimate of the previous
    one), as the paper's numbers were measured; True starts it afresh at `reset`, as a server's sessions,
    which know nothing of each other, need."""

    def __init__(self, video: Video, jump_plans_only: bool = True, search=None, fresh_episodes: bool = False):
        self.name = "mpc" if jump_plans_only else "robustmpc"
        self.search = search or plan_search
        self.fresh_episodes = fresh_episodes
        # size 0 beyond the last chunk, as the original's get_chunk_size
        self.sizes = np.zeros((BITRATE_LEVELS, TOTAL_VIDEO_CHUNKS + 1 + HORIZON), dtype=np.int64)
        self.sizes[:, : TOTAL_VIDEO_CHUNKS + 1] = np.array([level[: TOTAL_VIDEO_CHUNKS + 1] for level in video.sizes])
        self.plan_sets = [PlanSet(jump_plans(q) if jump_plans_only else all_plans(), q) for q in range(BITRATE_LEVELS)]
        self.history = {}  # client -> (past relative errors, past bandwidth estimates)

    def reset(self, client: int = 0) -> None:
        if self.fresh_episodes:
            self.history.pop(client, None)

    def _predict_bandwidth(self, state: np.ndarray, client: int) -> float:
        errors, estimates = self.history.setdefault(client, ([], []))
        measured = state[2, -1]
        errors.append(abs(estimates[-1] - measured) / float(measured) if estimates else 0)
        past = state[2, -5:]
        first = int(np.argmax(past != 0.0))  # strip leading zeros (the start of an episode)
        inverse_sum = 0.0
        for value in past[first:]:
            inverse_sum += 1 / float(value)
        harmonic_mean = 1.0 / (inverse_sum / (len(past) - first))
        estimates.append(harmonic_mean)
        return harmonic_mean / (1 + float(max(errors[-5:])))

    def act(self, observation, client=0):
        bandwidth = self._predict_bandwidth(observation.state, client)
        downloaded = TOTAL_VIDEO_CHUNKS - observation.chunk.chunks_remaining
        plan_set = self.plan_sets[observation.quality]
        return self.search(self.sizes, plan_set, observation.chunk.buffer_s, downloaded, bandwidth)


def plan_search(sizes, plan_set: PlanSet, buffer_s, downloaded, bandwidth) -> int:
    """First quality of the plan with the highest predicted QoE over the horizon, level by level over the
    prefix tree (a prefix's buffer and rebuffering are computed once for all the plans that share it)."""
    horizon = min(HORIZON, TOTAL_VIDEO_CHUNKS - downloaded)
    if horizon <= 0:
        return 0
    buffer, rebuffer = np.array([float(buffer_s)]), np.zeros(1)
    chunk_len_s = VIDEO_CHUNK_LEN_MS / 1000.0
    for k in range(horizon):
        level = plan_set.levels[k]
        download_s = (sizes[:, downloaded + 1 + k] / 1000000.0 / bandwidth)[level.quality]  # the original's
        # off-by-one look-ahead: the chunk after the one planned for
        buffer, rebuffer = buffer[level.parent], rebuffer[level.parent]
        stall = buffer < download_s
        rebuffer = np.where(stall, rebuffer + (download_s - buffer), rebuffer)
        buffer = np.where(stall, 0.0, buffer - download_s) + chunk_len_s
    reward = level.bitrate_sum / 1000.0 - REBUF_PENALTY * rebuffer - level.smoothness / 1000.0
    best = len(reward) - 1 - int(np.argmax(reward[::-1]))  # ties go to the later plan
    return int(level.first_quality[best])


def plan_search_loop(sizes, plan_set: PlanSet, buffer_s, downloaded, bandwidth) -> int:
    """The same search as the original writes it, one plan and one chunk at a time: the reference that
    the tests check `plan_search` against and the benchmark times it against."""
    horizon = min(HORIZON, TOTAL_VIDEO_CHUNKS - downloaded)
    best, best_reward = 0, -100000000
    for full_plan in plan_set.plans:
        plan = full_plan[:horizon]
        buffer, rebuffer, bitrate_sum, smoothness, last = buffer_s, 0.0, 0, 0, plan_set.quality
        for position, chunk_quality in enumerate(plan):
            download = sizes[chunk_quality, downloaded + position + 1] / 1000000.0 / bandwidth
            if buffer < download:
                rebuffer += download - buffer
                buffer = 0
            else:
                buffer -= download
            buffer += VIDEO_CHUNK_LEN_MS / 1000.0
            bitrate_sum += VIDEO_BIT_RATE[chunk_quality]
            smoothness += abs(VIDEO_BIT_RATE[chunk_quality] - VIDEO_BIT_RATE[last])
            last = chunk_quality
        reward = bitrate_sum / 1000.0 - REBUF_PENALTY * rebuffer - smoothness / 1000.0
        if reward >= best_reward:
            best_reward, best = reward, int(plan[0]) if len(plan) else 0
    return best
