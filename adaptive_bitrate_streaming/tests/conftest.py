import os
import sys
from pathlib import Path

import pytest

TREE = Path(__file__).resolve().parent.parent
sys.path.append(str(TREE.parent))  # the repository's top-level prepare_plm.py, which fills downloaded_plms/

try:  # tests/tf_backend runs in the TensorFlow environment only (make test-baselines)
    import tensorflow  # noqa: F401
except ImportError:
    collect_ignore = ["tf_backend"]


def _test_data_root() -> Path | None:
    value = os.environ.get("TRAILBLAZER_TEST_DATA")
    return Path(value) if value else None


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Data root holding the public ABR data (../shared/data in CI), from $TRAILBLAZER_TEST_DATA."""
    root = _test_data_root()
    if root is None or not (root / "abr").is_dir():
        message = (f"public ABR data not found: no abr/ folder under TRAILBLAZER_TEST_DATA={root}" if root else
                   "public ABR data not found: TRAILBLAZER_TEST_DATA is not set (make test sets it from DATA, "
                   "a data root such as download_data.py fills)")
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


@pytest.fixture(scope="session")
def device():
    """Where the model tests run: the CPU, or $TRAILBLAZER_TEST_DEVICE (gpu_check.sh sets cuda)."""
    import torch

    return torch.device(os.environ.get("TRAILBLAZER_TEST_DEVICE", "cpu"))


@pytest.fixture(scope="session")
def tiny_plms(tmp_path_factory) -> Path:
    """downloaded_plms-style folder with a tiny random model of every supported type (<type>/tiny)."""
    from plm_special.backbones import PLM_TYPES
    from prepare_plm import build_tiny_model

    root = tmp_path_factory.mktemp("plms")
    for plm_type in PLM_TYPES:
        build_tiny_model(plm_type, root / plm_type / "tiny")
    return root


@pytest.fixture(scope="session")
def small_pool(synthetic_data, tmp_path_factory) -> Path:
    """An experience pool from MPC and BBA: 5 of the synthetic training traces (shuffled, noisy), 2 seeds."""
    result = run_script("generate_exp_pool.py", "--models", "mpc,bba", "--trace", "synthetic-train",
                        "--video", "synthetic", "--data-dir", str(synthetic_data), "--seeds", "1", "2",
                        "--trace-num", "5", "--output", str(tmp_path_factory.mktemp("pools") / "pool"))
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.split("pool ")[-1].split(":")[0])


@pytest.fixture(scope="session")
def tiny_trained_policy(tiny_plms, synthetic_data, small_pool, tmp_path_factory) -> Path:
    """A run folder of run_plm.py --adapt on a tiny Llama (one epoch on the small pool)."""
    import run_plm

    model_dir = tmp_path_factory.mktemp("trained") / "run"
    run_plm.main(["--adapt", "--plm-type", "llama", "--plm-size", "tiny", "--rank", "4", "--exp-pool-path",
                  str(small_pool), "--model-dir", str(model_dir), "--plm-dir", str(tiny_plms), "--data-dir",
                  str(synthetic_data), "--video", "synthetic", "--valid-trace", "synthetic-valid",
                  "--state-feature-dim", "16", "--w", "5", "--batch-size", "4", "--seed", "7", "--num-epochs", "1"])
    return model_dir
