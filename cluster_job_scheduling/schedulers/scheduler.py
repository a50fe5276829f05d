"""The one scheduler interface of the CJS task, shared by the heuristics, Decima, the LLM scheduler and the
APC router.

An observation is the environment's (spark_sched_sim/env.py); an action is {'stage_idx': index among the
observation's schedulable stages, or -1 for none, 'num_exec': executors to commit, >= 1}. A scheduler can
serve several environments at once, told apart by an integer id: `reset(env_id)` when an episode starts,
`act(observation, env_id)` for one decision, `act_batch(observations, env_ids)` for one decision in each
of several environments (neural schedulers override it to batch their work), and `observe(reward, env_id)`
after every step, for schedulers that condition on what they have earned (the LLM's return to go).
"""
from collections.abc import Sequence


class Scheduler:
    name = "scheduler"

    def reset(self, env_id: int = 0) -> None:
        """A new episode starts in environment `env_id`."""

    def act(self, observation: dict, env_id: int = 0) -> dict:
        raise NotImplementedError

    def act_batch(self, observations: Sequence[dict], env_ids: Sequence[int]) -> list[dict]:
        return [self.act(observation, env_id) for observation, env_id in zip(observations, env_ids)]

    def observe(self, reward: float, env_id: int = 0) -> None:
        """The reward of the last action taken in environment `env_id`."""
