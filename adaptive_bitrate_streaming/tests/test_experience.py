import json
import pickle
import shutil
import sys
import types

import numpy as np
import pytest

from abr_sim.synthetic import TraceConfig, generate
from common.errors import InputError
from conftest import run_script
from plm_special.dataset import ExperienceDataset, collate_episodes
from plm_special.return_scaling import ReturnScaling
from plm_special.experience import ExperiencePool, load_pool


def test_pool_holds_47_transitions_per_episode_with_its_statistics(small_pool):
    pool = load_pool(small_pool)
    metadata = json.loads((small_pool / "metadata.json").read_text())
    assert metadata["source_policies"] == ["mpc", "bba"] and metadata["seeds"] == [1, 2]
    stats = metadata["statistics"]
    assert stats["num_episodes"] == 2 * 2 * 5 and stats["num_transitions"] == 20 * 47
    assert [e.stop - e.start for e in pool.episodes()] == [47] * 20
    assert stats["max_timestep"] == 46
    assert stats["reward_max"] == pytest.approx(pool.rewards.max())
    assert pool.states.dtype == np.float32 and pool.states.shape[1:] == (6, 6)
    # the first transition of an episode: the state after chunk 0 (fetched at the lowest quality)
    assert pool.states[0][0, -1] == pytest.approx(300 / 4300) and pool.states[0][5, -1] == pytest.approx(47 / 48)


