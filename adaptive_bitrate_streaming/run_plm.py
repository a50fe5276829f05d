"""Adapt a pretrained LLM into an ABR policy on an experience pool (--adapt), and test it (--test).

    python run_plm.py --adapt --test --plm-type smollm2 --plm-size 135m --exp-pool-path POOL \\
        --valid-trace fcc-valid --trace fcc-test --video video1
    python run_plm.py --test --model-dir artifacts/ft_plms/.../best_model --trace fcc-test

--adapt trains on whole episodes of the pool and keeps the policy with the best mean QoE on the validation
trace set (never the test set); every epoch writes a resumable checkpoint (--resume). --test streams the test
traces with the saved policy and writes the same per-trace files and summary.json as run_baseline.py.
"""
import argparse
import json
import random
from pathlib import Path

import numpy as np
import torch

from abr_sim.constants import TOTAL_VIDEO_CHUNKS
from abr_sim.datasets import load_trace_set, load_video, resolve_data_root
from common.errors import InputError, exit_on_input_error
from abr_sim.evaluation import run_episodes, summarize
from common.files import atomic_write_text
from abr_sim.results import check_results_dir, write_results
from abr_sim.simulator import episode_schedule
from plm_special.backbones import DEFAULT_PLM_DIR, PLM_TYPES
from plm_special.checkpoint import build_policy, load_policy, read_settings
from plm_special.dataset import ExperienceDataset
from plm_special.experience import load_pool
from plm_special.llm_policy import LLMPolicy
from plm_special.trainer import TrainConfig, Trainer


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--adapt", action="store_true", help="train on the experience pool")
    p.add_argument("--test", action="store_true", help="evaluate on --trace (after --adapt: its best policy)")
    g = p.add_argument_group("backbone")
    g.add_argument("--plm-type", default=None, help=f"one of {', '.join(PLM_TYPES)} (default smollm2)")
    g.add_argument("--plm-size", default=None, help="a folder name under downloaded_plms/<type>/ (default 135m)")
    g.add_argument("--plm-dir", default=str(DEFAULT_PLM_DIR), help="where <type>/<size>/ folders live")
    g.add_argument("--rank", type=int, default=None, help="LoRA rank; -1 = full fine-tuning (default 128)")
    g.add_argument("--which-layer", type=int, default=None,
                   help="early exit after this block (0-based); -1 = use all blocks (default)")
    g.add_argument("--freeze-plm", action="store_true", help="train nothing in the backbone (no LoRA either)")
    g.add_argument("--freeze-encoder", action="store_true", help="do not train the state encoder")
    g.add_argument("--state-feature-dim", type=int, default=256, help="feature size of the state encoder")
    g.add_argument("--w", type=int, default=20, help="context: every token sees the tokens of the last w steps")
    g = p.add_argument_group("training")
    g.add_argument("--exp-pool-path", default=None, help="experience pool folder (generate_exp_pool.py) or .pkl")
    g.add_argument("--model-dir", default=None,
                   help="--adapt: where the run is saved; --test: a saved policy (a run folder uses its best_model/)")
    g.add_argument("--resume", action="store_true", help="continue the run in --model-dir from its checkpoint")
    g.add_argument("--num-epochs", type=int, default=80)
    g.add_argument("--batch-size", type=int, default=16, help="episodes per forward pass")
    g.add_argument("--grad-accum-steps", type=int, default=1, help="forward passes per optimizer step")
    g.add_argument("--lr", type=float, default=1e-4)
    g.add_argument("--weight-decay", type=float, default=1e-4)
    g.add_argument("--warmup-steps", type=int, default=None, help="linear warm-up in optimizer steps (default 5%%)")
    g.add_argument("--eval-per-epoch", type=int, default=1, help="validate every this many epochs")
    g.add_argument("--gamma", type=float, default=1.0, help="discount of the returns-to-go")
    g.add_argument("--scale", type=float, default=1000, help="returns-to-go are divided by this")
    g.add_argument("--sample-step", type=int, default=None,
                   help="accepted for compatibility: training uses whole episodes, not sampled windows")
    g = p.add_argument_group("evaluation")
    g.add_argument("--trace", default="fcc-test", help="test trace set")
    g.add_argument("--valid-trace", default="fcc-valid", help="validation trace set (model selection)")
    g.add_argument("--video", default="video1")
    g.add_argument("--trace-num", type=int, default=100, help="test traces; -1 = all (fixed order)")
    g.add_argument("--valid-trace-num", type=int, default=-1, help="validation traces; -1 = all")
    g.add_argument("--fixed-order", action="store_true", help="traces in name order, no delay noise")
    g.add_argument("--target-return-scale", type=float, default=1.0, help="target return = pool's best x this")
    g.add_argument("--sample", action="store_true", help="sample bitrates (seeded) instead of the most likely one")
    g.add_argument("--num-clients", type=int, default=32, help="clients streamed side by side, decided in one batch")
    g.add_argument("--data-dir", default=None, help="data root (default: $TRAILBLAZER_DATA or ./data)")
    g.add_argument("--results-dir", default=None)
    g.add_argument("--overwrite", action="store_true", help="replace an existing results folder")
    g = p.add_argument_group("system")
    g.add_argument("--seed", type=int, default=100003, help="seeds Python, NumPy, torch, episode order, sampling")
    g.add_argument("--device", default=None, help="e.g. cpu, cuda:0 (default: cuda:0 if available, else cpu)")
    g.add_argument("--device-out", default=None, help="accepted for compatibility; must equal --device")
    return p.parse_args(argv)


