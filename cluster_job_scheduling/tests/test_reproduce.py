"""reproduce.py as a user runs it: named settings on TPC-H, per-seed results in one CSV, tables, resumption,
and one clear line for bad input."""
import json

import pandas as pd
import pytest

import run_plm
from conftest import assert_one_line_error, run_script

SETTINGS = ["default", "fewer-executors"]


@pytest.fixture(scope="module")
def quick_run(real_data, synthetic_data, small_pool, tiny_plms, tmp_path_factory):
    """A tiny scheduler adapted on the small synthetic cluster (10 executors), then tested with FIFO on TPC-H in
    two settings (50 and 30 executors, 200 jobs), one seed."""
    run = tmp_path_factory.mktemp("cjs_policy") / "run"
    run_plm.main(["--train", "--plm-type", "llama", "--plm-size", "tiny", "--peft-rank", "4", "--exp-pool-path",
                  str(small_pool), "--num-iters", "1", "--model-dir", str(run), "--plm-dir", str(tiny_plms),
                  "--data-dir", str(synthetic_data), "--dataset", "synthetic", "--num-executors", "10",
                  "--job-arrival-cap", "12", "--K", "4", "--state-feature-dim", "16", "--batch-size", "4",
                  "--num-steps-per-iter", "8", "--valid-seeds", "101", "--seed", "5"])
    output = tmp_path_factory.mktemp("reproduce") / "out"
    flags = ["--quick", "--settings", *SETTINGS, "--policies", "fifo", "trailblazer", "--policy-dirs", str(run),
             "--plm-dir", str(tiny_plms), "--num-seeds", "1", "--seed", "3", "--data-dir", str(real_data),
             "--output", str(output)]
    result = run_script("reproduce.py", *flags)
    assert result.returncode == 0, result.stderr
    return output, flags, result


def test_every_setting_has_its_seeds_in_the_csv_and_tables(quick_run):
    output, _, result = quick_run
    results = pd.read_csv(output / "cjs_results.csv")
    assert results.groupby(["setting", "policy"]).size().to_dict() == {(s, p): 1 for s in SETTINGS
                                                                       for p in ("fifo", "trailblazer")}
    for name, executors in (("default", 50), ("fewer-executors", 30)):
        for policy, folder in (("fifo", "fifo"), ("trailblazer", "trailblazer/seed_5")):
            summary = json.loads((output / "results" / name / "seeds_3-3" / folder / "summary.json").read_text())
            assert summary["settings"]["num_executors"] == executors and summary["settings"]["job_arrival_cap"] == 200
            if policy == "trailblazer":  # decoded as the default recipe's policies are: both heads sampled at 0.5
                assert summary["settings"]["sample"] and summary["settings"]["temperature"] == 0.5
            row = results[(results["setting"] == name) & (results["policy"] == policy)]
            assert list(row["avg_jct_s"]) == [pytest.approx(summary["per_seed_avg_jct_s"]["3"])]
    assert "| **trailblazer** (1 seed) |" in (output / "cjs_tables.md").read_text()
    assert "**fewer-executors** (30 executors; 1 episode seed)" in result.stdout


def test_the_recipes_name_their_scripts_pools_and_decoding():
    from reproduce import RECIPES

    for recipe in RECIPES.values():
        assert recipe.script.is_file() and f"{recipe.pool}" in recipe.script.read_text().replace(
            "$ROLLOUTS", recipe.environment.get("ROLLOUTS", ""))
    assert RECIPES["best-of-4"].test_flags == ("--sample", "--temperature", "0.5")
    assert RECIPES["decima-pool"].test_flags == ()


def test_a_rerun_skips_what_is_complete(quick_run):
    output, flags, _ = quick_run
    summaries = sorted((output / "results").rglob("summary.json"))
    stamps = [path.stat().st_mtime_ns for path in summaries]
    result = run_script("reproduce.py", *flags)
    assert result.returncode == 0, result.stderr
    assert [path.stat().st_mtime_ns for path in summaries] == stamps


def test_bad_input_is_one_line(real_data, synthetic_data, tmp_path):
    result = run_script("reproduce.py", "--settings", "huge-cluster", "--output", str(tmp_path / "out"))
    assert_one_line_error(result, "argument --settings: invalid choice: 'huge-cluster'")
    result = run_script("reproduce.py", "--quick", "--data-dir", str(synthetic_data), "--output", str(tmp_path / "o"))
    assert_one_line_error(result, "tpch")
    abr_policy = tmp_path / "abr_run" / "best_model"
    abr_policy.mkdir(parents=True)
    (abr_policy / "settings.json").write_text(json.dumps({"seed": 1, "pool_metadata": {"task": "abr"}}))
    result = run_script("reproduce.py", "--quick", "--policies", "trailblazer", "--policy-dirs", str(abr_policy.parent),
                        "--data-dir", str(real_data), "--output", str(tmp_path / "o2"))
    assert_one_line_error(result, "is a saved policy of task 'abr', not CJS")
    assert not (tmp_path / "o2").exists()
