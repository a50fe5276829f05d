"""Speed of the LLM scheduler on SmolLM2-135M, default TPC-H setting (50 executors, 200 jobs, seed 666).

    python benchmarks/benchmark_llm.py [--which-layer 5] [--decisions 300]

1. Decision latency over the first --decisions decisions, in the same run: feeding only the new tokens
   with the evicting cache (the default for rotary backbones); recomputing the whole episode so far under
   the band mask ("full", which the cache equals: same decisions, also checked in tests/test_plm.py); and
   recomputing only the K-step context with positions from 0 ("window", what absolute-position backbones do).
2. Wall time of one whole default episode with the cache.
The non-backbone weights are random: speed does not depend on them. Needs downloaded_plms/smollm2/135m
(python ../prepare_plm.py smollm2) and the TPC-H data.
"""
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import settings as cli  # noqa: E402
from common.settings import setting  # noqa: E402
from plm_special.backbones import DEFAULT_PLM_DIR, load_backbone  # noqa: E402
from plm_special.llm_scheduler import LLMScheduler  # noqa: E402
from plm_special.return_scaling import ReturnScaling  # noqa: E402
from plm_special.rl_policy import OfflineRLPolicy  # noqa: E402
from spark_sched_sim.datasets import load_dataset, resolve_data_root  # noqa: E402
from spark_sched_sim.env import SparkSchedSimEnv  # noqa: E402


def play(templates, scheduler, decisions=None):
    env = SparkSchedSimEnv(templates)
    scheduler.reset()
    observation, _ = env.reset(seed=666)
    start, count, done, actions = time.perf_counter(), 0, False, []
    while not done and (decisions is None or count < decisions):
        action = scheduler.act(observation)
        actions.append((action["stage_idx"], action["num_exec"]))
        observation, reward, done, _, _ = env.step(action)
        scheduler.observe(reward)
        count += 1
    return time.perf_counter() - start, count, actions


@dataclass
class Settings:
    plm_dir: str = setting(str(DEFAULT_PLM_DIR), "where smollm2/135m/ lives")
    which_layer: int = setting(5, "early exit of the timed scheduler")
    K: int = setting(20, "context window in decision steps")
    decisions: int = setting(300, "decisions timed per context mode")
    data_dir: str | None = setting(None, "data root (default: $TRAILBLAZER_DATA, else the repository's data/)")


def main():
    args, _ = cli.parse(Settings, None, __doc__)
    templates = load_dataset(resolve_data_root(args.data_dir), "tpch")
    torch.manual_seed(0)
    backbone = load_backbone(Path(args.plm_dir), "smollm2", "135m", args.which_layer, 64)
    backbone.merge_lora()  # as run_plm.py --test
    model = OfflineRLPolicy(backbone, 64, 50, 6000, args.K).eval()
    scaling = ReturnScaling(-2e5, 0.0, 1.0, 1000.0, 5.0)
    print(f"torch threads: {torch.get_num_threads()}; SmolLM2-135M with {backbone.num_layers} blocks, K={args.K}")

    cached, count, cached_actions = play(templates, LLMScheduler(model, scaling, mode="cache"), args.decisions)
    full, _, full_actions = play(templates, LLMScheduler(model, scaling, mode="full"), args.decisions)
    window, _, _ = play(templates, LLMScheduler(model, scaling, mode="window"), args.decisions)
    print(f"decision latency over the first {count} decisions: cache {cached / count * 1000:.1f} ms; "
          f"full recomputation {full / count * 1000:.1f} ms (x{full / cached:.1f}, same actions: "
          f"{cached_actions == full_actions}); {args.K}-step window recomputation {window / count * 1000:.1f} ms "
          f"(x{window / cached:.1f})")
    seconds, decisions, _ = play(templates, LLMScheduler(model, scaling, mode="cache"))
    print(f"one default episode with the cache: {seconds:.0f} s, {decisions} decisions "
          f"({decisions / seconds:.1f} decisions/s)")


if __name__ == "__main__":
    main()
