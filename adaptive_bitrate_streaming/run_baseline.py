"""Evaluate a conventional ABR policy (BBA, MPC, RobustMPC, Genet, UDR-1/2/3, UDR-real) on a trace set.

    python run_baseline.py --model mpc --trace fcc-test --video video1

Writes one TSV per trace (time_s, bitrate_kbps, buffer_s, rebuffer_s, chunk_bytes, delay_ms,
smoothness_mbps, reward) and summary.json into the results folder, and prints a one-line summary.
"""
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from abr_sim.datasets import load_trace_set, load_video, resolve_data_root
from abr_sim.evaluation import run_episodes, summarize
from abr_sim.results import check_results_dir, write_results
from abr_sim.simulator import episode_schedule
from baselines import BASELINES, make_baseline
from common import settings as cli
from common.errors import InputError, exit_on_input_error
from common.settings import setting


@dataclass
class Settings:
    model: str = setting("genet", "the conventional ABR policy", choices=BASELINES)
    trace: str = setting("fcc-test", "trace set: a folder name under <data>/abr/traces/*/", aliases=("--test-trace",))
    video: str = setting("video1", "video: <data>/abr/videos/<video>_sizes")
    trace_num: int = setting(100, "number of traces (episodes); -1 or the set's size = all, in fixed order",
                             aliases=("--test-trace-num",))
    seed: int = setting(100003, "seeds the one NumPy RandomState behind delay noise and Pensieve sampling")
    fixed_order: bool = setting(False, "traces in name order and no delay noise (forced when all traces are used)")
    deterministic: bool = setting(False, "Pensieve family: take the most likely action instead of sampling")
    fresh_episodes: bool = setting(False, "MPC, RobustMPC: every episode starts its bandwidth-error history afresh, "
                                          "as the policy server's sessions (default: the original's carry-over)")
    backend: str = setting("torch", "Pensieve family: PyTorch port, or TensorFlow graphs (TF environment only)",
                           choices=["torch", "tf"])
    model_path: str | None = setting(None, "Pensieve family: TF1 checkpoint prefix (default: "
                                           "<data>/abr/all_models/<model>/nn_model_ep_<epoch>.ckpt)")
    cuda_id: int | None = setting(None, "sets CUDA_VISIBLE_DEVICES (kept for compatibility; the actors run on "
                                        "the CPU)")
    data_dir: str | None = setting(None, "data root (default: $TRAILBLAZER_DATA, else the repository's data/)")
    results_dir: str | None = setting(None, "results folder (default: artifacts/results/<trace>_<video>/...)")
    overwrite: bool = setting(False, "replace an existing results folder")
    quiet: bool = setting(False, "no progress bar")


def default_results_dir(args, trace_num: int) -> Path:
    model = args.model + ("_deterministic" if args.deterministic else "")
    return (Path("artifacts") / "results" / f"{args.trace}_{args.video}"
            / f"trace_num_{trace_num}_fixed_{args.fixed_order}" / model / f"seed_{args.seed}")


@exit_on_input_error
def main(argv=None):
    args, _ = cli.parse(Settings, argv, __doc__)
    if args.cuda_id is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.cuda_id)
    data_root = resolve_data_root(args.data_dir)
    trace_set = load_trace_set(data_root, args.trace)
    video = load_video(data_root, args.video)
    num_traces = len(trace_set.traces)
    if args.trace_num == 0 or args.trace_num < -1:
        raise InputError(f"--trace-num must be -1 (all) or a positive number, got {args.trace_num}")
    trace_num = num_traces if args.trace_num == -1 else min(args.trace_num, num_traces)
    args.fixed_order = args.fixed_order or trace_num == num_traces
    results_dir = Path(args.results_dir) if args.results_dir else default_results_dir(args, trace_num)
    check_results_dir(results_dir, args.overwrite)

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = np.random.RandomState(args.seed)
    policy = make_baseline(args.model, video, data_root, rng, args.backend, args.deterministic,
                           Path(args.model_path) if args.model_path else None, args.fresh_episodes)
    schedule = episode_schedule(trace_set, args.fixed_order, trace_num)
    logs = run_episodes(policy, trace_set, video, schedule, None if args.fixed_order else rng,
                        progress=not args.quiet)

    summary = summarize(logs)
    summary["settings"] = {key: value for key, value in cli.to_dict(args).items() if key not in ("overwrite", "quiet")}
    summary["settings"].update(trace_num=trace_num, data_root=str(data_root))
    write_results(results_dir, logs, summary, args.overwrite)
    print(f"{args.model} on {args.trace}/{args.video} ({summary['num_traces']} traces): "
          f"mean QoE {summary['mean_qoe']:.6f} (all chunks {summary['mean_qoe_all_chunks']:.6f}), "
          f"bitrate {summary['mean_bitrate_mbps']:.3f} Mbps, rebuffer {summary['rebuffer_s']:.4f} s, "
          f"smoothness {summary['smoothness_mbps']:.4f} Mbps -> {results_dir}")
    return summary


if __name__ == "__main__":
    main()
