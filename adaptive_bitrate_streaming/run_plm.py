"""Adapt a pretrained LLM into an ABR policy on an experience pool (--adapt), and test it (--test).

    python run_plm.py --adapt --test --plm-type smollm2 --plm-size 135m --exp-pool-path POOL \\
        --valid-trace fcc-valid --trace fcc-test --video video1
    python run_plm.py --test --model-dir artifacts/ft_plms/.../best_model --trace fcc-test

--adapt trains on whole episodes of the pool and keeps the policy with the best mean QoE on the validation
trace set (never the test set); every epoch writes a resumable checkpoint (--resume). --test streams the test
traces with the saved policy and writes the same per-trace files and summary.json as run_baseline.py.
"""
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from abr_sim.constants import TOTAL_VIDEO_CHUNKS
from abr_sim.datasets import load_trace_set, load_video, resolve_data_root
from abr_sim.evaluation import run_episodes, summarize
from abr_sim.results import check_results_dir, write_results
from abr_sim.simulator import episode_schedule
from common import settings as cli
from common.errors import InputError, exit_on_input_error
from common.settings import setting
from plm_special.checkpoint import load_policy, policy_folder, read_settings
from plm_special.dataset import EpisodeBatches, ExperienceDataset
from plm_special.experience import load_pool
from plm_special.llm_policy import LLMPolicy
from plm_special.footprint import describe
from plm_special.inference import load_for_inference
from plm_special.placement import Placement, place_policy
from plm_special.rl_policy import TOKENS_PER_STEP, OfflineRLPolicy
from plm_special.settings import LLMSettings
from plm_special.trainer import TrainConfig, Trainer, Validation


@dataclass
class Settings(LLMSettings):
    adapt: bool = setting(False, "network alignment: adapt the LLM on the experience pool (offline RL)")
    test: bool = setting(False, "stream the test traces with the adapted policy (after --adapt: its best one)")
    state_feature_dim: int = setting(256, "feature size of the state encoder", kind="policy", minimum=1)
    w: int = setting(20, "context window: every token sees the tokens of the last w decision steps",
                     kind="policy", minimum=1)
    model_dir: str | None = setting(None, "--adapt: where the run is saved (default artifacts/ft_plms/...); "
                                          "--test: a saved policy (a run folder uses its best_model/)")
    num_epochs: int = setting(80, "epochs over the pool's episodes", kind="training", minimum=1)
    batch_size: int = setting(16, "episodes per forward pass", kind="training", minimum=1)
    eval_per_epoch: int = setting(1, "validate (model selection) every this many epochs", kind="training",
                                  minimum=1)
    sample_step: int | None = setting(None, "accepted for compatibility: training uses whole episodes, not "
                                            "sampled windows", kind="training")
    valid_trace: str = setting("fcc-valid", "validation trace set (model selection; never the test set)",
                               kind="training")
    valid_trace_num: int = setting(-1, "validation traces; -1 = all", kind="training")
    seed: int = setting(100003, "seeds Python, NumPy and torch, the episode order, the delay noise and sampling",
                        kind="training")
    trace: str = setting("fcc-test", "test trace set")
    video: str = setting("video1", "video (chunk sizes) streamed in validation and test", kind="training")
    trace_num: int = setting(100, "test traces; -1 = all (then in fixed order, no delay noise)")
    fixed_order: bool = setting(False, "traces in name order and no delay noise", kind="training")
    num_clients: int = setting(32, "streaming clients decided side by side in one batch", kind="training",
                               minimum=1)
    data_dir: str | None = setting(None, "data root (default: $TRAILBLAZER_DATA, else the repository's data/)")


def trace_count(requested: int, available: int, setting_name: str) -> int:
    if requested == 0 or requested < -1:
        raise InputError(f"must be -1 (all) or a positive number of traces, got {requested}", setting_name)
    return available if requested == -1 else min(requested, available)


def evaluate(policy, trace_set, video, trace_num, fixed_order, seed, num_clients, quiet=True):
    """Stream `trace_num` traces of the set with the policy; returns the per-trace logs."""
    fixed_order = fixed_order or trace_num == len(trace_set.traces)
    schedule = episode_schedule(trace_set, fixed_order, trace_num)
    noise = None if fixed_order else np.random.RandomState(seed)
    return run_episodes(policy, trace_set, video, schedule, noise, num_clients, progress=not quiet)


def default_model_dir(s: Settings) -> Path:
    pool = Path(s.exp_pool_path).resolve()
    pool_name = pool.stem if pool.suffix == ".pkl" else pool.name
    run = f"early_stop_{s.which_layer}_rank_{s.rank}_w_{s.w}_seed_{s.seed}"
    return Path("artifacts") / "ft_plms" / f"{s.plm_type}_{s.plm_size}" / pool_name / run


