import hashlib

import pytest

from abr_sim.datasets import load_trace_set, load_video
from common.errors import InputError
from abr_sim.synthetic import TraceConfig, generate
from conftest import run_script


def digest(root):
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return hashlib.sha256(b"".join(p.relative_to(root).as_posix().encode() + p.read_bytes() for p in files)).hexdigest()


def test_same_seed_same_files(tmp_path):
    counts = {"train": 3, "test": 2}
    generate(tmp_path / "a", "syn", counts, TraceConfig(), seed=5)
    generate(tmp_path / "b", "syn", counts, TraceConfig(), seed=5)
    generate(tmp_path / "c", "syn", counts, TraceConfig(), seed=6)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_generated_data_loads_and_respects_the_range(tmp_path):
    config = TraceConfig(min_mbps=0.5, max_mbps=2.0, noise=0.0, duration_s=100)
    generate(tmp_path, "syn", {"test": 5}, config, seed=1)
    trace_set = load_trace_set(tmp_path, "syn-test")
    assert len(trace_set.traces) == 5 and trace_set.pointers is None
    for trace in trace_set.traces:
        assert min(trace.bandwidths) >= 0.5 and max(trace.bandwidths) <= 2.0
        assert trace.times[0] == 0.0 and 99 <= trace.times[-1] <= 100
    video = load_video(tmp_path, "syn")
    assert [len(level) for level in video.sizes] == [49] * 6
    ratio = sum(video.sizes[5]) / sum(video.sizes[0])
    assert ratio == pytest.approx(4300 / 300, rel=1e-3)


def test_refuses_to_replace_existing_sets(tmp_path):
    generate(tmp_path, "syn", {"test": 1}, TraceConfig(), seed=1)
    with pytest.raises(InputError, match="already exist"):
        generate(tmp_path, "syn", {"test": 1}, TraceConfig(), seed=1)


def test_command_line(tmp_path):
    result = run_script("generate_synthetic_data.py", "--data-dir", str(tmp_path), "--train", "2", "--valid", "0",
                        "--test", "1", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "abr/traces/train/synthetic-train").is_dir()
    assert not (tmp_path / "abr/traces/valid").exists()
    result = run_script("generate_synthetic_data.py", "--data-dir", str(tmp_path), "--min-mbps", "3", "--max-mbps", "1")
    assert result.returncode == 2 and result.stderr.startswith("error: need 0 < --min-mbps")


def test_a_video_only_with_its_sizes_scaled(tmp_path):
    """--video-scale 1.3 with no traces writes only a video, 1.3 times the sizes of the same seed's at scale 1."""
    for prefix, scale in (("plain", "1"), ("big", "1.3")):
        result = run_script("generate_synthetic_data.py", "--data-dir", str(tmp_path), "--prefix", prefix,
                            "--video-scale", scale, "--train", "0", "--valid", "0", "--test", "0", "--seed", "4")
        assert result.returncode == 0, result.stderr
    assert not (tmp_path / "abr/traces").exists()
    plain, big = load_video(tmp_path, "plain").sizes, load_video(tmp_path, "big").sizes
    for plain_level, big_level in zip(plain, big):
        assert big_level == pytest.approx([1.3 * size for size in plain_level], abs=2)  # both truncated
    by_path = load_video(tmp_path / "elsewhere", str(tmp_path / "abr/videos/big_sizes"))  # a folder given as a path
    assert (by_path.name, by_path.sizes) == ("big", big)
    result = run_script("generate_synthetic_data.py", "--data-dir", str(tmp_path), "--video-scale", "0")
    assert result.returncode == 2 and "--video-scale must be positive" in result.stderr
