"""What both trees' reproduce.py share: which saved Trailblazer policies are tested (one per adaptation seed,
adapted by the task's recipe when missing) and the list of test runs with their results folders."""
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError


@dataclass(frozen=True)
class Recipe:
    """A task's recipe: its script, its own adaptation seed (output folder artifacts/<name>), the pool that
    the other seeds adapt on (inside that folder), the task its policies are for, the variables that select
    the script's variant (e.g. WIDE=80), and the flags of run_plm.py --test its policies are tested with."""

    script: Path
    name: str
    own_seed: int
    pool: str
    task: str
    environment: dict[str, str] = field(default_factory=dict)
    test_flags: tuple[str, ...] = ()

    def policy_dir(self, seed: int) -> Path:
        return Path("artifacts") / (self.name if seed == self.own_seed else f"{self.name}_seed_{seed}") / "run"

    def adapt(self, seed: int, data_root: Path) -> None:
        """Adapt the policy of one seed with the recipe (its pool, adaptation and model selection only)."""
        environment = {**os.environ, **self.environment, "DATA": str(data_root), "SEED": str(seed),
                       "ADAPT_ONLY": "1", "OUT": str(self.policy_dir(seed).parent),
                       "POOL": str(self.policy_dir(self.own_seed).parent / self.pool),
                       "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        subprocess.run(["bash", str(self.script)], cwd=self.script.parent.parent, env=environment, check=True)


def check_policy(folder: Path, task: str, read_saved) -> int:
    """The adaptation seed of a saved policy of `task`, or one clear error (another task's, or no policy);
    `read_saved(folder)` reads a saved policy's settings.json."""
    saved = read_saved(folder)
    found = saved.get("pool_metadata", {}).get("task")
    if found != task:
        raise InputError(f"{folder} is a saved policy of task '{found}', not {task.upper()}; pass the folder of a "
                         f"{task.upper()} policy (run_plm.py in its tree)")
    return saved["seed"]


def trailblazer_policies(recipe: Recipe, policy_dirs, adaptation_seeds, quick: bool, data_root: Path,
                         read_saved) -> dict[int, Path]:
    """Adaptation seed -> saved policy: `policy_dirs` (each labelled with its saved seed), else the recipe's
    folders, adapted when missing (with `quick`, left out)."""
    if policy_dirs:
        policies = {check_policy(Path(f), recipe.task, read_saved): Path(f) for f in policy_dirs}
        if len(policies) < len(policy_dirs):
            raise InputError("two of --policy-dirs were adapted with the same seed; pass one policy per seed")
        return policies
    policies = {}
    for seed in adaptation_seeds:
        folder = recipe.policy_dir(seed)
        if not (folder / "best_model" / "settings.json").is_file():
            if quick:
                print(f"--quick: no Trailblazer policy of adaptation seed {seed} in {folder} (the recipe adapts it: "
                      f"reproduce.py without --quick, or recipes/{recipe.script.name}); left out")
                continue
            recipe.adapt(seed, data_root)
        check_policy(folder, recipe.task, read_saved)
        policies[seed] = folder
    return policies


def planned_runs(settings, policies_to_run, root_of, trailblazer: dict[int, Path]):
    """(setting, policy, adaptation seed or None, saved policy or None, results folder) of every test;
    `root_of(setting)` is the setting's results folder."""
    for name in settings:
        root = root_of(name)
        for policy in policies_to_run:
            if policy != "trailblazer":
                yield name, policy, None, None, root / policy
                continue
            for seed, folder in trailblazer.items():
                yield name, policy, seed, folder, root / policy / f"seed_{seed}"


def pending_runs(runs):
    """The planned runs whose results folder is not complete yet. A complete folder that holds another saved
    policy's results (a different recipe or --policy-dirs into the same output) is an error, not a result."""
    pending = []
    for run in runs:
        *_, saved, folder = run
        summary = folder / "summary.json"
        if not summary.is_file():
            pending.append(run)
            continue
        tested = json.loads(summary.read_text())["settings"].get("model_dir")
        if saved is not None and Path(tested).resolve() != Path(saved).resolve():
            raise InputError(f"{folder} holds the results of the policy in {tested}, not {saved}; pass another "
                             f"--output")
    return pending
