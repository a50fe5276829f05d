import os
import subprocess
import sys
from pathlib import Path

import pytest

TREE = Path(__file__).resolve().parent.parent
sys.path.append(str(TREE.parent))  # the repository's top-level prepare_plm.py, which fills downloaded_plms/


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Data root holding the public CJS data (../shared/data in CI), from $TRAILBLAZER_TEST_DATA."""
    value = os.environ.get("TRAILBLAZER_TEST_DATA")
    root = Path(value) if value else None
    if root is None or not (root / "cjs").is_dir():
        message = (f"public CJS data not found: no cjs/ folder under TRAILBLAZER_TEST_DATA={root}" if root else
                   "public CJS data not found: TRAILBLAZER_TEST_DATA is not set (make test sets it from DATA, "
                   "a data root such as download_data.py fills)")
        if os.environ.get("TRAILBLAZER_REQUIRE_TEST_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> Path:
    from spark_sched_sim.synthetic import generate

    root = tmp_path_factory.mktemp("cjs_data")
    generate(root, "synthetic", seed=0)
    return root


def run_script(script: str, *args: str):
    return subprocess.run([sys.executable, str(TREE / script), *args], cwd=TREE, capture_output=True, text=True)


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="session")
def device():
    """Where the model tests run: the CPU, or $TRAILBLAZER_TEST_DEVICE (gpu_check.sh sets cuda)."""
    import torch

    return torch.device(os.environ.get("TRAILBLAZER_TEST_DEVICE", "cpu"))


@pytest.fixture(scope="session")
def tiny_plms(tmp_path_factory) -> Path:
    from plm_special.backbones import PLM_TYPES
    from prepare_plm import build_tiny_model

    root = tmp_path_factory.mktemp("plms")
    for plm_type in PLM_TYPES:
        build_tiny_model(plm_type, root / plm_type / "tiny")
    return root


@pytest.fixture(scope="session")
def small_pool(real_data, synthetic_data, tmp_path_factory) -> Path:
    """Decisions of Decima and Fair on a small synthetic cluster (10 executors, 12 jobs)."""
    output = tmp_path_factory.mktemp("pools") / "pool"
    result = run_script("generate_exp_pool.py", "--scheds", "decima,fair", "--pool-size", "300", "--complete-episode",
                        "--num-executors", "10", "--job-arrival-cap", "12", "--dataset", "synthetic", "--data-dir",
                        str(synthetic_data), "--state-dict-path", str(real_data / "cjs/models/decima/model.pt"),
                        "--output", str(output))
    assert result.returncode == 0, result.stderr
    return output