def adapt(s: Settings, given: dict, placement: Placement) -> tuple[Path, Settings]:
    """Train (or continue) a run; returns its best policy folder and the run's settings."""
    if not (s.exp_pool_path or s.resume and s.model_dir):
        raise InputError("--adapt needs --exp-pool-path (make a pool with generate_exp_pool.py)")
    model_dir = Path(s.model_dir) if s.model_dir else default_model_dir(s)
    checkpoint = model_dir / "checkpoint"
    if s.resume:
        if not (checkpoint / "training_state.json").is_file():
            raise InputError(f"--resume: {model_dir} has no checkpoint to continue from")
        s = cli.from_saved(s, read_settings(checkpoint), given, ("policy", "training"), checkpoint)
    elif checkpoint.exists() or (model_dir / "best_model").exists():
        raise InputError(f"{model_dir} already holds a training run; pass --resume to continue it "
                         "or --model-dir to start another")
    load_options = {"dtype": s.training_dtype(), "placement": placement, "mixed_precision": True}
    data_root = resolve_data_root(s.data_dir)
    video = load_video(data_root, s.video)
    valid_set = load_trace_set(data_root, s.valid_trace)
    valid_num = trace_count(s.valid_trace_num, len(valid_set.traces), "valid_trace_num")
    pool = load_pool(Path(s.exp_pool_path))
    dataset = ExperienceDataset(pool, s.gamma, s.scale, s.return_unit, s.reward_floor_quantile)
    if s.sample_step is not None:
        print("note: --sample-step is not used; training sees every step of every episode once per epoch")

    settings = {**cli.to_dict(s), "max_timestep": TOTAL_VIDEO_CHUNKS - 1,
                "return_scaling": dataset.scaling.to_dict(), "pool_metadata": pool.metadata}
    model = load_policy(checkpoint, Path(s.plm_dir), **load_options)[0] if s.resume else \
        OfflineRLPolicy.from_settings(settings, Path(s.plm_dir), **load_options)
    settings["hidden_size"] = model.backbone.hidden_size
    if s.freeze_encoder:
        model.state_encoder.requires_grad_(False)
    place_policy(model, placement)
    print(f"{placement.describe()}\n{describe(model, TOKENS_PER_STEP * TOTAL_VIDEO_CHUNKS, s.batch_size)}")

    def validate(model) -> float:
        policy = LLMPolicy(model, dataset.scaling, s.target_return_scale, s.sample, s.seed)
        logs = evaluate(policy, valid_set, video, valid_num, s.fixed_order, s.seed, s.num_clients)
        return summarize(logs)["mean_qoe"]

    config = TrainConfig(s.num_epochs, "epoch", s.grad_accum_steps, s.lr, s.weight_decay, s.warmup_steps,
                         s.eval_per_epoch, s.seed, s.lr_schedule, s.average_decay)
    trainer = Trainer(model, EpisodeBatches(dataset, s.batch_size), config, settings, model_dir,
                      Validation(validate, "mean QoE", "valid_mean_qoe", higher_is_better=True))
    if s.resume:
        trainer.restore(checkpoint)
    best = trainer.fit()
    print(f"best validation mean QoE {best:.6f} on {s.valid_trace}; policy saved in {model_dir / 'best_model'}")
    return model_dir / "best_model", s


def test(s: Settings, given: dict, policy_dir: Path, placement: Placement) -> dict:
    policy_dir = policy_folder(policy_dir)
    saved = read_settings(policy_dir)
    s = cli.from_saved(s, saved, given, ("policy",), policy_dir)
    data_root = resolve_data_root(s.data_dir)
    video = load_video(data_root, s.video)
    test_set = load_trace_set(data_root, s.trace)
    trace_num = trace_count(s.trace_num, len(test_set.traces), "trace_num")
    fixed_order = s.fixed_order or trace_num == len(test_set.traces)
    results_dir = Path(s.results_dir) if s.results_dir else (
        Path("artifacts") / "results" / f"{s.trace}_{s.video}" / f"trace_num_{trace_num}_fixed_{fixed_order}"
        / f"{s.plm_type}_{s.plm_size}" / policy_dir.resolve().parent.name / f"seed_{s.seed}")
    check_results_dir(results_dir, s.overwrite)

    model, saved, scaling = load_for_inference(policy_dir, Path(s.plm_dir), s.dtype, placement)
    policy = LLMPolicy(model, scaling, s.target_return_scale, s.sample, s.seed)
    logs = evaluate(policy, test_set, video, trace_num, fixed_order, s.seed, s.num_clients, quiet=False)
    summary = summarize(logs)
    summary["settings"] = {**cli.to_dict(s), "trace_num": trace_num, "fixed_order": fixed_order,
                           "policy_dir": str(policy_dir), "policy": saved}
    write_results(results_dir, logs, summary, s.overwrite)
    print(f"trailblazer ({s.plm_type}/{s.plm_size}) on {s.trace}/{s.video} "
          f"({summary['num_traces']} traces): mean QoE {summary['mean_qoe']:.6f} "
          f"(all chunks {summary['mean_qoe_all_chunks']:.6f}), bitrate {summary['mean_bitrate_mbps']:.3f} Mbps, "
          f"rebuffer {summary['rebuffer_s']:.4f} s, smoothness {summary['smoothness_mbps']:.4f} Mbps -> {results_dir}")
    return summary


@exit_on_input_error
def main(argv=None):
    s, given = cli.parse(Settings, argv, __doc__)
    if not (s.adapt or s.test):
        raise InputError("nothing to do: pass --adapt, --test or both")
    if s.test and not s.adapt and not s.model_dir:
        raise InputError("--test alone needs --model-dir (a policy saved by --adapt)")
    placement = s.placement()
    random.seed(s.seed)
    np.random.seed(s.seed)
    torch.manual_seed(s.seed)

    policy_dir = Path(s.model_dir) if s.model_dir else None
    if s.adapt:
        policy_dir, s = adapt(s, given, placement)
    if s.test:
        return test(s, given, policy_dir, placement)


if __name__ == "__main__":
    main()
