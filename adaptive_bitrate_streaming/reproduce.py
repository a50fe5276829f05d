"""The paper's ABR evaluation from one command: every baseline and Trailblazer in the default and the unseen
settings (abr_sim/named_settings.py), every trace's result in one CSV, and the tables.

    python reproduce.py --data-dir DATA            # everything; adapts missing Trailblazer policies (hours)
    python reproduce.py --data-dir DATA --quick    # default and unseen-video, 10 traces, existing policies

1. The unseen-traces set is generated once into <output>/data (generate_synthetic_data.py, fixed flags).
2. Trailblazer: one saved policy per adaptation seed (--adaptation-seeds), made by the --recipe on the default
   setting: `wide-mix` (the best measured: recipes/fcc_video_mix.sh with WIDE=80, RobustMPC over fcc-train and
   80 wider synthetic traces with five videos; artifacts/fcc_wide_mix) or `video1` (recipes/fcc_smollm2.sh,
   RobustMPC over fcc-train with video1; artifacts/fcc_smollm2). <folder>/run is seed 100003's policy, the
   recipe's own, <folder>_seed_<k>/run seed k's, all adapted on the pool in <folder>/pool; a missing one is
   adapted by the recipe (with --quick, only the policies that exist are used).
3. Every (setting, policy, adaptation seed) is tested into
   <output>/results/<setting>/traces_<all or --trace-num>/<policy>[/seed_<k>] by run_baseline.py or run_plm.py --test; a finished folder is skipped, so a rerun continues.
4. <output>/abr_results.csv: one row per (setting, policy, seed, trace): the trace's mean QoE (chunk 0 left
   out, as the paper's metric), bitrate, rebuffering and smoothness; <output>/abr_tables.md: per setting, the
   mean QoE of every policy (Trailblazer: mean and spread over the adaptation seeds) and Trailblazer's gain
   over the best baseline. The figures are drawn from the CSV by ../make_figures.py.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import generate_synthetic_data
import run_baseline
import run_plm
from abr_sim.datasets import load_trace_set, load_video, resolve_data_root
from abr_sim.named_settings import GENERATED, SETTINGS, UNSEEN_TRACE_FLAGS
from abr_sim.results import read_per_trace
from common import settings as cli
from common.errors import exit_on_input_error
from common.files import atomic_write_text
from common.reproduction import Recipe, pending_runs, planned_runs, trailblazer_policies
from common.settings import setting
from plm_special.checkpoint import policy_folder, read_settings

TREE = Path(__file__).resolve().parent
BASELINES = ["bba", "mpc", "robustmpc", "genet", "udr_1", "udr_2", "udr_3", "udr_real"]
POLICIES = [*BASELINES, "trailblazer"]
OWN_SEED = 100003  # every recipe's own adaptation seed
RECIPES = {"wide-mix": Recipe(TREE / "recipes" / "fcc_video_mix.sh", "fcc_wide_mix", OWN_SEED, "pool", "abr",
                              {"WIDE": "80"}),
           "video1": Recipe(TREE / "recipes" / "fcc_smollm2.sh", "fcc_smollm2", OWN_SEED, "pool", "abr")}
QUICK = {"settings": ["default", "unseen-video"], "policies": ["bba", "mpc", "robustmpc", "trailblazer"],
         "trace_num": 10}


@dataclass
class Settings:
    settings: list[str] = setting(list(SETTINGS), "named settings to run", choices=list(SETTINGS))
    policies: list[str] = setting(POLICIES, "policies to run", choices=POLICIES)
    recipe: str = setting("wide-mix", "how Trailblazer's policies are adapted (see above)", choices=list(RECIPES))
    adaptation_seeds: list[int] = setting([OWN_SEED, 1, 2], "Trailblazer's adaptation seeds (one saved policy each)")
    policy_dirs: list[str] | None = setting(None, "saved Trailblazer policies to test instead, one per adaptation "
                                                  "seed (folders of run_plm.py --adapt; none is adapted)")
    plm_dir: str | None = setting(None, "where the backbones' <plm-type>/<plm-size>/ folders live (run_plm.py's "
                                        "default if unset)")
    quick: bool = setting(False, f"a first look in minutes: settings {' '.join(QUICK['settings'])}, policies "
                                 f"{' '.join(QUICK['policies'])}, {QUICK['trace_num']} traces, existing policies only")
    trace_num: int = setting(-1, "traces per setting (-1: all)")
    data_dir: str | None = setting(None, "data root (default: $TRAILBLAZER_DATA, else the repository's data/)")
    output: str = setting("artifacts/reproduce", "where the generated data, results, CSV and tables go")


def trace_set_of(name: str, output: Path) -> str:
    return str(output / "data" / "abr" / "traces" / "test" / "unseen-test") if name == GENERATED else name


def run_test(setting_name: str, policy: str, saved: Path | None, folder: Path, s: Settings, data_root: Path,
             output: Path) -> None:
    named = SETTINGS[setting_name]
    common = ["--trace", trace_set_of(named.trace, output), "--video", named.video, "--trace-num", str(s.trace_num),
              "--data-dir", str(data_root), "--results-dir", str(folder), "--overwrite"]
    if policy == "trailblazer":
        plm_dir = ["--plm-dir", s.plm_dir] if s.plm_dir else []
        run_plm.main(["--test", "--model-dir", str(saved), *plm_dir, *common])
    else:
        run_baseline.main(["--model", policy, "--quiet", *common])


def collect(runs) -> pd.DataFrame:
    rows = []
    for setting_name, policy, seed, _, folder in runs:
        if (folder / "summary.json").is_file():
            for trace in read_per_trace(folder):
                rows.append({"setting": setting_name, "policy": policy, "seed": seed, **trace})
    return pd.DataFrame(rows)


def tables(results: pd.DataFrame) -> str:
    """Markdown: per setting, every policy's mean QoE (Trailblazer: mean and spread over its seeds)."""
    lines = []
    for setting_name, group in results.groupby("setting", sort=False):
        per_run = group.groupby(["policy", "seed"], dropna=False, sort=False)["qoe"].mean().reset_index()
        baselines = per_run[per_run["policy"] != "trailblazer"].set_index("policy")["qoe"]
        lines += [f"**{setting_name}** ({SETTINGS[setting_name].differs}; {group['trace'].nunique()} traces)", "",
                  "| policy | mean QoE | spread over adaptation seeds | against the best baseline |",
                  "|---|---|---|---|"]
        for policy, qoe in baselines.sort_values(ascending=False).items():
            lines.append(f"| {policy} | {qoe:.3f} | | |")
        ours = per_run[per_run["policy"] == "trailblazer"]["qoe"]
        if len(ours):
            gain = f"{ours.mean() - baselines.max():+.3f} ({baselines.idxmax()})" if len(baselines) else ""
            lines.append(f"| **trailblazer** ({len(ours)} seed{'s' * (len(ours) > 1)}) | **{ours.mean():.3f}** | "
                         f"{ours.std(ddof=0):.3f} | {gain} |")
        lines.append("")
    return "\n".join(lines)


