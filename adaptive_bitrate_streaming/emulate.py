"""A real player in the loop: dash.js in headless Chromium streams a real DASH video over a link whose rate
follows a trace, and asks the policy server (serve_policy.py) for every segment's bitrate.

    python emulate.py --policy bba --trace fcc-test --trace-num 10
    python emulate.py --policy trailblazer --model-dir artifacts/fcc_smollm2/run --trace-num 10

Per trace (the simulator's episodes: fixed order, the trace set's start pointers): the run makes a network
namespace and a veth pair whose rate follows the trace from its pointer (emulation/link.py: tc tbf changed at
every sample, plus the 80 ms round trip), serves the player page and the video on the host's end
(emulation/server.py), starts serve_policy.py there for the policy, and plays the page in Chromium inside
the namespace (emulation/driver.py). The player reports every segment as Pensieve's does; those reports
become the same per-chunk log and summary.json as a simulator run (abr_sim/results.py), plus the player's
startup delay and stalls and a screenshot of the page. Everything it made is torn down after each trace,
also after a failure or Ctrl-C. The video is made once by ffmpeg (emulation/video.py) with its sizes as
simulator video --video under --emulation-dir/data, so `run_baseline.py --data-dir <that> --video <name>`
simulates the same bytes. Needs root, Chromium and chromedriver, ffmpeg and the player's node packages; a
missing one is named in one line with how to install it.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from abr_sim.datasets import load_trace_set, resolve_data_root
from abr_sim.evaluation import EpisodeLog, summarize
from abr_sim.results import check_results_dir, write_results
from abr_sim.simulator import episode_schedule
from common import settings as cli
from common.errors import InputError, exit_on_input_error
from common.settings import setting
from emulation.driver import CHROMEDRIVER, CHROMIUM
from emulation.link import TraceLink
from emulation.server import PLAYER
from emulation.video import make_dash_video
from serving.reports import ChunkReport, ReportTracker

TREE = Path(__file__).resolve().parent
POLICIES = ["bba", "mpc", "robustmpc", "trailblazer", "apc"]
VIDEO_PORT, ABR_PORT = 8000, 8333


@dataclass
class Settings:
    policy: str = setting("bba", "who decides: a baseline, the LLM policy, or APC (LLM + hold)", choices=POLICIES)
    model_dir: str | None = setting(None, "the adapted LLM policy (trailblazer, apc)")
    trace: str = setting("fcc-test", "trace set (a name under <data>/abr/traces/*/ or a folder)")
    trace_num: int = setting(10, "traces: the simulator's first episodes of the set", minimum=1)
    max_segments: int = setting(48, "stop after this many segments (a short run; the episode has 48)", minimum=2)
    video: str = setting("dash-testsrc", "the emulation video's name (made by ffmpeg when missing)")
    emulation_dir: str = setting("artifacts/emulation", "where the video and its simulator sizes are kept")
    data_dir: str | None = setting(None, "data root of the traces (and of APC's calibration)")
    results_dir: str | None = setting(None, "results folder (default: <emulation-dir>/results/<trace>/<policy>)")
    overwrite: bool = setting(False, "replace an existing results folder")
    timeout_s: float = setting(600.0, "a trace's run is stopped after this many seconds", minimum=1)
    link: int = setting(0, "which link: runs with different numbers play side by side (namespace tblink<N>, "
                           "addresses 10.<77+N>.0.1/2)", minimum=0)


def check_prerequisites() -> None:
    """One line naming what is missing and how to install it."""
    if os.geteuid() != 0:
        raise InputError("the emulated link needs root (network namespaces and tc); run as root, e.g. with sudo")
    for tool, package in (("ip", "iproute2"), ("tc", "iproute2"), ("ffmpeg", "ffmpeg")):
        if shutil.which(tool) is None:
            raise InputError(f"{tool} is not installed; install it with: apt-get install {package}")
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).is_file():
            raise InputError(f"{path} is missing; install it with: apt-get install {package}")
    if not (PLAYER / "node_modules" / "dashjs" / "dist").is_dir():
        raise InputError(f"dash.js is not installed in {PLAYER}; install it with: npm install --prefix {PLAYER}")


def policy_flags(s: Settings, data_root: Path, video_data: Path) -> list[str]:
    if s.policy in ("trailblazer", "apc") and not s.model_dir:
        raise InputError(f"--policy {s.policy} needs --model-dir (a policy saved by run_plm.py --adapt)")
    if s.policy == "trailblazer":
        return ["--model-dir", s.model_dir, "--llm-share", "1", "--data-dir", str(video_data), "--video", s.video]
    if s.policy == "apc":  # the router is calibrated on fcc-valid with the public video, as serve_policy.py does
        return ["--model-dir", s.model_dir, "--llm-share", "0.2", "--fast-policy", "hold", "--data-dir",
                str(data_root)]
    return ["--fast-policy", s.policy, "--llm-share", "0", "--data-dir", str(video_data), "--video", s.video]


def wait_for_port(host: str, port: int, process: subprocess.Popen, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise InputError(f"a server of the run exited with code {process.returncode} before it listened on "
                             f"{host}:{port}")
        with socket.socket() as probe:
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.3)
    raise InputError(f"nothing listened on {host}:{port} within {timeout_s:.0f} s")


def episode_log(trace_name: str, reports: list[dict]) -> EpisodeLog:
    """The player's reports as the simulator's per-chunk log (time from the first download's start)."""
    tracker, log = ReportTracker(), EpisodeLog(trace_name)
    start_ms = reports[0]["lastChunkStartTime"]
    for report in reports:
        observation = tracker.observe(ChunkReport.model_validate(report))
        log.add(observation, (report["lastChunkFinishTime"] - start_ms) / 1000.0)
    return log


def play_trace(s: Settings, trace, pointer: int, flags: list[str], video_dir: Path, shot: Path) -> dict:
    """One trace through the whole loop; returns what the page collected."""
    processes = []
    with TraceLink(trace, pointer, f"tblink{s.link}", 77 + s.link) as link:
        try:
            host = link.host_address
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "emulation.server", "--video-dir", str(video_dir), "--host", host, "--port",
                 str(VIDEO_PORT), "--delay-ms", "0" if link.rtt_in_link else "80"], cwd=TREE))
            processes.append(subprocess.Popen(
                [sys.executable, "serve_policy.py", *flags, "--host", host, "--port", str(ABR_PORT), "--device", "cpu",
                 "--log-level", "error"], cwd=TREE, stdout=subprocess.DEVNULL))
            for process, port in zip(processes, (VIDEO_PORT, ABR_PORT)):
                wait_for_port(host, port, process)
            url = (f"http://{host}:{VIDEO_PORT}/index.html?abr=http://{host}:{ABR_PORT}/pensieve/emulation"
                   f"&mpd=video/manifest.mpd&sizes=video/sizes.json&segments={s.max_segments}")
            output = shot.with_suffix(".json")
            driver = subprocess.run(
                ["ip", "netns", "exec", link.namespace, sys.executable, "-m", "emulation.driver", "--url", url,
                 "--output", str(output), "--screenshot", str(shot), "--timeout-s", str(s.timeout_s)],
                cwd=TREE, capture_output=True, text=True)
            if driver.returncode != 0:
                raise InputError(f"the player failed: {(driver.stderr.strip().splitlines() or ['?'])[-1]}")
            result = json.loads(output.read_text())
            output.unlink()
        finally:
            for process in processes:
                process.send_signal(signal.SIGINT)
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
    result["rtt_in_link"] = link.rtt_in_link
    return result


