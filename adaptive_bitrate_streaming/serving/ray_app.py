"""The same server as a Ray Serve application, to scale the LLM path out over a Ray cluster.

The ingress deployment serves app.py's routes (sessions, reports, the fast policy and the router: light
work). The LLM path is `replicas` shard deployments of one replica each, decided in `serve.batch` batches;
session s always goes to shard s % replicas, so its key/value cache stays in one process. Shards ask Ray for
`cpus_per_replica` CPUs and `gpus_per_replica` GPUs each, so on a multi-node cluster they are placed where
those are free; the ingress asks for no CPU of its own.
"""
import asyncio
import time

from ray import serve

from .llm_worker import Pending, SessionLLM


@serve.deployment
class LLMShard:
    def __init__(self, build_llm, max_batch_size: int, max_wait_ms: float):
        self.llm = SessionLLM(build_llm())
        self.decide.set_max_batch_size(max_batch_size)
        self.decide.set_batch_wait_timeout_s(max_wait_ms / 1000.0)
        self.batches = self.decided = 0

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.005)
    async def decide(self, requests: list) -> list[int]:
        self.batches += 1
        self.decided += len(requests)
        return self.llm.decide_batch(requests)

    def close(self, session: int) -> None:
        self.llm.close(session)

    def stats(self) -> dict:
        return {"batches": self.batches, "decided": self.decided}


class RayShards:
    """The LLM backend of PolicyService on Ray: what LocalBatcher offers, over shard handles. A request's
    state in Ray is not visible, so a late answer is always treated as running (its action is overruled), and
    the shards count as busy whenever a request is outstanding (throughput)."""

    def __init__(self, handles: list):
        self.handles = handles
        self.outstanding = self.steps = 0
        self.busy_s, self.busy_from = 0.0, 0.0

    def submit(self, request, deadline_s: float | None = None) -> Pending:
        response = self.handles[request.session % len(self.handles)].decide.remote(request)
        if not self.outstanding:
            self.busy_from = time.perf_counter()
        self.outstanding += 1
        future = asyncio.ensure_future(_awaited(response))
        future.add_done_callback(lambda done: self._done(done, len(request.followed) + 1))
        return Pending(request, future, running=True)

    def _done(self, future, steps: int) -> None:
        self.outstanding -= 1
        self.steps += steps
        if not self.outstanding:
            self.busy_s += time.perf_counter() - self.busy_from

    def backlog(self) -> int:
        return self.outstanding

    def throughput(self) -> float | None:
        """Episode steps fed per second with a request outstanding (None before the first answer)."""
        return self.steps / self.busy_s if self.busy_s > 0 else None

    async def close_session(self, session: int) -> None:
        await self.handles[session % len(self.handles)].close.remote(session)

    def stats(self) -> dict:
        return {"llm_shards": len(self.handles)}

    async def drain(self) -> None:
        return None

    def shutdown(self) -> None:
        return None


async def _awaited(response):
    return await response


@serve.deployment(name="ingress", max_ongoing_requests=10_000, ray_actor_options={"num_cpus": 0})
@serve.ingress()
class Ingress:
    """app.py's routes over a PolicyService whose LLM path is the shards (handles, one per shard)."""

    def __init__(self, build_service, *shards):
        self.service = build_service(RayShards(list(shards)))

    def __serve_build_asgi_app__(self):
        from .app import create_app

        return create_app(self.service)


def build_application(build_service, build_llm, replicas: int, max_batch_size: int, max_wait_ms: float,
                      cpus_per_replica: float = 1.0, gpus_per_replica: float = 0.0):
    """The Ray Serve application: `build_service(llm_backend)` makes the PolicyService in the ingress replica,
    `build_llm()` the LLMPolicy in each shard."""
    shards = [LLMShard.options(name=f"llm_shard_{i}", num_replicas=1,
                               max_ongoing_requests=max(256, 4 * max_batch_size),
                               ray_actor_options={"num_cpus": cpus_per_replica, "num_gpus": gpus_per_replica})
              .bind(build_llm, max_batch_size, max_wait_ms) for i in range(replicas)]
    return Ingress.bind(build_service, *shards)
