"""The main job's CJS part on the embedded default: synthetic job DAGs, a small cluster, then a JCT table.

    python quickstart.py [--models-from DATA_ROOT]

1. generates the synthetic data set into artifacts/quickstart/data (once; same seed, same files);
2. evaluates FIFO, Fair and Decima (its original weights are looked up under --models-from, a data root such
   as the one download_data.py fills; without them Decima is skipped) on test seeds 1..5;
3. Trailblazer: an experience pool from Decima (from Fair without its weights), a short adaptation of
   SmolLM2-135M (early exit after block 3, LoRA rank 32) with model selection on seed 1001, and its test on
   seeds 1..5; an interrupted adaptation resumes;
4. prints the table and writes it to artifacts/quickstart/cjs_table.csv.
"""
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import generate_exp_pool
import run_baseline
import run_plm
from common import settings as cli
from common.errors import exit_on_input_error
from common.settings import setting
from spark_sched_sim.synthetic import generate

SETTING = ["--dataset", "synthetic", "--num-executors", "20", "--job-arrival-cap", "30"]
TEST = ["--seed", "1", "--num-seeds", "5"]
ADAPTATION = ["--plm-type", "smollm2", "--plm-size", "135m", "--which-layer", "3", "--peft-rank", "32", "--K", "20",
              "--num-iters", "3", "--num-steps-per-iter", "240", "--batch-size", "8", "--lr", "5e-4",
              "--valid-seeds", "1001"]


@dataclass
class Settings:
    output_dir: str = setting("artifacts/quickstart", "data, pool, adapted policy, results and the table go here")
    models_from: str | None = setting(None, "a data root holding cjs/models/decima/model.pt (for Decima)")


@exit_on_input_error
def main(argv=None):
    args, _ = cli.parse(Settings, argv, __doc__)
    output = Path(args.output_dir)
    data_root, results = output / "data", output / "results"
    if not (data_root / "cjs" / "synthetic").is_dir():
        print(f"generated {generate(data_root, 'synthetic', seed=0)}")
    data = ["--data-dir", str(data_root)]
    decima = Path(args.models_from) / "cjs/models/decima/model.pt" if args.models_from else None
    schedulers = ["fifo", "fair"] + (["decima"] if decima and decima.is_file() else [])
    if "decima" not in schedulers:
        print("decima: skipped, no weights (python ../download_data.py --only cjs/models, then --models-from "
              "../cluster_job_scheduling/data); the pool comes from Fair")

    rows = {}
    for name in schedulers:
        weights = ["--state-dict-path", str(decima)] if name == "decima" else []
        rows[name] = run_baseline.main(["--sched", name, *SETTING, *TEST, *data, *weights, "--results-dir",
                                        str(results / name), "--overwrite", "--quiet"])

    source = "decima" if "decima" in schedulers else "fair"
    pool = output / f"pool_{source}"
    if not pool.exists():
        weights = ["--state-dict-path", str(decima)] if source == "decima" else []
        generate_exp_pool.main(["--scheds", source, "--pool-size", "3000", "--complete-episode", "--seed", "100",
                                *SETTING, *data, *weights, "--output", str(pool)])
    run = output / "trailblazer"
    common = [*SETTING, *TEST, *data, "--model-dir", str(run), "--results-dir", str(results / "trailblazer"),
              "--overwrite"]
    if not (output / "trailblazer.done").exists():
        resume = ["--resume"] if (run / "checkpoint" / "training_state.json").is_file() else []
        run_plm.main(["--train", "--exp-pool-path", str(pool), *ADAPTATION, *common, *resume])
        (output / "trailblazer.done").touch()
    rows["trailblazer"] = run_plm.main(["--test", *common])

    table = pd.DataFrame({name: {"average JCT (s)": s["avg_jct_s"], "std across seeds (s)": s["std_jct_s_across_seeds"]}
                          for name, s in rows.items()}).T
    table.index.name = "scheduler"
    table.to_csv(output / "cjs_table.csv")
    print("\nCJS on synthetic DAGs (20 executors, 30 jobs, seeds 1..5):")
    print(table.to_string(float_format=lambda x: f"{x:.2f}"))
    print(f"written to {output / 'cjs_table.csv'}")


if __name__ == "__main__":
    main()
