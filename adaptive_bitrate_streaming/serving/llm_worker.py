"""The LLM path of the server: requests wait in a queue and are decided in dynamic batches.

A request carries what the LLM has not seen of its session: the steps the fast policy decided since the
session's last LLM request (they enter the LLM's context with the action taken, LLMPolicy.follow), the
action actually taken instead of the LLM's last answer if that came too late (LLMPolicy.overrule), and the
observation to decide. `SessionLLM.decide_batch` applies them and decides the batch in one pass over the
sessions' own key/value caches; only it touches the LLM policy, so it runs in one thread (the local batcher)
or in one Ray Serve replica (ray_app.py) at a time. `ProcessLLM` runs it in a process of its own.
"""
import asyncio
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field

from plm_special.llm_policy import LLMPolicy


@dataclass
class LLMRequest:
    session: int
    observation: object
    followed: list = field(default_factory=list)  # (observation, action) steps decided by the fast policy
    overrule: int | None = None  # the action taken instead of the LLM's previous answer


class SessionLLM:
    """The LLM policy serving many sessions; every session is an LLMPolicy client with its own cache."""

    def __init__(self, policy: LLMPolicy):
        self.policy = policy

    def decide_batch(self, requests: list[LLMRequest]) -> list[int]:
        for request in requests:
            first = request.followed[0][0] if request.followed else request.observation
            if first.timestep == 0:  # the session's episode starts with this request
                self.policy.reset(request.session)
            elif request.overrule is not None:
                self.policy.overrule(request.session, request.overrule)
            for observation, action in request.followed:
                self.policy.follow(observation, request.session, action)
        return self.policy.act_batch([r.observation for r in requests], [r.session for r in requests])

    def close(self, session: int) -> None:
        self.policy.close(session)

    def shutdown(self) -> None:
        return None


class ProcessLLM:
    """SessionLLM in a process of its own, built there by `build_policy` (picklable). In the server's process
    its passes would share the GIL with the event loop, and a busy event loop slows them several times over
    (README, the load experiment); here the server's thread only waits for the answers. If the process dies,
    every later batch fails (the fast policy answers) and the server keeps serving."""

    def __init__(self, build_policy):
        self.executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_start_worker, initargs=(build_policy,))
        self.pid = self.executor.submit(os.getpid).result()  # once the policy is loaded there

    def decide_batch(self, requests: list[LLMRequest]) -> list[int]:
        return self.executor.submit(_decide_in_worker, requests).result()

    def close(self, session: int) -> None:
        self.executor.submit(_close_in_worker, session).result()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)


_worker: SessionLLM | None = None  # the LLM of a ProcessLLM's process


def _start_worker(build_policy) -> None:
    global _worker
    _worker = SessionLLM(build_policy())


def _decide_in_worker(requests: list[LLMRequest]) -> list[int]:
    return _worker.decide_batch(requests)


def _close_in_worker(session: int) -> None:
    _worker.close(session)


class TooLate(Exception):
    """The batcher withdrew a request that would miss its deadline if it ran now."""


@dataclass
class Pending:
    request: LLMRequest
    future: asyncio.Future
    running: bool = False  # taken into a batch
    abandoned: bool = False  # answered by the fast policy at its deadline before it ran
    deadline_at: float | None = None  # time.perf_counter() by which the answer is due


class LocalBatcher:
    """Dynamic batching in this process: the first waiting request opens a batch, which runs when it holds
    `max_batch_size` requests or `max_wait_ms` after it opened, in a single worker thread so the event loop
    keeps serving. A request that could not be answered by its deadline any more (less time left than a
    batch takes: a moving average of the last batches) is withdrawn with TooLate instead of run, so that
    under overload the LLM spends its time on requests it can still answer in time. A batch that fails is
    answered by an exception on each of its futures."""

    def __init__(self, llm: SessionLLM, max_batch_size: int, max_wait_ms: float):
        self.llm = llm
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.queue: asyncio.Queue[Pending] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm")
        self.batches = self.decided = self.withdrawn = self.running = 0
        self.steps = 0  # episode steps fed: each request's followed steps and its own
        self.busy_s = self.batch_s = 0.0  # batch_s: moving average of a batch's duration

    def submit(self, request: LLMRequest, deadline_s: float | None = None) -> Pending:
        deadline_at = time.perf_counter() + deadline_s if deadline_s else None
        pending = Pending(request, asyncio.get_running_loop().create_future(), deadline_at=deadline_at)
        self.queue.put_nowait(pending)
        return pending

    def backlog(self) -> int:
        """Requests waiting or being decided."""
        return self.queue.qsize() + self.running

    def throughput(self) -> float | None:
        """Episode steps fed per second of LLM work so far (None before the first batch)."""
        return self.steps / self.busy_s if self.batches and self.busy_s > 0 else None

    async def close_session(self, session: int) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self.llm.close, session)

    async def _next_batch(self) -> list[Pending]:
        batch = [await self.queue.get()]
        opened = time.perf_counter()
        while len(batch) < self.max_batch_size:
            if self.queue.empty():
                left = opened + self.max_wait_s - time.perf_counter()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), left))
                except TimeoutError:
                    break
            else:
                batch.append(self.queue.get_nowait())
        now, live = time.perf_counter(), []
        waiting = [pending for pending in batch if not pending.abandoned]
        for i, pending in enumerate(waiting):
            newest = i == len(waiting) - 1
            keep_one = newest and not live
            if pending.deadline_at is not None and pending.deadline_at - now < self.batch_s and not keep_one:
                self.withdrawn += 1
                pending.future.set_exception(TooLate())
            else:  # (a batch keeps at least its newest request, so that the estimate follows the load)
                live.append(pending)
        return live

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            for pending in batch:
                pending.running = True
            self.running = len(batch)
            started = time.perf_counter()
            try:
                actions = await loop.run_in_executor(self.executor, self.llm.decide_batch,
                                                     [pending.request for pending in batch])
            except Exception as error:  # the LLM worker failed: each request's handler falls back
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(error)
                continue
            finally:
                duration = time.perf_counter() - started
                self.batch_s = duration if not self.batches else 0.8 * self.batch_s + 0.2 * duration
                self.busy_s += duration
                self.running = 0
            self.batches += 1
            self.decided += len(batch)
            self.steps += sum(len(pending.request.followed) + 1 for pending in batch)
            for pending, action in zip(batch, actions):
                if not pending.future.done():
                    pending.future.set_result(action)

    def stats(self) -> dict:
        return {"llm_batches": self.batches, "llm_decisions": self.decided,
                "mean_batch_size": self.decided / max(1, self.batches), "llm_busy_s": self.busy_s,
                "llm_withdrawn": self.withdrawn}

    async def drain(self) -> None:
        """Wait until every queued request is decided (graceful shutdown)."""
        while not self.queue.empty():
            await asyncio.sleep(0.01)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)
        self.llm.shutdown()
