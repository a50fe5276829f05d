"""Adapt a pretrained LLM into a cluster scheduler on an experience pool (--train), and test it (--test).

    python run_plm.py --train --test --plm-type smollm2 --plm-size 135m --peft-rank 32 --which-layer 5 \\
        --exp-pool-path POOL --K 20 --num-iters 4 --num-steps-per-iter 500
    python run_plm.py --test --model-dir artifacts/ft_plms/.../best_model --seed 1 --num-seeds 5

--train keeps the policy with the lowest average JCT on the validation seeds (--valid-seeds, which must
differ from the test seeds) and writes a resumable checkpoint every iteration (--resume). --test plays one
episode per test seed and writes summary.json and jobs.csv like run_baseline.py.
"""
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common import settings as cli
from common.errors import InputError, exit_on_input_error
from common.settings import setting
from plm_special.checkpoint import load_policy, policy_folder, read_settings
from plm_special.footprint import describe
from plm_special.inference import load_for_inference
from plm_special.dataset import WindowBatches, WindowDataset
from plm_special.experience import load_pool
from plm_special.llm_scheduler import LLMScheduler
from plm_special.placement import Placement, place_policy
from plm_special.rl_policy import ENCODER_SLOPE, OfflineRLPolicy
from plm_special.settings import LLMSettings
from plm_special.trainer import TrainConfig, Trainer, Validation
from schedulers import load_config
from schedulers.decima_actor import pretrained_encoder
from spark_sched_sim.datasets import resolve_data_root
from spark_sched_sim.env_settings import EnvSettings, make_env_factory
from spark_sched_sim.evaluation import run_episodes
from spark_sched_sim.metrics import mean_average_jct_s
from spark_sched_sim.results import check_results_dir, write_results


@dataclass
class Settings(LLMSettings, EnvSettings):
    train: bool = setting(False, "network alignment: adapt the LLM on the experience pool (offline RL)")
    test: bool = setting(False, "schedule the test episodes with the adapted policy (after --train: its best one)")
    state_feature_dim: int = setting(64, "embedding size of the graph state encoder", kind="policy", minimum=1)
    pt_encoder_config: str | None = setting(None, "start the graph state encoder from trained Decima's (a Decima "
                                                  "config such as config/decima_tpch.yaml: its encoder sizes "
                                                  "replace --state-feature-dim, its weights load)", kind="policy")
    K: int = setting(20, "context window: tokens see the last K decision steps", kind="policy", minimum=1)
    model_dir: str | None = setting(None, "--train: where the run is saved (default artifacts/ft_plms/...); "
                                          "--test: a saved policy (a run folder uses its best_model/)")
    num_iters: int = setting(10, "training iterations", kind="training", minimum=1)
    num_steps_per_iter: int = setting(1000, "windows of K decisions drawn from the pool per iteration",
                                      kind="training", minimum=1)
    batch_size: int = setting(8, "windows per forward pass", kind="training", minimum=1)
    eval_per_iter: int = setting(1, "validate (model selection) every this many iterations", kind="training",
                                 minimum=1)
    sample_step: int | None = setting(None, "windows start every this many decisions (default: K)", kind="training",
                                      minimum=1)
    valid_seeds: list[int] = setting([1001, 1002], "episodes for model selection (never the test seeds)",
                                     kind="training")
    seed: int = setting(1, "first test seed; also seeds torch, NumPy and Python and the window draws")
    num_seeds: int = setting(1, "test episodes with seeds --seed, --seed + 1, ...", minimum=1)
    mode: str | None = setting(None, "inference context (default: cache for rotary backbones, window otherwise)",
                               choices=["cache", "window", "full"], kind="training")
    temperature: float = setting(1.0, "with --sample: the stage scores are divided by this before the softmax (below "
                                      "1: closer to the most likely stage; 0: the most likely)", kind="training",
                                 minimum=0)
    exec_temperature: float | None = setting(None, "with --sample: the same for the number of executors (default: "
                                                   "--temperature)", kind="training", minimum=0)


