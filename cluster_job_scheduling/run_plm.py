"""Adapt a pretrained LLM into a cluster scheduler on an experience pool (--train), and test it (--test).

    python run_plm.py --train --test --plm-type smollm2 --plm-size 135m --peft-rank 32 --which-layer 5 \\
        --exp-pool-path POOL --K 20 --num-iters 4 --num-steps-per-iter 500
    python run_plm.py --test --model-dir artifacts/ft_plms/.../best_model --seed 1 --num-seeds 5

--train keeps the policy with the lowest average JCT on the validation seeds (--valid-seeds, which must
differ from the test seeds) and writes a resumable checkpoint every iteration (--resume). --test plays one
episode per test seed and writes summary.json and jobs.csv like run_baseline.py.
"""
import argparse
import json
import random
from pathlib import Path

import numpy as np
import torch

import run_baseline
from plm_special.backbones import DEFAULT_PLM_DIR, PLM_TYPES
from plm_special.checkpoint import build_policy, load_policy, read_settings
from plm_special.dataset import WindowDataset
from plm_special.experience import load_pool
from plm_special.llm_scheduler import LLMScheduler
from plm_special.rl_policy import ENCODER_SLOPE
from plm_special.trainer import TrainConfig, Trainer
from schedulers import load_config
from schedulers.decima import load_state_dict
from spark_sched_sim.datasets import resolve_data_root
from common.errors import InputError, exit_on_input_error
from spark_sched_sim.evaluation import run_episodes
from common.files import atomic_write_text


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", action="store_true", help="adapt on the experience pool")
    p.add_argument("--test", action="store_true", help="evaluate (after --train: its best policy)")
    g = p.add_argument_group("backbone")
    g.add_argument("--plm-type", default=None, help=f"one of {', '.join(PLM_TYPES)} (default smollm2)")
    g.add_argument("--plm-size", default=None, help="a folder name under downloaded_plms/<type>/ (default 135m)")
    g.add_argument("--plm-dir", default=str(DEFAULT_PLM_DIR))
    g.add_argument("--peft-rank", "--rank", dest="rank", type=int, default=None,
                   help="LoRA rank; -1 = full fine-tuning (default 128)")
    g.add_argument("--which-layer", type=int, default=None, help="early exit after this block; -1 = all blocks")
    g.add_argument("--freeze-plm", action="store_true", help="train nothing in the backbone")
    g.add_argument("--freeze-encoder", action="store_true", help="do not train the graph state encoder")
    g.add_argument("--state-feature-dim", type=int, default=64, help="embedding size of the graph state encoder")
    g.add_argument("--pt-encoder-config", default=None,
                   help="start the graph state encoder from trained Decima's (a Decima config such as "
                        "config/decima_tpch.yaml: its encoder sizes replace --state-feature-dim, its weights load)")
    g.add_argument("--K", type=int, default=20, help="context: tokens see the last K decision steps")
    g = p.add_argument_group("training")
    g.add_argument("--exp-pool-path", default=None, help="experience pool folder (generate_exp_pool.py)")
    g.add_argument("--model-dir", default=None,
                   help="--train: where the run is saved; --test: a saved policy (a run folder uses its best_model/)")
    g.add_argument("--resume", action="store_true", help="continue the run in --model-dir from its checkpoint")
    g.add_argument("--num-iters", type=int, default=10)
    g.add_argument("--num-steps-per-iter", type=int, default=1000, help="windows drawn per iteration")
    g.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    g.add_argument("--grad-accum-steps", type=int, default=1)
    g.add_argument("--lr", type=float, default=1e-4)
    g.add_argument("--weight-decay", type=float, default=1e-4)
    g.add_argument("--warmup-steps", type=int, default=None, help="linear warm-up in optimizer steps (default 5%%)")
    g.add_argument("--eval-per-iter", type=int, default=1)
    g.add_argument("--gamma", type=float, default=1.0)
    g.add_argument("--scale", type=float, default=1000)
    g.add_argument("--sample-step", type=int, default=None, help="windows start every this many decisions (= K)")
    g.add_argument("--valid-seeds", type=int, nargs="+", default=[1001, 1002], help="episodes for model selection")
    g = p.add_argument_group("environment and evaluation")
    run_baseline.add_env_arguments(g)
    g.add_argument("--seed", type=int, default=1, help="first test seed; also seeds torch, NumPy and Python")
    g.add_argument("--num-seeds", type=int, default=1, help="test episodes with seeds --seed, --seed + 1, ...")
    g.add_argument("--target-return-scale", type=float, default=1.0)
    g.add_argument("--sample", action="store_true", help="sample actions (seeded) instead of the most likely")
    g.add_argument("--mode", choices=["cache", "window", "full"], default=None,
                   help="inference context (default: cache for rotary backbones, window otherwise)")
    g.add_argument("--results-dir", default=None)
    g.add_argument("--overwrite", action="store_true")
    g = p.add_argument_group("system")
    g.add_argument("--device", default=None, help="cpu or cuda:0 (default: cuda:0 if available)")
    g.add_argument("--device-out", default=None, help="accepted for compatibility; must equal --device")
    return p.parse_args(argv)


