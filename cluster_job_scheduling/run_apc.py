"""Adaptive policy collaboration (APC): average JCT against the share of scheduling requests sent to the LLM.

    python run_apc.py --model-dir artifacts/tpch_smollm2/run --fast-scheduler fair --seed 1 --num-seeds 5

For every router (`cluster`: the difficulty score of plm_special/apc.py above a threshold; `random`: the
same share uniformly; `learned`: plm_special/learned_router.py, where the LLM would choose another stage than
the fast scheduler) and every share p of --shares, the adapted LLM scheduler and the fast scheduler play
the test seeds together. The thresholds for p are calibrated on --calibration-seeds (the LLM scheduler plays
them alone, the fast scheduler deciding the same requests beside it; about a share p of its requests score
above the threshold; the learned router is fitted there), which must not overlap the test seeds; the share
actually realised is reported. Share 0 is the fast scheduler alone, share 1 the LLM alone (the router makes
no difference there: each is played once and shown for every router). The cluster (--num-executors) is the
policy's own. Writes curve.csv and curve.png into --results-dir and prints the table.

A curve on the real data takes hours, so every finished point (and the calibration) is kept in
<results-dir>.partial/ as it finishes; a rerun with the same settings continues from there, other settings
are refused (--overwrite starts afresh). The folder goes once the curve is written.
"""
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from common import settings as cli
from common.errors import InputError, exit_on_input_error
from common.files import atomic_write_text
from common.settings import setting
from plm_special.apc import ROUTERS, ClusterRouter, CollaborativeScheduler, RandomRouter
from plm_special.backbones import DEFAULT_PLM_DIR
from plm_special.checkpoint import policy_folder, read_settings
from plm_special.inference import load_for_inference
from plm_special.learned_router import DisagreementRecorder, LearnedRouter, fit_disagreement_model
from plm_special.llm_scheduler import LLMScheduler
from plm_special.placement import make_placement
from plm_special.routing import calibrate_threshold, write_curve
from schedulers import make_scheduler
from spark_sched_sim.datasets import resolve_data_root
from spark_sched_sim.env_settings import EnvSettings, make_env_factory
from spark_sched_sim.evaluation import run_episodes
from spark_sched_sim.metrics import mean_average_jct_s
from spark_sched_sim.results import check_results_dir


@dataclass
class Settings(EnvSettings):
    model_dir: str | None = setting(None, "the adapted LLM scheduler (a run folder uses its best_model/)",
                                    required=True)
    fast_scheduler: str = setting("fair", "the fast scheduler that answers the easy requests",
                                  choices=["fair", "fifo", "fcfs", "decima"])
    state_dict_path: str | None = setting(None, "Decima's weights, when it is the fast scheduler "
                                                "(default: the original model.pt)")
    routers: list[str] = setting(ROUTERS, "routers to compare", choices=ROUTERS)
    shares: list[float] = setting([0.0, 0.1, 0.2, 0.5, 0.8, 1.0], "target shares of requests sent to the LLM")
    calibration_seeds: list[int] = setting([1001, 1002], "episodes the routers are fitted and calibrated on")
    seed: int = setting(1, "first test seed (the environment's, the random router's and the schedulers')")
    num_seeds: int = setting(5, "test episodes: seeds --seed, --seed + 1, ...", minimum=1)
    plm_dir: str = setting(str(DEFAULT_PLM_DIR), "where the <plm-type>/<plm-size>/ folders live")
    device: str | None = setting(None, "e.g. cpu or cuda:0 (default: cuda:0 if available, else cpu)")
    results_dir: str | None = setting(None, "where curve.csv and curve.png go (default: artifacts/apc/...)")
    overwrite: bool = setting(False, "replace an existing results folder")
    quiet: bool = setting(False, "no progress bars")


class PartialCurve:
    """The finished points of a curve (and the calibration scores) in a folder beside the results, one JSON
    file each, so that an interrupted run continues; tied to the settings that produced them."""

    def __init__(self, folder: Path, fingerprint: dict, overwrite: bool):
        self.folder, self.fingerprint = folder, fingerprint
        if overwrite:
            shutil.rmtree(folder, ignore_errors=True)
        settings_file = folder / "settings.json"
        if settings_file.is_file() and json.loads(settings_file.read_text()) != fingerprint:
            raise InputError(f"{folder} holds points of a curve with other settings; rerun with those, or start "
                             "afresh", "results_dir", fixes=("overwrite",))

    def get(self, name: str):
        path = self.folder / f"{name}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def put(self, name: str, value) -> None:
        if not (self.folder / "settings.json").is_file():
            atomic_write_text(self.folder / "settings.json", json.dumps(self.fingerprint, indent=1))
        atomic_write_text(self.folder / f"{name}.json", json.dumps(value))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)  # absent when no point had to be played


