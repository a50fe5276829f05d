"""Evaluate a conventional scheduler (Fair, FIFO, FCFS, Random, Decima) on the Spark cluster simulator.

    python run_baseline.py --sched decima --num-executors 50 --job-arrival-cap 200 --seed 666

Runs one episode per seed (--seed, --seed + 1, ... for --num-seeds) and writes summary.json (average job
completion time over seeds and per seed, settings) and jobs.csv (one line per job) into the results folder.
"""
import argparse
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from schedulers import SCHEDULERS, load_config, make_scheduler
from spark_sched_sim.datasets import load_dataset, resolve_data_root
from spark_sched_sim.env import SparkSchedSimEnv
from common.errors import InputError, exit_on_input_error
from spark_sched_sim.evaluation import JOB_COLUMNS, run_episodes
from common.files import atomic_folder


def add_env_arguments(parser):
    parser.add_argument("--num-executors", type=int, default=50, help="executors in the cluster")
    parser.add_argument("--job-arrival-cap", type=int, default=200, help="jobs per episode")
    parser.add_argument("--job-arrival-rate", type=float, default=4e-5, help="Poisson arrival rate, jobs per ms")
    parser.add_argument("--moving-delay", type=float, default=2000.0, help="ms for an executor to move between jobs")
    parser.add_argument("--warmup-delay", type=float, default=1000.0,
                        help="ms added to the first task of an idle executor when no 'fresh' duration is recorded")
    parser.add_argument("--dataset", default="tpch", help="tpch, synthetic, or any folder under <data>/cjs/")
    parser.add_argument("--data-dir", default=None, help="data root (default: $TRAILBLAZER_DATA or ./data)")
    parser.add_argument("--render-mode", default=None, choices=[None], help="accepted for compatibility (no rendering)")


def make_env_factory(args, data_root: Path):
    templates = load_dataset(data_root, args.dataset)
    settings = dict(num_executors=args.num_executors, job_arrival_cap=args.job_arrival_cap,
                    job_arrival_rate=args.job_arrival_rate, moving_delay=args.moving_delay,
                    warmup_delay=args.warmup_delay)
    SparkSchedSimEnv(templates, **settings)  # validate the settings once, before any work
    return lambda: SparkSchedSimEnv(templates, **settings)


def env_folder_name(args) -> str:
    return (f"exe_{args.num_executors}_cap_{args.job_arrival_cap}_rate_{args.job_arrival_rate}"
            f"_md_{args.moving_delay}_wd_{args.warmup_delay}")


def check_results_dir(results_dir: Path, overwrite: bool) -> None:
    if results_dir.exists() and any(results_dir.iterdir()) and not overwrite:
        raise InputError(f"results folder {results_dir} already holds results; "
                         "pass --results-dir to write elsewhere or --overwrite to replace them")


def write_results(results_dir: Path, per_seed: dict, settings: dict) -> dict:
    """summary.json and jobs.csv, written atomically; returns the summary."""
    averages = {seed: float(np.mean([job["duration_s"] for job in jobs])) for seed, jobs in per_seed.items()}
    summary = {"avg_jct_s": float(np.mean(list(averages.values()))),
               "std_jct_s_across_seeds": float(np.std(list(averages.values()))),
               "num_seeds": len(averages), "per_seed_avg_jct_s": {str(s): v for s, v in averages.items()},
               "settings": settings}
    with atomic_folder(results_dir) as staging:
        table = pd.DataFrame([job for jobs in per_seed.values() for job in jobs], columns=JOB_COLUMNS)
        table.to_csv(staging / "jobs.csv", index=False)
        (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sched", default="decima", help=f"one of {', '.join(SCHEDULERS)}")
    add_env_arguments(parser)
    parser.add_argument("--seed", type=int, default=1, help="first episode seed (environment and scheduler)")
    parser.add_argument("--num-seeds", type=int, default=1, help="episodes with seeds --seed, --seed + 1, ...")
    parser.add_argument("--num-envs", type=int, default=1, help="episodes run side by side (batched decisions)")
    parser.add_argument("--state-dict-path", default=None, help="Decima weights (.pt or .safetensors)")
    parser.add_argument("--config", default=None, help="Decima config (default: config/decima_tpch.yaml)")
    parser.add_argument("--deterministic", action="store_true", help="Decima: most likely actions, no sampling")
    parser.add_argument("--device", default="cpu", help="Decima's device, e.g. cpu or cuda:0")
    parser.add_argument("--results-dir", default=None, help="default: artifacts/results/<dataset>/<settings>/...")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing results folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


@exit_on_input_error
def main(argv=None):
    args = parse_args(argv)
    if args.sched not in SCHEDULERS:
        raise InputError(f"unknown --sched '{args.sched}'; choose from {', '.join(SCHEDULERS)}")
    if args.num_seeds < 1 or args.num_envs < 1:
        raise InputError("--num-seeds and --num-envs must be at least 1")
    data_root = resolve_data_root(args.data_dir)
    make_env = make_env_factory(args, data_root)
    seeds = list(range(args.seed, args.seed + args.num_seeds))
    label = args.sched + ("_deterministic" if args.deterministic else "")
    results_dir = Path(args.results_dir) if args.results_dir else (
        Path("artifacts") / "results" / args.dataset / env_folder_name(args) / label / f"seeds_{seeds[0]}-{seeds[-1]}")
    check_results_dir(results_dir, args.overwrite)

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    config = load_config(args.config) if args.config else None
    scheduler = make_scheduler(args.sched, args.num_executors, data_root, args.seed, args.state_dict_path, config,
                               args.device, args.deterministic)
    per_seed = run_episodes(make_env, scheduler, seeds, args.num_envs, progress=not args.quiet)
    settings = {k: v for k, v in vars(args).items() if k not in ("overwrite", "quiet")}
    summary = write_results(results_dir, per_seed, {**settings, "data_root": str(data_root)})
    print(f"{args.sched} on {args.dataset} ({args.num_executors} executors, {args.job_arrival_cap} jobs, "
          f"{len(seeds)} seed{'s' * (len(seeds) > 1)}): average JCT {summary['avg_jct_s']:.3f} s"
          + (f" (std across seeds {summary['std_jct_s_across_seeds']:.2f})" if len(seeds) > 1 else "")
          + f" -> {results_dir}")
    return summary


if __name__ == "__main__":
    main()