def backbone_request(args) -> dict:
    return {"plm_type": args.plm_type, "plm_size": args.plm_size, "rank": args.rank, "which_layer": args.which_layer}


def trace_count(requested: int, available: int, name: str) -> int:
    if requested == 0 or requested < -1:
        raise InputError(f"--{name} must be -1 (all) or a positive number, got {requested}")
    return available if requested == -1 else min(requested, available)


def evaluate(policy, trace_set, video, trace_num, fixed_order, seed, num_clients, quiet=True):
    """Stream `trace_num` traces of the set with the policy; returns the per-trace logs."""
    fixed_order = fixed_order or trace_num == len(trace_set.traces)
    schedule = episode_schedule(trace_set, fixed_order, trace_num)
    noise = None if fixed_order else np.random.RandomState(seed)
    return run_episodes(policy, trace_set, video, schedule, noise, num_clients, progress=not quiet)


def default_model_dir(args) -> Path:
    pool = Path(args.exp_pool_path).resolve()
    pool_name = pool.stem if pool.suffix == ".pkl" else pool.name
    run = f"early_stop_{args.which_layer}_rank_{args.rank}_w_{args.w}_seed_{args.seed}"
    return Path("artifacts") / "ft_plms" / f"{args.plm_type}_{args.plm_size}" / pool_name / run


def adapt(args, data_root, video, device) -> Path:
    if not args.exp_pool_path:
        raise InputError("--adapt needs --exp-pool-path (make a pool with generate_exp_pool.py)")
    model_dir = Path(args.model_dir) if args.model_dir else default_model_dir(args)
    checkpoint = model_dir / "checkpoint"
    if args.resume and not (checkpoint / "training_state.json").is_file():
        raise InputError(f"--resume: {model_dir} has no checkpoint to continue from")
    if not args.resume and ((model_dir / "checkpoint").exists() or (model_dir / "best_model").exists()):
        raise InputError(f"{model_dir} already holds a training run; pass --resume to continue it "
                         "or --model-dir to start another")
    valid_set = load_trace_set(data_root, args.valid_trace)
    valid_num = trace_count(args.valid_trace_num, len(valid_set.traces), "valid-trace-num")
    pool = load_pool(Path(args.exp_pool_path))
    dataset = ExperienceDataset(pool, args.gamma, args.scale)
    if args.sample_step is not None:
        print("note: --sample-step is not used; training sees every step of every episode once per epoch")

    settings = {
        **backbone_request(args), "plm_dir": args.plm_dir, "freeze_plm": args.freeze_plm,
        "freeze_encoder": args.freeze_encoder, "w": args.w, "state_feature_dim": args.state_feature_dim,
        "max_timestep": TOTAL_VIDEO_CHUNKS - 1, "return_scaling": dataset.scaling.to_dict(),
        "exp_pool_path": str(args.exp_pool_path), "pool_metadata": pool.metadata,
    }
    if args.resume:
        model, saved, _ = load_policy(checkpoint, Path(args.plm_dir), backbone_request(args))
        for key in ("w", "state_feature_dim", "freeze_plm", "freeze_encoder"):
            if saved[key] != settings[key]:
                raise InputError(f"--resume: the run in {model_dir} used {key}={saved[key]}, not {settings[key]}")
    else:
        model = build_policy(settings, Path(args.plm_dir))
    settings["hidden_size"] = model.backbone.hidden_size
    if args.freeze_encoder:
        model.state_encoder.requires_grad_(False)
    model.to(device)
    model_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(model_dir / "run_settings.json", json.dumps({**settings, "args": vars(args)}, indent=2) + "\n")

    def validate(model) -> float:
        policy = LLMPolicy(model, dataset.scaling, args.target_return_scale, args.sample, args.seed)
        logs = evaluate(policy, valid_set, video, valid_num, args.fixed_order, args.seed, args.num_clients)
        return summarize(logs)["mean_qoe"]

    config = TrainConfig(args.num_epochs, args.batch_size, args.grad_accum_steps, args.lr, args.weight_decay,
                         args.warmup_steps, args.eval_per_epoch, args.seed)
    trainer = Trainer(model, dataset, config, settings, model_dir, validate, device)
    if args.resume:
        trainer.restore(checkpoint)
    best = trainer.fit()
    print(f"best validation mean QoE {best:.6f} on {args.valid_trace}; policy saved in {model_dir / 'best_model'}")
    return model_dir / "best_model"


