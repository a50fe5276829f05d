"""Serve an ABR policy to streaming clients over HTTP, with adaptive policy collaboration (APC).

    python serve_policy.py --model-dir artifacts/quickstart/trailblazer --llm-share 0.2
    python serve_policy.py --model-dir ... --ray --replicas 2          # the same server on Ray Serve

Clients (dash.js players with Pensieve's/Genet's ABR rule, or anything that speaks the session API; routes
in serving/app.py) report each chunk and get the next bitrate. The router sends about --llm-share of the
requests, the most difficult by the network score (plm_special/apc.py), to the LLM, decided in dynamic
batches (--max-batch-size, --max-wait-ms) over each session's own key/value cache; the fast policy answers
the rest, any request whose LLM answer is not ready within --deadline-ms, and the LLM's picks while it
is overloaded (--max-llm-backlog). With --demote-after, sessions the LLM cannot keep up with leave it for
the rest of their episode and --overflow-policy serves them (serving/service.py). --llm-share 1 is the LLM
alone, 0 the fast policy alone (no model is loaded). The network router's threshold is calibrated at start
on --calibration-trace (the LLM alone streams it) unless --threshold is given. Stop with Ctrl-C: requests in
flight are answered first.
"""
import functools
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from abr_sim.datasets import load_trace_set, load_video, resolve_data_root
from baselines import BASELINES, make_baseline
from common import settings as cli
from common.errors import InputError, exit_on_input_error
from common.settings import setting
from plm_special.apc import (ROUTERS, CollaborativePolicy, NetworkRouter, RandomRouter, calibrate_on_collaboration,
                              difficulty_scores, network_difficulty)
from plm_special.backbones import DEFAULT_PLM_DIR
from plm_special.checkpoint import policy_folder
from plm_special.inference import PRECISIONS, load_for_inference
from plm_special.learned_router import (LearnedRouter, fit_disagreement_model, load_disagreement_model,
                                        save_disagreement_model)
from plm_special.llm_policy import LLMPolicy
from plm_special.placement import make_placement
from plm_special.routing import calibrate_threshold
from serving.service import PolicyService, ServerLimits

TREE_DIR = Path(__file__).resolve().parent


@dataclass
class Settings:
    model_dir: str | None = setting(None, "the adapted LLM policy (a run folder uses its best_model/); not needed "
                                          "with --llm-share 0")
    fast_policy: str = setting("hold", "the fast policy (hold: the best partner measured, README)", choices=BASELINES)
    router: str = setting("network", "network: the most difficult requests; learned: where the LLM would most "
                                     "likely decide otherwise than the fast policy; random: the same share uniformly",
                          choices=ROUTERS)
    llm_share: float = setting(0.2, "share of requests sent to the LLM (1: the LLM alone, 0: the fast policy alone)")
    threshold: float | None = setting(None, "network/learned router: send requests scoring above this "
                                            "(default: calibrated for --llm-share on --calibration-trace)")
    calibration_trace: str = setting("fcc-valid", "trace set the network router's threshold is calibrated on")
    calibration_rounds: int = setting(2, "rounds of recalibration on the collaboration itself (run_apc.py)",
                                      minimum=0)
    learned_router: str | None = setting(None, "--router learned: load the fitted model from this file instead "
                                               "of fitting it on --calibration-trace")
    save_router: str | None = setting(None, "--router learned: save the fitted model to this file")
    video: str = setting("video1", "video the clients stream (MPC's look-ahead and the calibration)")
    data_dir: str | None = setting(None, "data root (default: $TRAILBLAZER_DATA, else the repository's data/)")
    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(8333, "port to listen on", minimum=1)
    max_batch_size: int = setting(64, "most LLM requests decided in one pass", minimum=1)
    max_wait_ms: float = setting(5.0, "a batch runs at most this long after its first request arrived")
    deadline_ms: float = setting(1000.0, "answer with the fast policy when the LLM has not answered by then "
                                         "(0: no deadline)")
    max_llm_backlog: int | None = setting(None, "while the LLM has this many requests waiting or running, the "
                                                "router's LLM picks go to the fast policy at once (default: "
                                                "2 x --max-batch-size; 0: no limit)", minimum=0)
    demote_after: int = setting(0, "session admission: a session leaves the LLM for the rest of its episode "
                                   "after this many of its LLM picks were answered late (deadline or overload); "
                                   "the LLM holds the sessions whose measured step rate keeps it "
                                   "--target-llm-load busy; the others wait outside it (0: no admission)", minimum=0)
    initial_llm_sessions: int = setting(64, "with --demote-after: the capacity before the LLM's first batch", minimum=1)
    target_llm_load: float = setting(0.8, "with --demote-after: the share of its time the sessions in the LLM "
                                          "keep it busy", minimum=0.01)
    max_llm_sessions: int = setting(0, "with --demote-after: sessions in the LLM at most (0: no limit but the "
                                       "capacity)", minimum=0)
    overflow_policy: str | None = setting(None, "the policy answering late or failed LLM picks and, with "
                                                "--demote-after, the LLM picks of sessions outside the LLM "
                                                "(default: the fast policy)", choices=BASELINES)
    max_sessions: int = setting(4096, "open sessions at most (503 beyond)", minimum=1)
    session_idle_s: float = setting(120.0, "close sessions without a request for this long")
    dtype: str = setting("float32", "inference precision (int8 on the CPU only)", choices=PRECISIONS)
    device: str | None = setting(None, "e.g. cpu or cuda:0 (default: cuda:0 if available, else cpu)")
    plm_dir: str = setting(str(DEFAULT_PLM_DIR), "where the <plm-type>/<plm-size>/ folders live")
    seed: int = setting(100003, "seeds the random router and the Pensieve family's sampling")
    threads: int | None = setting(None, "torch threads for the LLM (default: torch's)", minimum=1)
    llm_thread: bool = setting(False, "decide in a thread of the server's process instead of a process of its own "
                                      "(slower under load: the passes share the event loop's GIL)")
    ray: bool = setting(False, "run on Ray Serve (a local Ray instance, or --ray-address)")
    ray_address: str | None = setting(None, "an existing Ray cluster, e.g. ray://head:10001 or auto")
    replicas: int = setting(1, "--ray: LLM shards, one replica each; session s goes to shard s %% replicas",
                            minimum=1)
    cpus_per_replica: float = setting(1.0, "--ray: CPUs each LLM shard asks for")
    gpus_per_replica: float = setting(0.0, "--ray: GPUs each LLM shard asks for")
    log_level: str = setting("warning", "uvicorn's log level", choices=["critical", "error", "warning", "info"])


