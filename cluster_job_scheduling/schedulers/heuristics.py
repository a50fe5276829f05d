"""Heuristic schedulers: the original's Fair and "FIFO" (round robin with a per-job executor cap), a strict
first-come-first-served variant, and Random (the original's `schedulers/heuristic/round_robin.py`)."""
import math
from dataclasses import dataclass

import numpy as np

from .scheduler import Scheduler


@dataclass
class RoundView:
    """What the heuristics read from an observation."""

    job_ptr: np.ndarray
    frontier: set  # nodes with no incomplete parent
    schedulable: dict  # node index -> index among the schedulable stages (the action's stage_idx)
    exec_supplies: np.ndarray
    num_committable: int
    source_job_idx: int

    @classmethod
    def of(cls, observation: dict) -> "RoundView":
        dag = observation["dag_batch"]
        frontier = np.ones(len(dag.nodes), dtype=bool)
        frontier[dag.edge_links[:, 1]] = False
        schedulable_nodes = np.flatnonzero(dag.nodes[:, 2])
        return cls(np.asarray(observation["dag_ptr"]), set(np.flatnonzero(frontier).tolist()),
                   {int(node): i for i, node in enumerate(schedulable_nodes)},
                   np.asarray(observation["exec_supplies"]), int(observation["num_committable_execs"]),
                   int(observation["source_job_idx"]))

    @property
    def num_jobs(self) -> int:
        return len(self.exec_supplies)

    def find_stage(self, job: int) -> int:
        """A schedulable stage of the job, a frontier one if there is one; -1 if none."""
        found = -1
        for node in range(self.job_ptr[job], self.job_ptr[job + 1]):
            if node in self.schedulable:
                if node in self.frontier:
                    return self.schedulable[node]
                if found == -1:
                    found = self.schedulable[node]
        return found


class RoundRobin(Scheduler):
    """Fair: each job is capped at ceil(executors / active jobs); the original's "FIFO": at ceil(executors / 2).

    The job releasing executors keeps them if it has a stage to run; otherwise jobs are served in arrival
    order, each up to its cap.
    """

    def __init__(self, num_executors: int, fair: bool):
        self.name = "fair" if fair else "fifo"
        self.num_executors, self.fair = num_executors, fair

    def act(self, observation, env_id=0):
        view = RoundView.of(observation)
        cap = math.ceil(self.num_executors / (max(1, view.num_jobs) if self.fair else 2))
        if view.source_job_idx < view.num_jobs:
            stage = view.find_stage(view.source_job_idx)
            if stage != -1:
                return {"stage_idx": stage, "num_exec": view.num_committable}
        for job in range(view.num_jobs):
            if view.exec_supplies[job] >= cap or job == view.source_job_idx:
                continue
            stage = view.find_stage(job)
            if stage != -1:
                return {"stage_idx": stage, "num_exec": min(view.num_committable, cap - int(view.exec_supplies[job]))}
        return {"stage_idx": -1, "num_exec": view.num_committable}


class FirstComeFirstServed(Scheduler):
    """Strict FCFS: the oldest job with a schedulable stage gets every free executor, without a cap."""

    name = "fcfs"

    def act(self, observation, env_id=0):
        view = RoundView.of(observation)
        for job in range(view.num_jobs):
            stage = view.find_stage(job)
            if stage != -1:
                return {"stage_idx": stage, "num_exec": view.num_committable}
        return {"stage_idx": -1, "num_exec": view.num_committable}


class RandomScheduler(Scheduler):
    """A random job that has a schedulable stage, and a random number of executors (seeded)."""

    name = "random"

    def __init__(self, seed: int = 42):
        self.rng = np.random.default_rng(seed)

    def act(self, observation, env_id=0):
        view = RoundView.of(observation)
        jobs = list(range(view.num_jobs))
        stage = -1
        while jobs and stage == -1:
            job = jobs.pop(int(self.rng.integers(len(jobs))))
            stage = view.find_stage(job)
        return {"stage_idx": stage, "num_exec": int(self.rng.integers(1, view.num_committable + 1))}
