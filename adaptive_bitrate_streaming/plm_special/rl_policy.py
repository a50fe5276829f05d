"""The return-conditioned offline-RL policy: state encoder -> LLM backbone -> action head.

Token layout, per decision step t of an episode (8 tokens):

    [R_t, s1_t, s2_t, s3_t, s4_t, s5_t, s6_t, a_t]

R_t embeds the return-to-go, s1..s6 the six state features (state_encoder.py), a_t the bitrate index taken;
every token also gets the embedding of its timestep t. The action of step t is predicted from the hidden
state of s6_t, so it sees R_t and the state of step t, and every earlier step, but not a_t.

Context: a token of step t attends to the tokens of steps t-w+1..t (a band of exactly w steps, causal
within the band), in every layer. Training runs whole episodes under that mask; inference feeds only the
tokens a client has not fed yet and keeps the keys and values of earlier ones in the client's own cache
(`ClientCache`, trimmed to what later steps can still see). Both compute exactly the same function, for
every backbone, with the same positions (0..8*T-1 from the start of the episode).
"""
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from transformers import DynamicCache

from .backbones import Backbone, load_backbone
from .state_encoder import StateEncoder

TOKENS_PER_STEP = 8
DECISION_TOKEN = 6  # index of s6_t within a step
NUM_ACTIONS = 6


