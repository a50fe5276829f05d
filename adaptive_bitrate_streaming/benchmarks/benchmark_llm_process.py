"""Why the server decides in a process of its own: the LLM's batch throughput next to a busy Python thread.

    python benchmarks/benchmark_llm_process.py --model-dir artifacts/fcc_smollm2/run [--busy-share 0.5]

The server's event loop is Python work; in the server's process the LLM's passes need the same GIL for their
Python parts (module calls between kernels) and wait for it. Measured in one run, batches of --clients
clients streaming fcc-test episodes: the LLM in this process alone (the reference), in this process next to
a thread that runs Python --busy-share of the time (1-ms bursts), and in a process of its own
(serving.llm_worker.ProcessLLM, the server's default) next to the same thread.
"""
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import serve_policy  # noqa: E402
from abr_sim.datasets import load_trace_set, load_video, resolve_data_root  # noqa: E402
from abr_sim.evaluation import run_episodes  # noqa: E402
from abr_sim.policy import Policy  # noqa: E402
from abr_sim.simulator import episode_schedule  # noqa: E402
from common import settings as cli  # noqa: E402
from common.errors import exit_on_input_error  # noqa: E402
from common.settings import setting  # noqa: E402
from plm_special.backbones import DEFAULT_PLM_DIR  # noqa: E402
from serving.llm_worker import LLMRequest, ProcessLLM, SessionLLM  # noqa: E402


@dataclass
class Settings:
    model_dir: str | None = setting(None, "the adapted LLM policy (a run folder uses its best_model/)", required=True)
    clients: int = setting(32, "clients decided side by side (one batch per chunk)", minimum=1)
    busy_share: float = setting(0.5, "share of the time the other thread runs Python", minimum=0.0)
    threads: int = setting(1, "torch threads of the LLM", minimum=1)
    trace: str = setting("fcc-test", "trace set")
    video: str = setting("video1", "video")
    plm_dir: str = setting(str(DEFAULT_PLM_DIR), "where the <plm-type>/<plm-size>/ folders live")
    data_dir: str | None = setting(None, "data root (default: $TRAILBLAZER_DATA, else the repository's data/)")


class ServedLLM(Policy):
    """The clients' requests as the server sends them to its LLM backend."""

    name = "trailblazer"

    def __init__(self, llm):
        self.llm = llm

    def act_batch(self, observations, clients):
        return self.llm.decide_batch([LLMRequest(c, o) for o, c in zip(observations, clients)])


class BusyThread:
    """Python work for `share` of the time in 1-ms bursts, as an event loop serving requests."""

    def __init__(self, share: float):
        self.share, self.running = min(share, 1.0), True
        self.thread = threading.Thread(target=self.work, daemon=True)

    def work(self):
        while self.running:
            started = time.perf_counter()
            while time.perf_counter() - started < 0.001:
                pass
            if self.share < 1.0:
                time.sleep(0.001 * (1.0 - self.share) / self.share)

    def __enter__(self):
        self.thread.start()

    def __exit__(self, *_):
        self.running = False
        self.thread.join()


@exit_on_input_error
def main(argv=None):
    s, _ = cli.parse(Settings, argv, __doc__)
    data_root = resolve_data_root(s.data_dir)
    trace_set, video = load_trace_set(data_root, s.trace), load_video(data_root, s.video)
    schedule = episode_schedule(trace_set, True, s.clients)
    served, _ = serve_policy.cli.parse(serve_policy.Settings, [
        "--model-dir", s.model_dir, "--plm-dir", s.plm_dir, "--device", "cpu", "--threads", str(s.threads)], "")
    build = serve_policy.llm_builder(served)

    def decisions_per_s(llm) -> float:
        started = time.perf_counter()
        run_episodes(ServedLLM(llm), trace_set, video, schedule, None, s.clients, progress=False)
        return len(schedule) * 48 / (time.perf_counter() - started)

    in_process, own_process = SessionLLM(build()), ProcessLLM(build)
    decisions_per_s(own_process)  # warm-up
    alone = decisions_per_s(in_process)
    with BusyThread(s.busy_share):
        beside = decisions_per_s(in_process)
        apart = decisions_per_s(own_process)
    own_process.shutdown()
    print(f"{s.trace}, batches of {s.clients}, {s.threads} torch thread(s); the other thread busy {s.busy_share:.0%}")
    print(f"LLM in this process, alone:                  {alone:6.0f} decisions/s  1.00x")
    print(f"LLM in this process, beside the busy thread: {beside:6.0f} decisions/s  {beside / alone:.2f}x")
    print(f"LLM in its own process, beside it:           {apart:6.0f} decisions/s  {apart / alone:.2f}x")


if __name__ == "__main__":
    main()
