"""Atomic writes: files and folders are filled under a temporary name and renamed into place when complete,
so an interrupted run never leaves half a result, pool, model or data set behind; and reading a pool folder
back with one clear error when it is damaged."""
import json
import os
import shutil
import uuid
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import InputError


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


def read_pool_folder(folder: Path, array_names) -> tuple[dict, dict]:
    """metadata.json and the named arrays of transitions.npz of an experience pool folder; a damaged or
    truncated file is one InputError that says which and how to rebuild the pool."""
    def damaged(what):
        return InputError(f"experience pool {folder} is damaged: {what}; remove it and build it again with "
                          "generate_exp_pool.py")
    try:
        metadata = json.loads((folder / "metadata.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise damaged("metadata.json is not readable JSON") from None
    try:
        with np.load(folder / "transitions.npz", allow_pickle=False) as data:
            missing = [name for name in array_names if name not in data.files]
            if missing:
                raise damaged(f"transitions.npz lacks {', '.join(missing)}")
            return metadata, {name: data[name] for name in array_names}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError):
        raise damaged("transitions.npz is not a complete NumPy archive (.npz)") from None
