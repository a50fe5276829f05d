"""Adaptive policy collaboration (APC): a router judges each scheduling request by the cluster's state and
sends the difficult ones to the LLM scheduler, the rest to a fast scheduler (Fair, or Decima).

`cluster_difficulty` scores an observation (higher = harder), from what the scheduler sees:
    choice       log(number of schedulable stages)        (0 when there is only one thing to do)
    contention   active jobs / executors
    queueing     tasks left in the active stages / (10 x executors)
    scarcity     1 - free executors / executors
summed with equal weights. `ClusterRouter` sends a request to the LLM when its score exceeds a threshold
(plm_special/routing.py calibrates it so that about a share p of a calibration run's requests exceed it);
`RandomRouter` sends the same share uniformly at random; `LearnedRouter` (plm_special/learned_router.py)
scores a request by the probability that the LLM would choose another stage than the fast scheduler.

`CollaborativeScheduler` is a Scheduler like any other: the fast scheduler decides every request (so that
its own state follows the whole episode) and its answer is taken unless the router picks the LLM; the
decisions the fast scheduler took enter the LLM's context (LLMScheduler.follow).
"""
from functools import partial

import numpy as np

from schedulers.scheduler import Scheduler

from .llm_scheduler import LLMScheduler

ROUTERS = ["cluster", "random", "learned"]  # learned: plm_special/learned_router.py


def cluster_terms(observation: dict, num_executors: int) -> tuple[float, float, float, float]:
    """choice, contention, queueing, scarcity (see above)."""
    nodes = observation["dag_batch"].nodes
    schedulable = int(nodes[:, 2].sum())
    active_jobs = len(observation["dag_ptr"]) - 1
    return (float(np.log(max(1, schedulable))), active_jobs / num_executors,
            float(nodes[:, 0].sum()) / (10.0 * num_executors),
            1.0 - observation["num_committable_execs"] / num_executors)


def cluster_difficulty(observation: dict, num_executors: int) -> float:
    return sum(cluster_terms(observation, num_executors))


class ScoreRouter:
    """Sends a request to the LLM when its score (higher = the LLM is more needed) exceeds a threshold."""

    name = "score"

    def __init__(self, score, threshold: float):
        self.score, self.threshold = score, threshold

    def to_llm(self, observation: dict) -> bool:
        return self.score(observation) > self.threshold


class ClusterRouter(ScoreRouter):
    name = "cluster"

    def __init__(self, threshold: float, num_executors: int):
        super().__init__(partial(cluster_difficulty, num_executors=num_executors), threshold)


class RandomRouter:
    name = "random"

    def __init__(self, share: float, seed: int):
        self.share = share
        self.rng = np.random.default_rng(seed)

    def to_llm(self, observation: dict) -> bool:
        return bool(self.rng.random() < self.share)


class CollaborativeScheduler(Scheduler):
    """Counts the requests it serves and those the LLM decided (`llm_share`)."""

    def __init__(self, llm: LLMScheduler, fast: Scheduler, router):
        self.llm, self.fast, self.router = llm, fast, router
        self.name = f"apc_{router.name}_{fast.name}"
        self.requests = self.llm_requests = 0

    @property
    def llm_share(self) -> float:
        return self.llm_requests / max(1, self.requests)

    def reset(self, env_id=0):
        self.llm.reset(env_id)
        self.fast.reset(env_id)

    def act(self, observation, env_id=0):
        action = self.fast.act(observation, env_id)
        self.requests += 1
        if self.router.to_llm(observation):
            self.llm_requests += 1
            return self.llm.act(observation, env_id)
        self.llm.follow(observation, action, env_id)
        return action

    def observe(self, reward, env_id=0):
        self.llm.observe(reward, env_id)
        self.fast.observe(reward, env_id)
