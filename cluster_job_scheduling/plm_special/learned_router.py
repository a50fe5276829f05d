"""APC's learned router for CJS: sends a request to the LLM where it would choose another stage than the fast
scheduler.

On the calibration seeds the LLM scheduler plays alone while the fast scheduler decides every request beside
it; a small network (plm_special/routing.py `DisagreementModel`) learns from `router_features` the probability
that the two choose different stages. The router sends the requests with the highest probability (a
threshold calibrated as the cluster router's). Unlike the cluster router's load score, this leaves out the
requests where the choice hardly matters (against Decima, one schedulable stage: the LLM could only pick
another number of executors) and the states where the two schedulers agree anyway. Only the stage counts
(-1, Fair's "none", included): Decima samples its number of executors, so the two would differ there on most
requests.
"""
from functools import partial

import numpy as np

from schedulers.scheduler import Scheduler

from .apc import ScoreRouter, cluster_terms
from .routing import DisagreementModel, fit_disagreement


def router_features(observation: dict, num_executors: int) -> np.ndarray:
    """The request's cluster state in eleven numbers: the cluster router's four terms, then the executors free
    to commit, those already at the jobs, whether a job releases executors (the source job), and the choice
    among the schedulable stages: their count, their tasks and their work (tasks x recent task duration,
    log-scaled: mean, and spread as a coefficient of variation)."""
    nodes = observation["dag_batch"].nodes
    schedulable = nodes[:, 2] > 0
    supplies = np.asarray(observation["exec_supplies"], dtype=np.float64)
    work = nodes[schedulable, 0] * nodes[schedulable, 1]
    log_work = np.log1p(work / 1000.0) if len(work) else np.zeros(1)
    return np.array([
        *cluster_terms(observation, num_executors),
        observation["num_committable_execs"] / num_executors,
        supplies.sum() / num_executors,
        float(observation["source_job_idx"] < len(supplies)),
        float(schedulable.sum()) / 10.0,
        float(nodes[schedulable, 0].sum()) / (10.0 * num_executors),
        float(log_work.mean()),
        float(log_work.std() / (log_work.mean() + 1e-6)),
    ])


class DisagreementRecorder(Scheduler):
    """The LLM scheduler decides; the fast scheduler decides the same requests beside it; the features, the
    disagreement (another stage) and the cluster router's score of every request are recorded."""

    def __init__(self, llm: Scheduler, fast: Scheduler, num_executors: int):
        self.llm, self.fast, self.name, self.num_executors = llm, fast, llm.name, num_executors
        self.features, self.disagree, self.cluster_scores = [], [], []

    def reset(self, env_id=0):
        self.llm.reset(env_id)
        self.fast.reset(env_id)

    def act(self, observation, env_id=0):
        fast_action = self.fast.act(observation, env_id)
        action = self.llm.act(observation, env_id)
        features = router_features(observation, self.num_executors)
        self.features.append(features)
        self.disagree.append(float(fast_action["stage_idx"] != action["stage_idx"]))
        self.cluster_scores.append(float(sum(features[:4])))  # the cluster router's terms come first
        return action

    def observe(self, reward, env_id=0):
        self.llm.observe(reward, env_id)
        self.fast.observe(reward, env_id)


def fit_disagreement_model(rows: np.ndarray, labels: np.ndarray, num_executors: int,
                           seed: int) -> tuple[DisagreementModel, list[float]]:
    """The model fitted on a DisagreementRecorder's rows and labels, and its scores of those rows."""
    return fit_disagreement(partial(router_features, num_executors=num_executors), rows, labels, seed)


class LearnedRouter(ScoreRouter):
    name = "learned"
