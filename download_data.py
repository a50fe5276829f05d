"""Mirror the public datasets and checkpoints into the data root, verified against data_manifest.csv.

    python download_data.py                       # everything, from the public repositories
    python download_data.py --only abr/all_models/genet cjs/models
    python download_data.py --source /path/to/a/copy --data-dir /data/trailblazer

Files: FCC and Norway traces, video chunk sizes, Genet/UDR checkpoints (abr/), TPC-H job DAGs and the
Decima weights (cjs/). Origins: github.com/duowuyms/Trailblazer (everything but the Norway traces) and
github.com/GenetProject/Genet (Norway traces). `--source` takes a local folder or a file:// URL laid out
like the data root instead. Files already present with the right size and SHA-256 are skipped, so an
interrupted download can simply be re-run; every file is written to a temporary name and renamed once
verified. Without --data-dir or $TRAILBLAZER_DATA, everything goes to the repository's data/ folder, where
both task trees (and `make demo`, `make test`) look by default.
"""
import argparse
import csv
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

REPO = Path(__file__).resolve().parent
MANIFEST = REPO / "data_manifest.csv"
TRAILBLAZER = "https://raw.githubusercontent.com/duowuyms/Trailblazer/main/"
GENET = "https://raw.githubusercontent.com/GenetProject/Genet/main/"
# data-root prefix -> public URL prefix, most specific first
PUBLIC_ORIGINS = [
    ("abr/traces/train/norway-train/", GENET + "abr_trace/training_trace/norway_train/"),
    ("abr/", TRAILBLAZER + "adaptive_bitrate_streaming/data/"),
    ("cjs/tpch/", TRAILBLAZER + "cluster_job_scheduling/data/tpch/"),
    ("cjs/models/", TRAILBLAZER + "cluster_job_scheduling/models/"),
]
DEFAULT_DATA_ROOT = REPO / "data"


def read_manifest(only: list[str]) -> list[dict]:
    with open(MANIFEST, newline="") as f:
        entries = [dict(row, size=int(row["size"])) for row in csv.DictReader(f)]
    return [e for e in entries if not only or any(e["path"].startswith(prefix) for prefix in only)]


def source_url(path: str, source: str | None) -> str:
    if source is None:
        prefix, base = next((p, b) for p, b in PUBLIC_ORIGINS if path.startswith(p))
        return base + urllib.parse.quote(path[len(prefix):])
    if "://" not in source:
        source = Path(source).resolve().as_uri()
    return source.rstrip("/") + "/" + urllib.parse.quote(path)


def data_root(data_dir: str | None) -> Path:
    root = data_dir or os.environ.get("TRAILBLAZER_DATA")
    return Path(root).expanduser() if root else DEFAULT_DATA_ROOT


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_complete(path: Path, entry: dict) -> bool:
    return path.is_file() and path.stat().st_size == entry["size"] and sha256(path) == entry["sha256"]


def fetch(url: str, target: Path, entry: dict) -> str | None:
    """Download one file atomically; return None on success or the reason it failed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False) as f:
        partial = Path(f.name)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    f.write(block)
        except (urllib.error.URLError, OSError) as error:
            partial.unlink(missing_ok=True)
            return f"cannot fetch {url}: {getattr(error, 'reason', error)}"
    if not is_complete(partial, entry):
        partial.unlink()
        return f"{url} does not match the manifest (size or SHA-256 differs)"
    os.replace(partial, target)
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="data root (default: $TRAILBLAZER_DATA, else the repository's data/)")
    parser.add_argument("--source", default=None, help="a local folder or file:// URL to copy from "
                                                        "(default: the public GitHub repositories)")
    parser.add_argument("--only", nargs="+", default=[], metavar="PREFIX",
                        help="only paths starting with these prefixes, e.g. abr/all_models cjs")
    parser.add_argument("--check", action="store_true", help="only verify what is there; download nothing")
    args = parser.parse_args(argv)

    entries = read_manifest(args.only)
    if not entries:
        print(f"error: no file in {MANIFEST.name} starts with {' or '.join(args.only)}; "
              "prefixes look like abr/traces, abr/all_models/genet, cjs/tpch/2g", file=sys.stderr)
        return 2
    root = data_root(args.data_dir)
    failures, fetched, present = [], 0, 0
    for entry in tqdm(entries, desc="data", unit="file"):
        target = root / entry["path"]
        if is_complete(target, entry):
            present += 1
        elif args.check:
            failures.append(f"{target}: missing or damaged")
        else:
            reason = fetch(source_url(entry["path"], args.source), target, entry)
            fetched += reason is None
            if reason:
                failures.append(reason)
    print(f"{root}: {present} files already present, {fetched} fetched, {len(failures)} missing")
    for reason in failures[:20]:
        print(f"  missing: {reason}")
    if len(failures) > 20:
        print(f"  ... and {len(failures) - 20} more")
    if failures and args.check:
        print("run the same command without --check to download what is missing", file=sys.stderr)
    elif failures:
        print("re-run the same command to retry; files already verified are kept", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
