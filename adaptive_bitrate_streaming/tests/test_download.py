"""The top-level download_data.py, with a local copy of the public data standing in for GitHub."""
import shutil
import subprocess
import sys

from conftest import TREE

SCRIPT = TREE.parent / "download_data.py"


def download(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_mirror_verify_and_resume(real_data, tmp_path):
    root = tmp_path / "root"
    only = ["--only", "abr/videos/video1_sizes", "abr/all_models/genet"]
    result = download("--source", real_data.as_uri(), "--data-dir", str(root), *only)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 files already present, 9 fetched, 0 missing" in result.stdout
    assert (root / "abr/videos/video1_sizes/video_size_5").read_bytes() == \
        (real_data / "abr/videos/video1_sizes/video_size_5").read_bytes()

    # an interrupted run: one file truncated, one missing; re-running repairs exactly those
    checkpoint = next((root / "abr/all_models/genet").glob("*.data-*"))
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    (root / "abr/videos/video1_sizes/video_size_0").unlink()
    check = download("--check", "--data-dir", str(root), *only)
    assert check.returncode == 1 and "2 missing" in check.stdout
    assert check.stderr.strip().splitlines()[-1] == "run the same command without --check to download what is missing"
    result = download("--source", str(real_data), "--data-dir", str(root), *only)
    assert result.returncode == 0 and "7 files already present, 2 fetched, 0 missing" in result.stdout
    assert download("--check", "--data-dir", str(root), *only).returncode == 0


def test_reports_what_the_source_lacks_or_gets_wrong(real_data, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(real_data / "abr/videos", source / "abr/videos")
    (source / "abr/videos/video2_sizes/video_size_1").write_text("12\n")
    (source / "abr/videos/video2_sizes/video_size_2").unlink()
    result = download("--source", str(source), "--data-dir", str(tmp_path / "root"), "--only", "abr/videos")
    assert result.returncode == 1
    assert "10 fetched, 2 missing" in result.stdout
    assert "video2_sizes/video_size_1 does not match the manifest" in result.stdout
    assert "video2_sizes/video_size_2: " in result.stdout
    assert not (tmp_path / "root/abr/videos/video2_sizes/video_size_1").exists()
    assert not list((tmp_path / "root").rglob("*.part"))


def test_one_default_data_root_for_both_trees(monkeypatch):
    """download_data.py writes where the trees read by default: the repository's data/ folder (the CJS
    tree's test_datasets.py checks its side)."""
    import importlib.util

    monkeypatch.delenv("TRAILBLAZER_DATA", raising=False)
    spec = importlib.util.spec_from_file_location("download_data", SCRIPT)
    download_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(download_data)
    from abr_sim.datasets import resolve_data_root

    assert download_data.data_root(None) == resolve_data_root() == TREE.parent / "data"


def test_unknown_prefix_is_one_clear_error(tmp_path):
    result = download("--only", "abr/nothing", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and result.stderr.startswith("error: no file in data_manifest.csv starts with")


def test_manifest_covers_every_public_file(real_data):
    import csv

    with open(TREE.parent / "data_manifest.csv") as f:
        listed = {row["path"] for row in csv.DictReader(f)}
    on_disk = {p.relative_to(real_data).as_posix() for p in real_data.rglob("*") if p.is_file()}
    assert listed == on_disk
