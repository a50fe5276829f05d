"""Result folders: one TSV per trace (the original's columns) and summary.json, written atomically.

A folder is filled under a temporary name and renamed into place once complete, so an interrupted run
never leaves half a result. An existing result folder is never emptied or replaced unless the user
asks for it with --overwrite.
"""
import json
from pathlib import Path

import numpy as np

from common.errors import InputError
from common.files import atomic_folder

from .evaluation import EpisodeLog

RESULT_FILE_PREFIX = "result_sim_abr_"


def check_results_dir(results_dir: Path, overwrite: bool) -> None:
    """Refuse, before any work is done, to replace results that are already there."""
    if results_dir.exists() and any(results_dir.iterdir()) and not overwrite:
        raise InputError(f"results folder {results_dir} already holds results; write elsewhere, or replace them",
                         "results_dir", fixes=("overwrite",))


def write_results(results_dir: Path, logs: list[EpisodeLog], summary: dict, overwrite: bool) -> None:
    check_results_dir(results_dir, overwrite)
    with atomic_folder(results_dir) as staging:
        for log in logs:
            lines = ["\t".join(str(value) for value in row) for row in log.rows]
            (staging / f"{RESULT_FILE_PREFIX}{log.trace_name}").write_text("\n".join(lines) + "\n\n")
        (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def read_mean_qoe(results_dir: Path) -> float:
    """The original's calc_mean_reward: mean of the reward column over every result file, chunk 0 skipped."""
    rewards = []
    for path in sorted(results_dir.glob(f"{RESULT_FILE_PREFIX}*")):
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) <= 1:
                break
            rewards.append(float(fields[-1]))
    return sum(rewards) / len(rewards)


def read_per_trace(results_dir: Path) -> list[dict]:
    """Every trace's mean QoE (chunk 0 left out, as the paper's metric), bitrate (Mbps), rebuffering (s per
    chunk) and smoothness (Mbps), from its result file."""
    rows = []
    for path in sorted(results_dir.glob(f"{RESULT_FILE_PREFIX}*")):
        chunks = np.array([[float(v) for v in line.split()] for line in path.read_text().splitlines()[1:]
                           if len(line.split()) > 1])
        rows.append({"trace": path.name.removeprefix(RESULT_FILE_PREFIX), "qoe": chunks[:, 7].mean(),
                     "bitrate_mbps": chunks[:, 1].mean() / 1000.0, "rebuffer_s": chunks[:, 3].mean(),
                     "smoothness_mbps": chunks[:, 6].mean()})
    return rows