@exit_on_input_error
def main(argv=None):
    s, _ = cli.parse(Settings, argv, __doc__)
    if s.link > 100:
        raise InputError(f"--link takes 0..100 (addresses 10.77.0.x to 10.177.0.x), not {s.link}", "link")
    check_prerequisites()
    data_root = resolve_data_root(s.data_dir)
    trace_set = load_trace_set(data_root, s.trace)
    emulation = Path(s.emulation_dir)
    video_dir, video_data = emulation / f"video_{s.video}", emulation / "data"
    results_dir = Path(s.results_dir) if s.results_dir else emulation / "results" / trace_set.name / s.policy
    check_results_dir(results_dir, s.overwrite)
    flags = policy_flags(s, data_root, video_data)
    if not (video_dir / "sizes.json").is_file():
        print(f"encoding the DASH video into {video_dir} (once)", flush=True)
        make_dash_video(video_dir, video_data, s.video, overwrite=True)

    logs, players = [], []
    shots = results_dir.with_name(results_dir.name + ".screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    for index, pointer in episode_schedule(trace_set, True, min(s.trace_num, len(trace_set.traces))):
        trace = trace_set.traces[index]
        started = time.monotonic()
        result = play_trace(s, trace, pointer, flags, video_dir, shots / f"{trace.name}.png")
        if result.get("error") or not result.get("reports"):
            raise InputError(f"the player on {trace.name} stopped: {result.get('error') or 'no segment played'}")
        logs.append(episode_log(trace.name, result["reports"]))
        players.append({"trace": trace.name, "startup_ms": result["startupMs"], "stalls_ms": result["stalls"],
                        "segments": len(result["reports"]), "not_as_answered": result["notAsAnswered"],
                        "rtt_in_link": result["rtt_in_link"],
                        "wall_s": time.monotonic() - started})
        print(f"{trace.name}: {len(result['reports'])} segments, QoE {summarize([logs[-1]])['mean_qoe']:.3f}, "
              f"startup {result['startupMs'] or 0:.0f} ms, {len(result['stalls'])} stalls, "
              f"{players[-1]['wall_s']:.0f} s", flush=True)
    summary = summarize(logs)
    summary.update(players=players, mean_startup_ms=float(np.mean([p["startup_ms"] or 0 for p in players])),
                   settings={**cli.to_dict(s), "data_root": str(data_root)})
    write_results(results_dir, logs, summary, s.overwrite)
    print(f"{s.policy} in the real player on {trace_set.name}/{s.video} ({len(logs)} traces): mean QoE "
          f"{summary['mean_qoe']:.4f}, bitrate {summary['mean_bitrate_mbps']:.3f} Mbps, rebuffer "
          f"{summary['rebuffer_s']:.4f} s, startup {summary['mean_startup_ms']:.0f} ms -> {results_dir} "
          f"(screenshots in {shots})")
    return summary


if __name__ == "__main__":
    main()
