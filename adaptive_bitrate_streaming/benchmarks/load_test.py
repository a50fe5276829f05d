"""The load experiment: N concurrent streaming sessions against the policy server (serve_policy.py).

    python benchmarks/load_test.py --model-dir artifacts/fcc_smollm2/run --results-dir artifacts/load/fcc_smollm2

1. The LLM alone, in this process (OfflineReference; each file once per results folder): the router's
   thresholds for every APC share, calibrated on --calibration-trace as serve_policy.py does (the servers
   start with them); the reward of every chunk when it streams the --trace traces; its batch throughput,
   decisions per second when B clients stream side by side, for B in --batch-sizes (the ceiling here).
2. For every variant (llm: every request to the LLM; apc-p: the --router sends about a share p to it,
   the rest to --fast-policy) and every N of --sessions: serve_policy.py starts in a subprocess on a free
   loopback port and N sessions stream one episode each on --trace traces (session i: episode i mod the
   set's size), as HTTP clients (LLM-only has no backlog limit, so only its deadline falls back; APC
   variants shed the LLM's picks to the fast policy beyond 2 x --max-batch-size waiting or running): each
   reports its chunk, waits for the answer and sleeps for the simulated download and playback time of the
   next chunk divided by --time-scale. Sessions start spread over --ramp-s seconds; a run stops after
   --max-run-s (sessions still streaming then are cut).
Per request it records the server's processing delay (X-Processing-Ms: handler entry to answer) and the
client's round trip; per run the median/p90/p99 of both, the shares answered by the LLM, the fast policy,
the deadline fallback, overload shedding and the overflow policy (session admission: --demote-after,
--overflow-policy, --initial-llm-sessions, --target-llm-load; use a results folder of its own), and the mean
QoE over every chunk the sessions played against the LLM alone offline over the same chunks. Writes summary.csv,
requests/<variant>_n<N>.csv.gz, timelines/<variant>_n<N>.csv (the server's /stats every 5 s), delays.png
(box plots of processing delay against N, every run in the folder) and the offline files into
--results-dir; finished runs are kept, so a rerun continues where it stopped.
"""
import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import matplotlib
import numpy as np
import pandas as pd
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TREE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TREE))

from abr_sim.datasets import load_trace_set, load_video, resolve_data_root  # noqa: E402
from abr_sim.evaluation import run_episodes  # noqa: E402
from abr_sim.simulator import StreamingSimulator, episode_schedule  # noqa: E402
from abr_sim.streaming import StreamingClient  # noqa: E402
from baselines import make_baseline  # noqa: E402
from common import settings as cli  # noqa: E402
from common.errors import InputError, exit_on_input_error  # noqa: E402
from common.files import atomic_write_text  # noqa: E402
from common.settings import setting  # noqa: E402
import serve_policy  # noqa: E402
from plm_special.apc import CollaborativePolicy, ConventionalPartner  # noqa: E402
from plm_special.backbones import DEFAULT_PLM_DIR  # noqa: E402
from plm_special.checkpoint import policy_folder  # noqa: E402
from plm_special.inference import PRECISIONS, load_for_inference  # noqa: E402
from plm_special.llm_policy import LLMPolicy  # noqa: E402
from plm_special.placement import Placement  # noqa: E402
from serving.reports import report_of  # noqa: E402
from serving.service import SOURCES  # noqa: E402


