"""The vectorised plan search equals a straightforward per-plan loop (the original's algorithm)."""
import itertools

import numpy as np
import pytest

from abr_sim.datasets import load_trace_set, load_video
from abr_sim.evaluation import run_episodes
from abr_sim.simulator import episode_schedule
from baselines.mpc import MPC, jump_plans


def reference_plan_search(sizes, plans, quality, buffer_s, downloaded, bandwidth):
    horizon = min(5, 48 - downloaded)
    best, best_reward = 0, -1e8
    for full_plan in plans:
        plan = full_plan[:horizon]
        buffer, rebuffer, bitrate_sum, smoothness, last = buffer_s, 0.0, 0, 0, quality
        for position, q in enumerate(plan):
            index = downloaded + position + 1
            download = (sizes[q][index] if index <= 48 else 0) / 1000000.0 / bandwidth
            if buffer < download:
                rebuffer += download - buffer
                buffer = 0
            else:
                buffer -= download
            buffer += 4
            rates = [300, 750, 1200, 1850, 2850, 4300]
            bitrate_sum += rates[q]
            smoothness += abs(rates[q] - rates[last])
            last = q
        reward = bitrate_sum / 1000.0 - 4.3 * rebuffer - smoothness / 1000.0
        if reward >= best_reward:
            best_reward, best = reward, (plan[0] if len(plan) else 0)
    return best


def test_jump_plans_move_at_most_one_level_per_chunk():
    for quality in range(6):
        plans = jump_plans(quality)
        steps = np.diff(np.concatenate([np.full((len(plans), 1), quality), plans], axis=1))
        assert np.abs(steps).max() <= 1
        expected = [p for p in itertools.product(range(6), repeat=5)
                    if all(abs(b - a) <= 1 for a, b in zip((quality,) + p, p))]
        assert [tuple(p) for p in plans] == expected


class RecordingMPC(MPC):
    """Checks every decision against the reference loop on the real trajectories."""

    def act(self, observation, client=0):
        decision = super().act(observation, client)
        bandwidth = self.history[client][1][-1] / (1 + max(self.history[client][0][-5:]))
        downloaded = 48 - observation.chunk.chunks_remaining
        if downloaded < 48:
            expected = reference_plan_search(self.video_sizes, self.plans[observation.quality], observation.quality,
                                             observation.chunk.buffer_s, downloaded, bandwidth)
            assert decision == expected
        self.checked += 1
        return decision


@pytest.mark.parametrize("jump_only", [True, False])
def test_vectorised_search_equals_reference_loop(real_data, jump_only):
    trace_set = load_trace_set(real_data, "fcc-test")
    video = load_video(real_data, "video1")
    policy = RecordingMPC(video, jump_plans_only=jump_only)
    policy.video_sizes, policy.checked = video.sizes, 0
    run_episodes(policy, trace_set, video, episode_schedule(trace_set, True, 3), progress=False)
    assert policy.checked == 3 * 48
