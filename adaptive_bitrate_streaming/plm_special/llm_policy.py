"""The LLM policy behind the one ABR Policy interface, serving one or many streaming clients."""
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from abr_sim.policy import Policy

from .return_scaling import ReturnScaling
from .rl_policy import TOKENS_PER_STEP, ClientCache, OfflineRLPolicy


def similar_lengths(lengths: list[int], relative: float = 0.25, absolute: int = 64) -> list[list[int]]:
    """Indices grouped by length so that padding a group to its longest adds at most `relative` of its tokens
    plus `absolute` tokens (about the cost of one more pass on a CPU). A pass pads every client's new tokens
    to the longest: one client catching up on many fast-decided steps would otherwise pad the whole batch."""
    groups, total = [[]], 0
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if groups[-1] and (len(groups[-1]) + 1) * lengths[i] > (1 + relative) * (total + lengths[i]) + absolute:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += lengths[i]
    return groups


@dataclass
class ClientContext:
    """One client's episode so far: what the policy was conditioned on, what was taken, and the client's cache
    of the first `fed` tokens (positions 0..fed-1)."""

    target_return: float
    states: list = field(default_factory=list)
    returns: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    cache: ClientCache | None = None
    fed: int = 0


class LLMPolicy(Policy):
    """Conditions on a target return that starts at the pool's best and drops by each chunk's processed QoE.

    Every client keeps its own key/value cache, so any subset of clients, each at its own step, is decided in
    one forward pass that feeds only the tokens not yet fed (the steps since the client's last LLM decision,
    including steps that another policy decided, see `follow`); it gives the same actions as recomputing the
    clients' contexts (`use_cache=False`). `sample=False` takes the most likely bitrate; `sample=True` samples
    from a generator seeded with `seed`.
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
        self.device = model.embed_ln.weight.device  # the policy's own modules (a split backbone spans more)
        self.contexts: dict[int, ClientContext] = {}

    def reset(self, client: int = 0) -> None:
        self.contexts[client] = ClientContext(self.initial_target)

    def close(self, client: int) -> None:
        """Forget a client (its context and cache)."""
        self.contexts.pop(client, None)

    def act(self, observation, client: int = 0) -> int:
        return self.act_batch([observation], [client])[0]

    def follow(self, observation, client: int, action: int) -> None:
        """A step decided by another policy (APC's fast one) enters the client's context with the action that
        was actually taken, so that the LLM's next decision sees the episode as it happened; its tokens are
        fed with that decision."""
        self._extend(observation, client).actions.append(action)

    def overrule(self, client: int, action: int) -> None:
        """The client took `action` instead of the LLM's last decision for it (a server's deadline fallback)."""
        self.contexts[client].actions[-1] = action

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
        contexts = [self._extend(observation, client) for observation, client in zip(observations, clients)]
        if self.use_cache:
            logits = self._decide_incrementally(contexts)
        else:
            logits = self._decide_from_scratch_by_step(contexts)
        actions = self._choose(logits)
        for context, action in zip(contexts, actions):
            context.actions.append(action)
        return actions

    def _decide_incrementally(self, contexts):
        """Feed each client's unfed tokens: the steps from the one holding position `fed` to the decision
        token of the current step; the tokens of all clients are embedded in one call, and clients with
        similar numbers of tokens share a pass."""
        firsts = [context.fed // TOKENS_PER_STEP for context in contexts]  # first step with unfed tokens
        states = np.concatenate([np.stack(c.states[first:]) for c, first in zip(contexts, firsts)])
        returns = [r for c, first in zip(contexts, firsts) for r in c.returns[first:]]
        actions = [a for c, first in zip(contexts, firsts) for a in c.actions[first:] + [0]]  # a_t is not seen
        timesteps = [t for c, first in zip(contexts, firsts) for t in range(first, len(c.states))]
        tokens = self.model.episode_tokens(
            torch.from_numpy(states).to(self.device)[None], torch.tensor([actions], device=self.device),
            torch.tensor([returns], dtype=torch.float32, device=self.device),
            torch.tensor([timesteps], device=self.device).clamp(max=self.model.max_timestep))[0]
        per_client, offset = [], 0
        for context, first in zip(contexts, firsts):
            steps = len(context.states) - first
            client_tokens = tokens[offset * TOKENS_PER_STEP:(offset + steps) * TOKENS_PER_STEP]
            per_client.append(client_tokens[context.fed - first * TOKENS_PER_STEP:-1])  # up to s6_t
            offset += steps
        logits = [None] * len(contexts)
        for group in similar_lengths([len(tokens) for tokens in per_client]):
            rows, caches = self.model.decide([per_client[i] for i in group], [contexts[i].fed for i in group],
                                             [contexts[i].cache for i in group])
            for i, row, cache in zip(group, rows, caches):
                logits[i] = row
                contexts[i].cache = cache
                contexts[i].fed = len(contexts[i].states) * TOKENS_PER_STEP - 1
        return torch.stack(logits)

    def _decide_from_scratch_by_step(self, contexts):
        """Recompute every context, those at the same step in one forward pass; logits in the given order."""
        logits = [None] * len(contexts)
        for steps in sorted({len(c.states) for c in contexts}):
            indices = [i for i, c in enumerate(contexts) if len(c.states) == steps]
            for i, row in zip(indices, self._decide_from_scratch([contexts[i] for i in indices])):
                logits[i] = row
        return torch.stack(logits)

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
