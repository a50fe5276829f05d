import os
import sys
from pathlib import Path

import pytest

TREE = Path(__file__).resolve().parent.parent


def _test_data_root() -> Path | None:
    value = os.environ.get("TRAILBLAZER_TEST_DATA")
    return Path(value) if value else None


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Data root holding the public ABR data (../shared/data in CI), from $TRAILBLAZER_TEST_DATA."""
    root = _test_data_root()
    if root is None or not (root / "abr").is_dir():
        message = f"public ABR data not found (TRAILBLAZER_TEST_DATA={root})"
        if os.environ.get("TRAILBLAZER_REQUIRE_TEST_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> Path:
    """A small synthetic data root: synthetic-{train,valid,test} trace sets and the video 'synthetic'."""
    from abr_sim.synthetic import TraceConfig, generate

    root = tmp_path_factory.mktemp("synthetic_data")
    generate(root, "synthetic", {"train": 6, "valid": 3, "test": 4}, TraceConfig(), seed=0)
    return root


def run_script(script: str, *args: str, cwd: Path = TREE, env: dict | None = None):
    """Run one of the tree's scripts in a subprocess, as a user would."""
    import subprocess

    return subprocess.run([sys.executable, str(TREE / script), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
