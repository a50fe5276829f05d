"""Where ABR data lives and how it is read: the data root, trace sets, videos and start pointers.

Layout under the data root (the same as ../shared/data and the public repositories):
    abr/traces/<split>/<trace-set>/<trace files> [+ mahimahi_ptrs.pkl]
    abr/videos/<video>_sizes/video_size_<level>
    abr/all_models/<model>/nn_model_ep_<epoch>.ckpt.{index,data-00000-of-00001,meta}
"""
import math
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

from common.errors import InputError

from .constants import BITRATE_LEVELS, TOTAL_VIDEO_CHUNKS

DEFAULT_DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "data"  # one root for both task trees
POINTER_FILE = "mahimahi_ptrs.pkl"


def resolve_data_root(data_dir: str | None = None) -> Path:
    """`--data-dir`, else $TRAILBLAZER_DATA, else the repository's data/ folder (where download_data.py writes)."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get("TRAILBLAZER_DATA"):
        return Path(os.environ["TRAILBLAZER_DATA"]).expanduser()
    return DEFAULT_DATA_ROOT


@dataclass
class Trace:
    name: str  # "<trace-set>_<file name>", as the original names result files
    times: list[float]  # seconds, one sample per line
    bandwidths: list[float]  # Mbps


@dataclass
class TraceSet:
    name: str
    folder: Path
    traces: list[Trace]
    pointers: list[int] | None  # start index per trace in sorted-name order, from mahimahi_ptrs.pkl


@dataclass
class Video:
    name: str
    sizes: list[list[int]]  # bytes, sizes[level][chunk]; 49 chunks (index 48 is only read by MPC's look-ahead)


def available_trace_sets(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "abr" / "traces").glob("*/*") if p.is_dir())


def find_trace_folder(root: Path, name: str) -> Path:
    """The folder of trace set `name` under <root>/abr/traces/<split>/, or `name` itself if it is a path to
    a folder (traces of one's own, or generated elsewhere)."""
    if ("/" in name or name.startswith(".")) and Path(name).is_dir():
        return Path(name)
    matches = sorted(p for p in (root / "abr" / "traces").glob(f"*/{name}") if p.is_dir())
    if not matches:
        known = ", ".join(available_trace_sets(root)) or "none"
        raise InputError(
            f"trace set '{name}' not found under {root / 'abr' / 'traces'}/*/ (available: {known}); "
            "run download_data.py or generate_synthetic_data.py, or use another data root", fixes=("data_dir",)
        )
    if len(matches) > 1:
        raise InputError(f"trace set '{name}' is ambiguous: {', '.join(map(str, matches))}; rename one of them")
    return matches[0]


def load_trace_file(path: Path, name: str) -> Trace:
    times, bandwidths = [], []
    with open(path) as f:
        for line_number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                if len(fields) < 2:
                    raise ValueError
                time, bandwidth = float(fields[0]), float(fields[1])
            except ValueError:
                raise InputError(
                    f"{path}:{line_number}: malformed line {line.strip()!r}; "
                    "each line must be 'time_seconds bandwidth_Mbps'"
                ) from None
            if not (math.isfinite(time) and math.isfinite(bandwidth)) or bandwidth < 0:
                raise InputError(
                    f"{path}:{line_number}: bandwidth must be a finite number >= 0 and time finite, "
                    f"got {line.strip()!r}; fix or remove the trace"
                )
            times.append(time)
            bandwidths.append(bandwidth)
    if len(times) < 2:
        raise InputError(f"{path}: a trace needs at least 2 samples, found {len(times)}; fix or remove the trace")
    if max(bandwidths) <= 0:
        raise InputError(f"{path}: bandwidth is zero everywhere, no chunk could ever finish; remove the trace")
    return Trace(name=name, times=times, bandwidths=bandwidths)


class _NoGlobalsUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_pointer_file(path: Path, num_traces: int) -> list[int]:
    """Read mahimahi_ptrs.pkl through a loader that accepts only a plain list of ints."""
    try:
        with open(path, "rb") as f:
            pointers = _NoGlobalsUnpickler(f).load()
    except Exception as error:
        raise InputError(f"{path}: not a pickled list of ints ({error}); delete it to draw start pointers") from None
    if not isinstance(pointers, list) or not all(type(p) is int for p in pointers):
        raise InputError(f"{path}: expected a plain list of ints; delete it to draw start pointers")
    if len(pointers) != num_traces:
        raise InputError(
            f"{path}: holds {len(pointers)} start pointers for {num_traces} traces; delete it to draw them"
        )
    return pointers


def load_trace_set(root: Path, name: str) -> TraceSet:
    folder = find_trace_folder(root, name)
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    trace_files = [p for p in files if not p.name.endswith(".pkl")]
    if not trace_files:
        raise InputError(f"trace folder {folder} holds no trace files; add traces or pick another trace set")
    traces = [load_trace_file(p, f"{folder.name}_{p.name}") for p in trace_files]
    pointers = None
    if (folder / POINTER_FILE).exists():
        pointers = load_pointer_file(folder / POINTER_FILE, len(traces))
        for trace, pointer in zip(traces, pointers):
            if not 1 <= pointer < len(trace.bandwidths):
                raise InputError(
                    f"{folder / POINTER_FILE}: start pointer {pointer} is outside trace {trace.name} "
                    f"(1..{len(trace.bandwidths) - 1}); delete the file to draw pointers"
                )
    return TraceSet(name=folder.name, folder=folder, traces=traces, pointers=pointers)


def available_videos(root: Path) -> list[str]:
    return sorted(p.name[: -len("_sizes")] for p in (root / "abr" / "videos").glob("*_sizes") if p.is_dir())


def load_video(root: Path, name: str) -> Video:
    """Video `name` of <root>/abr/videos/<name>_sizes/, or `name` itself if it is a path to such a folder
    (a video generated elsewhere); then the video is named after the folder, without `_sizes`."""
    folder = root / "abr" / "videos" / f"{name}_sizes"
    if ("/" in name or name.startswith(".")) and Path(name).is_dir():
        folder, name = Path(name), Path(name).name.removesuffix("_sizes")
    if not folder.is_dir():
        known = ", ".join(available_videos(root)) or "none"
        raise InputError(
            f"video '{name}' not found: no folder {folder} (available: {known}); "
            "run download_data.py or generate_synthetic_data.py, or use another data root", fixes=("data_dir",)
        )
    sizes = []
    for level in range(BITRATE_LEVELS):
        path = folder / f"video_size_{level}"
        if not path.is_file():
            raise InputError(f"{path} is missing: a video needs video_size_0..{BITRATE_LEVELS - 1}")
        try:
            with open(path) as f:
                level_sizes = [int(line.split()[0]) for line in f if line.strip()]
        except ValueError:
            raise InputError(f"{path}: every line must start with a chunk size in bytes (an integer)") from None
        if len(level_sizes) < TOTAL_VIDEO_CHUNKS + 1:
            raise InputError(
                f"{path}: has {len(level_sizes)} chunk sizes, needs {TOTAL_VIDEO_CHUNKS + 1} "
                f"({TOTAL_VIDEO_CHUNKS} chunks plus one for MPC's look-ahead)"
            )
        if min(level_sizes) <= 0:
            raise InputError(f"{path}: chunk sizes must be positive")
        sizes.append(level_sizes)
    return Video(name=name, sizes=sizes)
