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
