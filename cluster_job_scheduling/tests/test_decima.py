import shutil

import numpy as np
import pytest
import torch

from schedulers import DEFAULT_CONFIG, load_config, make_scheduler
from schedulers.decima import DecimaScheduler
from spark_sched_sim.datasets import load_dataset
from spark_sched_sim.env import SparkSchedSimEnv
from common.errors import InputError
from spark_sched_sim.graph_observation import level_edge_masks, topological_generations


@pytest.fixture(scope="module")
def tpch(real_data):
    return load_dataset(real_data, "tpch")


def decisions(env, scheduler, seed, steps):
    """The actions and log-probabilities of the first `steps` decisions of an episode."""
    scheduler.reset()
    observation, _ = env.reset(seed=seed)
    taken = []
    for _ in range(steps):
        (action,), (lgprob,) = scheduler.decide([scheduler.graph_observation(observation)])
        taken.append((action["stage_idx"], action["num_exec"], round(lgprob, 5)))
        observation, _, done, _, _ = env.step(action)
        if done:
            break
    return taken


def test_original_weights_load_and_cached_levels_change_no_decision(real_data, tpch):
    env = SparkSchedSimEnv(tpch)
    cached = DecimaScheduler(50, load_config()["agent"], real_data / "cjs/models/decima/model.pt", seed=4)
    uncached = DecimaScheduler(50, load_config()["agent"], real_data / "cjs/models/decima/model.pt", seed=4,
                               cache=False)
    first = decisions(env, cached, seed=3, steps=600)
    assert first == decisions(env, uncached, seed=3, steps=600)
    assert len({stage for stage, _, _ in first}) > 5 and len({n for _, n, _ in first}) > 3


def test_batched_decisions_equal_one_at_a_time(real_data, tpch):
    scheduler = make_scheduler("decima", 50, real_data, seed=0, greedy=True)
    envs = [SparkSchedSimEnv(tpch) for _ in range(3)]
    observations = [env.reset(seed=s)[0] for env, s in zip(envs, (1, 2, 3))]
    for _ in range(30):  # advance the three environments a little, each differently
        for env, i in zip(envs, range(3)):
            observations[i], *_ = env.step(scheduler.act(observations[i], env_id=i))
    batched = scheduler.act_batch(observations, [0, 1, 2])
    assert batched == [scheduler.act(o, env_id=i) for i, o in enumerate(observations)]


def test_levels_follow_the_dag():
    edges = np.array([[0, 2], [1, 2], [2, 3], [1, 3], [4, 5]])
    assert [g.tolist() for g in topological_generations(edges, 6)] == [[0, 1, 4], [2, 5], [3]]
    masks = level_edge_masks(edges, 6)
    # level 0 and its children {2, 3, 5}: every edge among {0, 1, 4, 2, 3, 5}; level 1 {2, 5} and child {3}
    assert masks.tolist() == [[True] * 5, [False, False, True, False, False]]


def test_mismatched_or_damaged_weights_are_refused(real_data, tmp_path):
    state = torch.load(real_data / "cjs/models/decima/model.pt", weights_only=True)
    state["encoder.dag_encoder.mlp.0.weight"] = torch.zeros(32, 7)
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(InputError, match="does not match the Decima architecture"):
        make_scheduler("decima", 50, real_data, state_dict_path=tmp_path / "other.pt")
    shutil.copy(real_data / "cjs/models/decima/model.pt", tmp_path / "cut.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "cut.pt").read_bytes()[:4000])
    with pytest.raises(InputError, match="not a readable Decima state dict"):
        make_scheduler("decima", 50, real_data, state_dict_path=tmp_path / "cut.pt")
    with pytest.raises(InputError, match="not found"):
        make_scheduler("decima", 50, tmp_path)


def test_config_is_the_original_architecture():
    agent = load_config(DEFAULT_CONFIG)["agent"]
    scheduler = DecimaScheduler(50, agent)
    assert sum(p.numel() for p in scheduler.actor.parameters()) == 20802
