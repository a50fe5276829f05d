"""The two task trees are self-contained, so a few infrastructure files exist in both; they must not drift."""
import re

import pytest

from conftest import TREE

ABR = TREE.parent / "adaptive_bitrate_streaming"
SAME = [("plm_special/backbones.py", "plm_special/backbones.py"), ("prepare_plm.py", "prepare_plm.py"),
        ("abr_sim/files.py", "spark_sched_sim/files.py"), ("abr_sim/errors.py", "spark_sched_sim/errors.py")]


def normalised(path):
    """The file without the lines that name its own tree's packages."""
    return [line for line in path.read_text().splitlines() if not re.match(r"from (abr_sim|spark_sched_sim)\b", line)]


@pytest.mark.parametrize("abr, cjs", SAME)
def test_shared_files_are_identical_but_for_their_imports(abr, cjs):
    assert normalised(ABR / abr) == normalised(TREE / cjs)
