"""The LLM scheduler behind the one Scheduler interface.

Each decision takes two passes through the backbone: [a_(t-1), R_t, stage tokens] -> pointer over the
stages; then [exec_t] for the chosen stage's job -> number of executors. Contexts, one per environment:

- "cache" (rotary backbones: Llama, SmolLM2, Qwen2, Mistral): only the new tokens are fed; keys and values
  of earlier tokens come from the cache, and tokens more than K steps old are evicted (no query can see
  them any more). Positions keep counting from the start of the episode; rotary attention depends only on
  distances, so they stay consistent with the windows of training, whose positions start at 0.
- "window" (absolute-position backbones: GPT-2, OPT; and T5): the last K steps are recomputed at every
  pass with positions from 0, exactly as in training.
- "full": the whole episode so far is recomputed with the band mask and the cache's positions: what the
  cache computes, used to check it and to measure what it saves.
"""
from dataclasses import dataclass, field

import numpy as np
import torch

from schedulers.scheduler import Scheduler
from spark_sched_sim.graph_observation import GraphObserver

from .backbones import PLM_TYPES
from .return_scaling import ReturnScaling
from .rl_policy import OfflineRLPolicy, band_mask

@dataclass
class Context:
    target_return: float
    timestep: int = 0
    pending_action: torch.Tensor | None = None  # embedding of a_(t-1), fed with the next step's tokens
    cache: object = None
    positions: list = field(default_factory=list)  # of the tokens in the cache (or the history)
    steps: list = field(default_factory=list)
    history: list = field(default_factory=list)  # token embeddings ("window" and "full" modes)
    next_position: int = 0
    queued: list = field(default_factory=list)  # (tokens, steps) of steps another scheduler decided, not yet fed