@exit_on_input_error
def main(argv=None):
    s, given = cli.parse(Settings, argv, __doc__)
    if s.quick:
        s.settings = given.get("settings", QUICK["settings"])
        s.policies = given.get("policies", QUICK["policies"])
        s.trace_num = given.get("trace_num", QUICK["trace_num"])
    output = Path(s.output) if not s.quick or "output" in given else Path(s.output + "_quick")
    data_root = resolve_data_root(s.data_dir)
    if "unseen-traces" in s.settings and not (output / "data" / "abr" / "traces" / "test" / "unseen-test").is_dir():
        generate_synthetic_data.main(["--data-dir", str(output / "data"), *UNSEEN_TRACE_FLAGS])
    for name in s.settings:  # every setting's data, before any work
        load_trace_set(data_root, trace_set_of(SETTINGS[name].trace, output))
        load_video(data_root, SETTINGS[name].video)

    policies = trailblazer_policies(RECIPES[s.recipe], s.policy_dirs, s.adaptation_seeds, s.quick, data_root,
                                    lambda folder: read_settings(policy_folder(folder))) \
        if "trailblazer" in s.policies else {}
    part = f"traces_{'all' if s.trace_num == -1 else s.trace_num}"
    runs = list(planned_runs(s.settings, s.policies, lambda name: output / "results" / name / part, policies))
    for setting_name, policy, _, saved, folder in pending_runs(runs):
        run_test(setting_name, policy, saved, folder, s, data_root, output)
    results = collect(runs)
    atomic_write_text(output / "abr_results.csv", results.to_csv(index=False))
    atomic_write_text(output / "abr_tables.md", tables(results))
    atomic_write_text(output / "abr_settings.json", json.dumps(
        {name: SETTINGS[name].__dict__ for name in s.settings}, indent=2) + "\n")
    print(tables(results))
    print(f"results of {len(runs)} runs: {output / 'abr_results.csv'}, {output / 'abr_tables.md'}")


if __name__ == "__main__":
    main()
