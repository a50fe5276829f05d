"""emulate.py as a user runs it: a short real-player run (one trace, a few segments) through a trace-shaped
link, its per-chunk log and summary, and the teardown. Needs root, Chromium, chromedriver, ffmpeg and the
player's node packages (CI installs them); skipped without them unless TRAILBLAZER_REQUIRE_EMULATION=1."""
import json
import os
import subprocess

import pytest

import emulate
from abr_sim.datasets import load_video
from common.errors import InputError
from conftest import run_script
from emulation.video import make_dash_video


@pytest.fixture(scope="module")
def small_video(tmp_path_factory):
    try:
        emulate.check_prerequisites()
    except InputError as missing:
        if os.environ.get("TRAILBLAZER_REQUIRE_EMULATION") == "1":
            pytest.fail(str(missing))
        pytest.skip(str(missing))
    emulation = tmp_path_factory.mktemp("emulation")
    sizes = make_dash_video(emulation / "video_tiny", emulation / "data", "tiny", heights=[72, 90, 108, 144, 180, 216])
    return emulation, sizes


def test_the_video_is_also_a_simulator_video(small_video):
    emulation, sizes = small_video
    assert load_video(emulation / "data", "tiny").sizes == sizes
    assert json.loads((emulation / "video_tiny" / "sizes.json").read_text()) == sizes
    assert all(len(rung) == 49 for rung in sizes) and sum(sizes[5]) > sum(sizes[0])


def test_a_short_run_in_the_real_player(small_video, real_data, tmp_path):
    emulation, _ = small_video
    results = tmp_path / "bba"
    result = run_script("emulate.py", "--policy", "bba", "--trace-num", "1", "--max-segments", "3", "--video", "tiny",
                        "--link", "3",
                        "--emulation-dir", str(emulation), "--data-dir", str(real_data), "--results-dir", str(results))
    assert result.returncode == 0, result.stderr
    summary = json.loads((results / "summary.json").read_text())
    player = summary["players"][0]
    assert player["segments"] == 3 and player["not_as_answered"] == 0 and player["startup_ms"] > 0
    rows = [line.split("\t") for line in next(results.glob("result_sim_abr_*")).read_text().split("\n\n")[0].splitlines()]
    assert len(rows) == 3 and rows[0][1] == "750"  # the first segment at the default bitrate, as simulated
    assert summary["num_chunks"] == 2  # chunk 0 is left out of the mean QoE, as the simulator's
    assert (results.with_name("bba.screenshots") / f"{player['trace']}.png").stat().st_size > 5000
    assert "tblink" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    again = run_script("emulate.py", "--policy", "bba", "--video", "tiny", "--emulation-dir", str(emulation),
                       "--data-dir", str(real_data), "--results-dir", str(results))
    assert again.returncode == 2 and "already holds results" in again.stderr

    compared = ["--real", str(results), "--output-dir", str(tmp_path / "comparison"), "--figure", str(tmp_path / "f.png")]
    result = run_script("compare_emulation.py", *compared)
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "comparison" / "per_trace.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith(f"bba,{player['trace']},3,")
    simulated = json.loads((results.with_name("bba.simulated") / "summary.json").read_text())
    assert simulated["num_traces"] == 1 and simulated["settings"]["video"] == "tiny"  # the same bytes
    assert "| bba | 1 |" in result.stdout and (tmp_path / "f.png").stat().st_size > 10000
    again = run_script("compare_emulation.py", *compared)
    assert again.returncode == 2 and "exists; write elsewhere or replace it" in again.stderr


def test_the_llm_needs_its_policy(small_video, real_data, tmp_path):
    result = run_script("emulate.py", "--policy", "trailblazer", "--data-dir", str(real_data), "--results-dir",
                        str(tmp_path / "r"))
    assert result.returncode == 2 and "--policy trailblazer needs --model-dir" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
