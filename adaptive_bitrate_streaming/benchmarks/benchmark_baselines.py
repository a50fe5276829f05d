"""Speed of the simulator and of MPC's plan search, over all 100 fcc-test traces (video1).

    python benchmarks/benchmark_baselines.py [--data-dir DIR]

Prints simulated chunks per second with BBA, and the time MPC (all traces) and RobustMPC over all 6^5 plans
(--robust-traces of them) take with the vectorised plan search against the original's per-plan loop (pure
Python; the original needs numba for it), measured in the same run. Decisions are identical
(tests/test_mpc.py).
"""
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from abr_sim.datasets import load_trace_set, load_video, resolve_data_root  # noqa: E402
from abr_sim.evaluation import run_episodes  # noqa: E402
from abr_sim.simulator import episode_schedule  # noqa: E402
from baselines import BBA, MPC  # noqa: E402
from baselines.mpc import plan_search_loop  # noqa: E402
from common import settings as cli  # noqa: E402
from common.settings import setting  # noqa: E402


def timed(policy, trace_set, video, schedule) -> tuple[float, int]:
    start = time.perf_counter()
    logs = run_episodes(policy, trace_set, video, schedule, progress=False)
    return time.perf_counter() - start, sum(len(log.rows) for log in logs)


@dataclass
class Settings:
    data_dir: str | None = setting(None, "data root (default: $TRAILBLAZER_DATA, else the repository's data/)")
    trace: str = setting("fcc-test", "trace set streamed (all traces, fixed order)")
    video: str = setting("video1", "video streamed")
    robust_traces: int = setting(10, "traces RobustMPC streams (its loop takes about 10 s a trace)", minimum=1)


def main():
    args, _ = cli.parse(Settings, None, __doc__)
    root = resolve_data_root(args.data_dir)
    trace_set, video = load_trace_set(root, args.trace), load_video(root, args.video)
    schedule = episode_schedule(trace_set, True, len(trace_set.traces))

    seconds, chunks = timed(BBA(), trace_set, video, schedule)
    print(f"BBA: {chunks} chunks in {seconds:.3f} s = {chunks / seconds:,.0f} simulated chunks/s")
    for name, jump_plans_only, traces in (("MPC", True, schedule), ("RobustMPC", False, schedule[:args.robust_traces])):
        vectorised, chunks = timed(MPC(video, jump_plans_only), trace_set, video, traces)
        loop, _ = timed(MPC(video, jump_plans_only, plan_search_loop), trace_set, video, traces)
        print(f"{name} over {len(traces)} traces: vectorised plan search {vectorised:.2f} s "
              f"({vectorised / chunks * 1000:.3f} ms a decision), per-plan loop {loop:.2f} s, "
              f"speed-up {loop / vectorised:.1f}x")


if __name__ == "__main__":
    main()
