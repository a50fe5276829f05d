"""Train Decima with PPO on the CPU (the settings come from a YAML config).

    python train_baseline.py -f config/decima_tpch.yaml [--resume]

Writes into the config's trainer.artifacts_dir (or --out-dir): train_log.csv (per iteration: average number
of concurrent jobs, average JCT, return, losses, KL, learning rate, seconds), checkpoints/<i>/model.safetensors
(the best model of the last `checkpointing_freq` iterations, usable with run_baseline.py --state-dict-path)
and latest/ (everything needed to resume after an interruption, with --resume).
"""
from dataclasses import dataclass
from pathlib import Path

import torch

from common import settings as cli
from common.errors import InputError, exit_on_input_error
from common.settings import setting
from schedulers import load_config
from schedulers.decima import DecimaScheduler
from schedulers.decima_actor import load_state_dict
from spark_sched_sim.datasets import load_dataset, resolve_data_root
from spark_sched_sim.env import SparkSchedSimEnv
from trainers.ppo import PPOTrainer

TRAINER_KEYS = ["seed", "num_iterations", "num_sequences", "num_rollouts", "checkpointing_freq", "num_epochs",
                "num_batches", "clip_range", "target_kl", "entropy_coeff", "beta_discount", "lr", "max_grad_norm"]


@dataclass
class Settings:
    config: str | None = setting(None, "YAML config of Decima's PPO training (agent, env, trainer sections)",
                                 aliases=("-f", "--file"), required=True)
    data_dir: str | None = setting(None, "data root (default: $TRAILBLAZER_DATA, else the repository's data/)")
    out_dir: str | None = setting(None, "run folder (default: the config's trainer.artifacts_dir)")
    resume: bool = setting(False, "continue from <out-dir>/latest")
    init_from: str | None = setting(None, "start from these Decima weights instead of from scratch")


@exit_on_input_error
def main(argv=None):
    args, _ = cli.parse(Settings, argv, __doc__)

    config = load_config(Path(args.config))
    try:
        agent, env_config, trainer = config.agent, dict(config.env), config.trainer
        missing = [k for k in TRAINER_KEYS if k not in trainer]
    except (AttributeError, KeyError, TypeError):
        raise InputError(f"{args.config} needs the sections agent, env and trainer") from None
    if missing:
        raise InputError(f"{args.config}: trainer settings missing: {', '.join(missing)}")
    out_dir = Path(args.out_dir or trainer.get("artifacts_dir", "artifacts/decima_training"))
    if args.resume and not (out_dir / "latest" / "training_state.json").is_file():
        raise InputError(f"--resume: {out_dir} has no latest/ checkpoint to continue from")
    if not args.resume and (out_dir / "latest").exists():
        raise InputError(f"{out_dir} already holds a training run; pass --resume to continue it or --out-dir")

    data_root = resolve_data_root(args.data_dir)
    templates = load_dataset(data_root, env_config.pop("dataset", "tpch"))
    mean_time_limit = float(env_config.pop("mean_time_limit", 2e7))
    env_settings = {k: env_config[k] for k in ("num_executors", "job_arrival_cap", "job_arrival_rate", "moving_delay",
                                                "warmup_delay")}

    def make_env():
        return SparkSchedSimEnv(templates, **env_settings, beta=trainer.beta_discount)

    make_env()
    torch.manual_seed(trainer.seed)  # the initial weights; rollouts and minibatches have their own seeds
    scheduler = DecimaScheduler(env_settings["num_executors"], agent, None, seed=trainer.seed)
    if args.init_from:
        scheduler.actor.load_state_dict(load_state_dict(Path(args.init_from)))
    out_dir.mkdir(parents=True, exist_ok=True)
    ppo = PPOTrainer(scheduler, make_env, trainer, mean_time_limit, out_dir)
    if args.resume:
        ppo.restore_latest()
        print(f"resuming after iteration {ppo.iteration}")

    def report(iteration, avg_num_jobs, learning):
        print(f"iteration {iteration}/{trainer.num_iterations}: average concurrent jobs {avg_num_jobs:.3f}, "
              f"policy loss {learning['policy_loss']:.4f}, entropy {learning['entropy']:.4f}", flush=True)

    ppo.train(report)
    print(f"done; models in {out_dir / 'checkpoints'}, log in {out_dir / 'train_log.csv'}")


if __name__ == "__main__":
    main()
