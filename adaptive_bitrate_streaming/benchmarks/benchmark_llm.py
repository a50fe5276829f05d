"""Speed of the LLM policy on SmolLM2-135M, each against its reference measured in the same run.

    python benchmarks/benchmark_llm.py [--which-layer -1] [--w 20]

1. Decision latency (LoRA folded into the weights, as run_plm.py --test): one client streams whole episodes; each decision either feeds only its 8 new tokens
   (keys and values of earlier tokens come from the cache) or recomputes the whole context. Same actions.
   Then --clients clients stream side by side, decided in one cached batch per chunk (act_batch, what the
   APC scheduler uses): time per client decision.
2. Training throughput (episodes per second): --batch-size 16 against batch 1 with 16 accumulation steps,
   i.e. the same effective batch of 16 episodes per optimizer step.
The weights of the non-backbone modules are random: speed does not depend on them. Needs
downloaded_plms/smollm2/135m (python ../prepare_plm.py smollm2; with --random-weights its config.json alone)
and a data root with fcc-test and video1 (or pass --trace/--video of synthetic data). --device cuda times
the GPU (gpu_check.sh); --dtype bfloat16 decides in bfloat16 and trains under bfloat16 autocast.
"""
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from abr_sim.datasets import load_trace_set, load_video, resolve_data_root  # noqa: E402
from abr_sim.evaluation import run_episodes  # noqa: E402
from abr_sim.simulator import episode_schedule  # noqa: E402
from common import settings as cli  # noqa: E402
from common.settings import setting  # noqa: E402
from plm_special.backbones import DEFAULT_PLM_DIR, load_backbone  # noqa: E402
from plm_special.llm_policy import LLMPolicy  # noqa: E402
from plm_special.placement import make_placement  # noqa: E402
from plm_special.return_scaling import ReturnScaling  # noqa: E402
from plm_special.rl_policy import OfflineRLPolicy  # noqa: E402


class TimedPolicy(LLMPolicy):
    def act_batch(self, observations, clients):
        start = time.perf_counter()
        actions = super().act_batch(observations, clients)
        self.latencies.append(time.perf_counter() - start)
        return actions


def decision_latency(model, trace_set, video, episodes: int, use_cache: bool, clients: int = 1):
    """Mean time of one act_batch call, and the actions taken."""
    policy = TimedPolicy(model, ReturnScaling(-100.0, 4.3, 1.0, 1000.0, 0.047), use_cache=use_cache)
    policy.latencies = []
    logs = run_episodes(policy, trace_set, video, episode_schedule(trace_set, True, episodes), num_clients=clients,
                        progress=False)
    return statistics.mean(policy.latencies), [row[1] for log in logs for row in log.rows]


def training_throughput(model, batch_size: int, accumulation: int, optimizer_steps: int) -> float:
    torch.manual_seed(0)
    steps = 47
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=1e-5)
    model.train()

    def optimizer_step():
        for _ in range(accumulation):
            batch = {"states": torch.rand(batch_size, steps, 6, 6), "actions": torch.randint(0, 6, (batch_size, steps)),
                     "returns": torch.rand(batch_size, steps), "timesteps": torch.arange(steps).expand(batch_size, -1),
                     "valid": torch.ones(batch_size, steps, dtype=torch.bool)}
            (model.loss(batch) / accumulation).backward()
        torch.nn.utils.clip_grad_norm_(parameters, 0.25)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    optimizer_step()  # warm-up
    synchronize()
    start = time.perf_counter()
    for _ in range(optimizer_steps):
        optimizer_step()
    synchronize()
    return optimizer_steps * batch_size * accumulation / (time.perf_counter() - start)


def synchronize():
    """Wait for the GPU's queued work, so that the clock measures it."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def random_smollm2(plm_dir: Path, into: Path) -> Path:
    """A plm_dir holding SmolLM2-135M's architecture (its config.json) with random weights."""
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.from_pretrained(plm_dir / "smollm2" / "135m")).save_pretrained(into / "smollm2" / "135m")
    return into


