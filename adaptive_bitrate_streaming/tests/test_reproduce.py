"""reproduce.py as a user runs it: every named setting, per-trace results in one CSV, tables, resumption,
and one clear line for bad input."""
import json

import pandas as pd
import pytest

from abr_sim.datasets import load_trace_set
from abr_sim.named_settings import SETTINGS
from conftest import run_script


@pytest.fixture(scope="module")
def quick_run(real_data, tiny_trained_policy, tiny_plms, tmp_path_factory):
    output = tmp_path_factory.mktemp("reproduce") / "out"
    flags = ["--quick", "--settings", *SETTINGS, "--policies", "bba", "trailblazer", "--policy-dirs",
             str(tiny_trained_policy), "--plm-dir", str(tiny_plms), "--trace-num", "2", "--data-dir", str(real_data),
             "--output", str(output)]
    result = run_script("reproduce.py", *flags)
    assert result.returncode == 0, result.stderr
    return output, flags, result


def test_every_setting_and_policy_has_its_traces_in_the_csv(quick_run):
    output, _, result = quick_run
    results = pd.read_csv(output / "abr_results.csv")
    assert set(results["setting"]) == set(SETTINGS)
    assert results.groupby(["setting", "policy"]).size().to_dict() == {(s, p): 2 for s in SETTINGS
                                                                       for p in ("bba", "trailblazer")}
    for name in SETTINGS:  # the per-trace rows average to what the run itself reported
        for policy, folder in (("bba", "bba"), ("trailblazer", "trailblazer/seed_7")):
            summary = json.loads((output / "results" / name / "traces_2" / folder / "summary.json").read_text())
            rows = results[(results["setting"] == name) & (results["policy"] == policy)]
            assert rows["qoe"].mean() == pytest.approx(summary["mean_qoe"])
            assert summary["settings"]["video"] == SETTINGS[name].video
    assert "| **trailblazer** (1 seed) |" in (output / "abr_tables.md").read_text()
    assert "**unseen-network**" in result.stdout


def test_the_unseen_traces_are_generated_once_unlike_fcc(quick_run, real_data):
    output, _, _ = quick_run
    unseen = load_trace_set(real_data, str(output / "data" / "abr" / "traces" / "test" / "unseen-test"))
    fcc = load_trace_set(real_data, "fcc-test")
    assert len(unseen.traces) == 100
    assert max(max(t.bandwidths) for t in unseen.traces) > 2 * max(max(t.bandwidths) for t in fcc.traces)


def test_a_rerun_skips_what_is_complete(quick_run):
    output, flags, _ = quick_run
    summaries = sorted((output / "results").rglob("summary.json"))
    stamps = [path.stat().st_mtime_ns for path in summaries]
    csv = (output / "abr_results.csv").read_text()
    result = run_script("reproduce.py", *flags)
    assert result.returncode == 0, result.stderr
    assert [path.stat().st_mtime_ns for path in summaries] == stamps
    assert (output / "abr_results.csv").read_text() == csv


def test_results_of_another_policy_are_not_reused(quick_run, tiny_trained_policy, tmp_path):
    """The same adaptation seed from another policy folder (another recipe, other --policy-dirs) into the same
    output is one line, and the finished results stay as they were."""
    import shutil

    output, flags, _ = quick_run
    other = tmp_path / "other" / "run"
    shutil.copytree(tiny_trained_policy, other)
    summaries = sorted((output / "results").rglob("summary.json"))
    stamps = [path.stat().st_mtime_ns for path in summaries]
    flags = [str(other) if flag == str(tiny_trained_policy) else flag for flag in flags]
    result = run_script("reproduce.py", *flags)
    assert result.returncode == 2, result.stderr
    assert f"holds the results of the policy in {tiny_trained_policy}, not {other}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert [path.stat().st_mtime_ns for path in summaries] == stamps


def test_a_recipe_adapts_a_seed_with_its_variables(tmp_path):
    """What reproduce.py hands a recipe that adapts a missing seed: the recipe's variant variables, the seed,
    its own output folder and the pool of the recipe's own seed."""
    from common.reproduction import Recipe
    from reproduce import RECIPES

    script = tmp_path / "recipes" / "show.sh"
    script.parent.mkdir()
    script.write_text('env | grep -E "^(WIDE|SEED|ADAPT_ONLY|OUT|POOL|DATA)=" | sort > environment.txt\n')
    Recipe(script, "mix", 100003, "pool", "abr", {"WIDE": "80"}).adapt(1, tmp_path / "data")
    assert (tmp_path / "environment.txt").read_text().splitlines() == [
        "ADAPT_ONLY=1", f"DATA={tmp_path / 'data'}", "OUT=artifacts/mix_seed_1", "POOL=artifacts/mix/pool",
        "SEED=1", "WIDE=80"]
    assert RECIPES["wide-mix"].environment == {"WIDE": "80"} and RECIPES["wide-mix"].policy_dir(2) == \
        RECIPES["wide-mix"].policy_dir(100003).parent.parent / "fcc_wide_mix_seed_2" / "run"
    assert all(recipe.script.is_file() for recipe in RECIPES.values())


@pytest.mark.parametrize("flags, needle", [
    (["--settings", "unseen-planet"], "argument --settings: invalid choice: 'unseen-planet'"),
    (["--policies", "pensieve"], "argument --policies: invalid choice: 'pensieve'"),
])
def test_unknown_names(flags, needle, tmp_path):
    result = run_script("reproduce.py", *flags, "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and needle in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_data_and_foreign_policies_are_one_line(synthetic_data, real_data, tmp_path):
    result = run_script("reproduce.py", "--quick", "--settings", "unseen-network", "--data-dir", str(synthetic_data),
                        "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and "trace set 'norway-train' not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    cjs_policy = tmp_path / "cjs_run" / "best_model"
    cjs_policy.mkdir(parents=True)
    (cjs_policy / "settings.json").write_text(json.dumps({"seed": 1, "pool_metadata": {"task": "cjs"}}))
    result = run_script("reproduce.py", "--quick", "--settings", "default", "--policies", "trailblazer",
                        "--policy-dirs", str(cjs_policy.parent), "--data-dir", str(real_data),
                        "--output", str(tmp_path / "out2"))
    assert result.returncode == 2 and "is a saved policy of task 'cjs', not ABR" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out2" / "results").exists()


def test_figures_are_drawn_from_the_csv(quick_run, tmp_path):
    import subprocess
    import sys

    from conftest import TREE

    output, _, _ = quick_run
    result = subprocess.run([sys.executable, str(TREE.parent / "make_figures.py"), "--abr-csv",
                             str(output / "abr_results.csv"), "--cjs-csv", str(tmp_path / "none.csv"),
                             "--images-dir", str(tmp_path / "images")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "no CJS results" in result.stdout
    for name in ("trailblazer", "default", "abr_settings_box", "abr_qoe_cdf"):
        assert (tmp_path / "images" / f"{name}.png").stat().st_size > 10_000
