"""Inference precision of an adapted policy: decision agreement with float32, QoE and speed of each.

    python benchmarks/benchmark_precision.py --model-dir artifacts/fcc_smollm2/run [--trace fcc-test]

Agreement: float32 streams the traces; on every request each other precision decides over the same context
(the episode as float32 streamed it; its own answer is then overruled by float32's), and the share of equal
decisions is reported. Then every precision streams the traces alone: mean QoE and the time per decision of
a batch of --num-clients clients, against float32 measured in the same run.
"""
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from abr_sim.datasets import load_trace_set, load_video, resolve_data_root  # noqa: E402
from abr_sim.evaluation import run_episodes, summarize  # noqa: E402
from abr_sim.policy import Policy  # noqa: E402
from abr_sim.simulator import episode_schedule  # noqa: E402
from common import settings as cli  # noqa: E402
from common.errors import exit_on_input_error  # noqa: E402
from common.settings import setting  # noqa: E402
from plm_special.backbones import DEFAULT_PLM_DIR  # noqa: E402
from plm_special.checkpoint import policy_folder  # noqa: E402
from plm_special.inference import PRECISIONS, load_for_inference  # noqa: E402
from plm_special.llm_policy import LLMPolicy  # noqa: E402
from plm_special.placement import Placement  # noqa: E402


@dataclass
class Settings:
    model_dir: str | None = setting(None, "the adapted LLM policy (a run folder uses its best_model/)", required=True)
    precisions: list[str] = setting(PRECISIONS, "precisions to compare with float32", choices=PRECISIONS)
    trace: str = setting("fcc-test", "trace set")
    video: str = setting("video1", "video")
    num_clients: int = setting(32, "clients decided side by side", minimum=1)
    plm_dir: str = setting(str(DEFAULT_PLM_DIR), "where the <plm-type>/<plm-size>/ folders live")
    data_dir: str | None = setting(None, "data root (default: $TRAILBLAZER_DATA, else the repository's data/)")


class Shadowed(Policy):
    """float32 decides; every shadow decides the same request over the same context and is overruled."""

    def __init__(self, reference: LLMPolicy, shadows: dict):
        self.reference, self.shadows, self.name = reference, shadows, "float32"
        self.agreed = dict.fromkeys(shadows, 0)
        self.requests = 0

    def reset(self, client=0):
        self.reference.reset(client)
        for shadow in self.shadows.values():
            shadow.reset(client)

    def act_batch(self, observations, clients):
        taken = self.reference.act_batch(observations, clients)
        for name, shadow in self.shadows.items():
            for observation, client, own, action in zip(observations, clients, shadow.act_batch(observations, clients),
                                                        taken):
                self.agreed[name] += own == action and not observation.done
                shadow.overrule(client, action)
        self.requests += sum(not o.done for o in observations)
        return taken


class Timed(Policy):
    def __init__(self, policy):
        self.policy, self.name, self.seconds, self.decisions = policy, policy.name, 0.0, 0

    def reset(self, client=0):
        self.policy.reset(client)

    def act_batch(self, observations, clients):
        started = time.perf_counter()
        actions = self.policy.act_batch(observations, clients)
        self.seconds += time.perf_counter() - started
        self.decisions += len(observations)
        return actions


@exit_on_input_error
def main(argv=None):
    s, _ = cli.parse(Settings, argv, __doc__)
    data_root = resolve_data_root(s.data_dir)
    trace_set, video = load_trace_set(data_root, s.trace), load_video(data_root, s.video)
    schedule = episode_schedule(trace_set, True, len(trace_set.traces))
    policies = {}
    for precision in ["float32", *[p for p in s.precisions if p != "float32"]]:
        model, saved, scaling = load_for_inference(policy_folder(s.model_dir), Path(s.plm_dir), precision,
                                                   Placement(torch.device("cpu")))
        policies[precision] = lambda m=model, sc=scaling, sv=saved: LLMPolicy(m, sc, sv["target_return_scale"],
                                                                              sv["sample"], 0)
    shadowed = Shadowed(policies["float32"](), {p: make() for p, make in policies.items() if p != "float32"})
    run_episodes(shadowed, trace_set, video, schedule, None, s.num_clients, progress=False)
    rows = []
    for precision, make in policies.items():
        timed = Timed(make())
        summary = summarize(run_episodes(timed, trace_set, video, schedule, None, s.num_clients, progress=False))
        agreement = 1.0 if precision == "float32" else shadowed.agreed[precision] / shadowed.requests
        rows.append((precision, agreement, summary["mean_qoe"], timed.seconds / timed.decisions * 1000.0))
    reference_ms = rows[0][3]
    print(f"{s.trace} ({len(schedule)} traces), batches of {s.num_clients}, {torch.get_num_threads()} threads")
    print(f"{'precision':10s} {'agreement':>10s} {'mean QoE':>9s} {'ms/decision':>12s} {'speed-up':>9s}")
    for precision, agreement, qoe, ms in rows:
        print(f"{precision:10s} {agreement:10.4f} {qoe:9.4f} {ms:12.3f} {reference_ms / ms:8.2f}x")


if __name__ == "__main__":
    main()
