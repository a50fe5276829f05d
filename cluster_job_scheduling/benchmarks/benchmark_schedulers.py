"""Speed of one default episode (TPC-H, 50 executors, 200 jobs, seed 666) with Fair and with Decima.

    python benchmarks/benchmark_schedulers.py [--data-dir DIR]

Decima is timed three ways in the same run: with the DAG levels of each job cached between decisions (the
default), recomputing them at every decision (the reference; same decisions, checked by the tests), and
four episodes side by side with batched decisions (time per episode). The original code needs about 4 s
for a Fair episode and 86 s for a Decima episode on the machine this project is developed on
(measured by running the original on this machine; README, "Speed"); those numbers are printed for
comparison, not measured here.
"""
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import settings as cli  # noqa: E402
from common.settings import setting  # noqa: E402
from schedulers import load_config, make_scheduler  # noqa: E402
from schedulers.decima import DecimaScheduler  # noqa: E402
from spark_sched_sim.datasets import load_dataset, resolve_data_root  # noqa: E402
from spark_sched_sim.env import SparkSchedSimEnv  # noqa: E402
from spark_sched_sim.evaluation import run_episodes  # noqa: E402

ORIGINAL_SECONDS = {"fair": 4.0, "decima": 86.0}


def episode(templates, scheduler, seed=666):
    env = SparkSchedSimEnv(templates)
    scheduler.reset()
    observation, _ = env.reset(seed=seed)
    start, decisions, done = time.perf_counter(), 0, False
    while not done:
        observation, _, done, _, _ = env.step(scheduler.act(observation))
        decisions += 1
    return time.perf_counter() - start, decisions


@dataclass
class Settings:
    data_dir: str | None = setting(None, "data root (default: $TRAILBLAZER_DATA, else the repository's data/)")


def main():
    args, _ = cli.parse(Settings, None, __doc__)
    root = resolve_data_root(args.data_dir)
    templates = load_dataset(root, "tpch")
    weights = root / "cjs/models/decima/model.pt"

    seconds, decisions = episode(templates, make_scheduler("fair", 50, root))
    print(f"fair: {seconds:.2f} s, {decisions} decisions, {decisions / seconds:,.0f} decisions/s "
          f"(original: about {ORIGINAL_SECONDS['fair']:.0f} s)")
    cached, decisions = episode(templates, DecimaScheduler(50, load_config().agent, weights, seed=1))
    reference, _ = episode(templates, DecimaScheduler(50, load_config().agent, weights, seed=1, cache=False))
    print(f"decima: {cached:.1f} s, {decisions} decisions, {decisions / cached:,.0f} decisions/s; "
          f"recomputing DAG levels at every decision {reference:.1f} s (x{reference / cached:.2f}); "
          f"original about {ORIGINAL_SECONDS['decima']:.0f} s (x{ORIGINAL_SECONDS['decima'] / cached:.1f})")
    start = time.perf_counter()
    run_episodes(lambda: SparkSchedSimEnv(templates), DecimaScheduler(50, load_config().agent, weights, seed=1),
                 [666, 667, 668, 669], num_envs=4, progress=False)
    per_episode = (time.perf_counter() - start) / 4
    print(f"decima, 4 episodes side by side with batched decisions: {per_episode:.1f} s per episode "
          f"(x{cached / per_episode:.2f} against one at a time)")


if __name__ == "__main__":
    main()
