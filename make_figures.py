"""The evaluation's figures, drawn from the CSVs that reproduce.py writes (nothing is rerun), and the
framework figure.

    python make_figures.py                     # every figure whose CSV exists, into images/
    python make_figures.py --framework-only    # images/trailblazer.png alone

Inputs: adaptive_bitrate_streaming/artifacts/reproduce/abr_results.csv (one row per setting, policy,
adaptation seed and trace) and cluster_job_scheduling/artifacts/reproduce/cjs_results.csv (one row per
setting, scheduler, adaptation seed and episode seed), or the files given. Outputs in --images-dir:
default.png (the default setting of both tasks side by side: mean QoE, average JCT; Trailblazer's bar is
the mean over its adaptation seeds, the line their range), abr_settings_box.png and cjs_settings_box.png
(per-trace QoE and per-seed JCT in every setting), abr_qoe_cdf.png (CDFs of per-trace QoE per setting), and
trailblazer.png (state encoder, LoRA-adapted LLM, action head and the APC router).
"""
import argparse
import itertools
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parent
ABR_CSV = ROOT / "adaptive_bitrate_streaming" / "artifacts" / "reproduce" / "abr_results.csv"
CJS_CSV = ROOT / "cluster_job_scheduling" / "artifacts" / "reproduce" / "cjs_results.csv"
OURS = "trailblazer"
BASELINE_COLORS = [f"C{k}" for k in range(10) if k != 3]  # C3 (red) is Trailblazer's alone


def save(figure, path: Path) -> None:
    """Written under a temporary name, then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(temporary, dpi=130, bbox_inches="tight")
    plt.close(figure)
    temporary.replace(path)
    print(f"wrote {path}")


def per_run(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The metric per (setting, policy, adaptation seed): the mean over traces or episode seeds."""
    return results.groupby(["setting", "policy", "seed"], dropna=False, sort=False)[metric].mean().reset_index()


def bars(axis, runs: pd.DataFrame, metric: str, label: str, higher_is_better: bool) -> None:
    means = runs.groupby("policy", sort=False)[metric].agg(["mean", "min", "max"])
    means = means.sort_values("mean", ascending=not higher_is_better)
    colors = ["C3" if policy == OURS else "C0" for policy in means.index]
    axis.bar(range(len(means)), means["mean"], color=colors)
    for i, (policy, row) in enumerate(means.iterrows()):
        if policy == OURS and row["max"] > row["min"]:
            axis.plot([i, i], [row["min"], row["max"]], color="black", linewidth=1.5)
    axis.set_xticks(range(len(means)), means.index, rotation=30, ha="right")
    axis.set_ylabel(label)
    axis.grid(alpha=0.3, axis="y")


def default_bars(abr: pd.DataFrame | None, cjs: pd.DataFrame | None, path: Path) -> None:
    panels = [(data, *spec) for data, spec in ((abr, ("qoe", "ABR: mean QoE (higher is better)", True)),
                                                (cjs, ("avg_jct_s", "CJS: average JCT, s (lower is better)", False)))
              if data is not None]
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for axis, (data, metric, label, higher) in zip(axes[0], panels):
        bars(axis, per_run(data[data["setting"] == "default"], metric), metric, label, higher)
        axis.set_title("default setting")
    save(figure, path)


def setting_boxes(results: pd.DataFrame, metric: str, label: str, path: Path) -> None:
    settings = list(dict.fromkeys(results["setting"]))
    figure, axes = plt.subplots(1, len(settings), figsize=(4.2 * len(settings), 4), squeeze=False)
    for axis, setting in zip(axes[0], settings):
        group = results[results["setting"] == setting]
        order = group.groupby("policy", sort=False)[metric].mean().sort_values().index
        boxes = axis.boxplot([group[group["policy"] == p][metric] for p in order], showfliers=False,
                             patch_artist=True)
        for box, policy in zip(boxes["boxes"], order):
            box.set_facecolor("C3" if policy == OURS else "C0")
        axis.set_xticks(range(1, len(order) + 1), order, rotation=30, ha="right")
        axis.set_title(setting)
        axis.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel(label)
    save(figure, path)