class LLMScheduler(Scheduler):
    name = "trailblazer"

    def __init__(self, model: OfflineRLPolicy, scaling: ReturnScaling, target_return_scale: float = 1.0,
                 sample: bool = False, seed: int = 0, mode: str | None = None, num_executors: int | None = None,
                 temperature: float = 1.0, exec_temperature: float | None = None):
        """With `sample`, the stage is drawn from softmax(scores / temperature) and the number of executors
        from softmax(logits / exec_temperature) (default: temperature); a temperature of 0 takes the most
        likely action of that head."""
        self.model = model.eval()
        self.scaling = scaling
        self.initial_target = scaling.max_return * target_return_scale
        self.stage_temperature = temperature if sample else 0.0
        self.exec_temperature = (temperature if exec_temperature is None else exec_temperature) if sample else 0.0
        self.generator = torch.Generator().manual_seed(seed)
        self.mode = mode or ("cache" if PLM_TYPES[model.backbone.plm_type].rotary else "window")
        self.device = model.embed_ln.weight.device  # the policy's own modules (a split backbone spans more)
        self.num_executors = num_executors or model.num_executors  # of the cluster; the model's may differ
        self.contexts: dict[int, Context] = {}
        self.observers: dict[int, GraphObserver] = {}

    def reset(self, env_id: int = 0) -> None:
        self.contexts[env_id] = Context(self.initial_target)
        self.observers[env_id] = GraphObserver(self.num_executors)

    def observe(self, reward: float, env_id: int = 0) -> None:
        self.contexts[env_id].target_return -= self.scaling.process_reward(reward)

    def _forward(self, context: Context, tokens: torch.Tensor, steps: list[int]) -> torch.Tensor:
        """Hidden states (q, E) of `tokens` (q, E) of the given decision steps, after everything before
        (queued steps first: they are fed in the same pass)."""
        count = len(steps)
        if context.queued:
            tokens = torch.cat([queued for queued, _ in context.queued] + [tokens])
            steps = [step for _, queued_steps in context.queued for step in queued_steps] + steps
            context.queued = []
        return self._feed(context, tokens, steps)[-count:]

    def _feed(self, context: Context, tokens: torch.Tensor, steps: list[int]) -> torch.Tensor:
        K, model = self.model.K, self.model
        query_steps = torch.tensor(steps, device=self.device)
        if self.mode == "cache":
            horizon = min(steps) - K + 1
            drop = sum(1 for s in context.steps if s < horizon)
            if drop and context.cache is not None:
                for layer in context.cache.layers:
                    layer.keys, layer.values = layer.keys[:, :, drop:], layer.values[:, :, drop:]
                del context.positions[:drop], context.steps[:drop]
            positions = torch.arange(context.next_position, context.next_position + len(steps), device=self.device)
            key_positions = torch.cat([torch.tensor(context.positions, device=self.device, dtype=torch.long),
                                       positions])
            key_steps = torch.cat([torch.tensor(context.steps, device=self.device, dtype=torch.long), query_steps])
            mask = band_mask(positions, query_steps, key_positions, key_steps, K)[None, None]
            hidden, context.cache = model.run_backbone(tokens[None], mask, positions, context.cache, use_cache=True)
            context.positions += positions.tolist()
            context.steps += steps
            context.next_position += len(steps)
            return hidden[0]
        context.history += list(tokens)
        context.steps += steps
        context.positions += list(range(context.next_position, context.next_position + len(steps)))
        context.next_position += len(steps)
        if self.mode == "window":  # the last K steps, positions from 0, as in training
            keep = sum(1 for s in context.steps if s < max(steps) - K + 1)
            del context.history[:keep], context.steps[:keep], context.positions[:keep]
            positions = torch.arange(len(context.history), device=self.device)
        else:
            positions = torch.tensor(context.positions, device=self.device)
        all_steps = torch.tensor(context.steps, device=self.device)
        mask = band_mask(positions, all_steps, positions, all_steps, K)[None, None]
        hidden, _ = model.run_backbone(torch.stack(context.history)[None], mask, positions)
        return hidden[0, -len(steps):]

    def _choose(self, scores: torch.Tensor, temperature: float) -> int:
        if temperature == 0:
            return int(torch.argmax(scores))
        probabilities = torch.softmax(scores.float().cpu() / temperature, 0)
        return int(torch.multinomial(probabilities, 1, generator=self.generator))

    def _step_tokens(self, context: Context, graph):
        """The tokens [a_(t-1), R_t, stage tokens] of this step with their steps, and what choosing needs."""
        model, t = self.model, context.timestep
        stage_features, job_features = model.encode_graphs([graph])
        t_emb = model.timestep_embedding(torch.tensor([t], device=self.device))
        stage_tokens = model.embed_stage(stage_features) + t_emb
        tokens = [model.embed_return(torch.tensor([[context.target_return]], device=self.device)) + t_emb,
                  stage_tokens]
        steps = [t] * (1 + len(stage_tokens))
        if context.pending_action is not None:
            tokens.insert(0, context.pending_action[None])
            steps.insert(0, t - 1)
        return torch.cat(tokens), steps, len(stage_tokens), job_features, t_emb

    def _end_step(self, context: Context, stage_index: int, num_stages: int, exec_index: int, t_emb) -> None:
        context.pending_action = self.model.action_embedding(
            torch.tensor(stage_index / num_stages, device=self.device),
            torch.tensor(exec_index / self.model.num_executors, device=self.device), t_emb[0])
        context.timestep += 1

    def _context(self, observation, env_id):
        if env_id not in self.contexts:
            self.reset(env_id)
        return self.contexts[env_id], self.observers[env_id](observation)

    @torch.inference_mode()
    def act(self, observation, env_id=0):
        context, graph = self._context(observation, env_id)
        model = self.model
        tokens, steps, num_stages, job_features, t_emb = self._step_tokens(context, graph)
        hidden = self._forward(context, tokens, steps)
        stage_index = self._choose(model.stage_scores(hidden[-1], hidden[-num_stages:]), self.stage_temperature)

        schedulable = np.flatnonzero(graph.stage_mask)
        job = int(np.searchsorted(graph.ptr, schedulable[stage_index], side="right") - 1)
        exec_token = model.embed_exec(job_features[job][None]) + t_emb
        hidden = self._forward(context, exec_token, [context.timestep])
        cap = torch.tensor([int(graph.exec_caps[job])], device=self.device)
        exec_index = self._choose(model.exec_logits(hidden[-1][None], cap)[0, : int(cap)], self.exec_temperature)
        self._end_step(context, stage_index, num_stages, exec_index, t_emb)
        return {"stage_idx": stage_index, "num_exec": exec_index + 1}

    @torch.inference_mode()
    def follow(self, observation, action: dict, env_id: int = 0) -> None:
        """A decision another scheduler (APC's fast one) took enters the context as if this scheduler had
        taken it; its tokens are queued and go through the backbone with the next decision of its own.
        Decisions that schedule nothing (stage -1) are left out, as the pools leave them out."""
        context, graph = self._context(observation, env_id)
        if action["stage_idx"] == -1:
            return
        tokens, steps, num_stages, job_features, t_emb = self._step_tokens(context, graph)
        schedulable = np.flatnonzero(graph.stage_mask)
        job = int(np.searchsorted(graph.ptr, schedulable[action["stage_idx"]], side="right") - 1)
        exec_index = min(int(action["num_exec"]), int(graph.exec_caps[job])) - 1
        exec_token = self.model.embed_exec(job_features[job][None]) + t_emb
        context.queued.append((torch.cat([tokens, exec_token]), steps + [context.timestep]))
        self._end_step(context, action["stage_idx"], num_stages, exec_index, t_emb)