def test_generation_is_deterministic_and_independent_of_workers(synthetic_data, tmp_path, small_pool):
    result = run_script("generate_exp_pool.py", "--models", "mpc", "bba", "--trace", "synthetic-train", "--video",
                        "synthetic", "--data-dir", str(synthetic_data), "--seeds", "1", "2", "--workers", "1", "--trace-num", "5",
                        "--output", str(tmp_path / "again"))
    assert result.returncode == 0, result.stderr
    first, again = load_pool(small_pool), load_pool(tmp_path / "again")
    for name in ("states", "actions", "rewards", "dones"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    # and the seeds matter (the original's --seed had no effect)
    assert not np.array_equal(first.rewards[: 5 * 47], first.rewards[5 * 47: 10 * 47])


def test_a_best_of_policies_pool_keeps_the_best_episode_of_each_trace(synthetic_data, tmp_path, small_pool):
    """--keep-best 1: of MPC's and BBA's episodes on the same trace, start, seed and video, the one with the
    higher return, unchanged (small_pool holds both in full, from the same seeded generators)."""
    result = run_script("generate_exp_pool.py", "--models", "mpc", "bba", "--trace", "synthetic-train", "--video",
                        "synthetic", "--data-dir", str(synthetic_data), "--seeds", "1", "2", "--trace-num", "5",
                        "--keep-best", "1", "--output", str(tmp_path / "best"))
    assert result.returncode == 0, result.stderr
    full, best = load_pool(small_pool), load_pool(tmp_path / "best")
    episode_returns = [float(full.rewards[e].sum()) for e in full.episodes()]  # mpc s1, mpc s2, bba s1, bba s2
    mpc, bba = episode_returns[:10], episode_returns[10:]
    assert mpc != bba
    kept = sorted(float(best.rewards[e].sum()) for e in best.episodes())
    assert kept == pytest.approx(sorted(max(a, b) for a, b in zip(mpc, bba)))
    metadata = json.loads((tmp_path / "best" / "metadata.json").read_text())
    wins = sum(a >= b for a, b in zip(mpc, bba))
    assert metadata["keep_best"] == 1 and metadata["kept_episodes"] == {"mpc": wins, "bba": 10 - wins}
    assert metadata["mean_episode_return"]["bba"] == pytest.approx(np.mean(bba))
    assert metadata["statistics"]["episode_return_mean"] >= max(np.mean(mpc), np.mean(bba))
    assert "kept the best 1 of 2 per episode" in result.stdout


def test_existing_pool_is_never_overwritten(synthetic_data, small_pool):
    before = (small_pool / "transitions.npz").read_bytes()
    result = run_script("generate_exp_pool.py", "--models", "bba", "--trace", "synthetic-train", "--video",
                        "synthetic", "--data-dir", str(synthetic_data), "--output", str(small_pool))
    assert result.returncode == 2 and "already exists" in result.stderr
    assert (small_pool / "transitions.npz").read_bytes() == before


def test_unknown_model_list_is_one_clear_error(synthetic_data, tmp_path):
    result = run_script("generate_exp_pool.py", "--models", "mpc,pensieve", "--trace", "synthetic-train",
                        "--video", "synthetic", "--data-dir", str(synthetic_data), "--output", str(tmp_path / "p"))
    assert result.returncode == 2 and result.stderr.strip() == (
        "error: unknown model(s) pensieve; choose from bba, mpc, robustmpc, hold, genet, udr_1, udr_2, udr_3, udr_real")


def test_returns_to_go_and_reward_normalisation():
    scaling = ReturnScaling(reward_min=-10.0, reward_max=10.0, gamma=0.5, scale=10)
    normalized = scaling.normalize(np.array([10.0, 0.0, -10.0, 30.0]))
    assert normalized.tolist() == [1.0, 0.5, 0.0, 1.0]  # clipped to the pool's range
    assert scaling.returns_to_go(np.array([1.0, 1.0, 1.0])).tolist() == pytest.approx([0.175, 0.15, 0.1])
    assert scaling.process_reward(0.0) == pytest.approx(0.05)


def test_returns_in_a_unit_keep_the_rewards_sign_and_proportions(small_pool):
    """--return-unit u: r~ = r / u, unclipped, so a return to go is the rest of the episode's reward in units of u;
    the test target starts at the best episode start's return."""
    scaling = ReturnScaling(reward_min=-10.0, reward_max=10.0, gamma=1.0, scale=10, unit=2.0)
    assert scaling.normalize(np.array([10.0, -30.0])).tolist() == [5.0, -15.0]
    assert scaling.process_reward(-4.0) == pytest.approx(-0.2)
    pool = load_pool(small_pool)
    dataset = ExperienceDataset(pool, gamma=1.0, scale=10, unit=2.0)
    starts = [float(pool.rewards[e].sum()) / 2.0 / 10 for e in pool.episodes()]
    assert [float(e["returns"][0]) for e in dataset.episodes] == pytest.approx(starts, rel=1e-5)
    assert dataset.scaling.max_return == pytest.approx(max(starts), rel=1e-5)
    assert dataset.scaling.to_dict()["unit"] == 2.0


def test_a_reward_floor_quantile_clips_the_extremes_below_it(small_pool):
    """--reward-floor-quantile q: the min-max floor is the q-quantile of the pool's rewards, so rewards below it
    normalise to 0 and the others spread over the whole range [0, 1] rather than a sliver of it."""
    pool = load_pool(small_pool)
    floor = float(np.quantile(pool.rewards, 0.05))
    assert floor > pool.rewards.min()
    dataset = ExperienceDataset(pool, gamma=1.0, scale=10, floor_quantile=0.05)
    assert dataset.scaling.reward_min == pytest.approx(floor) and dataset.scaling.reward_max == pool.rewards.max()
    normalized = dataset.scaling.normalize(pool.rewards)
    assert (normalized[pool.rewards <= floor] == 0).all() and (normalized[pool.rewards > floor] > 0).all()
    first = pool.episodes()[0]
    assert float(dataset.episodes[0]["returns"][0]) == pytest.approx(normalized[first].sum() / 10, rel=1e-5)
    assert ExperienceDataset(pool, gamma=1.0, scale=10).scaling.reward_min == pool.rewards.min()


def test_dataset_episodes_never_straddle(small_pool):
    dataset = ExperienceDataset(load_pool(small_pool), gamma=1.0, scale=1000)
    assert len(dataset) == 20
    episode = dataset[3]
    assert episode["timesteps"].tolist() == list(range(47))
    assert episode["returns"][-1] > 0 and all(episode["returns"][:-1] >= episode["returns"][1:])
    assert dataset.scaling.max_return == pytest.approx(max(float(e["returns"][0]) for e in dataset.episodes))
    batch = collate_episodes([dataset[0], {k: v[:10] for k, v in dataset[1].items()}])
    assert batch["valid"].sum(1).tolist() == [47, 10] and batch["states"].shape == (2, 47, 6, 6)


def original_pickle(path, states, actions, rewards, dones):
    """Write a pool the way the original code did: a pickled plm_special.data.exp_pool.ExperiencePool."""
    module = types.ModuleType("plm_special.data.exp_pool")

    class ExperiencePool:
        pass

    ExperiencePool.__module__, ExperiencePool.__qualname__ = module.__name__, "ExperiencePool"
    module.ExperiencePool = ExperiencePool
    sys.modules[module.__name__] = module
    try:
        pool = ExperiencePool()
        pool.states, pool.actions, pool.rewards, pool.dones = states, actions, rewards, dones
        path.write_bytes(pickle.dumps(pool))
    finally:
        del sys.modules[module.__name__]


def test_original_pickled_pools_load_through_the_restricted_loader(tmp_path):
    states = [np.full((6, 6), i, dtype=np.float32) for i in range(4)]
    original_pickle(tmp_path / "exp_pool.pkl", states, [np.int64(1), 2, 3, 0], [0.5, np.float64(1.0), -2.0, 4.3],
                    [False, False, False, True])
    pool = load_pool(tmp_path / "exp_pool.pkl")
    assert pool.actions.tolist() == [1, 2, 3, 0] and pool.dones.tolist() == [False, False, False, True]
    assert pool.states[2][0, 0] == 2.0


def test_pickles_with_other_classes_are_refused(tmp_path):
    victim = tmp_path / "keep"
    victim.mkdir()

    class Evil:  # (not print: Ray, once imported in the process, replaces builtins.print)
        def __reduce__(self):
            return (shutil.rmtree, (str(victim),))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"states": [Evil()]}))
    with pytest.raises(InputError, match="shutil.rmtree is not allowed"):
        load_pool(tmp_path / "evil.pkl")
    assert victim.is_dir()


