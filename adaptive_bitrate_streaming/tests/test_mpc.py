"""The vectorised plan search makes the same decisions as the original's per-plan loop."""
import itertools

import numpy as np
import pytest

from abr_sim.datasets import load_trace_set, load_video
from abr_sim.evaluation import run_episodes
from abr_sim.results import read_per_trace
from abr_sim.simulator import episode_schedule
from baselines.mpc import MPC, PlanSet, jump_plans, plan_search, plan_search_loop
from conftest import run_script


def test_jump_plans_move_at_most_one_level_per_chunk():
    for quality in range(6):
        plans = jump_plans(quality)
        expected = [p for p in itertools.product(range(6), repeat=5)
                    if all(abs(b - a) <= 1 for a, b in zip((quality,) + p, p))]
        assert [tuple(p) for p in plans] == expected


@pytest.mark.parametrize("jump_only, num_traces", [(True, 30), (False, 1)])
def test_vectorised_search_equals_the_loop(real_data, jump_only, num_traces):
    trace_set, video = load_trace_set(real_data, "fcc-test"), load_video(real_data, "video1")
    schedule = episode_schedule(trace_set, True, num_traces)

    def decisions(search):
        logs = run_episodes(MPC(video, jump_only, search), trace_set, video, schedule, progress=False)
        return [row[1] for log in logs for row in log.rows]

    vectorised = decisions(None)
    assert vectorised == decisions(plan_search_loop)
    assert len(set(vectorised)) >= 4  # several levels are used: the comparison is not trivial


def test_last_chunk_decision_and_ties():
    sizes = np.ones((6, 54), dtype=np.int64) * 100
    plans = PlanSet(jump_plans(2), 2)
    assert plan_search(sizes, plans, 10.0, 48, 1.0) == plan_search_loop(sizes, plans, 10.0, 48, 1.0) == 0  # nothing left
    # with free downloads every plan that climbs fastest ties; the later plan wins, as in the original
    assert plan_search(sizes, plans, 10.0, 10, 1e9) == plan_search_loop(sizes, plans, 10.0, 10, 1e9) == 3


@pytest.mark.parametrize("jump_only", [True, False])
def test_prefix_tree_search_equals_the_loop_across_states(jump_only):
    """Every current quality, episode position (the horizon shrinks at the end), bandwidth and buffer."""
    sizes = np.zeros((6, 54), dtype=np.int64)
    sizes[:, :49] = np.random.RandomState(0).randint(100_000, 3_000_000, (6, 49))
    chosen = set()
    for quality in range(6):
        plans = PlanSet(jump_plans(quality) if jump_only else np.array(list(itertools.product(range(6), repeat=5))),
                        quality)
        for downloaded, bandwidth, buffer_s in itertools.product((1, 10, 44, 46, 47), (0.3, 1.5, 5.0), (0.0, 3.0, 20.0)):
            fast = plan_search(sizes, plans, buffer_s, downloaded, bandwidth)
            assert fast == plan_search_loop(sizes, plans, buffer_s, downloaded, bandwidth)
            chosen.add(fast)
    assert len(chosen) >= 4


def test_fresh_episodes_forget_the_error_history_the_original_carries_over(real_data):
    """The original's RobustMPC carries a client's bandwidth-error history into its next episode, so an
    episode's decisions depend on the one before; with fresh_episodes (the server's) every episode is decided
    as by a new policy, whichever episodes the client streamed before."""
    trace_set, video = load_trace_set(real_data, "fcc-test"), load_video(real_data, "video1")
    schedule = episode_schedule(trace_set, True, 10)

    def bitrates(policy, episodes):
        return [[row[1] for row in log.rows] for log in run_episodes(policy, trace_set, video, episodes, progress=False)]

    alone = [bitrates(MPC(video, False), [episode])[0] for episode in schedule]
    assert bitrates(MPC(video, False, fresh_episodes=True), schedule) == alone
    carried = bitrates(MPC(video, False), schedule)
    assert carried[0] == alone[0] and carried != alone


def test_run_baseline_fresh_episodes_decides_every_trace_as_a_new_session(real_data, tmp_path):
    """run_baseline.py --fresh-episodes (what compare_emulation.py simulates for the real player's MPC, whose
    server starts every trace afresh) gives every trace the QoE of RobustMPC streaming it alone."""
    trace_set, video = load_trace_set(real_data, "fcc-test"), load_video(real_data, "video1")
    schedule = episode_schedule(trace_set, True, 6)
    alone = [np.mean([row[-1] for row in run_episodes(MPC(video, False), trace_set, video, [episode],
                                                     progress=False)[0].rows[1:]]) for episode in schedule]

    def per_trace(*flags):
        folder = tmp_path / ("fresh" if flags else "carried")
        result = run_script("run_baseline.py", "--model", "robustmpc", "--trace-num", "6", "--fixed-order", *flags,
                            "--data-dir", str(real_data), "--results-dir", str(folder), "--quiet")
        assert result.returncode == 0, result.stderr
        return [row["qoe"] for row in read_per_trace(folder)]

    assert per_trace("--fresh-episodes") == pytest.approx(alone, abs=1e-9)
    assert per_trace() != pytest.approx(alone, abs=1e-9)
