"""The paper's CJS evaluation from one command: FIFO, Fair, Decima and Trailblazer in the default and the
unseen settings (spark_sched_sim/named_settings.py), every episode's result in one CSV, and the tables.

    python reproduce.py --data-dir DATA            # everything; adapts missing Trailblazer policies (hours)
    python reproduce.py --data-dir DATA --quick    # default and fewer-executors, 2 seeds, existing policies

1. Trailblazer: one saved policy per adaptation seed (--adaptation-seeds), made by the --recipe on the
   default setting: `best-of-4` (the best measured: recipes/tpch_best_of_n.sh, a pool of the best of four
   sampled Decima rollouts per job sequence; tested with both heads sampled at temperature 0.5;
   artifacts/tpch_best_of_n) or `decima-pool` (recipes/tpch_smollm2.sh, one Decima rollout per sequence, the
   most likely decisions; artifacts/tpch_smollm2). <folder>/run is seed 1's policy, the recipe's own,
   <folder>_seed_<k>/run seed k's, all adapted on the recipe's pool in <folder>; a missing one is adapted by the
   recipe (with --quick, only the policies that exist are used).
2. Every (setting, scheduler, adaptation seed) is tested on episode seeds --seed .. --seed + --num-seeds - 1
   (the same for every scheduler, so comparisons are paired by seed) into
   <output>/results/<setting>/seeds_<first>-<last>/<scheduler>[/seed_<k>] by run_baseline.py or run_plm.py --test; a finished
   folder is skipped, so a rerun continues.
3. <output>/cjs_results.csv: one row per (setting, scheduler, adaptation seed, episode seed) with the
   episode's average JCT; <output>/cjs_tables.md: per setting, every scheduler's mean average JCT
   (Trailblazer: mean and spread over its adaptation seeds), and Trailblazer against Decima seed by seed.
   The figures are drawn from the CSV by ../make_figures.py.
"""
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import run_baseline
import run_plm
from common import settings as cli
from common.errors import exit_on_input_error
from common.files import atomic_write_text
from common.reproduction import Recipe, pending_runs, planned_runs, trailblazer_policies
from common.settings import setting
from plm_special.checkpoint import policy_folder, read_settings
from spark_sched_sim.datasets import load_dataset, resolve_data_root
from spark_sched_sim.named_settings import SETTINGS
from spark_sched_sim.results import paired_comparison, read_per_seed

TREE = Path(__file__).resolve().parent
BASELINES = ["fifo", "fair", "decima"]
POLICIES = [*BASELINES, "trailblazer"]
OWN_SEED = 1  # every recipe's own adaptation seed
RECIPES = {"best-of-4": Recipe(TREE / "recipes" / "tpch_best_of_n.sh", "tpch_best_of_n", OWN_SEED,
                               "pool_decima_best_of_4", "cjs", {"ROLLOUTS": "4"}, ("--sample", "--temperature", "0.5")),
           "decima-pool": Recipe(TREE / "recipes" / "tpch_smollm2.sh", "tpch_smollm2", OWN_SEED, "pool_decima", "cjs")}
QUICK = {"settings": ["default", "fewer-executors"], "policies": POLICIES, "num_seeds": 2}


@dataclass
class Settings:
    settings: list[str] = setting(list(SETTINGS), "named settings to run", choices=list(SETTINGS))
    policies: list[str] = setting(POLICIES, "schedulers to run", choices=POLICIES)
    recipe: str = setting("best-of-4", "how Trailblazer's policies are adapted and decoded (see above)",
                          choices=list(RECIPES))
    adaptation_seeds: list[int] = setting([OWN_SEED, 2, 3], "Trailblazer's adaptation seeds (one saved policy each)")
    policy_dirs: list[str] | None = setting(None, "saved Trailblazer policies to test instead, one per adaptation "
                                                  "seed (folders of run_plm.py --train; none is adapted)")
    plm_dir: str | None = setting(None, "where the backbones' <plm-type>/<plm-size>/ folders live (run_plm.py's "
                                        "default if unset)")
    seed: int = setting(1, "first episode seed (test seeds: --seed, --seed + 1, ...)")
    num_seeds: int = setting(20, "episode seeds per setting", minimum=1)
    quick: bool = setting(False, f"a first look: settings {' '.join(QUICK['settings'])}, "
                                 f"{QUICK['num_seeds']} seeds, existing policies only")
    data_dir: str | None = setting(None, "data root (default: $TRAILBLAZER_DATA, else the repository's data/)")
    output: str = setting("artifacts/reproduce", "where the results, CSV and tables go")


