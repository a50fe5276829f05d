import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from schedulers.heuristics import RoundRobin
from spark_sched_sim.datasets import load_dataset
from spark_sched_sim.env import SparkSchedSimEnv
from common.errors import InputError
from spark_sched_sim.evaluation import run_episodes


@pytest.fixture(scope="module")
def templates(synthetic_data):
    return load_dataset(synthetic_data, "synthetic")


def small_env(templates, **overrides):
    settings = dict(num_executors=10, job_arrival_cap=20) | overrides
    return SparkSchedSimEnv(templates, **settings)


def play(env, scheduler, seed):
    observation, _ = env.reset(seed=seed)
    rewards, done, steps = [], False, 0
    while not done:
        observation, reward, done, truncated, info = env.step(scheduler.act(observation))
        rewards.append(reward)
        steps += 1
    return rewards, steps


def test_passes_gymnasium_checks(templates):
    check_env(small_env(templates), skip_render_check=True)


def test_same_seed_same_episode_and_every_job_completes(templates):
    env = small_env(templates)
    first, steps = play(env, RoundRobin(10, fair=True), seed=5)
    durations = env.job_durations_ms()
    again, _ = play(env, RoundRobin(10, fair=True), seed=5)
    assert again == first and env.job_durations_ms() == durations
    assert len(env.completed_job_ids) == 20 and steps > 20
    different, _ = play(env, RoundRobin(10, fair=True), seed=6)
    assert different != first


def test_rewards_add_up_to_minus_the_total_job_time(templates):
    env = small_env(templates)
    rewards, _ = play(env, RoundRobin(10, fair=False), seed=2)
    assert -sum(rewards) == pytest.approx(sum(env.job_durations_ms()), rel=1e-9)


def test_observation_layout(templates):
    env = small_env(templates)
    observation, _ = env.reset(seed=1)
    nodes, ptr = observation["dag_batch"].nodes, observation["dag_ptr"]
    assert nodes.shape[1] == 3 and ptr[0] == 0 and ptr[-1] == len(nodes)
    assert observation["num_committable_execs"] == 10  # every executor starts free, at the common pool
    assert observation["source_job_idx"] == len(observation["exec_supplies"])  # source: the common pool
    schedulable = nodes[:, 2].astype(bool)
    parents = set(observation["dag_batch"].edge_links[:, 1].tolist())
    assert schedulable.any() and not any(schedulable[list(parents)])  # stages with parents wait for them


def test_invalid_actions_are_refused(templates):
    env = small_env(templates)
    env.reset(seed=1)
    with pytest.raises(ValueError, match="not one of the"):
        env.step({"stage_idx": 999, "num_exec": 1})
    with pytest.raises(ValueError, match="outside 1..10"):
        env.step({"stage_idx": 0, "num_exec": 11})


@pytest.mark.parametrize("settings, setting, needle", [
    ({"num_executors": 0}, "num_executors", "at least 1 executor"),
    ({"job_arrival_rate": 0.0}, "job_arrival_rate", "must be positive"),
    ({"job_arrival_cap": -3}, "job_arrival_cap", "at least 1 job"),
    ({"warmup_delay": -1.0}, "warmup_delay", "must be >= 0 ms"),
])
def test_bad_settings(templates, settings, setting, needle):
    with pytest.raises(InputError, match=needle) as error:
        small_env(templates, **settings)
    assert error.value.setting == setting


def test_batched_evaluation_equals_one_environment_at_a_time(templates):
    make_env = lambda: small_env(templates)  # noqa: E731
    one = run_episodes(make_env, RoundRobin(10, fair=True), [1, 2, 3], num_envs=1, progress=False)
    three = run_episodes(make_env, RoundRobin(10, fair=True), [1, 2, 3], num_envs=3, progress=False)
    assert one == three
    assert np.mean([job["duration_s"] for job in one[1]]) > 0


def test_a_fork_continues_as_the_original_would_without_touching_it(templates):
    env, scheduler = small_env(templates), RoundRobin(10, fair=False)
    observation, _ = env.reset(seed=4)
    for _ in range(15):
        observation, *_ = env.step(scheduler.act(observation))
    fork, start = env.fork(), env.wall_time
    assert fork.templates is env.templates and fork.jobs[0].stages[0].durations is env.jobs[0].stages[0].durations
    fork_observation, done, fork_rewards = observation, False, []
    while not done:  # the fork plays to the end; the original has not moved
        fork_observation, reward, done, _, _ = fork.step(scheduler.act(fork_observation))
        fork_rewards.append(reward)
    assert env.wall_time == start and not env.all_jobs_complete
    rewards, done = [], False
    while not done:  # the same decisions from the same state: the same rewards, the generator copied too
        observation, reward, done, _, _ = env.step(scheduler.act(observation))
        rewards.append(reward)
    assert rewards == fork_rewards and env.job_durations_ms() == fork.job_durations_ms()
    assert env.job_time_ms(start, np.inf) == pytest.approx(-sum(rewards))
    assert env.job_time_ms(0, np.inf) == pytest.approx(sum(env.job_durations_ms()))
    assert env.job_time_ms(start, start + 1000) + env.job_time_ms(start + 1000, np.inf) \
        == pytest.approx(env.job_time_ms(start, np.inf))
