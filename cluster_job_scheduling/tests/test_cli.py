"""run_baseline.py and the recipes as a user runs them: results on disk, and one clear line (exit 2) for bad input."""
import json
import os
import subprocess

import pandas as pd
import pytest

from conftest import TREE, assert_one_line_error, run_script


def baseline(data, *flags):
    return run_script("run_baseline.py", "--data-dir", str(data), "--dataset", "synthetic", "--num-executors", "10",
                      "--job-arrival-cap", "15", "--quiet", *flags)


def test_results_folder(synthetic_data, tmp_path):
    result = baseline(synthetic_data, "--sched", "fair", "--seed", "3", "--num-seeds", "2", "--results-dir",
                      str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    assert "fair on synthetic (10 executors, 15 jobs, 2 seeds): average JCT" in result.stdout
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    jobs = pd.read_csv(tmp_path / "r" / "jobs.csv")
    assert list(jobs.columns) == ["seed", "job_id", "query", "size", "arrival_s", "completion_s", "duration_s"]
    assert len(jobs) == 30 and set(summary["per_seed_avg_jct_s"]) == {"3", "4"}
    assert summary["avg_jct_s"] == pytest.approx(jobs.groupby("seed").duration_s.mean().mean())
    assert summary["settings"]["warmup_delay"] == 1000.0  # typed, unlike the original's string


def test_paired_comparison_of_results_folders(synthetic_data, tmp_path):
    runs = (("fifo", "3", "3"), ("fair", "4", "3"), ("fifo_more", "6", "1"))
    for folder, seed, num_seeds in runs:
        result = baseline(synthetic_data, "--sched", folder.split("_")[0], "--seed", seed, "--num-seeds", num_seeds,
                          "--results-dir", str(tmp_path / folder))
        assert result.returncode == 0, result.stderr
    fifo, fair, fifo_more = (json.loads((tmp_path / f / "summary.json").read_text())["per_seed_avg_jct_s"]
                             for f, _, _ in runs)
    compare = ["--reference", str(tmp_path / "fair")]
    for results, shared in ((["fifo"], ["4", "5"]), (["fifo", "fifo_more"], ["4", "5", "6"])):
        fifo_all = {**fifo, **fifo_more}  # a side may be several folders; only the seeds both hold are compared
        difference = [fifo_all[s] - fair[s] for s in shared]
        result = run_script("compare_results.py", "--results", *(str(tmp_path / f) for f in results), *compare)
        assert result.returncode == 0, result.stderr
        n = len(shared)
        means = [sum(jct[s] for s in shared) / n for jct in (fifo_all, fair)]
        assert result.stdout.startswith(f"{n} seeds: average JCT {means[0]:.2f} s against {means[1]:.2f} s; "
                                        f"difference {sum(difference) / n:+.2f} s")
        assert f"wins {sum(d < 0 for d in difference)}, losses {sum(d > 0 for d in difference)}" in result.stdout
    assert_one_line_error(run_script("compare_results.py", "--results", str(tmp_path / "fifo"), "--reference",
                                     str(tmp_path / "none")), "holds no results")
    assert_one_line_error(run_script("compare_results.py", "--results", str(tmp_path / "fifo"), str(tmp_path / "fifo"),
                                     *compare), "more than one")


def test_decima_weights_from_any_path(real_data, synthetic_data, tmp_path):
    result = baseline(synthetic_data, "--sched", "decima", "--num-executors", "50", "--state-dict-path",
                      str(real_data / "cjs/models/decima/model.pt"), "--results-dir", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("flags, needle", [
    (["--sched", "sjf"], "argument --sched: invalid choice: 'sjf'"),
    (["--num-executors", "0"], "--num-executors: a cluster needs at least 1 executor"),
    (["--num-executors", "-4"], "--num-executors: a cluster needs at least 1 executor"),
    (["--job-arrival-rate", "0"], "--job-arrival-rate: the arrival rate must be positive"),
    (["--job-arrival-rate=-1e-5"], "--job-arrival-rate: the arrival rate must be positive"),
    (["--dataset", "tpcds"], "dataset 'tpcds' not found"),
    (["--sched", "decima", "--state-dict-path", "/nonexistent/model.pt"], "not found"),
])
def test_bad_input(synthetic_data, tmp_path, flags, needle):
    assert_one_line_error(baseline(synthetic_data, *flags, "--results-dir", str(tmp_path / "r")), needle)
    assert not (tmp_path / "r").exists()


def test_results_are_never_overwritten_without_asking(synthetic_data, tmp_path):
    results = tmp_path / "r"
    results.mkdir()
    (results / "keep.txt").write_text("earlier")
    assert_one_line_error(baseline(synthetic_data, "--sched", "fifo", "--results-dir", str(results)),
                          "already holds results")
    assert (results / "keep.txt").read_text() == "earlier"
    assert baseline(synthetic_data, "--sched", "fifo", "--results-dir", str(results), "--overwrite").returncode == 0
    assert (results / "summary.json").exists() and not (results / "keep.txt").exists()


def test_missing_tpch_size_file(real_data, tmp_path):
    import shutil

    shutil.copytree(real_data / "cjs/tpch", tmp_path / "cjs/tpch")
    (tmp_path / "cjs/tpch/50g/task_duration_9.npy").unlink()
    result = run_script("run_baseline.py", "--data-dir", str(tmp_path), "--sched", "fair", "--results-dir",
                        str(tmp_path / "r"))
    assert_one_line_error(result, "task_duration_9.npy is missing", "download_data.py")


def test_recipe_rejects_an_unknown_variant_name(tmp_path):
    """A misspelt name in ONLY stops the recipe before it runs or creates anything."""
    out = tmp_path / "out"
    env = {**os.environ, "ONLY": "both_0.5 both_05", "OUT": str(out), "DATA": str(tmp_path / "no_data")}
    result = subprocess.run(["bash", "recipes/tpch_temperature.sh"], cwd=TREE, env=env, capture_output=True, text=True)
    assert_one_line_error(result, "no variant named both_05")
    assert not out.exists()
