"""The LLM policy behind the one ABR Policy interface, serving one or many streaming clients."""
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from abr_sim.policy import Policy

from .return_scaling import ReturnScaling
from .rl_policy import OfflineRLPolicy


@dataclass
class ClientContext:
    """One client's episode so far: what the policy was conditioned on and what it chose."""

    target_return: float
    states: list = field(default_factory=list)
    returns: list = field(default_factory=list)
    actions: list = field(default_factory=list)


@dataclass
class CachedGroup:
    """Clients decided together so far, with the keys and values of their tokens (one batched cache)."""

    clients: tuple
    steps: int
    cache: object


class LLMPolicy(Policy):
    """Conditions on a target return that starts at the pool's best and drops by each chunk's processed QoE.

    Decisions are incremental (only the 8 new tokens of a step are fed, earlier ones come from the cache)
    whenever the same clients are decided together step after step, as the evaluation loop does; any
    other pattern falls back to recomputing the clients' contexts, which gives the same actions.
    `sample=False` takes the most likely bitrate; `sample=True` samples from a generator seeded with `seed`.
    """

    name = "trailblazer"

    def __init__(self, model: OfflineRLPolicy, scaling: ReturnScaling, target_return_scale: float = 1.0,
                 sample: bool = False, seed: int = 0, use_cache: bool = True):
        self.model = model.eval()
        self.scaling = scaling
        self.initial_target = scaling.max_return * target_return_scale
        self.sample = sample
        self.generator = torch.Generator().manual_seed(seed)
        self.use_cache = use_cache and model.backbone.supports_cache
        self.device = next(model.parameters()).device
        self.contexts: dict[int, ClientContext] = {}
        self.group: CachedGroup | None = None

    def reset(self, client: int = 0) -> None:
        self.contexts[client] = ClientContext(self.initial_target)
        if self.group is not None and client in self.group.clients:
            self.group = None

    def act(self, observation, client: int = 0) -> int:
        return self.act_batch([observation], [client])[0]

    def follow(self, observation, client: int, action: int) -> None:
        """A step decided by another policy (APC's fast one) enters the client's context with the action that
        was actually taken, so that the LLM's next decision sees the episode as it happened."""
        self._extend(observation, client).actions.append(action)
        if self.group is not None and client in self.group.clients:
            self.group = None

    def _extend(self, observation, client: int) -> ClientContext:
        """The client's context with the step of this observation added (its state and target return)."""
        context = self.contexts.setdefault(client, ClientContext(self.initial_target))
        if context.states:  # chunk 0's QoE is not counted, as in the original
            context.target_return -= self.scaling.process_reward(observation.reward)
        context.states.append(np.asarray(observation.state, dtype=np.float32))
        context.returns.append(context.target_return)
        return context

    @torch.inference_mode()
    def act_batch(self, observations: Sequence, clients: Sequence[int]) -> list[int]:
        clients = tuple(clients)
        contexts = [self._extend(observation, client) for observation, client in zip(observations, clients)]
        steps = len(contexts[0].states)
        same_step = all(len(c.states) == steps for c in contexts)
        continuing = self.group is not None and self.group.clients == clients and self.group.steps == steps - 1
        if self.use_cache and same_step and (steps == 1 or continuing):
            logits = self._decide_incrementally(contexts, clients, steps)
        else:
            self.group = None
            logits = self._decide_from_scratch_by_step(contexts)
        actions = self._choose(logits)
        for context, action in zip(contexts, actions):
            context.actions.append(action)
        return actions

    def _decide_from_scratch_by_step(self, contexts):
        """Recompute every context, those at the same step in one forward pass; logits in the given order."""
        logits = [None] * len(contexts)
        for steps in sorted({len(c.states) for c in contexts}):
            indices = [i for i, c in enumerate(contexts) if len(c.states) == steps]
            for i, row in zip(indices, self._decide_from_scratch([contexts[i] for i in indices])):
                logits[i] = row
        return torch.stack(logits)

    def _decide_incrementally(self, contexts, clients, steps):
        states = torch.from_numpy(np.stack([c.states[-1] for c in contexts])).to(self.device)
        returns = torch.tensor([c.returns[-1] for c in contexts], dtype=torch.float32, device=self.device)
        previous = None
        if steps > 1:
            previous = torch.tensor([c.actions[-1] for c in contexts], device=self.device)
        cache = self.group.cache if steps > 1 else None
        logits, cache = self.model.decide(states, returns, steps - 1, previous, cache)
        self.group = CachedGroup(clients, steps, cache)
        return logits

    def _decide_from_scratch(self, contexts):
        """Recompute the whole context of clients at the same step (the reference the cache must match)."""
        steps = len(contexts[0].states)
        states = torch.from_numpy(np.stack([np.stack(c.states) for c in contexts])).to(self.device)
        returns = torch.tensor([c.returns for c in contexts], dtype=torch.float32, device=self.device)
        actions = torch.tensor([c.actions + [0] for c in contexts], device=self.device)  # a_t is not seen
        timesteps = torch.arange(steps, device=self.device).clamp(max=self.model.max_timestep).expand(len(contexts), -1)
        return self.model(states, actions, returns, timesteps)[:, -1]

    def _choose(self, logits) -> list[int]:
        if not self.sample:
            return logits.argmax(dim=-1).tolist()
        probabilities = torch.softmax(logits.float().cpu(), dim=-1)
        return torch.multinomial(probabilities, 1, generator=self.generator)[:, 0].tolist()