def train(s: Settings, given: dict, placement: Placement) -> tuple[Path, Settings]:
    """Train (or continue) a run; returns its best policy folder and the run's settings."""
    model_dir = Path(s.model_dir) if s.model_dir else (
        Path("artifacts") / "ft_plms" / f"{s.plm_type}_{s.plm_size}" / Path(s.exp_pool_path).name
        / f"early_stop_{s.which_layer}_rank_{s.rank}_K_{s.K}_seed_{s.seed}") if s.exp_pool_path else None
    if model_dir is None:
        raise InputError("--train needs --exp-pool-path (make a pool with generate_exp_pool.py)")
    checkpoint = model_dir / "checkpoint"
    if s.resume:
        if not (checkpoint / "training_state.json").is_file():
            raise InputError(f"--resume: {model_dir} has no checkpoint to continue from")
        s = cli.from_saved(s, read_settings(checkpoint), given, ("policy", "environment", "training"), checkpoint)
    elif checkpoint.exists() or (model_dir / "best_model").exists():
        raise InputError(f"{model_dir} already holds a training run; pass --resume to continue it "
                         "or --model-dir to start another")
    load_options = {"dtype": s.training_dtype(), "placement": placement, "mixed_precision": True}
    data_root = resolve_data_root(s.data_dir)
    make_env = make_env_factory(s, data_root)
    test_seeds = set(range(s.seed, s.seed + s.num_seeds))
    if test_seeds & set(s.valid_seeds):
        raise InputError(f"--valid-seeds {s.valid_seeds} overlap the test seeds {sorted(test_seeds)}; "
                         "model selection must not see the test episodes")
    pool = load_pool(Path(s.exp_pool_path))
    if pool.metadata.get("num_executors") != s.num_executors:
        raise InputError(f"the pool was collected with {pool.metadata.get('num_executors')} executors, not "
                         f"--num-executors {s.num_executors}")
    dataset = WindowDataset(pool, s.K, s.sample_step or s.K, s.gamma, s.scale, s.return_unit,
                            s.reward_floor_quantile)
    settings = {**cli.to_dict(s), "max_timestep": dataset.max_timestep,
                "return_scaling": dataset.scaling.to_dict(), "pool_metadata": pool.metadata}
    encoder_weights = None
    if s.pt_encoder_config:
        encoder_settings, encoder_weights = pretrained_encoder(load_config(Path(s.pt_encoder_config)).agent,
                                                               s.pt_encoder_config, data_root, ENCODER_SLOPE)
        settings.update(encoder_settings)
    if s.resume:
        model, saved, _ = load_policy(checkpoint, Path(s.plm_dir), **load_options)
        settings["max_timestep"] = saved["max_timestep"]
    else:
        model = OfflineRLPolicy.from_settings(settings, Path(s.plm_dir), **load_options)
        if encoder_weights is not None:
            try:
                model.encoder.load_state_dict(encoder_weights)
            except RuntimeError as error:
                raise InputError(f"{settings['pt_encoder']} does not match the encoder of {s.pt_encoder_config} "
                                 f"({str(error).splitlines()[1].strip()})") from None
    settings["hidden_size"] = model.backbone.hidden_size
    if s.freeze_encoder:
        model.encoder.requires_grad_(False)
    place_policy(model, placement)
    tokens_per_step = pool.arrays["stage_mask"].sum() / len(pool) + 3  # R, the stages, exec, a
    print(f"{placement.describe()}\n{describe(model, round(s.K * tokens_per_step), s.batch_size)}")

    def validate(model) -> float:
        scheduler = LLMScheduler(model, dataset.scaling, s.target_return_scale, s.sample, s.seed, s.mode,
                                 temperature=s.temperature, exec_temperature=s.exec_temperature)
        return mean_average_jct_s(run_episodes(make_env, scheduler, s.valid_seeds, progress=False))

    config = TrainConfig(s.num_iters, "iteration", s.grad_accum_steps, s.lr, s.weight_decay, s.warmup_steps,
                         s.eval_per_iter, s.seed, s.lr_schedule, s.average_decay)
    trainer = Trainer(model, WindowBatches(dataset, s.num_steps_per_iter, s.batch_size), config, settings,
                      model_dir, Validation(validate, "average JCT (s)", "valid_avg_jct_s", higher_is_better=False))
    if s.resume:
        trainer.restore(checkpoint)
    best = trainer.fit()
    print(f"best validation average JCT {best:.3f} s on seeds {s.valid_seeds}; "
          f"policy saved in {model_dir / 'best_model'}")
    return model_dir / "best_model", s


def test(s: Settings, given: dict, policy_dir: Path, placement: Placement) -> dict:
    policy_dir = policy_folder(policy_dir)
    saved = read_settings(policy_dir)
    s = cli.from_saved(s, saved, given, ("policy", "environment"), policy_dir, changeable=("environment",))
    make_env = make_env_factory(s, resolve_data_root(s.data_dir))
    seeds = list(range(s.seed, s.seed + s.num_seeds))
    results_dir = Path(s.results_dir) if s.results_dir else (
        Path("artifacts") / "results" / s.dataset / s.env_folder_name() / f"trailblazer_{s.plm_type}_{s.plm_size}"
        / policy_dir.resolve().parent.name / f"seeds_{seeds[0]}-{seeds[-1]}")
    check_results_dir(results_dir, s.overwrite)
    model, saved, scaling = load_for_inference(policy_dir, Path(s.plm_dir), s.dtype, placement)
    scheduler = LLMScheduler(model, scaling, s.target_return_scale, s.sample, s.seed, s.mode,
                             s.num_executors, s.temperature, s.exec_temperature)
    per_seed = run_episodes(make_env, scheduler, seeds, progress=True)
    run_settings = {k: v for k, v in cli.to_dict(s).items() if k != "overwrite"}
    summary = write_results(results_dir, per_seed, {**run_settings, "policy_dir": str(policy_dir), "policy": saved})
    print(f"trailblazer ({s.plm_type}/{s.plm_size}) on {s.dataset} ({s.num_executors} executors, "
          f"{s.job_arrival_cap} jobs, {len(seeds)} seed{'s' * (len(seeds) > 1)}): average JCT "
          f"{summary['avg_jct_s']:.3f} s -> {results_dir}")
    return summary


@exit_on_input_error
def main(argv=None):
    s, given = cli.parse(Settings, argv, __doc__)
    if not (s.train or s.test):
        raise InputError("nothing to do: pass --train, --test or both")
    if s.test and not s.train and not s.model_dir:
        raise InputError("--test alone needs --model-dir (a policy saved by --train)")
    placement = s.placement()
    random.seed(s.seed)
    np.random.seed(s.seed)
    torch.manual_seed(s.seed)
    policy_dir = Path(s.model_dir) if s.model_dir else None
    if s.train:
        policy_dir, s = train(s, given, placement)
    if s.test:
        return test(s, given, policy_dir, placement)


if __name__ == "__main__":
    main()
