"""Seeded synthetic job DAGs shaped like TPC-H's, written in the data set layout (the quick start's default).

Each of the 22 queries gets one DAG, the same at every input size (as TPC-H's query plans): 2..18 stages in
topological order, each stage feeding one or (sometimes) two later stages, all converging on the last one.
Task counts and durations grow with the input size in TPC-H's ranges (a few to hundreds of tasks; tens of
ms to tens of seconds), and every stage has duration tables for the executor counts TPC-H records:
first-wave, rest-wave and fresh durations.
"""
import json
from pathlib import Path

import numpy as np

from common.errors import InputError
from common.files import atomic_folder

from .datasets import NUM_QUERIES, TPCH_SIZES

EXECUTOR_KEYS = [2, 5, 10, 20, 40, 50, 60, 80, 100]
SIZE_GB = {size: int(size[:-1]) for size in TPCH_SIZES}


def synthetic_dag(rng: np.random.Generator) -> np.ndarray:
    num_stages = int(rng.integers(2, 19))
    adjacency = np.zeros((num_stages, num_stages))
    for stage in range(num_stages - 1):
        children = {int(rng.integers(stage + 1, min(num_stages, stage + 4)))}
        if rng.random() < 0.15 and stage + 2 < num_stages:
            children.add(int(rng.integers(stage + 1, num_stages)))
        adjacency[stage, sorted(children)] = 1
    return adjacency


def synthetic_durations(rng: np.random.Generator, num_stages: int, size_gb: int, stage_weights: np.ndarray) -> dict:
    tables = {}
    for stage in range(num_stages):
        num_tasks = int(np.clip(round(stage_weights[stage] * (95 + 0.8 * size_gb)), 1, 600))
        base_ms = float(np.exp(rng.normal(np.log(80 * size_gb ** 0.45), 0.6)))

        def draw(count, factor):
            return [max(3, int(d)) for d in rng.lognormal(np.log(base_ms * factor), 0.4, count)]

        table = {"first_wave": {}, "fresh_durations": {}, "rest_wave": {}}
        for key in EXECUTOR_KEYS:
            first = min(key, num_tasks)
            table["first_wave"][key] = draw(first, 1.4)
            table["rest_wave"][key] = draw(num_tasks - first, 1.0)
            table["fresh_durations"][key] = draw(max(1, first // 2), 2.0)
        tables[stage] = table
    return tables


def generate(root: Path, name: str, seed: int, overwrite: bool = False) -> Path:
    target = Path(root) / "cjs" / name
    if target.exists() and not overwrite:
        raise InputError(f"{target} already exists; regenerate it or choose another name", fixes=("overwrite", "name"))
    rng = np.random.default_rng(seed)
    dags = [synthetic_dag(rng) for _ in range(NUM_QUERIES)]
    weights = [np.exp(rng.normal(-0.5, 1.0, len(dag))) for dag in dags]  # relative task counts per stage
    with atomic_folder(target) as staging:
        for size in TPCH_SIZES:
            folder = staging / size
            folder.mkdir()
            for query, (dag, stage_weights) in enumerate(zip(dags, weights), 1):
                np.save(folder / f"adj_mat_{query}.npy", dag)
                tables = synthetic_durations(rng, len(dag), SIZE_GB[size], stage_weights)
                (folder / f"task_duration_{query}.json").write_text(json.dumps(tables))
    return target
