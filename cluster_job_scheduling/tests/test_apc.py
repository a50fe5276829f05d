"""Adaptive policy collaboration: the router's ends are the two schedulers, LLM decisions see the episode as
it happened (the fast scheduler's decisions included), and run_apc.py draws the quality curve."""
import numpy as np
import pandas as pd
import pytest
import torch

import run_apc
import run_baseline
import run_plm
from conftest import run_script
from plm_special.apc import ClusterRouter, CollaborativeScheduler, RandomRouter, cluster_difficulty
from plm_special.learned_router import DisagreementRecorder, LearnedRouter, fit_disagreement_model
from plm_special.llm_scheduler import LLMScheduler
from plm_special.routing import calibrate_threshold
from schedulers.heuristics import RoundRobin
from spark_sched_sim.datasets import load_dataset
from spark_sched_sim.env import SparkSchedSimEnv
from spark_sched_sim.graph_observation import GraphObserver
from test_plm import SCALING, common, play, tiny_policy


class SpyRouter:
    """A random router that remembers the decisions it sent to the LLM, by their index in the episode."""

    name = "spy"

    def __init__(self, share):
        self.router, self.picks = RandomRouter(share, seed=5), []

    def to_llm(self, observation):
        self.picks.append(self.router.to_llm(observation))
        return self.picks[-1]


def test_share_one_is_the_llm_and_share_zero_the_fast_scheduler(tiny_plms, synthetic_data):
    model = tiny_policy(tiny_plms, "llama")
    llm_alone = play(synthetic_data, LLMScheduler(model, SCALING))
    fair_alone = play(synthetic_data, RoundRobin(10, fair=True))
    assert llm_alone != fair_alone
    for share, expected in ((1, llm_alone), (0, fair_alone)):
        scheduler = CollaborativeScheduler(LLMScheduler(model, SCALING), RoundRobin(10, fair=True),
                                           ClusterRouter(calibrate_threshold([0.0], share), 10))
        assert play(synthetic_data, scheduler) == expected and scheduler.llm_share == share


@pytest.mark.parametrize("mode", ["cache", "window"])
def test_llm_decisions_equal_the_training_pass_over_the_history_as_it_happened(tiny_plms, synthetic_data, mode):
    """Each LLM decision of a collaborative episode has the distributions of the teacher-forced training pass
    over the episode's decisions so far, the fast scheduler's among them with the actions it took."""
    K = 4
    model = tiny_policy(tiny_plms, "llama", K=K)
    router = SpyRouter(0.5)
    scheduler = CollaborativeScheduler(LLMScheduler(model, SCALING, mode=mode), RoundRobin(10, fair=True), router)
    stage_scores, exec_logits, inferred = model.stage_scores, model.exec_logits, {"stage": [], "exec": []}
    model.stage_scores = lambda *a: inferred["stage"].append(stage_scores(*a)) or inferred["stage"][-1]
    model.exec_logits = lambda *a: inferred["exec"].append(exec_logits(*a)[0]) or inferred["exec"][-1][None]

    env = SparkSchedSimEnv(load_dataset(synthetic_data, "synthetic"), num_executors=10, job_arrival_cap=8)
    observer, decisions, by_llm = GraphObserver(10), [], []
    scheduler.reset()
    observation, _ = env.reset(seed=3)
    target = scheduler.llm.initial_target
    for _ in range(40):
        graph = observer(observation)
        action = scheduler.act(observation)
        if action["stage_idx"] != -1:  # the pools, and the LLM's context, leave these out
            stage = np.flatnonzero(graph.stage_mask)[action["stage_idx"]]
            job = int(np.searchsorted(graph.ptr, stage, side="right") - 1)
            exec_index = min(action["num_exec"], int(graph.exec_caps[job])) - 1
            decisions.append((graph, action["stage_idx"], job, exec_index, target))
            by_llm.append(router.picks[-1])
        observation, reward, done, _, _ = env.step(action)
        scheduler.observe(reward)
        target -= SCALING.process_reward(reward)
        if done:
            break
    assert 5 < sum(by_llm) < len(by_llm) - 5 and len(inferred["stage"]) == sum(by_llm)
    del model.stage_scores, model.exec_logits

    first_step = (lambda t: max(0, t - K + 1)) if mode == "window" else (lambda t: 0)
    llm_steps = [t for t, picked in enumerate(by_llm) if picked]
    windows = [list(range(first_step(t), t + 1)) for t in llm_steps]
    steps = [t for window in windows for t in window]
    column = lambda i, dtype: torch.tensor([decisions[t][i] for t in steps], dtype=dtype)  # noqa: E731
    with torch.no_grad():
        stage_log_probs, exec_log_probs = model([decisions[t][0] for t in steps], [len(w) for w in windows],
                                                column(1, torch.long), column(2, torch.long), column(3, torch.long),
                                                column(4, torch.float32), torch.tensor(steps))
    counts = [int(decisions[t][0].stage_mask.sum()) for t in steps]
    for i, (t, end) in enumerate(zip(llm_steps, np.cumsum([len(w) for w in windows]) - 1)):
        first = sum(counts[:end])
        trained_stage = stage_log_probs[first: first + counts[end]]
        assert torch.allclose(torch.log_softmax(inferred["stage"][i], 0), trained_stage, atol=1e-4), t
        cap = int(decisions[t][0].exec_caps[decisions[t][2]])
        assert torch.allclose(torch.log_softmax(inferred["exec"][i], 0)[:cap], exec_log_probs[end, :cap],
                              atol=1e-4), t