def backbone_request(args) -> dict:
    return {"plm_type": args.plm_type, "plm_size": args.plm_size, "rank": args.rank, "which_layer": args.which_layer}


def decima_encoder(config_path: str, data_root: Path) -> tuple[dict, dict]:
    """The encoder settings and trained weights of the Decima a config describes (the original's
    --pt-encoder-config); its state_dict_path is relative to the data root unless absolute."""
    agent = load_config(Path(config_path))["agent"]
    gnn = agent["gnn_mlp_kwargs"]
    if gnn.get("act_cls") != "LeakyReLU" or gnn.get("act_kwargs", {}).get("negative_slope") != ENCODER_SLOPE:
        raise InputError(f"{config_path}: the state encoder needs LeakyReLU({ENCODER_SLOPE}) activations, as "
                         f"Decima's default; this config has {gnn.get('act_cls')} {gnn.get('act_kwargs', {})}")
    path = Path(data_root) / agent["state_dict_path"]
    if not path.is_file():
        raise InputError(f"Decima weights {path} (state_dict_path of {config_path}) not found; run "
                         "../download_data.py --only cjs/models, or point state_dict_path at them")
    weights = {name.removeprefix("encoder."): tensor for name, tensor in load_state_dict(path).items()
               if name.startswith("encoder.")}
    settings = {"state_feature_dim": agent["embed_dim"], "encoder_hidden_dims": gnn["hid_dims"],
                "pt_encoder": str(path)}
    return settings, weights


def average_jct(scheduler, make_env, seeds, progress=False) -> tuple[float, dict]:
    per_seed = run_episodes(make_env, scheduler, seeds, progress=progress)
    return float(np.mean([np.mean([j["duration_s"] for j in jobs]) for jobs in per_seed.values()])), per_seed


def train(args, make_env, data_root: Path, device) -> Path:
    if not args.exp_pool_path:
        raise InputError("--train needs --exp-pool-path (make a pool with generate_exp_pool.py)")
    test_seeds = set(range(args.seed, args.seed + args.num_seeds))
    if test_seeds & set(args.valid_seeds):
        raise InputError(f"--valid-seeds {args.valid_seeds} overlap the test seeds {sorted(test_seeds)}; "
                         "model selection must not see the test episodes")
    model_dir = Path(args.model_dir) if args.model_dir else (
        Path("artifacts") / "ft_plms" / f"{args.plm_type}_{args.plm_size}" / Path(args.exp_pool_path).name
        / f"early_stop_{args.which_layer}_rank_{args.rank}_K_{args.K}_seed_{args.seed}")
    checkpoint = model_dir / "checkpoint"
    if args.resume and not (checkpoint / "training_state.json").is_file():
        raise InputError(f"--resume: {model_dir} has no checkpoint to continue from")
    if not args.resume and ((model_dir / "checkpoint").exists() or (model_dir / "best_model").exists()):
        raise InputError(f"{model_dir} already holds a training run; pass --resume to continue it "
                         "or --model-dir to start another")
    pool = load_pool(Path(args.exp_pool_path))
    if pool.metadata.get("num_executors") != args.num_executors:
        raise InputError(f"the pool was collected with {pool.metadata.get('num_executors')} executors, not "
                         f"--num-executors {args.num_executors}")
    dataset = WindowDataset(pool, args.K, args.sample_step or args.K, args.gamma, args.scale)
    settings = {**backbone_request(args), "plm_dir": args.plm_dir, "freeze_plm": args.freeze_plm,
                "freeze_encoder": args.freeze_encoder, "K": args.K, "state_feature_dim": args.state_feature_dim,
                "num_executors": args.num_executors, "max_timestep": dataset.max_timestep,
                "return_scaling": dataset.scaling.to_dict(), "exp_pool_path": str(args.exp_pool_path),
                "pool_metadata": pool.metadata}
    encoder_weights = None
    if args.pt_encoder_config:
        encoder_settings, encoder_weights = decima_encoder(args.pt_encoder_config, data_root)
        settings.update(encoder_settings)
    if args.resume:
        model, saved, _ = load_policy(checkpoint, Path(args.plm_dir), backbone_request(args))
        for key in ("K", "state_feature_dim", "encoder_hidden_dims", "num_executors", "freeze_plm", "freeze_encoder"):
            if saved.get(key) != settings.get(key):
                raise InputError(f"--resume: the run in {model_dir} used {key}={saved.get(key)}, not {settings.get(key)}")
        settings["max_timestep"] = saved["max_timestep"]
    else:
        model = build_policy(settings, Path(args.plm_dir))
        if encoder_weights is not None:
            try:
                model.encoder.load_state_dict(encoder_weights)
            except RuntimeError as error:
                raise InputError(f"{settings['pt_encoder']} does not match the encoder of {args.pt_encoder_config} "
                                 f"({str(error).splitlines()[1].strip()})") from None
    settings["hidden_size"] = model.backbone.hidden_size
    if args.freeze_encoder:
        model.encoder.requires_grad_(False)
    model.to(device)
    model_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(model_dir / "run_settings.json", json.dumps({**settings, "args": vars(args)}, indent=2) + "\n")

    def validate(model) -> float:
        scheduler = LLMScheduler(model, dataset.scaling, args.target_return_scale, args.sample, args.seed, args.mode)
        return average_jct(scheduler, make_env, args.valid_seeds)[0]

    config = TrainConfig(args.num_iters, args.num_steps_per_iter, args.batch_size, args.grad_accum_steps, args.lr,
                         args.weight_decay, args.warmup_steps, args.eval_per_iter, args.seed)
    trainer = Trainer(model, dataset, config, settings, model_dir, validate)
    if args.resume:
        trainer.restore(checkpoint)
    best = trainer.fit()
    print(f"best validation average JCT {best:.3f} s on seeds {args.valid_seeds}; "
          f"policy saved in {model_dir / 'best_model'}")
    return model_dir / "best_model"


