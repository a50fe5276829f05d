"""Sessions and APC routing, independent of the web framework (app.py serves it over HTTP, ray_app.py on Ray).

Every request is answered: by the fast policy when the router calls it easy, by the LLM otherwise; when the
LLM's answer is not ready within the deadline, or the LLM fails, or the session is outside the LLM (session
admission, below), by the overflow policy (default: the fast policy). Both compute an answer for every
request of every session, so that their own state (e.g. RobustMPC's error history) follows the whole episode.
Steps the LLM did not decide reach it, with the action taken, with the session's next LLM request.

Session admission (ServerLimits.demote_after > 0): the LLM's context is the whole episode, so every step of
every session in the LLM costs it work, whoever decided the step, and that work reaches the LLM only with the
session's next LLM pick (seconds later). So the server measures the load rather than waiting to see it: every
second it counts the steps the sessions in the LLM streamed, and sets the capacity, the number of sessions the
LLM may hold, to those that keep it `target_llm_load` busy at its throughput (steps fed per second of its
work, as measured so far); before the LLM's first batch the capacity is `initial_llm_sessions`. A session
whose LLM picks were answered late (deadline or overload) `demote_after` times leaves the LLM for the rest of
its episode (its context is dropped) and the capacity falls to one less than the LLM held. Sessions outside
the LLM are routed as the others, the router's LLM picks going to the overflow policy; those never demoted
join the LLM, at any step, when it holds fewer than its capacity and has answered every pick in time since the
second began: their steps so far, with the actions taken, reach the LLM with their first LLM request, so the
context is still the episode as it happened. That catch-up is paid at once, so joins in a second may bring at
most the steps the LLM has to spare in it (one join at least when the LLM holds no session).
"""
import asyncio
import time
import uuid
from dataclasses import dataclass, field

from abr_sim.policy import Policy

from .llm_worker import LLMRequest, TooLate
from .reports import ReportError, ReportTracker, parse_report

SOURCES = ("llm", "fast", "deadline", "overload", "llm-failed", "overflow")  # who answered a request


@dataclass
class ServerLimits:
    deadline_ms: float = 0.0  # 0: wait for the LLM however long it takes
    max_sessions: int = 4096
    session_idle_s: float = 120.0
    max_llm_backlog: int = 0  # requests the router sends to the fast policy at once while the LLM has this
    # many waiting or running (0: no limit)
    demote_after: int = 0  # a session leaves the LLM after this many LLM picks answered late (0: no admission)
    max_llm_sessions: int = 0  # with demote_after: sessions in the LLM at most (0: no limit but the capacity)
    initial_llm_sessions: int = 64  # with demote_after: the capacity before the LLM has shown what it can hold
    target_llm_load: float = 0.8  # with demote_after: the share of its time the LLM's sessions keep it busy


CAPACITY_INTERVAL_S = 1.0  # the load is measured and the capacity set once per such interval


@dataclass
class Session:
    client: int  # the policies' id of this session (ids of closed sessions are reused)
    tracker: ReportTracker = field(default_factory=ReportTracker)
    unsent: list = field(default_factory=list)  # fast-decided steps the LLM has not seen yet
    overrule: int | None = None  # the action taken instead of the LLM's last (late) answer
    broken: bool = False  # the LLM failed on this session: the fast policy serves the rest of it
    in_llm: bool = True  # False: the overflow policy answers this session, until it is admitted
    demoted: bool = False  # the LLM could not keep up with this session: it never rejoins the LLM
    late: int = 0  # LLM picks answered by the fast policy at their deadline or under overload
    busy: bool = False
    closed: bool = False
    last_answer: dict | None = None
    last_seen: float = field(default_factory=time.monotonic)