def quality_curve(s: Settings, model, scaling, saved: dict, partial: PartialCurve) -> pd.DataFrame:
    data_root = resolve_data_root(s.data_dir)
    make_env = make_env_factory(s, data_root)
    seeds = list(range(s.seed, s.seed + s.num_seeds))

    def fast():
        return make_scheduler(s.fast_scheduler, s.num_executors, data_root, s.seed, s.state_dict_path)

    def llm():
        return LLMScheduler(model, scaling, saved["target_return_scale"], saved["sample"], s.seed, saved.get("mode"),
                            s.num_executors, saved.get("temperature", 1.0), saved.get("exec_temperature"))

    calibration = partial.get("calibration")
    if calibration is None:
        recorder = DisagreementRecorder(llm(), fast(), s.num_executors)
        run_episodes(make_env, recorder, s.calibration_seeds, progress=False)
        calibration = {"cluster_scores": [float(x) for x in recorder.cluster_scores],
                       "features": [row.tolist() for row in recorder.features], "disagree": recorder.disagree}
        partial.put("calibration", calibration)
    if "learned" in s.routers:
        disagreement_model, learned_scores = fit_disagreement_model(
            np.array(calibration["features"]), np.array(calibration["disagree"]), s.num_executors, s.seed)
        print(f"learned router: the LLM and {s.fast_scheduler} choose different stages on "
              f"{np.mean(calibration['disagree']):.3f} of the {len(learned_scores)} requests of seeds "
              f"{s.calibration_seeds}", flush=True)
    rows = []
    for router_name in s.routers:
        for share in s.shares:
            name = f"share_{share:g}" if share in (0, 1) else f"{router_name}_share_{share:g}"
            point = partial.get(name)
            if point is None:
                if router_name == "cluster":
                    router = ClusterRouter(calibrate_threshold(calibration["cluster_scores"], share), s.num_executors)
                elif router_name == "learned":
                    router = LearnedRouter(disagreement_model, calibrate_threshold(learned_scores, share))
                else:
                    router = RandomRouter(share, s.seed)
                scheduler = CollaborativeScheduler(llm(), fast(), router)
                jct = mean_average_jct_s(run_episodes(make_env, scheduler, seeds, progress=not s.quiet))
                point = {"llm_share": scheduler.llm_share, "requests": scheduler.requests, "avg_jct_s": jct}
                partial.put(name, point)
            rows.append({"router": router_name, "target_share": share, "llm_share": point["llm_share"],
                         "avg_jct_s": point["avg_jct_s"]})
            print(f"{router_name} router, target share {share:.2f}: LLM decided {point['llm_share']:.3f} of "
                  f"{point['requests']} requests, average JCT {point['avg_jct_s']:.3f} s")
    return pd.DataFrame(rows)


@exit_on_input_error
def main(argv=None):
    s, given = cli.parse(Settings, argv, __doc__)
    if any(not 0 <= share <= 1 for share in s.shares):
        raise InputError(f"shares must lie in [0, 1], got {s.shares}", "shares")
    if set(s.calibration_seeds) & set(range(s.seed, s.seed + s.num_seeds)):
        raise InputError(f"{s.calibration_seeds} overlap the test seeds", "calibration_seeds",
                         fixes=("seed", "num_seeds"))
    policy_dir = policy_folder(s.model_dir)
    s = cli.from_saved(s, read_settings(policy_dir), given, ("policy", "environment"), policy_dir,
                       changeable=("environment",))
    output = Path(s.results_dir) if s.results_dir else (
        Path("artifacts") / "apc" / s.dataset / s.env_folder_name()
        / f"{policy_dir.resolve().parent.name}_{s.fast_scheduler}")
    check_results_dir(output, s.overwrite)
    fingerprint = {key: value for key, value in asdict(s).items()
                   if key not in ("routers", "shares", "device", "results_dir", "overwrite", "quiet")}
    partial = PartialCurve(output.with_name(output.name + ".partial"),
                           {**fingerprint, "model_dir": str(policy_dir.resolve())}, s.overwrite)
    placement = make_placement(s.device)
    torch.manual_seed(s.seed)
    model, saved, scaling = load_for_inference(policy_dir, Path(s.plm_dir), "float32", placement)
    curve = quality_curve(s, model, scaling, saved, partial)
    write_curve(curve, output, "avg_jct_s", "average JCT (s)", s.fast_scheduler)
    partial.remove()
    print(curve.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print(f"written to {output}/curve.csv and curve.png")
    return curve


if __name__ == "__main__":
    main()