def test(args, policy_dir: Path, data_root, video, device) -> dict:
    if (policy_dir / "best_model" / "settings.json").is_file():
        policy_dir = policy_dir / "best_model"
    settings = read_settings(policy_dir)
    test_set = load_trace_set(data_root, args.trace)
    trace_num = trace_count(args.trace_num, len(test_set.traces), "trace-num")
    fixed_order = args.fixed_order or trace_num == len(test_set.traces)
    results_dir = Path(args.results_dir) if args.results_dir else (
        Path("artifacts") / "results" / f"{args.trace}_{args.video}" / f"trace_num_{trace_num}_fixed_{fixed_order}"
        / f"{settings['plm_type']}_{settings['plm_size']}" / policy_dir.resolve().parent.name / f"seed_{args.seed}")
    check_results_dir(results_dir, args.overwrite)

    model, settings, scaling = load_policy(policy_dir, Path(args.plm_dir), backbone_request(args))
    model.backbone.merge_lora()
    policy = LLMPolicy(model.to(device), scaling, args.target_return_scale, args.sample, args.seed)
    logs = evaluate(policy, test_set, video, trace_num, fixed_order, args.seed, args.num_clients, quiet=False)
    summary = summarize(logs)
    summary["settings"] = {**vars(args), "trace_num": trace_num, "fixed_order": fixed_order,
                           "policy_dir": str(policy_dir), "policy": settings}
    write_results(results_dir, logs, summary, args.overwrite)
    print(f"trailblazer ({settings['plm_type']}/{settings['plm_size']}) on {args.trace}/{args.video} "
          f"({summary['num_traces']} traces): mean QoE {summary['mean_qoe']:.6f} "
          f"(all chunks {summary['mean_qoe_all_chunks']:.6f}), bitrate {summary['mean_bitrate_mbps']:.3f} Mbps, "
          f"rebuffer {summary['rebuffer_s']:.4f} s, smoothness {summary['smoothness_mbps']:.4f} Mbps -> {results_dir}")
    return summary


@exit_on_input_error
def main(argv=None):
    args = parse_args(argv)
    if not (args.adapt or args.test):
        raise InputError("nothing to do: pass --adapt, --test or both")
    if args.test and not args.adapt and not args.model_dir:
        raise InputError("--test alone needs --model-dir (a policy saved by --adapt)")
    device = torch.device(args.device or ("cuda:0" if torch.cuda.is_available() else "cpu"))
    if args.device_out not in (None, args.device, str(device)):
        raise InputError("--device-out must equal --device: this implementation keeps the policy on one device")
    if args.adapt:  # a new run takes the offline defaults; a resumed run or --test take the saved ones
        args.plm_type = args.plm_type or "smollm2"
        args.plm_size = args.plm_size or "135m"
        args.rank = 128 if args.rank is None else args.rank
        args.which_layer = -1 if args.which_layer is None else args.which_layer
    for name in ("num_epochs", "batch_size", "grad_accum_steps", "eval_per_epoch", "w", "num_clients",
                 "state_feature_dim"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1")
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    data_root = resolve_data_root(args.data_dir)
    video = load_video(data_root, args.video)
    policy_dir = adapt(args, data_root, video, device) if args.adapt else Path(args.model_dir)
    if args.test:
        return test(args, policy_dir, data_root, video, device)


if __name__ == "__main__":
    main()