def test(args, policy_dir: Path, make_env, device) -> dict:
    if (policy_dir / "best_model" / "settings.json").is_file():
        policy_dir = policy_dir / "best_model"
    settings = read_settings(policy_dir)
    if settings["num_executors"] != args.num_executors:
        raise InputError(f"{policy_dir} schedules {settings['num_executors']} executors, not --num-executors "
                         f"{args.num_executors}")
    seeds = list(range(args.seed, args.seed + args.num_seeds))
    results_dir = Path(args.results_dir) if args.results_dir else (
        Path("artifacts") / "results" / args.dataset / run_baseline.env_folder_name(args)
        / f"trailblazer_{settings['plm_type']}_{settings['plm_size']}" / policy_dir.resolve().parent.name
        / f"seeds_{seeds[0]}-{seeds[-1]}")
    run_baseline.check_results_dir(results_dir, args.overwrite)
    model, settings, scaling = load_policy(policy_dir, Path(args.plm_dir), backbone_request(args))
    model.backbone.merge_lora()
    scheduler = LLMScheduler(model.to(device), scaling, args.target_return_scale, args.sample, args.seed, args.mode)
    _, per_seed = average_jct(scheduler, make_env, seeds, progress=True)
    run_settings = {k: v for k, v in vars(args).items() if k not in ("overwrite",)}
    summary = run_baseline.write_results(results_dir, per_seed, {**run_settings, "policy_dir": str(policy_dir),
                                                                  "policy": settings})
    print(f"trailblazer ({settings['plm_type']}/{settings['plm_size']}) on {args.dataset} ({args.num_executors} "
          f"executors, {args.job_arrival_cap} jobs, {len(seeds)} seed{'s' * (len(seeds) > 1)}): average JCT "
          f"{summary['avg_jct_s']:.3f} s -> {results_dir}")
    return summary


@exit_on_input_error
def main(argv=None):
    args = parse_args(argv)
    if not (args.train or args.test):
        raise InputError("nothing to do: pass --train, --test or both")
    if args.test and not args.train and not args.model_dir:
        raise InputError("--test alone needs --model-dir (a policy saved by --train)")
    device = torch.device(args.device or ("cuda:0" if torch.cuda.is_available() else "cpu"))
    if args.device_out not in (None, args.device, str(device)):
        raise InputError("--device-out must equal --device: this implementation keeps the policy on one device")
    if args.train:
        args.plm_type = args.plm_type or "smollm2"
        args.plm_size = args.plm_size or "135m"
        args.rank = 128 if args.rank is None else args.rank
        args.which_layer = -1 if args.which_layer is None else args.which_layer
    for name in ("num_iters", "num_steps_per_iter", "batch_size", "grad_accum_steps", "eval_per_iter", "K",
                 "num_seeds", "state_feature_dim"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1")
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    data_root = resolve_data_root(args.data_dir)
    make_env = run_baseline.make_env_factory(args, data_root)
    policy_dir = train(args, make_env, data_root, device) if args.train else Path(args.model_dir)
    if args.test:
        return test(args, policy_dir, make_env, device)


if __name__ == "__main__":
    main()
