"""Seeded synthetic traces and videos, written in the public data's formats (the quick start's default data).

Traces are Genet-style: a bandwidth level drawn uniformly from [min_mbps, max_mbps] holds for a random
number of samples (1..max_hold) before a new level is drawn; every sample carries multiplicative
Gaussian noise; samples are `interval_s` apart with a little jitter. Videos have 49 chunks per level whose
sizes are the level's bitrate times 4 s, scaled by a per-chunk complexity factor shared by all levels and by
a size scale (an encoder that overshoots or undershoots the nominal bitrates: 1 = on target).
Same seed, same files.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import InputError
from common.files import atomic_folder

from .constants import TOTAL_VIDEO_CHUNKS, VIDEO_BIT_RATE, VIDEO_CHUNK_LEN_MS


@dataclass
class TraceConfig:
    min_mbps: float = 0.2
    max_mbps: float = 3.0
    max_hold: int = 30  # samples a level holds at most
    noise: float = 0.1  # std of the multiplicative Gaussian noise
    interval_s: float = 1.0
    duration_s: float = 320.0
    floor_mbps: float = 0.05  # no sample goes below this


def synthetic_trace(rng: np.random.Generator, config: TraceConfig) -> tuple[list[float], list[float]]:
    times, bandwidths = [], []
    time, hold, level = 0.0, 0, 0.0
    while time <= config.duration_s:
        if hold == 0:
            level = rng.uniform(config.min_mbps, config.max_mbps)
            hold = int(rng.integers(1, config.max_hold + 1))
        hold -= 1
        bandwidth = max(level * (1.0 + rng.normal(0.0, config.noise)), config.floor_mbps)
        times.append(round(time, 3))
        bandwidths.append(round(bandwidth, 6))
        time += config.interval_s * rng.uniform(0.9, 1.1)
    return times, bandwidths


def synthetic_video(rng: np.random.Generator, variability: float = 0.15, scale: float = 1.0) -> list[list[int]]:
    """Chunk sizes in bytes, sizes[level][chunk], for 48 chunks plus MPC's look-ahead chunk."""
    complexity = np.clip(rng.normal(1.0, variability, TOTAL_VIDEO_CHUNKS + 1), 0.5, 1.5)
    chunk_s = VIDEO_CHUNK_LEN_MS / 1000.0
    return [[int(kbps * 1000 / 8 * chunk_s * scale * c) for c in complexity] for kbps in VIDEO_BIT_RATE]


def write_trace_set(root: Path, split: str, name: str, traces: list[tuple[list[float], list[float]]]) -> Path:
    target = root / "abr" / "traces" / split / name
    with atomic_folder(target) as staging:
        for index, (times, bandwidths) in enumerate(traces):
            lines = [f"{t}\t{b}" for t, b in zip(times, bandwidths)]
            (staging / f"{name}_{index:04d}").write_text("\n".join(lines) + "\n")
    return target


def write_video(root: Path, name: str, sizes: list[list[int]]) -> Path:
    target = root / "abr" / "videos" / f"{name}_sizes"
    with atomic_folder(target) as staging:
        for level, level_sizes in enumerate(sizes):
            (staging / f"video_size_{level}").write_text("".join(f"{size}\n" for size in level_sizes))
    return target


def generate(root: Path, prefix: str, counts: dict[str, int], config: TraceConfig, seed: int,
             overwrite: bool = False, video_scale: float = 1.0) -> list[Path]:
    """Write trace sets `<prefix>-<split>` under traces/<split>/ and a video `<prefix>`.

    Each split draws from its own generator (seed, split index), so changing one split's count leaves
    the others unchanged.
    """
    targets = [root / "abr" / "traces" / split / f"{prefix}-{split}" for split in counts]
    targets.append(root / "abr" / "videos" / f"{prefix}_sizes")
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise InputError(f"{', '.join(existing)} already exist; regenerate them or choose other names",
                         fixes=("overwrite", "prefix"))
    written = []
    for split_index, (split, count) in enumerate(counts.items()):
        rng = np.random.default_rng([seed, split_index])
        traces = [synthetic_trace(rng, config) for _ in range(count)]
        written.append(write_trace_set(root, split, f"{prefix}-{split}", traces))
    video_rng = np.random.default_rng([seed, len(counts)])
    written.append(write_video(root, prefix, synthetic_video(video_rng, scale=video_scale)))
    return written