@dataclass
class Settings:
    model_dir: str | None = setting(None, "the adapted LLM policy (a run folder uses its best_model/)", required=True)
    variants: list[str] = setting(["llm", "apc-0.2", "apc-0.5", "apc-0.8"], "llm, or apc-<share>")
    sessions: list[int] = setting([100, 200, 500, 1000, 2000], "numbers of concurrent sessions")
    fast_policy: str = setting("hold", "APC's fast policy")
    router: str = setting("network", "APC's router (serve_policy.py --router)", choices=["network", "learned"])
    trace: str = setting("fcc-test", "trace set the sessions stream")
    calibration_trace: str = setting("fcc-valid", "trace set the thresholds are calibrated on")
    calibration_rounds: int = setting(2, "rounds of recalibration on the collaboration itself (run_apc.py)",
                                      minimum=0)
    video: str = setting("video1", "video")
    time_scale: float = setting(1.0, "simulated time runs this much faster than the wall clock")
    ramp_s: float = setting(5.0, "sessions start uniformly within this many seconds")
    max_run_s: float = setting(600.0, "a run stops after this many seconds")
    deadline_ms: float = setting(1000.0, "the server's --deadline-ms")
    max_batch_size: int = setting(64, "the server's --max-batch-size", minimum=1)
    max_wait_ms: float = setting(5.0, "the server's --max-wait-ms")
    demote_after: int = setting(0, "the server's --demote-after (session admission; 0: none)", minimum=0)
    overflow_policy: str | None = setting(None, "the server's --overflow-policy (with --demote-after)",
                                          choices=serve_policy.BASELINES)
    initial_llm_sessions: int = setting(64, "the server's --initial-llm-sessions (with --demote-after)", minimum=1)
    target_llm_load: float = setting(0.8, "the server's --target-llm-load (with --demote-after)", minimum=0.01)
    batch_sizes: list[int] = setting([1, 8, 32, 64, 128], "batch sizes of the LLM throughput measurement")
    threads: int = setting(1, "torch threads of the LLM, here and in the server", minimum=1)
    dtype: str = setting("float32", "inference precision", choices=PRECISIONS)
    plm_dir: str = setting(str(DEFAULT_PLM_DIR), "where the <plm-type>/<plm-size>/ folders live")
    data_dir: str | None = setting(None, "data root (default: $TRAILBLAZER_DATA, else the repository's data/)")
    results_dir: str | None = setting(None, "where the results go", required=True)
    seed: int = setting(0, "seeds the sessions' start times")


def share_of(variant: str) -> float:
    if variant == "llm":
        return 1.0
    try:
        share = float(variant.removeprefix("apc-"))
    except ValueError:
        share = -1.0
    if not variant.startswith("apc-") or not 0 < share < 1:
        raise InputError(f"unknown variant '{variant}'; use llm or apc-<share in (0, 1)>", "variants")
    return share


