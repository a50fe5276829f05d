"""The return-conditioned offline-RL policy: state encoder -> LLM backbone -> action head.

Token layout, per decision step t of an episode (8 tokens):

    [R_t, s1_t, s2_t, s3_t, s4_t, s5_t, s6_t, a_t]

R_t embeds the return-to-go, s1..s6 the six state features (state_encoder.py), a_t the bitrate index taken;
every token also gets the embedding of its timestep t. The action of step t is predicted from the hidden
state of s6_t, so it sees R_t and the state of step t, and every earlier step, but not a_t.

Context: a token of step t attends to the tokens of steps t-w+1..t (a band of exactly w steps, causal
within the band), in every layer. Training runs whole episodes under that mask; inference feeds only the
new tokens of each step and keeps the keys and values of earlier ones in a cache. Both compute exactly the
same function, for every backbone, with the same positions (0..8*T-1 from the start of the episode).
"""
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import Backbone, load_backbone
from .state_encoder import StateEncoder

TOKENS_PER_STEP = 8
DECISION_TOKEN = 6  # index of s6_t within a step
NUM_ACTIONS = 6


def band_mask(query_positions: torch.Tensor, key_positions: torch.Tensor, w: int) -> torch.Tensor:
    """(Q, K) bool: key k is visible from query q if it is not later and at most w-1 steps earlier."""
    query_steps = (query_positions // TOKENS_PER_STEP)[:, None]
    key_steps = (key_positions // TOKENS_PER_STEP)[None, :]
    return (key_positions[None, :] <= query_positions[:, None]) & (key_steps > query_steps - w)


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
    def from_settings(cls, settings: dict, plm_dir: Path, adapter_dir: Path | None = None, dtype=torch.float32):
        """The policy a run's settings describe (run_plm.py's, or a saved policy's settings.json)."""
        backbone = load_backbone(plm_dir, settings["plm_type"], settings["plm_size"], settings["which_layer"],
                                 settings["rank"], settings.get("freeze_plm", False), adapter_dir, dtype)
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

    def forward(self, states, actions, returns, timesteps, valid=None):
        """Action logits (B, T, 6) for whole (padded) episodes; `valid` (B, T) marks real steps."""
        batch, steps = actions.shape
        tokens = torch.cat([self.step_tokens(states, returns, timesteps), self.action_tokens(actions, timesteps)],
                           dim=2).reshape(batch, steps * TOKENS_PER_STEP, -1)  # (B, 8T, E)
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

    def decide(self, states, returns, timestep: int, previous_actions=None, cache=None):
        """Incremental decision for B clients at the same timestep, feeding only the new tokens.

        states (B, 6, 6), returns (B,), previous_actions (B,) taken at timestep - 1 (None at timestep 0),
        cache: what the previous call returned. Returns (B, 6) logits and the updated cache.
        """
        batch = returns.shape[0]
        step = torch.full((batch, 1), min(timestep, self.max_timestep), device=returns.device)
        tokens = self.step_tokens(states[:, None], returns[:, None], step)[:, 0]  # (B, 7, E)
        first = timestep * TOKENS_PER_STEP
        if previous_actions is not None:
            tokens = torch.cat([self.action_tokens(previous_actions[:, None], step - 1)[:, 0], tokens], dim=1)
            first -= 1
        positions = torch.arange(first, timestep * TOKENS_PER_STEP + DECISION_TOKEN + 1, device=tokens.device)
        keys = torch.arange(int(positions[-1]) + 1, device=tokens.device)
        mask = band_mask(positions, keys, self.w).expand(batch, 1, -1, -1)
        hidden, cache = self.run_backbone(tokens, mask, positions, cache, use_cache=True)
        return self.action_head(hidden[:, -1]), cache