def build_llm_policy(s: Settings) -> LLMPolicy:
    """The LLM policy the settings describe (built here, in the LLM's process, or in each Ray shard)."""
    if s.threads:
        torch.set_num_threads(s.threads)
    model, saved, scaling = load_for_inference(policy_folder(s.model_dir), Path(s.plm_dir), s.dtype,
                                               make_placement(s.device))
    return LLMPolicy(model, scaling, saved["target_return_scale"], saved["sample"], s.seed)


def llm_builder(s: Settings):
    """A picklable function that builds the LLM policy."""
    return functools.partial(build_llm_policy, s)


def fast_policy(s: Settings, data_root: Path, name: str | None = None):
    name = name or s.fast_policy
    video = load_video(data_root, s.video) if name in ("mpc", "robustmpc") else None
    return make_baseline(name, video, data_root, np.random.RandomState(s.seed), fresh_episodes=True)


def service_builder(s: Settings, data_root: Path, router):
    """A function that builds the PolicyService around an LLM backend (None: the fast policy alone)."""

    def build(llm_backend) -> PolicyService:
        backlog = 2 * s.max_batch_size if s.max_llm_backlog is None else s.max_llm_backlog
        limits = ServerLimits(s.deadline_ms, s.max_sessions, s.session_idle_s, backlog, s.demote_after,
                              s.max_llm_sessions, s.initial_llm_sessions, s.target_llm_load)
        overflow = fast_policy(s, data_root, s.overflow_policy) if s.overflow_policy else None
        return PolicyService(fast_policy(s, data_root), router, llm_backend, limits, overflow)

    return build


def build_router(s: Settings, data_root: Path, llm: LLMPolicy | None):
    """The router of the settings. The learned router's model is --learned-router, or fitted on
    --calibration-trace; a score router's threshold is --threshold, or calibrated for --llm-share on
    --calibration-trace as run_apc.py does."""
    if s.router == "random":
        return RandomRouter(s.llm_share, s.seed)
    if llm is None or s.llm_share in (0, 1):  # all or nothing: the score does not matter
        return NetworkRouter(s.threshold if s.threshold is not None else calibrate_threshold([], s.llm_share))
    calibration, video = load_trace_set(data_root, s.calibration_trace), load_video(data_root, s.video)
    if s.router == "network":
        score = network_difficulty
    elif s.learned_router is not None:
        score = load_disagreement_model(Path(s.learned_router))
    else:
        print(f"fitting the learned router on {s.calibration_trace}", flush=True)
        score = fit_disagreement_model(llm, fast_policy(s, data_root), calibration, video, 32, s.seed)[0]
        if s.save_router is not None:
            save_disagreement_model(score, Path(s.save_router))

    def make_router(threshold):
        return NetworkRouter(threshold) if s.router == "network" else LearnedRouter(score, threshold)

    if s.threshold is not None:
        return make_router(s.threshold)
    print(f"calibrating the {s.router} router for share {s.llm_share} on {s.calibration_trace}", flush=True)
    scores = difficulty_scores(llm, calibration, video, 32, score)
    return make_router(calibrate_on_collaboration(
        scores, s.llm_share, lambda t: CollaborativePolicy(llm, fast_policy(s, data_root), make_router(t)),
        calibration, video, 32, s.calibration_rounds, score))


