"""The one policy interface of the ABR task, shared by the baselines, the LLM policy and the APC router.

A policy serves one or more independent streaming clients, told apart by an integer id. For every
client, the evaluation loop calls `reset(client)` when an episode starts and then, after each chunk
download, `act(observation, client)` to get the bitrate index of the next chunk (it is also called after
the last chunk, as in the original, and that decision is discarded). `act_batch` serves many clients
at once; policies that can batch their work (neural networks) override it.
"""
from collections.abc import Sequence

from .streaming import Observation


class Policy:
    name = "policy"

    def reset(self, client: int = 0) -> None:
        """A new episode starts for `client`."""

    def act(self, observation: Observation, client: int = 0) -> int:
        raise NotImplementedError

    def act_batch(self, observations: Sequence[Observation], clients: Sequence[int]) -> list[int]:
        return [self.act(observation, client) for observation, client in zip(observations, clients)]
