"""Results folders of an evaluation: summary.json (average JCT over seeds and per seed, settings) and
jobs.csv (one line per job), written atomically; an existing folder is only replaced when asked to."""
import json
from pathlib import Path

import numpy as np
import pandas as pd

from common.errors import InputError
from common.files import atomic_folder

from .evaluation import JOB_COLUMNS
from .metrics import average_jct_per_seed


def check_results_dir(results_dir: Path, overwrite: bool) -> None:
    """Refuse, before any work is done, to replace results that are already there."""
    if results_dir.exists() and any(results_dir.iterdir()) and not overwrite:
        raise InputError(f"results folder {results_dir} already holds results; write elsewhere, or replace them",
                         "results_dir", fixes=("overwrite",))


def write_results(results_dir: Path, per_seed: dict, settings: dict) -> dict:
    """summary.json and jobs.csv; returns the summary."""
    averages = average_jct_per_seed(per_seed)
    summary = {"avg_jct_s": float(np.mean(list(averages.values()))),
               "std_jct_s_across_seeds": float(np.std(list(averages.values()))),
               "num_seeds": len(averages), "per_seed_avg_jct_s": {str(s): v for s, v in averages.items()},
               "settings": settings}
    with atomic_folder(results_dir) as staging:
        table = pd.DataFrame([job for jobs in per_seed.values() for job in jobs], columns=JOB_COLUMNS)
        table.to_csv(staging / "jobs.csv", index=False)
        (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def read_per_seed(*results_dirs: Path) -> dict[int, float]:
    """Average JCT per seed from one or more results folders (e.g. one per block of seeds)."""
    per_seed = {}
    for results_dir in results_dirs:
        summary_path = Path(results_dir) / "summary.json"
        if not summary_path.is_file():
            raise InputError(f"{results_dir} holds no results (summary.json); write them with run_baseline.py or "
                             "run_plm.py --test")
        for seed, jct in json.loads(summary_path.read_text())["per_seed_avg_jct_s"].items():
            if int(seed) in per_seed:
                raise InputError(f"seed {seed} is in more than one of {', '.join(map(str, results_dirs))}; "
                                 "give folders of different seeds")
            per_seed[int(seed)] = jct
    return per_seed


def paired_comparison(results: dict[int, float], reference: dict[int, float]) -> dict:
    """Seed by seed over the seeds both hold: mean average JCT of each, mean and spread of the difference
    (results - reference, negative: results better), and the seeds each wins."""
    seeds = sorted(set(results) & set(reference))
    if not seeds:
        raise InputError("the two results folders share no seed; test both on the same seeds")
    difference = np.array([results[s] - reference[s] for s in seeds])
    return {"seeds": len(seeds), "mean_jct_s": float(np.mean([results[s] for s in seeds])),
            "reference_mean_jct_s": float(np.mean([reference[s] for s in seeds])),
            "mean_difference_s": float(difference.mean()), "std_difference_s": float(difference.std()),
            "wins": int((difference < 0).sum()), "losses": int((difference > 0).sum())}