def run_test(setting_name: str, policy: str, saved: Path | None, folder: Path, s: Settings, data_root: Path):
    named = SETTINGS[setting_name]
    common = ["--dataset", "tpch", "--num-executors", str(named.num_executors), "--job-arrival-cap",
              str(named.job_arrival_cap), "--seed", str(s.seed), "--num-seeds", str(s.num_seeds),
              "--data-dir", str(data_root), "--results-dir", str(folder), "--overwrite"]
    if policy == "trailblazer":
        plm_dir = ["--plm-dir", s.plm_dir] if s.plm_dir else []
        run_plm.main(["--test", "--model-dir", str(saved), *RECIPES[s.recipe].test_flags, *plm_dir, *common])
    else:
        run_baseline.main(["--sched", policy, "--quiet", *common])


def collect(runs) -> pd.DataFrame:
    rows = []
    for setting_name, policy, seed, _, folder in runs:
        if (folder / "summary.json").is_file():
            for episode_seed, jct in read_per_seed(folder).items():
                rows.append({"setting": setting_name, "policy": policy, "seed": seed, "episode_seed": episode_seed,
                             "avg_jct_s": jct})
    return pd.DataFrame(rows)


def tables(results: pd.DataFrame) -> str:
    """Markdown: per setting, every scheduler's mean average JCT (Trailblazer: mean and spread over its
    adaptation seeds) and Trailblazer against Decima seed by seed."""
    lines = []
    for setting_name, group in results.groupby("setting", sort=False):
        per_run = group.groupby(["policy", "seed"], dropna=False, sort=False)["avg_jct_s"].mean().reset_index()
        baselines = per_run[per_run["policy"] != "trailblazer"].set_index("policy")["avg_jct_s"]
        episodes = group["episode_seed"].nunique()
        lines += [f"**{setting_name}** ({SETTINGS[setting_name].differs}; {episodes} episode seed{'s' * (episodes > 1)})",
                  "", "| scheduler | average JCT (s) | spread over adaptation seeds | against Decima, seed by seed |",
                  "|---|---|---|---|"]
        for policy, jct in baselines.sort_values().items():
            lines.append(f"| {policy} | {jct:.2f} | | |")
        ours = group[group["policy"] == "trailblazer"]
        if len(ours):
            means = ours.groupby("seed")["avg_jct_s"].mean()
            versus = ""
            decima = group[group["policy"] == "decima"]
            if len(decima):  # per episode seed: the mean over adaptation seeds against Decima
                c = paired_comparison(ours.groupby("episode_seed")["avg_jct_s"].mean().to_dict(),
                                      decima.set_index("episode_seed")["avg_jct_s"].to_dict())
                versus = (f"{c['mean_difference_s']:+.2f} s ({c['mean_difference_s'] / c['reference_mean_jct_s']:+.1%}),"
                          f" wins {c['wins']} of {c['seeds']}")
            lines.append(f"| **trailblazer** ({len(means)} seed{'s' * (len(means) > 1)}) | **{means.mean():.2f}** | {means.std(ddof=0):.2f} | "
                         f"{versus} |")
        lines.append("")
    return "\n".join(lines)


@exit_on_input_error
def main(argv=None):
    s, given = cli.parse(Settings, argv, __doc__)
    if s.quick:
        s.settings = given.get("settings", QUICK["settings"])
        s.policies = given.get("policies", QUICK["policies"])
        s.num_seeds = given.get("num_seeds", QUICK["num_seeds"])
    output = Path(s.output) if not s.quick or "output" in given else Path(s.output + "_quick")
    data_root = resolve_data_root(s.data_dir)
    load_dataset(data_root, "tpch")  # the data every setting needs, before any work
    policies = trailblazer_policies(RECIPES[s.recipe], s.policy_dirs, s.adaptation_seeds, s.quick, data_root,
                                    lambda folder: read_settings(policy_folder(folder))) \
        if "trailblazer" in s.policies else {}
    part = f"seeds_{s.seed}-{s.seed + s.num_seeds - 1}"
    runs = list(planned_runs(s.settings, s.policies, lambda name: output / "results" / name / part, policies))
    for setting_name, policy, _, saved, folder in pending_runs(runs):
        run_test(setting_name, policy, saved, folder, s, data_root)
    results = collect(runs)
    atomic_write_text(output / "cjs_results.csv", results.to_csv(index=False))
    atomic_write_text(output / "cjs_tables.md", tables(results))
    print(tables(results))
    print(f"results of {len(runs)} runs: {output / 'cjs_results.csv'}, {output / 'cjs_tables.md'}")


if __name__ == "__main__":
    main()
