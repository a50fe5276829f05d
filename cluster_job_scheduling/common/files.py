"""Atomic writes: files and folders are filled under a temporary name and renamed into place when complete,
so an interrupted run never leaves half a result, pool, model or data set behind."""
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path


def _temporary_name(target: Path, kind: str) -> Path:
    return target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.{kind}"


@contextmanager
def atomic_folder(target: Path):
    """Yield an empty staging folder; when the block succeeds it takes `target`'s place (a folder already
    there is removed only once the new one is in place), when it fails it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _temporary_name(target, "tmp")
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        retired = _temporary_name(target, "old")
        os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired)
    else:
        os.replace(staging, target)


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(path, "tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
