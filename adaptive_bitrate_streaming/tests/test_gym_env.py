import numpy as np
from gymnasium.utils.env_checker import check_env

from abr_sim.datasets import load_trace_set, load_video
from abr_sim.evaluation import run_episodes
from abr_sim.gym_env import StreamingEnv
from abr_sim.policy import Policy
from abr_sim.simulator import episode_schedule


class Alternate(Policy):
    name = "alternate"

    def act(self, observation, client=0):
        return (observation.timestep * 7) % 6


def test_passes_gymnasium_checks(synthetic_data):
    env = StreamingEnv(load_trace_set(synthetic_data, "synthetic-test"), load_video(synthetic_data, "synthetic"))
    check_env(env, skip_render_check=True)


def test_episode_matches_the_evaluation_loop(synthetic_data):
    trace_set, video = load_trace_set(synthetic_data, "synthetic-test"), load_video(synthetic_data, "synthetic")
    env = StreamingEnv(trace_set, video)
    for log in run_episodes(Alternate(), trace_set, video, episode_schedule(trace_set, True, 2), progress=False):
        state, info = env.reset()
        rewards, terminated, steps = [info["qoe"]], False, 0
        assert state.shape == (6, 6) and state.dtype == np.float32
        while not terminated:
            state, reward, terminated, truncated, info = env.step((info["timestep"] * 7) % 6)
            rewards.append(reward)
            steps += 1
        assert steps == 47 and not truncated and info["end_of_video"]
        assert rewards == [row[-1] for row in log.rows]


def test_noise_only_when_order_is_not_fixed_and_seeded(synthetic_data):
    trace_set, video = load_trace_set(synthetic_data, "synthetic-train"), load_video(synthetic_data, "synthetic")

    def delays(fixed, seed):
        env = StreamingEnv(trace_set, video, fixed_order=fixed)
        _, info = env.reset(seed=seed)
        return [env.step(3)[4]["delay_ms"] for _ in range(5)]

    assert delays(False, 1) == delays(False, 1) != delays(False, 2)
    assert delays(True, 1) == delays(True, 2)