@pytest.fixture(scope="module")
def trained(tiny_plms, synthetic_data, small_pool, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("apc") / "run"
    run_plm.main(["--train", "--plm-type", "llama", "--plm-size", "tiny", "--exp-pool-path", str(small_pool),
                  "--model-dir", str(model_dir), "--num-iters", "1", *common(tiny_plms, synthetic_data)])
    return model_dir


def test_the_learned_router_ranks_where_the_llm_would_choose_another_stage(tiny_plms, synthetic_data):
    """Labels: another stage than the fast scheduler's (Fair, which declines when every job is at its cap); the
    fitted model scores the disagreements above the agreements of the run it was fitted on, and as a router it
    sends the requests scoring above its threshold."""
    model = tiny_policy(tiny_plms, "llama")
    env = SparkSchedSimEnv(load_dataset(synthetic_data, "synthetic"), num_executors=10, job_arrival_cap=8)
    recorder = DisagreementRecorder(LLMScheduler(model, SCALING), RoundRobin(10, fair=True), 10)
    expected = []
    for seed in (3, 4, 5):
        recorder.reset()
        observation, _ = env.reset(seed=seed)
        done = False
        while not done:
            fair_stage = RoundRobin(10, fair=True).act(observation)["stage_idx"]
            action = recorder.act(observation)
            expected.append(float(fair_stage != action["stage_idx"]))
            observation, reward, done, _, _ = env.step(action)
            recorder.observe(reward)
    labels = np.array(recorder.disagree)
    assert list(labels) == expected and len(labels) > 100 and 0.1 < labels.mean() < 0.9
    assert recorder.cluster_scores[0] == pytest.approx(cluster_difficulty(env.reset(seed=3)[0], 10))

    disagreement_model, scores = fit_disagreement_model(np.stack(recorder.features), labels, 10, seed=0)
    scores = np.array(scores)
    auc = np.mean(scores[labels == 1][:, None] > scores[labels == 0][None, :])
    assert auc > 0.75, auc
    observation = env.reset(seed=3)[0]
    assert disagreement_model(observation) == pytest.approx(scores[0], rel=1e-5)  # float32, batched or not
    assert LearnedRouter(disagreement_model, scores[0] - 1e-3).to_llm(observation)
    assert not LearnedRouter(disagreement_model, scores[0] + 1e-3).to_llm(observation)


def test_run_apc_writes_the_curve_whose_ends_are_the_two_schedulers(tiny_plms, synthetic_data, trained, tmp_path):
    cluster = ["--dataset", "synthetic", "--job-arrival-cap", "12", "--data-dir", str(synthetic_data),
               "--seed", "1", "--num-seeds", "2"]
    curve = run_apc.main(["--model-dir", str(trained), "--plm-dir", str(tiny_plms), "--shares", "0", "0.5", "1",
                          "--results-dir", str(tmp_path / "apc"), "--quiet", *cluster])
    assert list(curve["router"]) == ["cluster"] * 3 + ["random"] * 3 + ["learned"] * 3
    assert np.allclose(pd.read_csv(tmp_path / "apc" / "curve.csv")["avg_jct_s"], curve["avg_jct_s"])
    assert (tmp_path / "apc" / "curve.png").stat().st_size > 0
    fair = run_baseline.main(["--sched", "fair", "--num-executors", "10", "--results-dir", str(tmp_path / "fair"),
                              "--quiet", *cluster])
    llm = run_plm.main(["--test", "--model-dir", str(trained), "--plm-dir", str(tiny_plms), "--results-dir",
                        str(tmp_path / "llm"), *cluster])
    for router in ("cluster", "random", "learned"):
        points = curve[curve["router"] == router].set_index("target_share")
        assert points.loc[0.0, "llm_share"] == 0 and points.loc[0.0, "avg_jct_s"] == pytest.approx(fair["avg_jct_s"])
        assert points.loc[1.0, "llm_share"] == 1 and points.loc[1.0, "avg_jct_s"] == pytest.approx(llm["avg_jct_s"])
        assert 0.2 < points.loc[0.5, "llm_share"] < 0.8

    again = run_script("run_apc.py", "--model-dir", str(trained), "--plm-dir", str(tiny_plms), "--results-dir",
                       str(tmp_path / "apc"), *cluster)
    assert again.returncode == 2 and "already holds results" in again.stderr and "--overwrite" in again.stderr
    overlap = run_script("run_apc.py", "--model-dir", str(trained), "--calibration-seeds", "2", *cluster)
    assert overlap.returncode == 2 and overlap.stderr.startswith("error: --calibration-seeds: [2] overlap")


def test_run_apc_continues_an_interrupted_curve_and_plays_its_ends_once(tiny_plms, synthetic_data, trained, tmp_path,
                                                                          monkeypatch):
    arguments = ["--model-dir", str(trained), "--plm-dir", str(tiny_plms), "--shares", "0", "0.5", "1", "--quiet",
                 "--dataset", "synthetic", "--job-arrival-cap", "12", "--data-dir", str(synthetic_data),
                 "--seed", "1", "--num-seeds", "2"]
    whole = run_apc.main([*arguments, "--results-dir", str(tmp_path / "whole")])
    assert not (tmp_path / "whole.partial").exists()

    played, run_episodes = [], run_apc.run_episodes

    def interrupted_at_the_third(*args, **kwargs):
        played.append(args[2])
        if len(played) == 3:
            raise KeyboardInterrupt
        return run_episodes(*args, **kwargs)

    monkeypatch.setattr(run_apc, "run_episodes", interrupted_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        run_apc.main([*arguments, "--results-dir", str(tmp_path / "resumed")])
    partial = tmp_path / "resumed.partial"
    assert sorted(path.name for path in partial.iterdir()) == ["calibration.json", "settings.json", "share_0.json"]
    other = run_script("run_apc.py", *arguments[:-1], "1", "--results-dir", str(tmp_path / "resumed"))
    assert other.returncode == 2 and "other settings" in other.stderr and "--overwrite" in other.stderr

    played.clear()
    monkeypatch.setattr(run_apc, "run_episodes", lambda *args, **kwargs: played.append(args[2]) or
                        run_episodes(*args, **kwargs))
    resumed = run_apc.main([*arguments, "--results-dir", str(tmp_path / "resumed")])
    assert len(played) == 4  # cluster 0.5, share 1, random 0.5, learned 0.5: the calibration and share 0 came back
    pd.testing.assert_frame_equal(resumed, whole)
    assert not partial.exists()
