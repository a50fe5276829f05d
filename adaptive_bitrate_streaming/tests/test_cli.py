"""run_baseline.py as a user runs it: results on disk, and one clear line (exit 2) for every bad input."""
import json
import shutil

import pytest

from conftest import run_script


def copy_data(synthetic_data, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synthetic_data, root)
    return root


def baseline(root, *flags, results=None):
    results = results or root.parent / "results"
    return run_script("run_baseline.py", "--data-dir", str(root), "--trace", "synthetic-test", "--video", "synthetic",
                      "--model", "bba", "--results-dir", str(results), "--quiet", *flags)


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_run_writes_per_trace_files_and_summary(synthetic_data, tmp_path):
    result = baseline(synthetic_data, results=tmp_path / "results")
    assert result.returncode == 0, result.stderr
    assert "bba on synthetic-test/synthetic (4 traces): mean QoE" in result.stdout
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    for key in ("mean_qoe", "mean_qoe_all_chunks", "mean_bitrate_mbps", "rebuffer_s", "smoothness_mbps", "num_traces"):
        assert key in summary
    files = sorted((tmp_path / "results").glob("result_sim_abr_synthetic-test_*"))
    assert len(files) == 4
    rows = files[0].read_text().split("\n")
    assert len(rows[0].split("\t")) == 8 and rows[0].split("\t")[1] == "300"  # chunk 0 at the lowest quality
    assert rows[48:] == ["", ""]  # 48 chunks and a blank line, as the original


def test_existing_results_are_never_replaced_without_overwrite(synthetic_data, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "keep.txt").write_text("earlier work")
    assert_one_line_error(baseline(synthetic_data, results=results), "already holds results", "--overwrite")
    assert (results / "keep.txt").read_text() == "earlier work"
    assert baseline(synthetic_data, "--overwrite", results=results).returncode == 0
    assert not (results / "keep.txt").exists() and (results / "summary.json").exists()


@pytest.mark.parametrize("flags, needles", [
    (["--model", "pensieve2"], ["argument --model: invalid choice: 'pensieve2'", "bba"]),
    (["--trace", "nowhere"], ["trace set 'nowhere' not found", "synthetic-test"]),
    (["--video", "video9"], ["video 'video9' not found", "synthetic"]),
    (["--trace-num", "0"], ["--trace-num"]),
])
def test_unknown_names(synthetic_data, tmp_path, flags, needles):
    assert_one_line_error(baseline(synthetic_data, *flags, results=tmp_path / "r"), *needles)
    assert not (tmp_path / "r").exists()


def corrupt_first_trace(root, text):
    first = sorted((root / "abr/traces/test/synthetic-test").iterdir())[0]
    first.write_text(text)
    return first


@pytest.mark.parametrize("text, needle", [
    ("0.0\t1.0\n1.0\tfast\n", "malformed line"),
    ("0.0\t1.0\n1.0\n", "malformed line"),
    ("0.0\t1.0\n1.0\tnan\n", "finite number >= 0"),
    ("0.0\t1.0\n1.0\t-2.5\n", "finite number >= 0"),
    ("0.0\t0.0\n1.0\t0.0\n", "zero everywhere"),
    ("0.0\t1.0\n", "at least 2 samples"),
])
def test_bad_trace_files(synthetic_data, tmp_path, text, needle):
    root = copy_data(synthetic_data, tmp_path)
    path = corrupt_first_trace(root, text)
    assert_one_line_error(baseline(root), needle, str(path))


def test_empty_trace_folder(synthetic_data, tmp_path):
    root = copy_data(synthetic_data, tmp_path)
    for path in (root / "abr/traces/test/synthetic-test").iterdir():
        path.unlink()
    assert_one_line_error(baseline(root), "holds no trace files")


def test_video_with_missing_level_or_too_few_chunks(synthetic_data, tmp_path):
    root = copy_data(synthetic_data, tmp_path)
    level = root / "abr/videos/synthetic_sizes/video_size_3"
    level.write_text("".join(f"{1000 + i}\n" for i in range(20)))
    assert_one_line_error(baseline(root), str(level), "has 20 chunk sizes, needs 49")
    level.unlink()
    assert_one_line_error(baseline(root), str(level), "is missing")


def test_pointer_file_must_be_a_plain_list_of_ints(synthetic_data, tmp_path):
    import pickle

    root = copy_data(synthetic_data, tmp_path)
    pointers = root / "abr/traces/test/synthetic-test/mahimahi_ptrs.pkl"
    pointers.write_bytes(pickle.dumps({"not": "a list"}))
    assert_one_line_error(baseline(root), "plain list of ints")
    pointers.write_bytes(pickle.dumps([1, 2, 3, 4]))
    assert baseline(root).returncode == 0


def test_pointer_file_with_code_is_refused(synthetic_data, tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    root = copy_data(synthetic_data, tmp_path)
    (root / "abr/traces/test/synthetic-test/mahimahi_ptrs.pkl").write_bytes(pickle.dumps([Evil()]))
    result = baseline(root)
    assert_one_line_error(result, "not a pickled list of ints")
    assert "pwned" not in result.stdout


def test_missing_and_truncated_checkpoints(real_data, synthetic_data, tmp_path):
    root = copy_data(synthetic_data, tmp_path)
    assert_one_line_error(baseline(root, "--model", "genet"), "genet", "is missing", "download_data.py")
    models = root / "abr/all_models/genet"
    shutil.copytree(real_data / "abr/all_models/genet", models)
    data = next(models.glob("*.data-*"))
    data.write_bytes(data.read_bytes()[:1000])
    assert_one_line_error(baseline(root, "--model", "genet"), "truncated")
