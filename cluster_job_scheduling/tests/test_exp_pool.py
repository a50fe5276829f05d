"""generate_exp_pool.py: best-of-N pools keep, per seed, the episode with the lowest average JCT, or select
within episodes segment by segment (--segment-s); an interrupted run resumes."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from conftest import TREE, assert_one_line_error, run_script
from generate_exp_pool import Settings, make_rollout_scheduler, play_episode, play_segments, scheduler_seed
from plm_special.experience import load_pool
from schedulers import make_scheduler
from spark_sched_sim.env_settings import EnvSettings, make_env_factory
from spark_sched_sim.evaluation import run_episodes
from spark_sched_sim.metrics import average_jct_s

CLUSTER = ["--dataset", "synthetic", "--num-executors", "10", "--job-arrival-cap", "3"]


def episode_jct(data_root, name, seed, rollout):
    settings = EnvSettings(dataset="synthetic", num_executors=10, job_arrival_cap=3)
    scheduler = make_scheduler(name, 10, data_root, scheduler_seed(seed, rollout))
    jobs = run_episodes(make_env_factory(settings, data_root), scheduler, [seed], progress=False)
    return average_jct_s(jobs[seed])


def test_best_of_n_keeps_each_seeds_best_episode(synthetic_data, tmp_path):
    output = tmp_path / "pool"
    result = run_script("generate_exp_pool.py", "--scheds", "fifo,fair,random", "--rollouts-per-seed", "3",
                        "--keep-best", "1", "--pool-size", "100", "--complete-episode", "--seed", "7", *CLUSTER,
                        "--data-dir", str(synthetic_data), "--output", str(output))
    assert result.returncode == 0, result.stderr
    metadata = json.loads((output / "metadata.json").read_text())
    kept = metadata["episodes"]
    assert [e["seed"] for e in kept] == list(range(7, 7 + len(kept))) and len(kept) >= 3
    for episode in kept:  # fifo and fair once (deterministic), random three times with its own seeds
        candidates = {(name, rollout): episode_jct(synthetic_data, name, episode["seed"], rollout)
                      for name, rollouts in (("fifo", 1), ("fair", 1), ("random", 3)) for rollout in range(rollouts)}
        best = min(candidates, key=candidates.get)
        assert (episode["scheduler"], episode["rollout"]) == best
        assert abs(episode["avg_jct_s"] - candidates[best]) < 1e-9
    pool = load_pool(output)
    assert len(pool.episodes()) == len(kept) and len(pool) >= 100
    assert abs(metadata["pool_avg_jct_s"] - sum(e["avg_jct_s"] for e in kept) / len(kept)) < 1e-9


def test_without_keep_best_every_episode_is_kept_and_the_last_one_cut(synthetic_data, tmp_path):
    output = tmp_path / "pool"
    result = run_script("generate_exp_pool.py", "--scheds", "fifo,random", "--rollouts-per-seed", "2",
                        "--pool-size", "400", "--seed", "3", *CLUSTER, "--data-dir", str(synthetic_data),
                        "--output", str(output))
    assert result.returncode == 0, result.stderr
    kept = json.loads((output / "metadata.json").read_text())["episodes"]
    assert sorted((e["scheduler"], e["rollout"]) for e in kept if e["seed"] == 3) == \
        [("fifo", 0), ("random", 0), ("random", 1)]
    pool = load_pool(output)
    assert len(pool) == 400 and pool.arrays["dones"][-1] and len(pool.episodes()) == len(kept)


def test_an_interrupted_pool_resumes_to_the_same_pool(synthetic_data, tmp_path):
    flags = ["--scheds", "fifo,random", "--rollouts-per-seed", "2", "--keep-best", "1", "--pool-size", "600",
             "--seed", "11", "--workers", "1", *CLUSTER, "--data-dir", str(synthetic_data)]
    whole = tmp_path / "whole"
    assert run_script("generate_exp_pool.py", *flags, "--output", str(whole)).returncode == 0
    assert not (tmp_path / "whole.partial").exists()  # the checkpoint goes once the pool is written

    resumed, parts = tmp_path / "resumed", tmp_path / "resumed.partial"
    process = subprocess.Popen([sys.executable, str(TREE / "generate_exp_pool.py"), *flags, "--output", str(resumed)],
                               cwd=TREE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(parts.glob("seed_1[23]")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the run and its worker processes, as a terminal's kill would
    process.wait()
    assert not resumed.exists() and list(parts.glob("seed_*")), "the run was not interrupted mid-way"
    other = run_script("generate_exp_pool.py", *flags, "--keep-best", "2", "--output", str(resumed))
    assert_one_line_error(other, "other settings")
    result = run_script("generate_exp_pool.py", *flags, "--output", str(resumed))
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stdout
    first, second = load_pool(whole), load_pool(resumed)
    for name, array in first.arrays.items():
        assert np.array_equal(array, second.arrays[name]), name
    assert first.metadata["episodes"] == second.metadata["episodes"]


def test_segments_of_one_continuation_are_the_plain_episode(synthetic_data):
    """With one continuation per segment there is nothing to select: the episode of segments is the
    scheduler's plain first rollout, decision for decision (forks and the schedulers' streams are exact)."""
    settings = Settings(dataset="synthetic", num_executors=10, job_arrival_cap=8, rollouts_per_seed=1,
                        segment_s=20)
    plain_jct, plain = play_episode(settings, synthetic_data, "random", 5, 0)
    jct, segments = play_segments(settings, synthetic_data, "random", 5)
    assert jct == plain_jct and len(segments) == len(plain) > 20
    assert [step[1:] for step in segments] == [step[1:] for step in plain]


def test_the_first_segment_is_the_cheapest_of_the_rollouts_beginnings(synthetic_data):
    """From the episode's start, continuation r is rollout r's beginning: the segment kept must be the one of
    the rollout with the least job time in the first 100 s (not rollout 0's, for this seed)."""
    settings = Settings(dataset="synthetic", num_executors=10, job_arrival_cap=8, rollouts_per_seed=3,
                        segment_s=100)
    costs = []
    for rollout in range(3):
        jobs = run_episodes(make_env_factory(settings, synthetic_data),
                            make_rollout_scheduler(settings, synthetic_data, "random", 5, rollout), [5],
                            progress=False)[5]
        costs.append(sum(max(0.0, min(job["completion_s"], 100) - job["arrival_s"]) for job in jobs))
    best = int(np.argmin(costs))
    assert best != 0 and len(set(costs)) == 3
    _, beginning = play_episode(settings, synthetic_data, "random", 5, best)
    _, segments = play_segments(settings, synthetic_data, "random", 5)
    first = [step[1:] for step in segments if step[5] < 100_000]
    assert first and first == [step[1:] for step in beginning[:len(first)]]


def test_a_pool_of_segments_reports_the_plain_rollout_beside_it(synthetic_data, tmp_path):
    output = tmp_path / "pool"
    result = run_script("generate_exp_pool.py", "--scheds", "random", "--rollouts-per-seed", "3", "--segment-s",
                        "100", "--pool-size", "50", "--complete-episode", "--seed", "5", "--workers", "1",
                        "--dataset", "synthetic", "--num-executors", "10", "--job-arrival-cap", "8",
                        "--data-dir", str(synthetic_data), "--output", str(output))
    assert result.returncode == 0, result.stderr
    metadata = json.loads((output / "metadata.json").read_text())
    (episode,) = metadata["episodes"]
    settings = Settings(dataset="synthetic", num_executors=10, job_arrival_cap=8, rollouts_per_seed=3,
                        segment_s=100)
    assert episode["rollout"] == "segments"
    assert episode["avg_jct_s"] == play_segments(settings, synthetic_data, "random", 5)[0]
    assert metadata["scheduler_avg_jct_s"]["random"] == play_episode(settings, synthetic_data, "random", 5, 0)[0]
    assert load_pool(output).arrays["dones"][-1]