def test_damaged_or_foreign_pools_are_refused(small_pool, tmp_path):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(small_pool, damaged)
    data = (damaged / "transitions.npz").read_bytes()
    (damaged / "transitions.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="is damaged: transitions.npz is not a complete NumPy archive"):
        load_pool(damaged)
    (damaged / "transitions.npz").write_text("not an archive")  # numpy would suggest allow_pickle here
    with pytest.raises(InputError, match="not a complete NumPy archive .*build it again with generate_exp_pool.py"):
        load_pool(damaged)
    (damaged / "metadata.json").write_text("{")
    with pytest.raises(InputError, match="metadata.json is not readable JSON"):
        load_pool(damaged)
    with pytest.raises(InputError, match="not an experience pool"):
        load_pool(tmp_path)
    foreign = tmp_path / "foreign"
    pool = load_pool(small_pool)
    ExperiencePool(pool.states[:, :5, :], pool.actions, pool.rewards, pool.dones).save(foreign)
    with pytest.raises(InputError, match="different state layout"):
        load_pool(foreign)
    metadata = json.loads((small_pool / "metadata.json").read_text())
    shutil.copytree(small_pool, tmp_path / "cjs")
    (tmp_path / "cjs" / "metadata.json").write_text(json.dumps({**metadata, "task": "cjs"}))
    with pytest.raises(InputError, match="task 'cjs'"):
        load_pool(tmp_path / "cjs")


def test_a_pool_over_several_videos_plays_each_one(synthetic_data, tmp_path, small_pool):
    """--video A B: every (policy, seed) streams the traces once per video, in that order; the episodes with A
    are those of a pool with A alone (the same seeded generators), and those with B differ."""
    generate(synthetic_data, "pool-big", {}, TraceConfig(), seed=1, video_scale=1.4)
    result = run_script("generate_exp_pool.py", "--models", "mpc", "--trace", "synthetic-train", "--video",
                        "synthetic", "pool-big", "--data-dir", str(synthetic_data), "--seeds", "1", "--trace-num", "5",
                        "--output", str(tmp_path / "two_videos"))
    assert result.returncode == 0, result.stderr
    first, two = load_pool(small_pool), load_pool(tmp_path / "two_videos")
    assert len(two.rewards) == 10 * 47
    assert np.array_equal(two.states[: 5 * 47], first.states[: 5 * 47])  # small_pool starts with mpc, seed 1
    assert not np.array_equal(two.states[5 * 47:], first.states[: 5 * 47])
    assert json.loads((tmp_path / "two_videos" / "metadata.json").read_text())["videos"] == ["synthetic", "pool-big"]
    twice = run_script("generate_exp_pool.py", "--models", "mpc", "--trace", "synthetic-train", "--video", "synthetic",
                       "synthetic", "--data-dir", str(synthetic_data), "--output", str(tmp_path / "twice"))
    assert twice.returncode == 2 and "--video names a video twice" in twice.stderr


def test_trace_models_give_a_trace_set_its_own_teachers(synthetic_data, tmp_path, small_pool):
    """--trace-models SET=bba: BBA alone streams that set while MPC streams the others; each part equals the
    pool of its teacher alone on its set (the same seeded generators), and the metadata says who taught what."""
    generate(synthetic_data, "teachers", {"train": 5}, TraceConfig(), seed=3)
    result = run_script("generate_exp_pool.py", "--models", "mpc", "--trace", "synthetic-train", "teachers-train",
                        "--trace-models", "teachers-train=bba", "--video", "synthetic", "--data-dir",
                        str(synthetic_data), "--seeds", "1", "--trace-num", "5", "--output", str(tmp_path / "mixed"))
    assert result.returncode == 0, result.stderr
    alone = run_script("generate_exp_pool.py", "--models", "bba", "--trace", "teachers-train", "--video", "synthetic",
                       "--data-dir", str(synthetic_data), "--seeds", "1", "--trace-num", "5",
                       "--output", str(tmp_path / "bba"))
    assert alone.returncode == 0, alone.stderr
    mixed, first, bba = load_pool(tmp_path / "mixed"), load_pool(small_pool), load_pool(tmp_path / "bba")
    assert len(mixed.rewards) == 10 * 47
    assert np.array_equal(mixed.states[: 5 * 47], first.states[: 5 * 47])  # mpc, seed 1, synthetic-train
    assert np.array_equal(mixed.actions[5 * 47:], bba.actions) and np.array_equal(mixed.states[5 * 47:], bba.states)
    metadata = json.loads((tmp_path / "mixed" / "metadata.json").read_text())
    assert metadata["source_policies"] == ["mpc", "bba"]
    assert metadata["trace_models"] == {"synthetic-train": ["mpc"], "teachers-train": ["bba"]}
    wrong = run_script("generate_exp_pool.py", "--models", "mpc", "--trace", "synthetic-train", "--trace-models",
                       "fcc-train=bba", "--video", "synthetic", "--data-dir", str(synthetic_data),
                       "--output", str(tmp_path / "wrong"))
    assert wrong.returncode == 2 and wrong.stderr.startswith("error: --trace-models: fcc-train=bba: expected")
    assert not (tmp_path / "wrong").exists()
