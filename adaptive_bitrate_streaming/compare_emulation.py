"""The real player against the simulator, trace by trace, on the same traces and the same bytes.

    python compare_emulation.py --policies bba mpc trailblazer

For each real-player result folder (emulate.py's; by default <emulation-dir>/results/<trace>/<policy>), the
simulator streams the same traces with the same policy: the simulator's fixed order and start pointers, no
delay noise, the emulation video's segment sizes (run_baseline.py, or run_plm.py --test for trailblazer with
the --model-dir the emulation used), into the folder's sibling `<policy>.simulated` (kept and reused). Then
it writes the per-trace comparison (CSV), a markdown table and a figure: per-trace QoE, real against
simulated, and the means.
"""
import csv
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from abr_sim.datasets import find_trace_folder  # noqa: E402
from abr_sim.results import read_per_trace  # noqa: E402
from common import settings as cli  # noqa: E402
from common.errors import InputError, exit_on_input_error  # noqa: E402
from common.files import atomic_write_text  # noqa: E402
from common.settings import setting  # noqa: E402

TREE = Path(__file__).resolve().parent
SIMULATED = {"bba", "mpc", "robustmpc", "trailblazer"}  # apc's routing needs the server's clock: not simulated here


@dataclass
class Settings:
    policies: list[str] = setting(["bba", "mpc", "trailblazer"], "policies whose default result folders are compared")
    trace: str = setting("fcc-test", "trace set of the default result folders")
    emulation_dir: str = setting("artifacts/emulation", "emulate.py's --emulation-dir")
    real: list[str] | None = setting(None, "real-player result folders to compare instead of the defaults")
    output_dir: str | None = setting(None, "where per_trace.csv and table.md go (default: "
                                           "<emulation-dir>/comparison/<trace>)")
    figure: str = setting("../images/emulation_vs_simulation.png", "the figure")
    overwrite: bool = setting(False, "replace an existing comparison and figure")


def simulation_command(policy: str, model_dir: str | None, common: list[str]) -> list[str]:
    """The simulator run of a real-player policy. The server behind the player builds MPC and RobustMPC with
    fresh bandwidth-error histories for every session (one trace each), so the simulator does too."""
    if policy == "trailblazer":
        return ["run_plm.py", "--test", "--model-dir", model_dir, *common]
    fresh = ["--fresh-episodes"] if policy in ("mpc", "robustmpc") else []
    return ["run_baseline.py", "--model", policy, *fresh, *common]