# 1. the LLM alone
class OfflineReference:
    """What the load runs are compared with, computed once per results folder (each file when missing): the
    router's threshold for every APC share (offline_llm.csv, calibrated as serve_policy.py does; servers
    start with them), the reward of every chunk when the LLM alone streams every test trace
    (offline_llm_rewards.csv), when the overflow policy alone does (offline_<policy>_rewards.csv; each
    episode afresh, as the server's sessions) and when the router mixes the fast and overflow policies
    without the LLM (offline_mix_<variant>_rewards.csv), and the LLM's batch throughput (llm_throughput.csv)."""

    def __init__(self, s: Settings, data_root: Path, video, output: Path):
        self.s, self.data_root, self.video, self.output = s, data_root, video, output
        self.router_path = output / "learned_router.safetensors"
        self.model = None

    def llm(self) -> LLMPolicy:
        if self.model is None:
            torch.set_num_threads(self.s.threads)
            self.model, self.saved, self.scaling = load_for_inference(
                policy_folder(self.s.model_dir), Path(self.s.plm_dir), self.s.dtype, Placement(torch.device("cpu")))
        return LLMPolicy(self.model, self.scaling, self.saved["target_return_scale"], self.saved["sample"], 0)

    def thresholds(self) -> dict:
        path = self.output / "offline_llm.csv"
        known = dict(pd.read_csv(path).itertuples(index=False)) if path.is_file() else {}
        for variant in [v for v in self.s.variants if v not in known]:  # the learned router is fitted once
            router_file = ["--learned-router" if self.router_path.is_file() else "--save-router", str(self.router_path)]
            server_settings, _ = cli.parse(serve_policy.Settings, [
                "--model-dir", self.s.model_dir, "--fast-policy", self.s.fast_policy, "--router", self.s.router,
                "--llm-share", str(share_of(variant)), "--calibration-trace", self.s.calibration_trace,
                "--calibration-rounds", str(self.s.calibration_rounds), "--video", self.s.video, "--seed",
                str(self.s.seed), *router_file], "")
            known[variant] = serve_policy.build_router(server_settings, self.data_root, self.llm()).threshold
            atomic_write_text(path, pd.DataFrame({"variant": list(known), "threshold": list(known.values())})
                              .to_csv(index=False))
        return known

    def baseline(self, name: str):
        return make_baseline(name, self.video, self.data_root, np.random.RandomState(self.s.seed), fresh_episodes=True)

    def rewards(self, test_set, baseline: str | None = None) -> list[list[float]]:
        """Per episode of the sessions' schedule (session i streams episode i mod its length), every chunk's
        reward with the LLM alone (or the `baseline` alone)."""
        return self.streamed(test_set, baseline or "llm",
                             lambda: self.llm() if baseline is None else self.baseline(baseline))

    def mix_rewards(self, test_set, variant: str, threshold: float) -> list[list[float]]:
        """The same with the variant's router, the fast policy and the overflow policy in the LLM's place: what
        the server's sessions outside the LLM get (offline_mix_<variant>_rewards.csv)."""
        def mix():
            settings, _ = cli.parse(serve_policy.Settings, [
                "--model-dir", self.s.model_dir, "--router", self.s.router, "--llm-share", str(share_of(variant)),
                f"--threshold={threshold!r}", "--learned-router", str(self.router_path), "--seed", str(self.s.seed)],
                "")
            router = serve_policy.build_router(settings, self.data_root, self.llm())
            return CollaborativePolicy(ConventionalPartner(self.baseline(self.s.overflow_policy)),
                                       self.baseline(self.s.fast_policy), router)
        return self.streamed(test_set, f"mix_{variant}", mix)

    def streamed(self, test_set, name: str, make_policy) -> list[list[float]]:
        path = self.output / f"offline_{name}_rewards.csv"
        if not path.is_file():
            policy = make_policy()
            logs = run_episodes(policy, test_set, self.video,
                                episode_schedule(test_set, True, len(test_set.traces)), None, 32, progress=False)
            table = pd.DataFrame([(e, c, row[-1]) for e, log in enumerate(logs) for c, row in enumerate(log.rows)],
                                 columns=["episode", "chunk", "reward"])
            atomic_write_text(path, table.to_csv(index=False))
        table = pd.read_csv(path)
        return [list(group["reward"]) for _, group in table.groupby("episode", sort=True)]

    def throughput(self, test_set) -> pd.DataFrame:
        path = self.output / "llm_throughput.csv"
        if not path.is_file():
            rows = []
            for batch in self.s.batch_sizes:
                policy, schedule = self.llm(), episode_schedule(test_set, True, batch)
                started = time.perf_counter()
                run_episodes(policy, test_set, self.video, schedule * max(1, 32 // batch), None, batch,
                             progress=False)
                decisions = 48 * len(schedule) * max(1, 32 // batch)
                rows.append({"batch_size": batch, "decisions_per_s": decisions / (time.perf_counter() - started)})
                print(f"LLM alone, batches of {batch}: {rows[-1]['decisions_per_s']:.0f} decisions/s", flush=True)
            atomic_write_text(path, pd.DataFrame(rows).to_csv(index=False))
        return pd.read_csv(path)


# 2. the server under load
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(s: Settings, variant: str, threshold: float, sessions: int, log_path: Path, router_path: Path):
    port = free_port()
    command = [sys.executable, str(TREE / "serve_policy.py"), "--model-dir", s.model_dir, "--plm-dir", s.plm_dir,
               "--fast-policy", s.fast_policy, "--llm-share", str(share_of(variant)), "--router", s.router,
               f"--threshold={threshold!r}", "--calibration-trace", s.calibration_trace, "--seed", str(s.seed),
               "--learned-router", str(router_path), "--max-llm-backlog",
               "0" if variant == "llm" else str(2 * s.max_batch_size),
               "--port", str(port), "--threads", str(s.threads), "--deadline-ms", str(s.deadline_ms),
               "--max-batch-size", str(s.max_batch_size), "--max-wait-ms", str(s.max_wait_ms), "--dtype", s.dtype,
               "--max-sessions", str(sessions + 16), "--device", "cpu", "--log-level", "error", "--video", s.video]
    if s.data_dir:
        command += ["--data-dir", s.data_dir]
    if s.demote_after:
        command += ["--demote-after", str(s.demote_after), "--initial-llm-sessions", str(s.initial_llm_sessions),
                    "--target-llm-load", str(s.target_llm_load)]
    if s.overflow_policy:
        command += ["--overflow-policy", s.overflow_policy]
    log = log_path.open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=TREE,
                              env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    return server, f"http://127.0.0.1:{port}"


async def wait_until_up(base: str, server, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited with code {server.returncode}")
            try:
                async with http.get(f"{base}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("the server did not come up")


async def post_report(http, url, report, attempts: int = 3) -> dict:
    """POST a report; a connection the server closed as idle just then is retried (a retried report gets the
    same answer)."""
    for _ in range(attempts - 1):
        try:
            async with http.post(url, json=report) as response:
                return await response.json()
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
            continue
    async with http.post(url, json=report) as response:
        return await response.json()


async def stream_session(http, base, trace, pointer, video, start_s, s: Settings, stop_at, records):
    """One player: its chunks' QoE and whether it finished the episode before the run stopped."""
    await asyncio.sleep(start_s)
    async with http.post(f"{base}/sessions") as response:
        session = (await response.json())["session"]
    player = StreamingClient(StreamingSimulator(video, None))
    observation, clock_ms, rebuffer_ms = player.start_episode(trace, pointer), 0.0, 0.0
    rewards = [observation.reward]
    while True:
        rebuffer_ms += observation.chunk.rebuffer_s * 1000.0
        sent = time.perf_counter()
        answer = await post_report(http, f"{base}/sessions/{session}/decide",
                                   report_of(observation, clock_ms, rebuffer_ms))
        records.append((answer["processing_ms"], (time.perf_counter() - sent) * 1000.0, answer["decided_by"]))
        if answer["done"] or time.monotonic() > stop_at:
            break
        clock_ms += observation.chunk.delay_ms + observation.chunk.sleep_ms
        observation = player.step(answer["quality"])
        rewards.append(observation.reward)
        await asyncio.sleep((observation.chunk.delay_ms + observation.chunk.sleep_ms) / 1000.0 / s.time_scale)
    async with http.delete(f"{base}/sessions/{session}"):
        pass
    return rewards, answer["done"]


async def load_run(s: Settings, base: str, sessions: int, test_set, video):
    schedule = episode_schedule(test_set, True, len(test_set.traces))
    starts = np.random.default_rng(s.seed).uniform(0, s.ramp_s, sessions)
    records: list = []
    timeline: list = []
    stop_at = time.monotonic() + s.max_run_s
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as http:
        started = time.perf_counter()
        at_stop = asyncio.create_task(stats_at(http, base, stop_at))
        watching = asyncio.create_task(stats_timeline(http, base, started, timeline))
        results = await asyncio.gather(*(
            stream_session(http, base, test_set.traces[schedule[i % len(schedule)][0]], schedule[i % len(schedule)][1],
                           video, starts[i], s, stop_at, records) for i in range(sessions)))
        wall_s = time.perf_counter() - started
        async with http.get(f"{base}/stats") as response:
            stats = await response.json()
        stats["at_stop"] = await at_stop if at_stop.done() else stats
        at_stop.cancel()
        watching.cancel()
    return results, records, stats, wall_s, pd.DataFrame(timeline)


async def stats_timeline(http, base: str, started: float, timeline: list, every_s: float = 5.0) -> None:
    """The server's /stats every few seconds while the run lasts, flattened into rows of `timeline`."""
    while True:
        async with http.get(f"{base}/stats") as response:
            stats = await response.json()
        answered = {f"answered_by_{source}": count for source, count in stats.pop("answered_by").items()}
        timeline.append({"t_s": time.perf_counter() - started, **stats, **answered})
        await asyncio.sleep(every_s)


async def stats_at(http, base: str, when: float) -> dict:
    """The server's /stats when the run stops (before the sessions close)."""
    await asyncio.sleep(max(0.0, when - time.monotonic()))
    async with http.get(f"{base}/stats") as response:
        return await response.json()


def same_chunks(results, offline_rewards) -> float:
    """The mean reward offline over the chunks the sessions played (chunk 0 left out)."""
    return float(np.mean([r for i, (rewards, _) in enumerate(results)
                          for r in offline_rewards[i % len(offline_rewards)][1:len(rewards)]]))


def summarize_run(variant, sessions, results, records, stats, wall_s, offline_rewards, overflow_rewards, mix_rewards,
                  s: Settings) -> dict:
    """QoE is over every chunk the sessions played (chunk 0 left out, as the paper's metric), finished or cut
    when the run stopped; the references are the LLM alone and, with --overflow-policy, that policy alone and
    the router's mix of the fast and overflow policies without the LLM,
    offline over the same chunks of the same episodes."""
    delays = pd.DataFrame(records, columns=["processing_ms", "round_trip_ms", "decided_by"])
    complete = [i for i, (_, done) in enumerate(results) if done]
    played = [r for rewards, _ in results for r in rewards[1:]]
    qoe, reference = float(np.mean(played)), same_chunks(results, offline_rewards)
    answered = delays["decided_by"].value_counts()
    row = {"variant": variant, "sessions": sessions, "requests": len(delays), "time_scale": s.time_scale,
           "wall_s": wall_s, "requests_per_s": len(delays) / wall_s, "complete_sessions": len(complete)}
    for column, name in (("processing_ms", "processing"), ("round_trip_ms", "round_trip")):
        for label, q in (("median", 50), ("p90", 90), ("p99", 99)):
            row[f"{name}_{label}_ms"] = float(np.percentile(delays[column], q))
    for source in SOURCES:
        row[f"share_{source}"] = float(answered.get(source, 0)) / len(delays)
    row.update({"demote_after": s.demote_after, "overflow_policy": s.overflow_policy or s.fast_policy,
                "demoted_sessions": stats.get("demoted_sessions", 0),
                "sessions_not_admitted": stats.get("sessions_not_admitted", 0),
                "sessions_admitted_later": stats.get("sessions_admitted_later", 0),
                "share_outside_llm": stats.get("requests_outside_llm", 0) / max(1, stats.get("requests", 0)),
                "llm_sessions_at_stop": stats["at_stop"].get("llm_sessions"),
                "llm_session_capacity_at_stop": stats["at_stop"].get("llm_session_capacity")})
    row.update({"mean_batch_size": stats.get("mean_batch_size", 0.0), "chunks": len(played), "mean_qoe": qoe,
                "offline_llm_qoe": reference, "qoe_vs_offline_llm": qoe / reference - 1.0})
    if overflow_rewards is not None:
        overflow = same_chunks(results, overflow_rewards)
        row.update({"offline_overflow_qoe": overflow, "qoe_vs_offline_overflow": qoe / overflow - 1.0})
    if mix_rewards is not None:
        mix = same_chunks(results, mix_rewards)
        row.update({"offline_mix_qoe": mix, "qoe_vs_offline_mix": qoe / mix - 1.0})
    return row, delays


def against_overflow(row: dict) -> str:
    if "qoe_vs_offline_overflow" not in row:
        return ""
    mix = ""
    if "qoe_vs_offline_mix" in row:
        mix = f", {row['qoe_vs_offline_mix']:+.2%} vs the router's mix without the LLM"
    return f", {row['qoe_vs_offline_overflow']:+.2%} vs {row['overflow_policy']} offline{mix}"


def draw(summary_delays: dict, variants, sessions, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(variants)
    for v, variant in enumerate(variants):
        data = [summary_delays[(variant, n)] for n in sessions if (variant, n) in summary_delays]
        positions = [i + (v - (len(variants) - 1) / 2) * width for i, n in enumerate(sessions)
                     if (variant, n) in summary_delays]
        if not data:
            continue
        boxes = axis.boxplot(data, positions=positions, widths=width * 0.9, showfliers=False, patch_artist=True)
        for box in boxes["boxes"]:
            box.set_facecolor(f"C{v}")
        axis.plot([], [], color=f"C{v}", linewidth=8, label="LLM only" if variant == "llm" else
                  f"APC, share {share_of(variant):g}")
    axis.set_xticks(range(len(sessions)), [str(n) for n in sessions])
    axis.set_xlabel("concurrent sessions")
    axis.set_ylabel("request processing delay (ms)")
    axis.set_yscale("log")
    axis.legend()
    axis.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    temporary = path.with_suffix(".tmp.png")
    figure.savefig(temporary, dpi=120)
    plt.close(figure)
    temporary.replace(path)


def draw_all_runs(output: Path) -> None:
    """delays.png from every finished run in the results folder (also those of earlier invocations)."""
    delays, variants, sessions = {}, set(), set()
    for path in (output / "requests").glob("*_n*.csv.gz"):
        variant, count = path.name.removesuffix(".csv.gz").rsplit("_n", 1)
        delays[(variant, int(count))] = pd.read_csv(path)["processing_ms"].to_numpy()
        variants.add(variant)
        sessions.add(int(count))
    draw(delays, sorted(variants, key=lambda v: (v != "llm", share_of(v))), sorted(sessions), output / "delays.png")


@exit_on_input_error
def main(argv=None):
    s, _ = cli.parse(Settings, argv, __doc__)
    for variant in s.variants:
        share_of(variant)
    output = Path(s.results_dir)
    (output / "requests").mkdir(parents=True, exist_ok=True)
    (output / "logs").mkdir(exist_ok=True)
    (output / "timelines").mkdir(exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # thousands of sockets, here and in the server
    data_root = resolve_data_root(s.data_dir)
    video, test_set = load_video(data_root, s.video), load_trace_set(data_root, s.trace)

    reference = OfflineReference(s, data_root, video, output)
    thresholds, offline_rewards = reference.thresholds(), reference.rewards(test_set)
    overflow_rewards = reference.rewards(test_set, s.overflow_policy) if s.overflow_policy else None
    mix_rewards = {variant: reference.mix_rewards(test_set, variant, thresholds[variant])
                   for variant in s.variants if variant != "llm" and s.overflow_policy}
    reference.throughput(test_set)
    summary_path = output / "summary.csv"
    rows = pd.read_csv(summary_path).to_dict("records") if summary_path.is_file() else []
    for variant in s.variants:
        for sessions in s.sessions:
            requests_path = output / "requests" / f"{variant}_n{sessions}.csv.gz"
            if requests_path.is_file():
                continue
            server, base = start_server(s, variant, thresholds[variant], sessions,
                                        output / "logs" / f"{variant}_n{sessions}.log",
                                        output / "learned_router.safetensors")
            try:
                asyncio.run(wait_until_up(base, server))
                results, records, stats, wall_s, timeline = asyncio.run(load_run(s, base, sessions, test_set, video))
            finally:
                server.send_signal(signal.SIGINT)
                server.wait(timeout=60)
            row, delays = summarize_run(variant, sessions, results, records, stats, wall_s, offline_rewards,
                                        overflow_rewards, mix_rewards.get(variant), s)
            rows = [r for r in rows if (r["variant"], r["sessions"]) != (variant, sessions)] + [row]
            atomic_write_text(summary_path, pd.DataFrame(rows).to_csv(index=False))
            atomic_write_text(output / "timelines" / f"{variant}_n{sessions}.csv", timeline.to_csv(index=False))
            temporary = requests_path.with_suffix(".tmp.gz")
            delays.to_csv(temporary, index=False, compression="gzip")
            temporary.replace(requests_path)
            print(f"{variant}, {sessions} sessions: processing median {row['processing_median_ms']:.1f} ms, p90 "
                  f"{row['processing_p90_ms']:.1f}, p99 {row['processing_p99_ms']:.1f}; round trip median "
                  f"{row['round_trip_median_ms']:.1f} ms; LLM answered {row['share_llm']:.3f}, deadline "
                  f"{row['share_deadline']:.3f}, overload {row['share_overload']:.3f}, overflow "
                  f"{row['share_overflow']:.3f}, outside the LLM {row['share_outside_llm']:.3f} "
                  f"({row['demoted_sessions']} sessions demoted, "
                  f"{row['sessions_not_admitted']} not admitted at the start, {row['sessions_admitted_later']} of "
                  f"them later; at the stop {row['llm_sessions_at_stop']} in the LLM, capacity "
                  f"{row['llm_session_capacity_at_stop']}); QoE {row['mean_qoe']:.4f} "
                  f"({row['qoe_vs_offline_llm']:+.2%} vs the LLM offline{against_overflow(row)}), "
                  f"{row['complete_sessions']}/{sessions} sessions complete, {wall_s:.0f} s", flush=True)
            draw_all_runs(output)
    draw_all_runs(output)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