class PolicyService:
    def __init__(self, fast: Policy, router, llm_backend, limits: ServerLimits, overflow: Policy | None = None):
        self.fast, self.router, self.llm, self.limits = fast, router, llm_backend, limits
        self.overflow = overflow if overflow is not None else fast
        self.sessions: dict[str, Session] = {}
        self.llm_sessions = self.demoted = self.not_admitted = self.admitted_later = 0
        self.llm_session_capacity = self._capped(limits.initial_llm_sessions)
        self.interval_from, self.late_in_interval = time.monotonic(), False
        self.steps_in_interval = 0  # steps streamed by sessions in the LLM since the interval began
        self.join_budget = float("inf")  # catch-up steps that joins may still bring in this interval
        self.llm_load = 0.0  # the last interval's steps over what the LLM feeds in it
        self.free_clients: list[int] = []  # ids of closed sessions whose LLM contexts are gone
        self.next_client = 0
        self.releases: dict[int, asyncio.Future] = {}  # LLM contexts being dropped, by client id
        self.answered = dict.fromkeys(SOURCES, 0)
        self.routed_to_llm = self.routable = 0
        self.outside_requests = 0  # requests of sessions outside the LLM (session admission)
        self.failed_requests = 0

    # sessions
    def open_session(self, session_id: str | None = None) -> str:
        if session_id is None:
            session_id = uuid.uuid4().hex
        if session_id in self.sessions:
            self.close_session(session_id)
        if len(self.sessions) >= self.limits.max_sessions:
            raise ReportError(f"the server holds its limit of {self.limits.max_sessions} open sessions; close "
                              "finished sessions or retry later", status=503)
        client = self.free_clients.pop() if self.free_clients else self._new_client()
        session = Session(client, in_llm=self._admits())
        if session.in_llm:
            self.llm_sessions += 1
        else:
            self.not_admitted += 1
        self.fast.reset(client)
        if self.overflow is not self.fast:
            self.overflow.reset(client)
        self.sessions[session_id] = session
        return session_id

    # admission
    def _capped(self, capacity: int) -> int:
        return max(1, min(capacity, self.limits.max_llm_sessions or capacity))

    def _admits(self, catch_up: int = 0) -> bool:
        """Whether the LLM takes a session now, bringing `catch_up` steps it has not seen."""
        if self.llm is None or self.limits.demote_after == 0:
            return True
        self._set_capacity()
        full = self.llm_sessions >= self.llm_session_capacity
        keeping_up = not self.late_in_interval and not 0 < self.limits.max_llm_backlog <= self.llm.backlog()
        affordable = catch_up <= self.join_budget or self.llm_sessions == 0
        return not full and keeping_up and affordable

    def _admit(self, session: Session) -> None:
        """A session outside the LLM joins it mid-episode; its steps so far are in `unsent`."""
        session.in_llm = True
        self.llm_sessions += 1
        self.admitted_later += 1
        self.join_budget -= len(session.unsent)

    def _set_capacity(self) -> None:
        """Once per interval: the sessions whose measured step rate keeps the LLM `target_llm_load` busy."""
        now = time.monotonic()
        elapsed = now - self.interval_from
        if elapsed < CAPACITY_INTERVAL_S:
            return
        throughput, streamed = self.llm.throughput(), self.steps_in_interval / elapsed
        if throughput:
            self.llm_load = streamed / throughput
            self.join_budget = max(0.0, self.limits.target_llm_load * throughput - streamed) * CAPACITY_INTERVAL_S
            if self.llm_sessions and streamed:
                per_session = streamed / self.llm_sessions
                self.llm_session_capacity = self._capped(int(self.limits.target_llm_load * throughput / per_session))
        self.interval_from, self.late_in_interval, self.steps_in_interval = now, False, 0

    def _demote(self, session: Session) -> None:
        """The LLM could not keep up with this session: it leaves the LLM (and its context) for good."""
        self.llm_session_capacity = min(self._capped(self.llm_sessions - 1), self.llm_session_capacity)
        self._leave_llm(session)
        session.demoted = True
        self.demoted += 1

    def _leave_llm(self, session: Session) -> None:
        """Drop the session's LLM context without waiting for it: the answer at hand is not held up by the
        running batch. Its client id is reused only once the LLM has dropped it."""
        session.in_llm, session.unsent, session.overrule = False, [], None
        self.llm_sessions -= 1
        if self.llm is None:
            return
        release = asyncio.ensure_future(self.llm.close_session(session.client))
        self.releases[session.client] = release
        release.add_done_callback(lambda done: self._released(session, done))

    def _released(self, session: Session, release: asyncio.Future) -> None:
        del self.releases[session.client]
        if not release.cancelled() and release.exception() is not None:
            self.failed_requests += 1  # the LLM failed to drop a context: this id is never given out again
        elif session.closed:
            self.free_clients.append(session.client)

    def _new_client(self) -> int:
        self.next_client += 1
        return self.next_client - 1

    def session(self, session_id: str) -> Session:
        if session_id not in self.sessions:
            raise ReportError(f"unknown or closed session '{session_id}'; open one with POST /sessions", status=404)
        return self.sessions[session_id]

    def close_session(self, session_id: str) -> None:
        session = self.session(session_id)
        del self.sessions[session_id]
        session.closed = True
        if session.in_llm:
            self._leave_llm(session)
        if session.client not in self.releases:
            self.free_clients.append(session.client)

    def expire_idle(self) -> list[str]:
        now = time.monotonic()
        idle = [sid for sid, s in self.sessions.items() if not s.busy and now - s.last_seen > self.limits.session_idle_s]
        for session_id in idle:
            self.close_session(session_id)
        return idle

    # decisions
    async def decide(self, session_id: str, payload) -> dict:
        """The answer to one report: the next bitrate index, who decided it, and whether the video is over."""
        session = self.session(session_id)
        if session.busy:
            raise ReportError("a request of this session is still being answered; send one report at a time",
                              status=409)
        report = parse_report(payload)
        if session.last_answer is not None and report.lastRequest == session.tracker.chunks - 1:
            return session.last_answer  # a retry of the last report gets the same answer
        session.busy = True
        try:
            answer = await self._decide(session, session.tracker.observe(report))
        finally:
            session.busy = False
            session.last_seen = time.monotonic()
        session.last_answer = answer
        return answer

    async def _decide(self, session: Session, observation) -> dict:
        if not session.in_llm and not session.demoted and not observation.done and self._admits(len(session.unsent)):
            self._admit(session)
        fast_action = int(self.fast.act(observation, session.client))
        fallback = fast_action if self.overflow is self.fast else int(self.overflow.act(observation, session.client))
        routable = self.llm is not None and not session.broken and not observation.done
        picked = routable and self.router.to_llm([observation], [session.client])[0]
        if not session.in_llm:
            self.outside_requests += 1
            action, source = (fallback, "overflow") if picked else (fast_action, "fast")
            self.answered[source] += 1
            if not session.demoted:  # the LLM sees these steps if the session joins it
                session.unsent.append((observation, action))
            return {"quality": action, "decided_by": source, "done": bool(observation.done)}
        action, source = fast_action, "fast"
        if routable:
            self.routable += 1
            self.steps_in_interval += 1
            overloaded = 0 < self.limits.max_llm_backlog <= self.llm.backlog()
            if picked:
                self.routed_to_llm += 1
                if overloaded:
                    action, source = fallback, "overload"
                    session.unsent.append((observation, fallback))
                else:
                    action, source = await self._ask_llm(session, observation, fallback)
            else:
                session.unsent.append((observation, fast_action))
            if source in ("deadline", "overload"):
                self.late_in_interval = True
                session.late += 1
                if 0 < self.limits.demote_after <= session.late:
                    self._demote(session)
        self.answered[source] += 1
        return {"quality": int(action), "decided_by": source, "done": bool(observation.done)}

    async def _ask_llm(self, session: Session, observation, fallback: int) -> tuple[int, str]:
        request = LLMRequest(session.client, observation, session.unsent, session.overrule)
        session.unsent, session.overrule = [], None
        deadline = self.limits.deadline_ms / 1000.0 if self.limits.deadline_ms > 0 else None
        pending = self.llm.submit(request, deadline)
        pending.future.add_done_callback(lambda future: self._after_llm(session, future))
        try:
            return int(await asyncio.wait_for(asyncio.shield(pending.future), deadline)), "llm"
        except (TimeoutError, TooLate):
            if pending.running:  # the LLM will decide it; the context must hold the action taken
                session.overrule = fallback
            else:  # withdrawn or skipped by the batcher: what it carried reaches the LLM with the next request
                pending.abandoned = True
                session.unsent = request.followed + [(observation, fallback)]
                session.overrule = request.overrule
            return fallback, "deadline"
        except Exception:
            return fallback, "llm-failed"

    def _after_llm(self, session: Session, future: asyncio.Future) -> None:
        if not future.cancelled() and future.exception() is not None and not isinstance(future.exception(), TooLate):
            self.failed_requests += 1
            session.broken = True

    def stats(self) -> dict:
        decided = sum(self.answered.values())
        stats = {"open_sessions": len(self.sessions), "requests": decided, "answered_by": dict(self.answered),
                 "llm_share": self.routed_to_llm / max(1, self.routable), "llm_failed_requests": self.failed_requests,
                 "llm_sessions": self.llm_sessions, "demoted_sessions": self.demoted,
                 "sessions_not_admitted": self.not_admitted, "sessions_admitted_later": self.admitted_later,
                 "requests_outside_llm": self.outside_requests,
                 "llm_session_capacity": self.llm_session_capacity, "llm_load": self.llm_load}
        if self.llm is not None:
            stats["llm_backlog"], stats["llm_steps_per_s"] = self.llm.backlog(), self.llm.throughput()
            stats.update(self.llm.stats())
        return stats