def qoe_cdfs(results: pd.DataFrame, path: Path) -> None:
    settings = list(dict.fromkeys(results["setting"]))
    figure, axes = plt.subplots(1, len(settings), figsize=(4.2 * len(settings), 3.6), squeeze=False)
    for axis, setting in zip(axes[0], settings):
        group = results[results["setting"] == setting]
        baselines = itertools.cycle(BASELINE_COLORS)
        for policy, rows in group.groupby("policy", sort=False):
            values = rows["qoe"].sort_values().to_numpy()
            axis.plot(values, [(k + 1) / len(values) for k in range(len(values))], label=policy,
                      color="C3" if policy == OURS else next(baselines), linewidth=2.2 if policy == OURS else 1.2)
        axis.set_title(setting)
        axis.set_xlabel("per-trace mean QoE")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("CDF")
    axes[0][-1].legend(fontsize=8)
    save(figure, path)


def framework(path: Path) -> None:
    """Trailblazer's two parts: network alignment (left to right) and APC (the router above it)."""
    figure, axis = plt.subplots(figsize=(10, 4.2))
    axis.set_xlim(0, 10)
    axis.set_ylim(0, 4.2)
    axis.axis("off")
    boxes = {
        "state": (0.1, 0.6, 1.7, 1.1, "network state\n(ABR: throughput,\nbuffer, delays;\nCJS: job DAGs)", "#eeeeee"),
        "encoder": (2.2, 0.6, 1.6, 1.1, "state encoder\n(features ->\nLLM tokens)", "#cfe2f3"),
        "llm": (4.2, 0.4, 2.0, 1.5, "LLM backbone\nfrozen weights\n+ LoRA adapters", "#f4cccc"),
        "head": (6.6, 0.6, 1.5, 1.1, "action head\n(return-conditioned\noffline RL)", "#d9ead3"),
        "action": (8.5, 0.6, 1.4, 1.1, "action\n(bitrate / stage,\nexecutors)", "#eeeeee"),
        "router": (2.2, 2.7, 2.4, 1.1, "APC router\ndifficulty from network\nconditions, threshold", "#fff2cc"),
        "fast": (6.6, 2.7, 1.5, 1.1, "fast policy\n(simple cases)", "#d9ead3"),
    }
    for x, y, w, h, text, color in boxes.values():
        axis.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", facecolor=color, edgecolor="black"))
        axis.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)

    def arrow(start, end, text=None, style="-|>"):
        axis.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=14, color="black"))
        if text:
            axis.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, text, ha="center", fontsize=8)

    arrow((1.85, 1.15), (2.15, 1.15))
    arrow((3.85, 1.15), (4.15, 1.15))
    arrow((6.25, 1.15), (6.55, 1.15))
    arrow((8.15, 1.15), (8.45, 1.15))
    arrow((0.95, 1.75), (2.15, 3.25), "request")
    arrow((3.4, 2.65), (4.9, 1.95), "difficult: batched")
    arrow((4.65, 3.25), (6.55, 3.25), "simple")
    arrow((8.15, 3.25), (9.2, 1.75))
    axis.text(5.1, 0.05, "network alignment: trained offline on experience of conventional policies",
              ha="center", fontsize=9, style="italic")
    axis.text(5.1, 4.05, "adaptive policy collaboration (APC): the LLM where it matters, for many clients",
              ha="center", fontsize=9, style="italic")
    save(figure, path)


def read(path: Path, name: str) -> pd.DataFrame | None:
    if not path.is_file():
        print(f"no {name} results at {path} (python reproduce.py in its tree writes them); its figures are left out")
        return None
    return pd.read_csv(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--abr-csv", type=Path, default=ABR_CSV)
    parser.add_argument("--cjs-csv", type=Path, default=CJS_CSV)
    parser.add_argument("--images-dir", type=Path, default=ROOT / "images")
    parser.add_argument("--framework-only", action="store_true")
    args = parser.parse_args(argv)
    framework(args.images_dir / "trailblazer.png")
    if args.framework_only:
        return
    abr, cjs = read(args.abr_csv, "ABR"), read(args.cjs_csv, "CJS")
    if abr is None and cjs is None:
        print("error: no results to draw; run reproduce.py in adaptive_bitrate_streaming/ or cluster_job_scheduling/ "
              "first, or pass --abr-csv/--cjs-csv", file=sys.stderr)
        sys.exit(2)
    default_bars(abr, cjs, args.images_dir / "default.png")
    if abr is not None:
        setting_boxes(abr, "qoe", "per-trace mean QoE", args.images_dir / "abr_settings_box.png")
        qoe_cdfs(abr, args.images_dir / "abr_qoe_cdf.png")
    if cjs is not None:
        setting_boxes(cjs, "avg_jct_s", "average JCT per seed (s)", args.images_dir / "cjs_settings_box.png")


if __name__ == "__main__":
    main()