def check_address_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise InputError(f"cannot listen on {host}:{port} ({error.strerror}); pick another with --port",
                             "port") from None


def describe(s: Settings, router) -> str:
    if s.llm_share <= 0:
        return f"the fast policy {s.fast_policy} alone"
    if s.llm_share >= 1 and s.router != "random":
        llm = "every request to the LLM"
    else:
        threshold = f" (threshold {router.threshold:.4f})" if hasattr(router, "threshold") else ""
        llm = f"{router.name} router{threshold} sending about {s.llm_share:.0%} of requests to the LLM, the rest " \
              f"to {s.fast_policy}"
    deadline = f"deadline {s.deadline_ms:g} ms" if s.deadline_ms > 0 else "no deadline"
    admission = ""
    if s.demote_after > 0 and s.llm_share > 0:
        admission = f"; the LLM holds the sessions that keep it {s.target_llm_load:.0%} busy " \
                    f"({s.initial_llm_sessions} before its first batch), a session leaves it after " \
                    f"{s.demote_after} late answer(s), the LLM picks of sessions outside it and its late ones go " \
                    f"to {s.overflow_policy or s.fast_policy}"
    return f"{llm}; batches of up to {s.max_batch_size} within {s.max_wait_ms:g} ms, {deadline}, {s.dtype}{admission}"


def serve_locally(s: Settings, data_root: Path) -> None:
    import uvicorn

    from serving.app import create_app
    from serving.llm_worker import LocalBatcher, ProcessLLM, SessionLLM

    llm = llm_builder(s)() if s.llm_share > 0 else None
    router = build_router(s, data_root, llm)
    batcher = None
    if llm is not None:
        session_llm = SessionLLM(llm) if s.llm_thread else ProcessLLM(llm_builder(s))
        batcher = LocalBatcher(session_llm, s.max_batch_size, s.max_wait_ms)
    app = create_app(service_builder(s, data_root, router)(batcher), [batcher.run] if batcher else [])
    print(f"serving on http://{s.host}:{s.port}: {describe(s, router)}", flush=True)
    uvicorn.run(app, host=s.host, port=s.port, log_level=s.log_level, timeout_graceful_shutdown=30,
                timeout_keep_alive=75)  # players pause up to a chunk's playback time between reports


def start_on_ray(s: Settings, data_root: Path) -> str:
    """Deploy the application on Ray Serve (starting a local Ray instance unless --ray-address) and return
    its URL; the caller keeps the process alive and calls ray.serve.shutdown() at the end."""
    import ray
    from ray import serve

    from serving.ray_app import build_application

    if s.llm_share <= 0:
        raise InputError("the Ray deployment scales the LLM path out; serve the fast policy alone without --ray",
                         "llm_share")
    router = build_router(s, data_root, llm_builder(s)() if s.router != "random" and 0 < s.llm_share < 1 else None)
    ray.init(address=s.ray_address, runtime_env={"env_vars": {"PYTHONPATH": str(TREE_DIR),
                                                              "OMP_WAIT_POLICY": "PASSIVE"}},
             include_dashboard=False, logging_level="warning")
    serve.start(http_options={"host": s.host, "port": s.port})
    application = build_application(service_builder(s, data_root, router), llm_builder(s), s.replicas,
                                    s.max_batch_size, s.max_wait_ms, s.cpus_per_replica, s.gpus_per_replica)
    serve.run(application, name="trailblazer", route_prefix="/")
    print(f"serving on Ray at http://{s.host}:{s.port} with {s.replicas} LLM shard(s): {describe(s, router)}",
          flush=True)
    return f"http://{s.host}:{s.port}"


@exit_on_input_error
def main(argv=None):
    s, _ = cli.parse(Settings, argv, __doc__)
    if not 0 <= s.llm_share <= 1:
        raise InputError(f"must lie in [0, 1], got {s.llm_share}", "llm_share")
    if s.llm_share > 0 and s.model_dir is None:
        raise InputError("the LLM policy is needed for a share above 0: pass --model-dir (a folder run_plm.py "
                         "--adapt wrote), or serve the fast policy alone with --llm-share 0", "model_dir")
    if not s.ray or s.ray_address is None:
        check_address_free(s.host, s.port)
    data_root = resolve_data_root(s.data_dir)
    if not s.ray:
        serve_locally(s, data_root)
        return
    from ray import serve

    start_on_ray(s, data_root)
    try:
        threading.Event().wait()  # the deployment runs in Ray's processes until Ctrl-C
    except KeyboardInterrupt:
        serve.shutdown()


if __name__ == "__main__":
    sys.exit(main())
