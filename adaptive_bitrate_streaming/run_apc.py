"""Adaptive policy collaboration (APC): control quality against the share of requests sent to the LLM.

    python run_apc.py --model-dir artifacts/fcc_smollm2/run --fast-policy hold \\
        --calibration-trace fcc-valid --trace fcc-test --video video1

For every router (`network`: the difficulty score of plm_special/apc.py above a threshold; `learned`: the
probability that the LLM decides otherwise than the fast policy, fitted on --calibration-trace
(plm_special/learned_router.py), above a threshold; `random`: the same share uniformly) and every share p
of --shares, the adapted LLM and the fast policy stream the test traces together. The thresholds for p are
calibrated on --calibration-trace, never on the test set: first so that about a share p of the requests
of the LLM alone there score above them, then
(--calibration-rounds times) from the requests of the collaboration itself at the previous threshold; the
share actually realised on the test set is reported. Share 0 is the fast policy alone, share 1 the
LLM alone. Writes curve.csv and curve.png into --results-dir and prints the table.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from abr_sim.datasets import load_trace_set, load_video, resolve_data_root
from abr_sim.evaluation import summarize
from abr_sim.results import check_results_dir
from baselines import BASELINES, make_baseline
from common import settings as cli
from common.errors import InputError, exit_on_input_error
from common.settings import setting
from plm_special.apc import (ROUTERS, CollaborativePolicy, NetworkRouter, RandomRouter, calibrate_on_collaboration,
                              difficulty_scores, network_difficulty)
from plm_special.backbones import DEFAULT_PLM_DIR
from plm_special.checkpoint import policy_folder
from plm_special.inference import load_for_inference
from plm_special.learned_router import LearnedRouter, fit_disagreement_model
from plm_special.llm_policy import LLMPolicy
from plm_special.placement import make_placement
from plm_special.routing import write_curve
from run_plm import evaluate, trace_count


@dataclass
class Settings:
    model_dir: str | None = setting(None, "the adapted LLM policy (a run folder uses its best_model/)", required=True)
    fast_policy: str = setting("hold", "the fast policy that answers the easy requests (hold: the best partner "
                                       "measured, README)",
                               choices=BASELINES)
    routers: list[str] = setting(ROUTERS, "routers to compare", choices=ROUTERS)
    shares: list[float] = setting([0.0, 0.1, 0.2, 0.5, 0.8, 1.0], "target shares of requests sent to the LLM")
    calibration_trace: str = setting("fcc-valid", "trace set the network router's thresholds are calibrated on")
    calibration_rounds: int = setting(2, "rounds of recalibration on the collaboration itself (0: on the LLM "
                                         "alone only)", minimum=0)
    trace: str = setting("fcc-test", "test trace set")
    video: str = setting("video1", "video")
    trace_num: int = setting(-1, "test traces; -1 = all (then in fixed order, no delay noise)")
    seed: int = setting(100003, "seeds the delay noise, the random router, and the Pensieve family's sampling")
    num_clients: int = setting(32, "streaming clients decided side by side in one batch", minimum=1)
    plm_dir: str = setting(str(DEFAULT_PLM_DIR), "where the <plm-type>/<plm-size>/ folders live")
    device: str | None = setting(None, "e.g. cpu or cuda:0 (default: cuda:0 if available, else cpu)")
    data_dir: str | None = setting(None, "data root (default: $TRAILBLAZER_DATA, else the repository's data/)")
    results_dir: str | None = setting(None, "where curve.csv and curve.png go (default: artifacts/apc/...)")
    overwrite: bool = setting(False, "replace an existing results folder")
    quiet: bool = setting(False, "no progress bars")


def quality_curve(s: Settings, data_root: Path, model, scaling, saved: dict) -> pd.DataFrame:
    video = load_video(data_root, s.video)
    test_set, calibration_set = load_trace_set(data_root, s.trace), load_trace_set(data_root, s.calibration_trace)
    trace_num = trace_count(s.trace_num, len(test_set.traces), "trace_num")

    def fast_policy():
        return make_baseline(s.fast_policy, video, data_root, np.random.RandomState(s.seed))

    def llm_policy():
        return LLMPolicy(model, scaling, saved["target_return_scale"], saved["sample"], s.seed)

    def calibrated(make_router, score, scores, share):
        """make_router(threshold), its threshold calibrated for `share` on the calibration set."""
        threshold = calibrate_on_collaboration(
            scores, share, lambda t: CollaborativePolicy(llm_policy(), fast_policy(), make_router(t)),
            calibration_set, video, s.num_clients, s.calibration_rounds, score)
        return make_router(threshold)

    network_scores = difficulty_scores(llm_policy(), calibration_set, video, s.num_clients)
    if "learned" in s.routers:
        disagreement_model, learned_scores, disagreement = fit_disagreement_model(llm_policy(), fast_policy(), calibration_set,
                                                                     video, s.num_clients, s.seed)
        print(f"learned router: the LLM and {s.fast_policy} disagree on {disagreement:.3f} of the requests of "
              f"{s.calibration_trace}", flush=True)
    rows = []
    for router_name in s.routers:
        for share in s.shares:
            if router_name == "network":
                router = calibrated(NetworkRouter, network_difficulty, network_scores, share)
            elif router_name == "learned":
                router = calibrated(lambda t: LearnedRouter(disagreement_model, t), disagreement_model,
                                    learned_scores, share)
            else:
                router = RandomRouter(share, s.seed)
            policy = CollaborativePolicy(llm_policy(), fast_policy(), router)
            summary = summarize(evaluate(policy, test_set, video, trace_num, False, s.seed, s.num_clients,
                                         quiet=s.quiet))
            rows.append({"router": router_name, "target_share": share, "llm_share": policy.llm_share,
                         "mean_qoe": summary["mean_qoe"], "bitrate_mbps": summary["mean_bitrate_mbps"],
                         "rebuffer_s": summary["rebuffer_s"], "smoothness_mbps": summary["smoothness_mbps"]})
            print(f"{router_name} router, target share {share:.2f}: LLM decided {policy.llm_share:.3f} of "
                  f"{policy.requests} requests, mean QoE {summary['mean_qoe']:.4f}")
    return pd.DataFrame(rows)



@exit_on_input_error
def main(argv=None):
    s, _ = cli.parse(Settings, argv, __doc__)
    if any(not 0 <= share <= 1 for share in s.shares):
        raise InputError(f"shares must lie in [0, 1], got {s.shares}", "shares")
    policy_dir = policy_folder(s.model_dir)
    output = Path(s.results_dir) if s.results_dir else (
        Path("artifacts") / "apc" / f"{s.trace}_{s.video}" / f"{policy_dir.resolve().parent.name}_{s.fast_policy}")
    check_results_dir(output, s.overwrite)
    torch.manual_seed(s.seed)
    model, saved, scaling = load_for_inference(policy_dir, Path(s.plm_dir), "float32", make_placement(s.device))
    curve = quality_curve(s, resolve_data_root(s.data_dir), model, scaling, saved)
    write_curve(curve, output, "mean_qoe", f"mean QoE ({s.trace})", s.fast_policy)
    print(curve.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print(f"written to {output}/curve.csv and curve.png")
    return curve


if __name__ == "__main__":
    main()
