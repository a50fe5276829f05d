"""The two task trees are self-contained (each runs on its own from its folder, as in the original repository),
so the modules that are not task-specific exist in both; they must stay byte-identical."""
import pytest

from conftest import TREE

ABR = TREE.parent / "adaptive_bitrate_streaming"
SHARED = ["common/__init__.py", "common/errors.py", "common/files.py", "common/reproduction.py", "common/settings.py",
          "plm_special/backbones.py", "plm_special/checkpoint.py", "plm_special/footprint.py",
          "plm_special/inference.py", "plm_special/placement.py", "plm_special/return_scaling.py",
          "plm_special/routing.py", "plm_special/settings.py", "plm_special/trainer.py"]


@pytest.mark.parametrize("path", SHARED)
def test_shared_modules_are_identical_in_both_trees(path):
    assert (ABR / path).read_bytes() == (TREE / path).read_bytes()
