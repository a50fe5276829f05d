"""Job DAG data sets: where they live, how their files are read, and the job templates built from them.

Layout under the data root (`--data-dir`, else $TRAILBLAZER_DATA, else the tree's data/ folder):
    cjs/<dataset>/<size>/adj_mat_<q>.npy         n x n 0/1 matrix, A[i, j] = 1: stage i precedes stage j
    cjs/<dataset>/<size>/task_duration_<q>.npy   TPC-H: a pickled dict inside .npy (read by a restricted loader)
    cjs/<dataset>/<size>/task_duration_<q>.json  the same dict in JSON (written by the synthetic generator)
for queries q = 1..22. The duration dict maps stage -> {'first_wave' | 'fresh_durations' | 'rest_wave':
{executor count: [task durations in ms]}}: how long tasks took with that many executors on the job, for
the first task of an executor on a stage, for a fresh executor, and for the following tasks.
"""
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import InputError

DEFAULT_DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "data"  # one root for both task trees
NUM_QUERIES = 22
TPCH_SIZES = ["2g", "5g", "10g", "20g", "50g", "80g", "100g"]
WAVES = ("first_wave", "fresh_durations", "rest_wave")


def resolve_data_root(data_dir: str | None = None) -> Path:
    """`--data-dir`, else $TRAILBLAZER_DATA, else the repository's data/ folder (where download_data.py writes)."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get("TRAILBLAZER_DATA"):
        return Path(os.environ["TRAILBLAZER_DATA"]).expanduser()
    return DEFAULT_DATA_ROOT


@dataclass
class JobTemplate:
    """A query at an input size: its DAG and per-stage task counts and duration tables."""

    query: int
    size: str
    edges: list[tuple[int, int]]
    num_tasks: list[int]
    durations: list[dict]  # per stage, first-wave lists cleaned as the original does
    mean_durations: list[float]


class _DurationUnpickler(pickle.Unpickler):
    """Only what TPC-H's duration files hold: a numpy object array around dicts, lists and numbers."""

    ALLOWED = {(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")}
    ALLOWED |= {("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a task duration file")
        return super().find_class(module, name)


def _read_pickled_npy(path: Path):
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        read_header(f)
        array = _DurationUnpickler(f).load()
    return array.item() if isinstance(array, np.ndarray) else array


def _clean_first_wave(durations: dict) -> dict:
    """As the original: drop from each first-wave list the durations also listed as fresh (as a multiset),
    then give empty lists the list of the next smaller executor count."""
    cleaned = {}
    for key, first_wave in durations["first_wave"].items():
        fresh = list(durations["fresh_durations"].get(key, []))
        cleaned[key] = []
        for duration in first_wave:
            if duration in fresh:
                fresh.remove(duration)
            else:
                cleaned[key].append(duration)
    previous = []
    for key in sorted(cleaned):
        if not cleaned[key]:
            cleaned[key] = previous
        previous = cleaned[key]
    return {**durations, "first_wave": cleaned}


def load_template(folder: Path, query: int) -> JobTemplate:
    adjacency_path = folder / f"adj_mat_{query}.npy"
    json_path, npy_path = folder / f"task_duration_{query}.json", folder / f"task_duration_{query}.npy"
    duration_path = json_path if json_path.is_file() else npy_path
    try:
        adjacency = np.load(adjacency_path, allow_pickle=False)
        if duration_path.suffix == ".json":
            raw = {int(s): {w: {int(k): v for k, v in d[w].items()} for w in WAVES} for s, d in
                   json.loads(duration_path.read_text()).items()}
        else:
            raw = _read_pickled_npy(duration_path)
    except FileNotFoundError as error:
        raise InputError(f"{error.filename} is missing: {folder} must hold adj_mat_<q> and task_duration_<q> "
                         "for queries 1..22; run ../download_data.py --only cjs or generate_synthetic_data.py") from None
    except Exception as error:
        raise InputError(f"query {query} in {folder} is unreadable ({type(error).__name__}: {error}); "
                         "download or generate the data again") from None
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1] or adjacency.shape[0] != len(raw):
        raise InputError(f"{adjacency_path}: adjacency of shape {adjacency.shape} does not match the "
                         f"{len(raw)} stages of {duration_path.name}")
    num_tasks, durations, means = [], [], []
    for stage in range(len(raw)):
        data = raw[stage]
        first_key = next(iter(data["first_wave"]))
        num_tasks.append(len(data["first_wave"][first_key]) + len(data["rest_wave"][first_key]))
        cleaned = _clean_first_wave(data)
        durations.append(cleaned)
        means.append(float(np.mean([d for w in WAVES for values in cleaned[w].values() for d in values])))
    edges = [(int(i), int(j)) for i, j in zip(*np.nonzero(adjacency))]
    return JobTemplate(query, folder.name, edges, num_tasks, durations, means)


def load_dataset(root: Path, dataset: str) -> dict[str, list[JobTemplate]]:
    """Every query of every size of a data set, read once: {size: [template of query 1..22]}."""
    folder = root / "cjs" / dataset
    if not folder.is_dir():
        how = "python generate_synthetic_data.py" if dataset == "synthetic" else "python ../download_data.py --only cjs"
        raise InputError(f"dataset '{dataset}' not found: no folder {folder}; run `{how}` or use another data root",
                         fixes=("data_dir",))
    sizes = [s for s in TPCH_SIZES if (folder / s).is_dir()] + sorted(
        p.name for p in folder.iterdir() if p.is_dir() and p.name not in TPCH_SIZES and not p.name.startswith("."))
    if not sizes:
        raise InputError(f"{folder} holds no size folders (e.g. {folder / '2g'}); download or generate it again")
    return {size: [load_template(folder / size, q) for q in range(1, NUM_QUERIES + 1)] for size in sizes}
