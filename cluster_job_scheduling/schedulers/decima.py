"""Decima as a scheduler: samples a stage, then a number of executors for its job, from the actor's policies."""
from pathlib import Path

import numpy as np
import torch

from common.errors import InputError
from spark_sched_sim.graph_observation import GraphObservation, GraphObserver, collate

from .decima_actor import build_actor, load_state_dict
from .graph_encoder import add_indices
from .scheduler import Scheduler


def sample_index(probabilities: np.ndarray, rng: np.random.Generator) -> int:
    cumulative = np.cumsum(probabilities, dtype=np.float64)
    return min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), len(cumulative) - 1)


class DecimaScheduler(Scheduler):
    """Samples a stage, then a number of executors for its job, from the actor's softmax policies
    (`greedy`: the most likely ones), with a generator seeded by `seed`."""

    name = "decima"

    def __init__(self, num_executors: int, agent_config: dict, state_dict_path: Path | None = None,
                 seed: int = 0, greedy: bool = False, device="cpu", cache: bool = True):
        self.num_executors = num_executors
        self.actor = build_actor(num_executors, agent_config).to(device)
        self.device = device
        if state_dict_path is not None:
            state = load_state_dict(state_dict_path)
            try:
                self.actor.load_state_dict(state)
            except RuntimeError as error:
                raise InputError(f"{state_dict_path} does not match the Decima architecture of the config "
                                 f"({str(error).splitlines()[1].strip()})") from None
        self.actor.eval()
        self.rng = np.random.default_rng(seed)
        self.greedy = greedy
        self.cache = cache
        self.observers: dict[int, GraphObserver] = {}

    def reset(self, env_id: int = 0) -> None:
        self.observers[env_id] = GraphObserver(self.num_executors, cache=self.cache)

    def graph_observation(self, observation: dict, env_id: int = 0) -> GraphObservation:
        if env_id not in self.observers:
            self.reset(env_id)
        return self.observers[env_id](observation)

    def act(self, observation, env_id=0):
        return self.act_batch([observation], [env_id])[0]

    @torch.no_grad()
    def act_batch(self, observations, env_ids):
        actions, _ = self.decide([self.graph_observation(o, e) for o, e in zip(observations, env_ids)])
        return actions

    def _choose(self, scores: torch.Tensor) -> tuple[int, float]:
        probabilities = torch.softmax(scores.detach(), 0).cpu().numpy()
        index = int(np.argmax(probabilities)) if self.greedy else sample_index(probabilities, self.rng)
        return index, float(np.log(probabilities[index]))

    def decide(self, graphs: list[GraphObservation]) -> tuple[list[dict], list[float]]:
        """Actions for several observations in one forward pass, with their log-probabilities."""
        batch = collate(graphs).to(self.device)
        add_indices(batch)
        h_node, h_dag, h_glob = self.actor.encoder(batch)
        scores = self.actor.stage_scores(batch, h_node, h_dag, h_glob)
        counts = [int(g.stage_mask.sum()) for g in graphs]
        schedulable_nodes = torch.nonzero(batch.stage_mask).squeeze(1)
        stage_choices, jobs, lgprobs, start = [], [], [], 0
        for count in counts:
            index, lgprob = self._choose(scores[start: start + count])
            stage_choices.append(index)
            jobs.append(int(batch.node_job[schedulable_nodes[start + index]]))
            lgprobs.append(lgprob)
            start += count
        exec_scores = self.actor.exec_scores(batch, h_dag, h_glob, torch.tensor(jobs, device=self.device))
        actions, start = [], 0
        for i, job in enumerate(jobs):
            cap = int(batch.exec_caps[job])
            index, lgprob = self._choose(exec_scores[start: start + cap])
            start += cap
            lgprobs[i] += lgprob
            job_in_obs = job - int(batch.jobs_per_obs[:i].sum())
            actions.append({"stage_idx": stage_choices[i], "num_exec": index + 1, "job_idx": job_in_obs,
                            "exec_idx": index})
        return actions, lgprobs
