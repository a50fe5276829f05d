"""Evaluate a conventional scheduler (Fair, FIFO, FCFS, Random, Decima) on the Spark cluster simulator.

    python run_baseline.py --sched decima --num-executors 50 --job-arrival-cap 200 --seed 666

Runs one episode per seed (--seed, --seed + 1, ... for --num-seeds) and writes summary.json (average job
completion time over seeds and per seed, settings) and jobs.csv (one line per job) into the results folder.
"""
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common import settings as cli
from common.errors import exit_on_input_error
from common.settings import setting
from schedulers import SCHEDULERS, load_config, make_scheduler
from spark_sched_sim.datasets import resolve_data_root
from spark_sched_sim.env_settings import EnvSettings, make_env_factory
from spark_sched_sim.evaluation import run_episodes
from spark_sched_sim.results import check_results_dir, write_results


@dataclass
class Settings(EnvSettings):
    sched: str = setting("decima", "the conventional scheduler", choices=SCHEDULERS)
    seed: int = setting(1, "first episode seed (the environment's and the scheduler's)")
    num_seeds: int = setting(1, "episodes with seeds --seed, --seed + 1, ...", minimum=1)
    num_envs: int = setting(1, "episodes run side by side, decided in one batch", minimum=1)
    state_dict_path: str | None = setting(None, "Decima's weights (.pt or .safetensors; default: the config's "
                                                "state_dict_path under the data root)")
    config: str | None = setting(None, "Decima's config (default: config/decima_tpch.yaml)")
    deterministic: bool = setting(False, "Decima: take the most likely actions instead of sampling")
    device: str = setting("cpu", "Decima's device, e.g. cpu or cuda:0")
    results_dir: str | None = setting(None, "results folder (default: artifacts/results/<dataset>/<settings>/...)")
    overwrite: bool = setting(False, "replace an existing results folder")
    quiet: bool = setting(False, "no progress bar")


@exit_on_input_error
def main(argv=None):
    args, _ = cli.parse(Settings, argv, __doc__)
    data_root = resolve_data_root(args.data_dir)
    make_env = make_env_factory(args, data_root)
    seeds = list(range(args.seed, args.seed + args.num_seeds))
    label = args.sched + ("_deterministic" if args.deterministic else "")
    results_dir = Path(args.results_dir) if args.results_dir else (
        Path("artifacts") / "results" / args.dataset / args.env_folder_name() / label / f"seeds_{seeds[0]}-{seeds[-1]}")
    check_results_dir(results_dir, args.overwrite)

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    config = load_config(args.config) if args.config else None
    scheduler = make_scheduler(args.sched, args.num_executors, data_root, args.seed, args.state_dict_path, config,
                               args.device, args.deterministic)
    per_seed = run_episodes(make_env, scheduler, seeds, args.num_envs, progress=not args.quiet)
    settings = {k: v for k, v in cli.to_dict(args).items() if k not in ("overwrite", "quiet")}
    summary = write_results(results_dir, per_seed, {**settings, "data_root": str(data_root)})
    print(f"{args.sched} on {args.dataset} ({args.num_executors} executors, {args.job_arrival_cap} jobs, "
          f"{len(seeds)} seed{'s' * (len(seeds) > 1)}): average JCT {summary['avg_jct_s']:.3f} s"
          + (f" (std across seeds {summary['std_jct_s_across_seeds']:.2f})" if len(seeds) > 1 else "")
          + f" -> {results_dir}")
    return summary


if __name__ == "__main__":
    main()