def band_mask(query_positions: torch.Tensor, key_positions: torch.Tensor, w: int) -> torch.Tensor:
    """(..., Q, K) bool: key k is visible from query q if it is not later and at most w-1 steps earlier.
    Positions are (Q,) and (K,), or (B, Q) and (B, K) for clients at different positions."""
    queries, keys = query_positions.unsqueeze(-1), key_positions.unsqueeze(-2)
    return (keys <= queries) & (keys // TOKENS_PER_STEP > queries // TOKENS_PER_STEP - w)


@dataclass
class ClientCache:
    """One client's keys and values: per block a (heads, tokens, head_dim) pair, of the consecutive positions
    start, start+1, ...; older tokens are dropped once no later step can see them."""

    layers: list
    start: int

    @property
    def length(self) -> int:
        return self.layers[0][0].shape[1]


def left_padded(caches: list, length: int) -> DynamicCache:
    """The clients' caches as one batched cache of `length` tokens, each client's keys at the right end."""
    reference = next(cache for cache in caches if cache is not None).layers
    blocks = []
    for block, (keys, _) in enumerate(reference):
        pair = []
        for part in (0, 1):
            padded = keys.new_zeros(len(caches), keys.shape[0], length, keys.shape[2])
            for i, cache in enumerate(caches):
                if cache is not None:
                    padded[i, :, length - cache.length:] = cache.layers[block][part]
            pair.append(padded)
        blocks.append(tuple(pair))
    return DynamicCache(blocks)


class OfflineRLPolicy(nn.Module):
    def __init__(self, backbone: Backbone, state_feature_dim: int, w: int, max_timestep: int):
        super().__init__()
        embed_dim = backbone.hidden_size
        self.backbone = backbone
        self.w = w
        self.max_timestep = max_timestep
        self.state_encoder = StateEncoder(state_feature_dim)
        self.embed_timestep = nn.Embedding(max_timestep + 1, embed_dim)
        self.embed_return = nn.Linear(1, embed_dim)
        self.embed_action = nn.Linear(1, embed_dim)
        self.embed_states = nn.ModuleList(nn.Linear(dim, embed_dim) for dim in self.state_encoder.output_dims)
        self.embed_ln = nn.LayerNorm(embed_dim)
        self.action_head = nn.Linear(embed_dim, NUM_ACTIONS)

    @classmethod
    def from_settings(cls, settings: dict, plm_dir: Path, adapter_dir: Path | None = None, **load_options):
        """The policy a run's settings describe (run_plm.py's, or a saved policy's settings.json)."""
        backbone = load_backbone(plm_dir, settings["plm_type"], settings["plm_size"], settings["which_layer"],
                                 settings["rank"], settings.get("freeze_plm", False), adapter_dir,
                                 **load_options)
        return cls(backbone, settings["state_feature_dim"], settings["w"], settings["max_timestep"])

    def step_tokens(self, states, returns, timesteps):
        """(B, T, 6, 6) states, (B, T) returns-to-go and timesteps -> (B, T, 7, E) tokens [R, s1..s6]."""
        batch, steps = returns.shape
        features = self.state_encoder(states.reshape(batch * steps, *states.shape[2:]))
        tokens = [self.embed_return(returns.unsqueeze(-1))]
        tokens += [embed(f).view(batch, steps, -1) for embed, f in zip(self.embed_states, features)]
        return torch.stack(tokens, dim=2) + self.embed_timestep(timesteps).unsqueeze(2)

    def action_tokens(self, actions, timesteps):
        """(B, T) bitrate indices -> (B, T, 1, E); the action enters as (index + 1) / 6, as the original."""
        scaled = ((actions.float() + 1) / NUM_ACTIONS).unsqueeze(-1)
        return (self.embed_action(scaled) + self.embed_timestep(timesteps)).unsqueeze(2)

    def run_backbone(self, tokens, mask, positions, cache=None, use_cache=False):
        """(B, L, E) tokens at `positions` (L,), mask (B, 1, L, K) -> (B, L, E) hidden states, cache."""
        inputs = self.embed_ln(tokens).to(self.backbone.dtype)
        hidden, cache = self.backbone(inputs, mask, positions.expand(tokens.shape[0], -1), cache, use_cache)
        return hidden.float(), cache

    def episode_tokens(self, states, actions, returns, timesteps):
        """(B, T) steps -> (B, 8T, E) tokens [R_t, s1_t..s6_t, a_t] of every step, in order."""
        batch, steps = actions.shape
        return torch.cat([self.step_tokens(states, returns, timesteps), self.action_tokens(actions, timesteps)],
                         dim=2).reshape(batch, steps * TOKENS_PER_STEP, -1)

    def forward(self, states, actions, returns, timesteps, valid=None):
        """Action logits (B, T, 6) for whole (padded) episodes; `valid` (B, T) marks real steps."""
        batch, steps = actions.shape
        tokens = self.episode_tokens(states, actions, returns, timesteps)  # (B, 8T, E)
        positions = torch.arange(steps * TOKENS_PER_STEP, device=tokens.device)
        mask = band_mask(positions, positions, self.w).expand(batch, -1, -1)
        if valid is not None:  # padded keys are hidden; every token keeps itself so no row is empty
            keys_valid = valid.repeat_interleave(TOKENS_PER_STEP, dim=1)[:, None, :]
            mask = mask & (keys_valid | torch.eye(len(positions), dtype=torch.bool, device=mask.device))
        hidden, _ = self.run_backbone(tokens, mask[:, None], positions)
        return self.action_head(hidden[:, DECISION_TOKEN::TOKENS_PER_STEP])

    def loss(self, batch: dict) -> torch.Tensor:
        """Cross-entropy of the taken actions over the real steps of a batch of episodes (dataset.py)."""
        device = self.embed_ln.weight.device
        batch = {key: value.to(device) for key, value in batch.items()}
        logits = self(batch["states"], batch["actions"], batch["returns"], batch["timesteps"], batch["valid"])
        return F.cross_entropy(logits[batch["valid"]], batch["actions"][batch["valid"]])

    def decide(self, tokens: list, firsts: list[int], caches: list):
        """One pass for B clients, each at its own step: client i feeds `tokens[i]` (n_i, E), the tokens of its
        positions firsts[i].. up to its decision token, after the keys of `caches[i]` (a ClientCache ending at
        position firsts[i] - 1, or None at the start of an episode).

        Rows are padded: new tokens on the right, cached keys on the left, so each client's keys stay one
        contiguous slice; padding is hidden and padded queries see only themselves. Returns (B, 6) logits of
        each client's last token and the clients' updated caches.
        """
        device = self.embed_ln.weight.device
        lengths = torch.tensor([len(t) for t in tokens], device=device)
        cached = [cache.length if cache is not None else 0 for cache in caches]
        batch, new, old = len(tokens), int(lengths.max()), max(cached)
        steps = torch.arange(new, device=device)
        query_positions = torch.tensor(firsts, device=device)[:, None] + steps  # (B, N)
        key_positions = torch.full((batch, old + new), -1, device=device)  # -1: padding
        key_positions[:, old:] = torch.where(steps < lengths[:, None], query_positions, -1)
        for i, cache in enumerate(caches):
            if cached[i]:
                key_positions[i, old - cached[i]:old] = torch.arange(cache.start, firsts[i], device=device)
        mask = band_mask(query_positions, key_positions, self.w) & (key_positions >= 0)[:, None, :]
        padded_query = (steps >= lengths[:, None])[:, :, None]  # (B, N, 1)
        own_slot = (torch.arange(old + new, device=device) == old + steps[:, None])[None]  # (1, N, K)
        mask = mask | (padded_query & own_slot)

        cache = left_padded(caches, old) if old else None
        inputs = pad_sequence(tokens, batch_first=True)
        hidden, cache = self.run_backbone(inputs, mask[:, None], query_positions, cache, use_cache=True)
        logits = self.action_head(hidden[torch.arange(batch, device=device), lengths - 1])

        updated = []
        for i in range(batch):
            last = firsts[i] + int(lengths[i]) - 1
            start = caches[i].start if cached[i] else firsts[i]
            keep_from = max(start, (last // TOKENS_PER_STEP - self.w + 1) * TOKENS_PER_STEP)  # later steps see no older
            begin, end = old - cached[i] + keep_from - start, old + int(lengths[i])
            updated.append(ClientCache([(layer.keys[i, :, begin:end].clone(), layer.values[i, :, begin:end].clone())
                                        for layer in cache.layers], keep_from))
        return logits, updated
