"""Evaluate a conventional ABR policy (BBA, MPC, RobustMPC, Genet, UDR-1/2/3, UDR-real) on a trace set.

    python run_baseline.py --model mpc --trace fcc-test --video video1

Writes one TSV per trace (time_s, bitrate_kbps, buffer_s, rebuffer_s, chunk_bytes, delay_ms,
smoothness_mbps, reward) and summary.json into the results folder, and prints a one-line summary.
"""
import argparse
import os
import random
from pathlib import Path

import numpy as np
import torch

from abr_sim.datasets import load_trace_set, load_video, resolve_data_root
from common.errors import InputError, exit_on_input_error
from abr_sim.evaluation import run_episodes, summarize
from abr_sim.results import check_results_dir, write_results
from abr_sim.simulator import episode_schedule
from baselines import BASELINES, make_baseline


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="genet", help=f"one of {', '.join(BASELINES)}")
    parser.add_argument("--trace", "--test-trace", dest="trace", default="fcc-test",
                        help="trace set: a folder name under <data>/abr/traces/*/")
    parser.add_argument("--video", default="video1", help="video: <data>/abr/videos/<video>_sizes")
    parser.add_argument("--trace-num", "--test-trace-num", dest="trace_num", type=int, default=100,
                        help="number of traces (episodes); -1 or the set's size = all, in fixed order")
    parser.add_argument("--seed", type=int, default=100003,
                        help="seeds the one NumPy RandomState behind delay noise and Pensieve sampling")
    parser.add_argument("--fixed-order", action="store_true",
                        help="traces in name order and no delay noise (forced when all traces are used)")
    parser.add_argument("--deterministic", action="store_true",
                        help="Pensieve family: take the most likely action instead of sampling")
    parser.add_argument("--backend", choices=["torch", "tf"], default="torch",
                        help="Pensieve family: PyTorch port, or TensorFlow graphs (TF environment only)")
    parser.add_argument("--model-path", default=None,
                        help="Pensieve family: TF1 checkpoint prefix (default: "
                             "<data>/abr/all_models/<model>/nn_model_ep_<epoch>.ckpt)")
    parser.add_argument("--cuda-id", type=int, default=None,
                        help="sets CUDA_VISIBLE_DEVICES (kept for compatibility; the actors run on the CPU)")
    parser.add_argument("--data-dir", default=None, help="data root (default: $TRAILBLAZER_DATA or ./data)")
    parser.add_argument("--results-dir", default=None, help="default: artifacts/results/<trace>_<video>/...")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing results folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def default_results_dir(args, trace_num: int) -> Path:
    model = args.model + ("_deterministic" if args.deterministic else "")
    return (Path("artifacts") / "results" / f"{args.trace}_{args.video}"
            / f"trace_num_{trace_num}_fixed_{args.fixed_order}" / model / f"seed_{args.seed}")


@exit_on_input_error
def main(argv=None):
    args = parse_args(argv)
    if args.model not in BASELINES:
        raise InputError(f"unknown --model '{args.model}'; choose from {', '.join(BASELINES)}")
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
                           Path(args.model_path) if args.model_path else None)
    schedule = episode_schedule(trace_set, args.fixed_order, trace_num)
    logs = run_episodes(policy, trace_set, video, schedule, None if args.fixed_order else rng,
                        progress=not args.quiet)

    summary = summarize(logs)
    summary["settings"] = {key: value for key, value in vars(args).items() if key not in ("overwrite", "quiet")}
    summary["settings"].update(trace_num=trace_num, data_root=str(data_root))
    write_results(results_dir, logs, summary, args.overwrite)
    print(f"{args.model} on {args.trace}/{args.video} ({summary['num_traces']} traces): "
          f"mean QoE {summary['mean_qoe']:.6f} (all chunks {summary['mean_qoe_all_chunks']:.6f}), "
          f"bitrate {summary['mean_bitrate_mbps']:.3f} Mbps, rebuffer {summary['rebuffer_s']:.4f} s, "
          f"smoothness {summary['smoothness_mbps']:.4f} Mbps -> {results_dir}")
    return summary


if __name__ == "__main__":
    main()
