"""Adaptive policy collaboration: the router's ends are the two policies, LLM decisions see the episode as it
happened, and run_apc.py draws the quality curve."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

import run_apc
import run_baseline
import run_plm
from abr_sim.constants import VIDEO_BIT_RATE
from abr_sim.datasets import load_trace_set, load_video
from abr_sim.evaluation import run_episodes
from abr_sim.simulator import StreamingSimulator, episode_schedule
from abr_sim.streaming import StreamingClient
from common.errors import InputError
from baselines.bba import BBA
from baselines.hold import Hold
from conftest import run_script
from plm_special.apc import CollaborativePolicy, NetworkRouter, RandomRouter
from plm_special.llm_policy import ClientContext, LLMPolicy
from plm_special.routing import calibrate_threshold
from test_plm_policy import SCALING, tiny_policy


def stream(policy, synthetic_data, num_traces=4, num_clients=2):
    trace_set, video = load_trace_set(synthetic_data, "synthetic-test"), load_video(synthetic_data, "synthetic")
    logs = run_episodes(policy, trace_set, video, episode_schedule(trace_set, True, num_traces), None, num_clients,
                        progress=False)
    return [row[1] for log in logs for row in log.rows]  # bitrate (kbps) of every chunk


class SpyRouter:
    """A random router that remembers which (client, step) it sent to the LLM."""

    name = "spy"

    def __init__(self, share):
        self.router, self.picked, self.steps = RandomRouter(share, seed=3), set(), {}

    def to_llm(self, observations, clients):
        picks = self.router.to_llm(observations, clients)
        for observation, client, pick in zip(observations, clients, picks):
            if pick and not observation.done:
                self.picked.add((client, observation.timestep))
        return picks


class RecordingLLM(LLMPolicy):
    """Remembers the logits of every decision, by (client, step)."""

    def act_batch(self, observations, clients):
        self.deciding = [(client, observation.timestep) for observation, client in zip(observations, clients)]
        return super().act_batch(observations, clients)

    def _choose(self, logits):
        self.logits = {**getattr(self, "logits", {}), **dict(zip(self.deciding, logits))}
        return super()._choose(logits)


def test_share_one_is_the_llm_and_share_zero_the_fast_policy(tiny_plms, synthetic_data):
    model = tiny_policy(tiny_plms, "llama")
    llm_alone = stream(LLMPolicy(model, SCALING), synthetic_data)
    fast_alone = stream(BBA(), synthetic_data)
    assert llm_alone != fast_alone
    everything = CollaborativePolicy(LLMPolicy(model, SCALING), BBA(), NetworkRouter(calibrate_threshold([0.0], 1)))
    assert stream(everything, synthetic_data) == llm_alone and everything.llm_share == 1.0
    nothing = CollaborativePolicy(LLMPolicy(model, SCALING), BBA(), NetworkRouter(calibrate_threshold([0.0], 0)))
    assert stream(nothing, synthetic_data) == fast_alone and nothing.llm_share == 0.0


def test_llm_decisions_equal_a_standalone_llm_over_the_same_history(tiny_plms, synthetic_data):
    model = tiny_policy(tiny_plms, "llama")
    router = SpyRouter(0.4)
    llm = RecordingLLM(model, SCALING)
    policy = CollaborativePolicy(llm, BBA(), router)
    streamed = stream(policy, synthetic_data, num_traces=2, num_clients=2)
    assert 0.2 < policy.llm_share < 0.6 and policy.llm_share == len(router.picked) / policy.requests
    reference = LLMPolicy(model, SCALING, use_cache=False)
    for client, context in llm.contexts.items():  # client c streamed the c-th trace
        taken = [VIDEO_BIT_RATE.index(kbps) for kbps in streamed[client * 48:(client + 1) * 48]]  # as streamed
        decided_by_llm = [t for t in range(47) if (client, t) in router.picked]
        assert 5 < len(decided_by_llm) < 40
        for t in decided_by_llm:  # the context up to step t, with the actions actually taken before it
            history = ClientContext(context.returns[0], context.states[:t + 1], context.returns[:t + 1],
                                    taken[1:t + 1])
            logits = reference._decide_from_scratch([history])[0]
            assert torch.allclose(logits, llm.logits[(client, t)], atol=1e-4) and logits.argmax() == taken[t + 1]


def test_hold_repeats_the_last_bitrate_and_follows_the_llm(tiny_plms, synthetic_data):
    assert set(stream(Hold(), synthetic_data)) == {VIDEO_BIT_RATE[0]}  # chunk 0 is fetched at the lowest
    model = tiny_policy(tiny_plms, "llama")
    policy = CollaborativePolicy(LLMPolicy(model, SCALING), Hold(), RandomRouter(0.3, seed=2))
    streamed = stream(policy, synthetic_data, num_traces=2, num_clients=1)
    assert len(set(streamed)) > 2 and sum(a != b for a, b in zip(streamed, streamed[1:])) <= 0.4 * len(streamed)


def test_threshold_calibration_and_the_random_router_share():
    scores = np.random.default_rng(0).random(10_000)
    for share in (0.1, 0.2, 0.5, 0.8):
        assert abs(np.mean(scores > calibrate_threshold(scores, share)) - share) < 0.01
        picks = RandomRouter(share, seed=1).to_llm([None] * 10_000, range(10_000))
        assert abs(np.mean(picks) - share) < 0.02


def test_run_apc_writes_the_curve_whose_ends_are_the_two_policies(tiny_plms, synthetic_data, tiny_trained_policy,
                                                                    tmp_path):
    trained = tiny_trained_policy
    flags = ["--data-dir", str(synthetic_data), "--video", "synthetic", "--trace", "synthetic-test"]
    curve = run_apc.main(["--model-dir", str(trained), "--plm-dir", str(tiny_plms), "--fast-policy", "bba",
                          "--calibration-trace", "synthetic-valid", "--shares", "0", "0.5", "1", "--results-dir",
                          str(tmp_path / "apc"), "--quiet", *flags])
    assert list(curve["router"]) == ["network"] * 3 + ["random"] * 3 + ["learned"] * 3
    written = pd.read_csv(tmp_path / "apc" / "curve.csv")
    assert np.allclose(written["mean_qoe"], curve["mean_qoe"]) and (tmp_path / "apc" / "curve.png").stat().st_size
    fast = run_baseline.main(["--model", "bba", "--trace-num", "-1", "--results-dir", str(tmp_path / "bba"),
                              "--quiet", *flags])
    llm = run_plm.main(["--test", "--model-dir", str(trained), "--plm-dir", str(tiny_plms), "--trace-num", "-1",
                        "--results-dir", str(tmp_path / "llm"), *flags])
    for router in ("network", "random", "learned"):
        points = curve[curve["router"] == router].set_index("target_share")
        assert points.loc[0.0, "llm_share"] == 0 and points.loc[0.0, "mean_qoe"] == pytest.approx(fast["mean_qoe"])
        assert points.loc[1.0, "llm_share"] == 1 and points.loc[1.0, "mean_qoe"] == pytest.approx(llm["mean_qoe"])
        assert 0.2 < points.loc[0.5, "llm_share"] < 0.8

    again = run_script("run_apc.py", "--model-dir", str(trained), "--plm-dir", str(tiny_plms), "--results-dir",
                       str(tmp_path / "apc"), *flags)
    assert again.returncode == 2 and "already holds results" in again.stderr and "--overwrite" in again.stderr
    bad = run_script("run_apc.py", "--model-dir", str(trained), "--shares", "1.5", *flags)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: --shares: shares must lie in [0, 1]")
    assert json.loads((trained / "best_model" / "settings.json").read_text())["plm_type"] == "llama"


def test_calibration_on_the_collaboration_realises_the_target_share(tiny_plms, synthetic_data):
    """With hold as the partner the LLM-alone threshold realises a share far from the target on the
    calibration set itself; recalibrating on the collaboration brings it close."""
    from plm_special.apc import calibrate_on_collaboration, difficulty_scores

    model = tiny_policy(tiny_plms, "llama")
    trace_set, video = load_trace_set(synthetic_data, "synthetic-valid"), load_video(synthetic_data, "synthetic")
    scores = difficulty_scores(LLMPolicy(model, SCALING), trace_set, video, 8)

    def collaboration(threshold):
        return CollaborativePolicy(LLMPolicy(model, SCALING), Hold(), NetworkRouter(threshold))

    def realised(threshold):
        policy = collaboration(threshold)
        run_episodes(policy, trace_set, video, episode_schedule(trace_set, True, len(trace_set.traces)), None, 8,
                     progress=False)
        return policy.llm_share

    share = 0.3
    alone = realised(calibrate_on_collaboration(scores, share, collaboration, trace_set, video, 8, rounds=0))
    recalibrated = realised(calibrate_on_collaboration(scores, share, collaboration, trace_set, video, 8, rounds=2))
    assert abs(recalibrated - share) < abs(alone - share) and abs(recalibrated - share) < 0.05, (alone, recalibrated)


def stream_observations(trace_set, video):
    client = StreamingClient(StreamingSimulator(video, None))
    observation = client.start_episode(trace_set.traces[0], 1)
    observations = [observation]
    while not observation.done:
        observation = client.step((observation.timestep * 7) % 6)
        observations.append(observation)
    return observations


def test_the_learned_router_ranks_where_the_llm_would_not_hold(tiny_plms, synthetic_data, tmp_path):
    """Labels: with hold as the partner, the LLM disagrees exactly where it changes the bitrate; the fitted
    model scores those requests above the others (on its calibration set)."""
    from plm_special.learned_router import fit_disagreement_model

    model = tiny_policy(tiny_plms, "llama")
    trace_set, video = load_trace_set(synthetic_data, "synthetic-valid"), load_video(synthetic_data, "synthetic")
    disagreement_model, scores, disagreement = fit_disagreement_model(LLMPolicy(model, SCALING), Hold(), trace_set,
                                                                      video, 8, seed=0)
    rows = []

    class Probe(LLMPolicy):
        def act_batch(self, observations, clients):
            actions = super().act_batch(observations, clients)
            rows.extend((disagreement_model(o), a != o.quality) for o, a in zip(observations, actions) if not o.done)
            return actions

    run_episodes(Probe(model, SCALING), trace_set, video, episode_schedule(trace_set, True, len(trace_set.traces)),
                 None, 8, progress=False)
    scores, labels = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    assert disagreement == pytest.approx(labels.mean()) and 0.05 < disagreement < 0.95
    auc = np.mean(scores[labels][:, None] > scores[~labels][None, :])
    assert auc > 0.75, auc

    from plm_special.learned_router import load_disagreement_model, save_disagreement_model

    save_disagreement_model(disagreement_model, tmp_path / "router.safetensors")
    loaded = load_disagreement_model(tmp_path / "router.safetensors")
    observations = [o for o in (stream_observations(trace_set, video)) if not o.done][:50]
    assert [loaded(o) for o in observations] == [disagreement_model(o) for o in observations]
    (tmp_path / "broken.safetensors").write_bytes(b"not a model")
    with pytest.raises(InputError, match="is not a learned router"):
        load_disagreement_model(tmp_path / "broken.safetensors")


def test_a_conventional_partner_in_the_llms_place_decides_its_picks_as_it_would_over_the_whole_episode(
        synthetic_data):
    """RobustMPC (fresh histories) as the partner of hold, picked on every odd step: each of its answers is
    RobustMPC's own decision over every step of the episode as streamed (its error history follows them all)."""
    from baselines.mpc import MPC
    from plm_special.apc import ConventionalPartner

    class OddSteps:
        name = "odd"

        def to_llm(self, observations, clients):
            return [observation.timestep % 2 == 1 for observation in observations]

    video, trace_set = load_video(synthetic_data, "synthetic"), load_trace_set(synthetic_data, "synthetic-test")
    mix = CollaborativePolicy(ConventionalPartner(MPC(video, False, fresh_episodes=True)), Hold(), OddSteps())
    alone = MPC(video, False, fresh_episodes=True)
    player = StreamingClient(StreamingSimulator(video, None))
    trace, pointer = episode_schedule(trace_set, True, 1)[0]
    observation, checked, differs = player.start_episode(trace_set.traces[trace], pointer), 0, 0
    mix.reset(0)
    alone.reset(0)
    while not observation.done:
        action, own = mix.act_batch([observation], [0])[0], alone.act(observation, 0)
        if observation.timestep % 2 == 1:
            assert action == own
            checked += 1
        else:
            assert action == observation.quality  # hold
            differs += own != action
        observation = player.step(action)
    assert checked >= 20 and differs >= 1