@dataclass
class Settings:
    plm_dir: str = setting(str(DEFAULT_PLM_DIR), "where smollm2/135m/ lives")
    which_layer: int = setting(-1, "early exit of the timed decisions; -1 = all 30 blocks")
    rank: int = setting(128, "LoRA rank (folded into the weights before timing, as --test does)")
    w: int = setting(20, "context window in decision steps")
    data_dir: str | None = setting(None, "data root (default: $TRAILBLAZER_DATA, else the repository's data/)")
    trace: str = setting("fcc-test", "trace set of the timed episodes")
    video: str = setting("video1", "video of the timed episodes")
    episodes: int = setting(2, "episodes timed")
    clients: int = setting(16, "clients decided in one batch")
    optimizer_steps: int = setting(2, "optimizer steps timed in the training benchmark")
    train_which_layer: int = setting(5, "early exit for the training benchmark")
    device: str | None = setting(None, "cpu or cuda:N (default: cuda:0 if available, else cpu)")
    dtype: str = setting("float32", "float32, or bfloat16: decisions in bfloat16, training under bfloat16 autocast",
                         choices=["float32", "bfloat16"])
    random_weights: bool = setting(False, "SmolLM2-135M's architecture from its config.json with random weights "
                                          "(for a machine without the converted weights; speed does not depend on them)")


def main():
    args, _ = cli.parse(Settings, None, __doc__)
    root = resolve_data_root(args.data_dir)
    trace_set, video = load_trace_set(root, args.trace), load_video(root, args.video)
    placement = make_placement(args.device)
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    plm_dir = Path(args.plm_dir)
    scratch = tempfile.TemporaryDirectory(prefix="random_smollm2_")  # removed at exit
    if args.random_weights:
        plm_dir = random_smollm2(plm_dir, Path(scratch.name))
    gpu = torch.cuda.get_device_name(placement.device) if placement.device.type == "cuda" else "no GPU"
    print(f"device {placement.device} ({gpu}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{args.dtype}{', random weights' if args.random_weights else ''}")

    torch.manual_seed(0)
    backbone = load_backbone(plm_dir, "smollm2", "135m", args.which_layer, args.rank, dtype=dtype, placement=placement)
    backbone.merge_lora()  # as run_plm.py --test
    model = OfflineRLPolicy(backbone, 256, args.w, 47).to(placement.device).eval()
    cached, cached_actions = decision_latency(model, trace_set, video, args.episodes, use_cache=True)
    full, full_actions = decision_latency(model, trace_set, video, args.episodes, use_cache=False)
    print(f"decision latency, SmolLM2-135M ({backbone.num_layers} blocks), w={args.w}: cached {cached * 1000:.1f} ms, "
          f"full recomputation {full * 1000:.1f} ms, speed-up {full / cached:.1f}x "
          f"(same actions: {cached_actions == full_actions})")
    batched, _ = decision_latency(model, trace_set, video, args.clients, use_cache=True, clients=args.clients)
    print(f"{args.clients} clients in one cached batch: {batched * 1000:.1f} ms per batch, "
          f"{batched / args.clients * 1000:.1f} ms per client decision "
          f"({cached / (batched / args.clients):.1f}x one client at a time)")

    backbone = load_backbone(plm_dir, "smollm2", "135m", args.train_which_layer, args.rank, dtype=dtype,
                             placement=placement, mixed_precision=True)
    model = OfflineRLPolicy(backbone, 256, args.w, 47).to(placement.device)
    batched = training_throughput(model, 16, 1, args.optimizer_steps)
    single = training_throughput(model, 1, 16, args.optimizer_steps)
    print(f"training, SmolLM2-135M ({backbone.num_layers} blocks), 16 episodes per optimizer step: "
          f"batch 16 {batched:.2f} episodes/s, batch 1 x 16 accumulation {single:.2f} episodes/s, "
          f"speed-up {batched / single:.1f}x")


if __name__ == "__main__":
    main()
