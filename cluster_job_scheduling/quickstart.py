"""The main job's CJS part on the embedded default: synthetic job DAGs, a small cluster, then a JCT table.

    python quickstart.py [--public-data DATA_ROOT]

1. generates the synthetic data set into artifacts/quickstart/data (once; same seed, same files);
2. evaluates FIFO and Fair on test seeds 1..5, and Decima if its weights are in the public data root
   (--public-data; default $TRAILBLAZER_DATA, else the repository's data/, where download_data.py writes);
3. Trailblazer: a best-of-N experience pool (every training seed played by FIFO and Fair, and by exploring
   rollouts of both; the episode with the lowest average JCT of each seed kept), a short adaptation of
   SmolLM2-135M with model selection on validation seeds, and its test on seeds 1..5; an interrupted
   adaptation resumes. The pool and adaptation do not depend on the public data;
4. prints the table, what each row is, and writes the table to artifacts/quickstart/cjs_table.csv.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import generate_exp_pool
import run_baseline
import run_plm
from common import settings as cli
from common.errors import exit_on_input_error
from common.settings import setting
from spark_sched_sim.datasets import resolve_data_root
from spark_sched_sim.synthetic import generate

SETTING = ["--dataset", "synthetic", "--num-executors", "20", "--job-arrival-cap", "30"]
TEST = ["--seed", "1", "--num-seeds", "5"]
TEACHERS, ROLLOUTS, EXPLORE, POOL_SIZE, POOL_SEED = "fifo,fair", 8, 0.05, 6000, 100
ITERATIONS, STEPS, BATCH_SIZE = 2, 240, 4
ADAPTATION = ["--plm-type", "smollm2", "--plm-size", "135m", "--which-layer", "3", "--peft-rank", "32", "--K", "20",
              "--num-iters", str(ITERATIONS), "--num-steps-per-iter", str(STEPS), "--batch-size", str(BATCH_SIZE),
              "--lr", "1e-3", "--warmup-steps", "9", "--valid-seeds", "1001"]
ROLES = {
    "fifo": "baseline: the original's FIFO (each job capped at half the executors); a teacher of the pool",
    "fair": "baseline: Fair (each job capped at executors / active jobs); a teacher of the pool",
    "decima": "baseline: Decima (public weights; not in the pool, for reference)",
}


@dataclass
class Settings:
    output_dir: str = setting("artifacts/quickstart", "data, pool, adapted policy, results and the table go here")
    public_data: str | None = setting(None, "data root with the public Decima weights (Decima's row); default: "
                                            "$TRAILBLAZER_DATA, else the repository's data/")


@exit_on_input_error
def main(argv=None):
    args, _ = cli.parse(Settings, argv, __doc__)
    output = Path(args.output_dir)
    data_root, results = output / "data", output / "results"
    if not (data_root / "cjs" / "synthetic").is_dir():
        print(f"generated {generate(data_root, 'synthetic', seed=0)}")
    data = ["--data-dir", str(data_root)]
    decima = resolve_data_root(args.public_data) / "cjs/models/decima/model.pt"
    schedulers = ["fifo", "fair"] + (["decima"] if decima.is_file() else [])
    if "decima" not in schedulers:
        print(f"decima: skipped, no weights at {decima} (`make download` fetches them; or "
              "`make demo DATA=<data root>`)")

    rows = {}
    for name in schedulers:
        weights = ["--state-dict-path", str(decima)] if name == "decima" else []
        rows[name] = run_baseline.main(["--sched", name, *SETTING, *TEST, *data, *weights, "--results-dir",
                                        str(results / name), "--overwrite", "--quiet"])

    pool = output / "pool_best_of_n"
    if not pool.exists():
        generate_exp_pool.main(["--scheds", TEACHERS, "--rollouts-per-seed", str(ROLLOUTS), "--explore",
                                str(EXPLORE), "--keep-best", "1", "--pool-size", str(POOL_SIZE), "--complete-episode",
                                "--seed", str(POOL_SEED), *SETTING, *data, "--output", str(pool)])
    run = output / "trailblazer"
    common = [*SETTING, *TEST, *data, "--model-dir", str(run), "--results-dir", str(results / "trailblazer"),
              "--overwrite"]
    if not (output / "trailblazer.done").exists():
        resume = ["--resume"] if (run / "checkpoint" / "training_state.json").is_file() else []
        run_plm.main(["--train", "--exp-pool-path", str(pool), *ADAPTATION, *common, *resume])
        (output / "trailblazer.done").touch()
    rows["trailblazer"] = run_plm.main(["--test", *common])
    metadata = json.loads((pool / "metadata.json").read_text())
    roles = {**ROLES, "trailblazer": (
        f"SmolLM2-135M (early exit after block 3, LoRA rank 32) adapted on a best-of-{2 * ROLLOUTS} pool "
        f"({metadata['statistics']['num_episodes']} seeds, each the best of FIFO, Fair and {ROLLOUTS - 1} "
        f"exploring rollouts of each; average JCT {metadata['pool_avg_jct_s']:.1f} s): {ITERATIONS} iterations "
        f"of {STEPS // BATCH_SIZE} batches of {BATCH_SIZE} windows, the best iteration on seed 1001")}

    table = pd.DataFrame({name: {"average JCT (s)": s["avg_jct_s"], "std across seeds (s)": s["std_jct_s_across_seeds"]}
                          for name, s in rows.items()}).T
    table.index.name = "scheduler"
    table.to_csv(output / "cjs_table.csv")
    print("\nCJS on synthetic DAGs (20 executors, 30 jobs, seeds 1..5):")
    print(table.to_string(float_format=lambda x: f"{x:.2f}"))
    for name in rows:
        print(f"  {name}: {roles[name]}")
    print(f"written to {output / 'cjs_table.csv'}")


if __name__ == "__main__":
    main()
