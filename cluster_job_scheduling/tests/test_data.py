import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import TREE
from spark_sched_sim.datasets import load_dataset, load_template, resolve_data_root
from common.errors import InputError
from spark_sched_sim.synthetic import generate


def digest(folder):
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in files)).hexdigest()


def test_default_data_root_is_the_repositorys(monkeypatch, tmp_path):
    """Where download_data.py writes by default, shared with the ABR tree (its test_download.py)."""
    monkeypatch.delenv("TRAILBLAZER_DATA", raising=False)
    assert resolve_data_root() == TREE.parent / "data"
    monkeypatch.setenv("TRAILBLAZER_DATA", str(tmp_path))
    assert resolve_data_root() == tmp_path and resolve_data_root("x") == Path("x")


def test_tpch_templates(real_data):
    templates = load_dataset(real_data, "tpch")
    assert list(templates) == ["2g", "5g", "10g", "20g", "50g", "80g", "100g"]
    query = templates["2g"][1]  # query 2: 18 stages converging on the last
    assert len(query.num_tasks) == 18 and (17, 16) not in query.edges and (16, 17) in query.edges
    assert all(n >= 1 for t in templates.values() for q in t for n in q.num_tasks)
    # the first-wave lists lose the durations also recorded as fresh (as the original pre-processing)
    stage = query.durations[0]
    assert all(len(stage["first_wave"][k]) <= 2 for k in stage["first_wave"])


def test_synthetic_data_is_seeded_and_tpch_shaped(tmp_path):
    generate(tmp_path / "a", "synthetic", seed=3)
    generate(tmp_path / "b", "synthetic", seed=3)
    generate(tmp_path / "c", "synthetic", seed=4)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")
    templates = load_dataset(tmp_path / "a", "synthetic")
    assert len(templates) == 7 and all(len(t) == 22 for t in templates.values())
    for query in templates["100g"]:
        stages = len(query.num_tasks)
        assert 2 <= stages <= 18 and all(parent < child for parent, child in query.edges)
        sinks = {s for s in range(stages) if not any(p == s for p, _ in query.edges)}
        assert sinks == {stages - 1}
    with pytest.raises(InputError, match="already exists"):
        generate(tmp_path / "a", "synthetic", seed=3)


def copy_query(real_data, tmp_path):
    folder = tmp_path / "cjs" / "tpch" / "2g"
    folder.mkdir(parents=True)
    for q in range(1, 23):
        for name in (f"adj_mat_{q}.npy", f"task_duration_{q}.npy"):
            shutil.copy(real_data / "cjs/tpch/2g" / name, folder / name)
    return folder


def test_duration_files_with_code_are_refused(real_data, tmp_path):
    victim = tmp_path / "keep"
    victim.mkdir()

    class Evil:
        def __reduce__(self):
            return (shutil.rmtree, (str(victim),))

    folder = copy_query(real_data, tmp_path)
    np.save(folder / "task_duration_3.npy", np.array({0: Evil()}, dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="shutil.rmtree is not allowed"):
        load_template(folder, 3)
    assert victim.is_dir()


def test_partial_or_corrupt_folders_are_one_clear_error(real_data, tmp_path):
    folder = copy_query(real_data, tmp_path)
    (folder / "adj_mat_7.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match="query 7 .* is unreadable"):
        load_dataset(tmp_path, "tpch")
    (folder / "adj_mat_7.npy").unlink()
    with pytest.raises(InputError, match="adj_mat_7.npy is missing"):
        load_dataset(tmp_path, "tpch")
    with pytest.raises(InputError, match="dataset 'synthetic' not found.*generate_synthetic_data.py"):
        load_dataset(tmp_path, "synthetic")