def simulate(real: Path, summary: dict, simulated: Path) -> None:
    """The simulator on the real run's traces, policy and video, unless done already."""
    run = summary["settings"]
    if (simulated / "summary.json").is_file():
        return
    policy = run["policy"]
    if policy not in SIMULATED:
        raise InputError(f"{real} is a run of {policy}, which this comparison does not simulate; compare "
                         f"{', '.join(sorted(SIMULATED))}")
    traces = str(find_trace_folder(Path(run["data_root"]), run["trace"]).resolve())
    video_data = str((Path(run["emulation_dir"]) / "data").resolve())
    common = ["--trace", traces, "--trace-num", str(summary["num_traces"]), "--fixed-order", "--video", run["video"],
              "--data-dir", video_data, "--results-dir", str(simulated)]
    result = subprocess.run([sys.executable, *simulation_command(policy, run["model_dir"], common)], cwd=TREE,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise InputError(f"simulating {real} failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")


def compare(real: Path) -> list[dict]:
    """Per trace: the real player's and the simulator's QoE and its parts, and the player's startup and stalls."""
    if not (real / "summary.json").is_file():
        raise InputError(f"{real} holds no emulate.py results (no summary.json); run emulate.py first", "real")
    summary = json.loads((real / "summary.json").read_text())
    simulated = real.with_name(real.name + ".simulated")
    simulate(real, summary, simulated)
    players = {p["trace"]: p for p in summary["players"]}
    sim = {row["trace"]: row for row in read_per_trace(simulated)}
    rows = []
    for row in read_per_trace(real):
        player, other = players[row["trace"]], sim[row["trace"]]
        rows.append({"policy": summary["settings"]["policy"], "trace": row["trace"], "segments": player["segments"],
                     "real_qoe": row["qoe"], "sim_qoe": other["qoe"],
                     "real_bitrate_mbps": row["bitrate_mbps"], "sim_bitrate_mbps": other["bitrate_mbps"],
                     "real_rebuffer_s": row["rebuffer_s"], "sim_rebuffer_s": other["rebuffer_s"],
                     "startup_ms": player["startup_ms"] or 0.0, "stalls": len(player["stalls_ms"])})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| policy | traces | real player: mean QoE | simulator: mean QoE | real - simulated | real: bitrate (Mbps), "
             "rebuffer (s/chunk) | simulator: bitrate, rebuffer | real: startup, stalls |",
             "|---|---|---|---|---|---|---|---|"]
    for policy in dict.fromkeys(r["policy"] for r in rows):
        mine = [r for r in rows if r["policy"] == policy]
        mean = {key: float(np.mean([r[key] for r in mine])) for key in mine[0] if key not in ("policy", "trace")}
        lines.append(f"| {policy} | {len(mine)} | {mean['real_qoe']:.3f} | {mean['sim_qoe']:.3f} | "
                     f"{mean['real_qoe'] - mean['sim_qoe']:+.3f} | {mean['real_bitrate_mbps']:.3f}, "
                     f"{mean['real_rebuffer_s']:.4f} | {mean['sim_bitrate_mbps']:.3f}, {mean['sim_rebuffer_s']:.4f} | "
                     f"{mean['startup_ms'] / 1000:.1f} s, {sum(r['stalls'] for r in mine)} |")
    return "\n".join(lines) + "\n"


def draw(rows: list[dict], path: Path) -> None:
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    figure, (scatter, bars) = plt.subplots(1, 2, figsize=(10, 4.2))
    for policy in policies:
        mine = [r for r in rows if r["policy"] == policy]
        scatter.scatter([r["sim_qoe"] for r in mine], [r["real_qoe"] for r in mine], label=policy, alpha=0.8)
    low = min(min(r["sim_qoe"], r["real_qoe"]) for r in rows)
    high = max(max(r["sim_qoe"], r["real_qoe"]) for r in rows)
    scatter.plot([low, high], [low, high], color="grey", linewidth=0.8, linestyle="--")
    scatter.set(xlabel="simulator: mean QoE of the trace", ylabel="real player: mean QoE of the trace",
                title="per trace")
    scatter.legend()
    x = np.arange(len(policies))
    for offset, key, label in ((-0.2, "sim_qoe", "simulator"), (0.2, "real_qoe", "real player")):
        bars.bar(x + offset, [np.mean([r[key] for r in rows if r["policy"] == p]) for p in policies], 0.4, label=label)
    bars.set_xticks(x, policies)
    bars.set(ylabel="mean QoE", title=f"mean over {len({r['trace'] for r in rows})} traces")
    bars.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.stem}.partial.png")
    figure.savefig(staging, dpi=110)
    plt.close(figure)
    os.replace(staging, path)


@exit_on_input_error
def main(argv=None):
    s, _ = cli.parse(Settings, argv, __doc__)
    emulation = Path(s.emulation_dir)
    reals = [Path(r) for r in s.real] if s.real else [emulation / "results" / s.trace / p for p in s.policies]
    output = Path(s.output_dir) if s.output_dir else emulation / "comparison" / s.trace
    figure = Path(s.figure)
    for path in (output / "per_trace.csv", output / "table.md", figure):
        if path.exists() and not s.overwrite:
            raise InputError(f"{path} exists; write elsewhere or replace it", "output_dir", fixes=("overwrite",))
    rows = [row for real in reals for row in compare(real)]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output / "per_trace.csv", text.getvalue())
    atomic_write_text(output / "table.md", table(rows))
    draw(rows, figure)
    print(table(rows), end="")
    print(f"per-trace comparison in {output}/per_trace.csv, figure {figure}")
    return rows


if __name__ == "__main__":
    main()
