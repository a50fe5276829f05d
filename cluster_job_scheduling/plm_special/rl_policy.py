"""The return-conditioned LLM scheduler: graph state encoder -> LLM backbone -> stage and executor heads.

Token layout, per decision step t (n_t + 3 tokens, n_t = schedulable stages):

    [R_t, stage_1 ... stage_n, exec_t, a_t]

R_t embeds the return to go; stage_i the features of a schedulable stage (its node features and GNN
embeddings of the node, its job and the whole cluster, from the Decima-style encoder); exec_t the features
of the job of the chosen stage; a_t the action (chosen stage's position among the n_t, executors / N).
Every token also gets the embedding of its timestep (the original forgot it on action tokens at inference).
The stage is chosen by a pointer over the stage tokens (query: the last stage token, which has seen them
all; keys: each stage token), so any number of stages works (the original capped it at 100); the number
of executors is read at exec_t and masked to what the job may take.

A token of step t attends to the tokens of steps t-K+1..t (causally): training runs windows of K steps,
positions from 0; see llm_scheduler.py for inference.

Where an index may repeat, rows are gathered with index_select, not `tensor[index]`: on a multi-threaded CPU the
backward of the latter adds the repeated rows in a varying order, and one seed would no longer give one set of
weights (tests/test_plm.py::test_gradients_are_bit_identical_from_call_to_call).
"""
import math
from pathlib import Path

import torch
from torch import nn

from schedulers.graph_encoder import Encoder, add_indices
from spark_sched_sim.graph_observation import NUM_DAG_FEATURES, NUM_FEATURES, GraphObservation, collate

from .backbones import Backbone, load_backbone

ENCODER_SLOPE = 0.2  # the encoder's LeakyReLU, as the original's (and Decima's)


def band_mask(query_positions, query_steps, key_positions, key_steps, K: int) -> torch.Tensor:
    """(Q, K) bool: keys not later than the query and at most K-1 decision steps earlier."""
    return (key_positions[None, :] <= query_positions[:, None]) & (key_steps[None, :] > query_steps[:, None] - K)


class OfflineRLPolicy(nn.Module):
    def __init__(self, backbone: Backbone, state_feature_dim: int, num_executors: int, max_timestep: int, K: int,
                 encoder_hidden_dims: list[int] | None = None):
        super().__init__()
        embed_dim, features = backbone.hidden_size, state_feature_dim
        self.backbone, self.K = backbone, K
        self.num_executors, self.max_timestep = num_executors, max_timestep
        self.encoder = Encoder(features, {"hidden_dims": encoder_hidden_dims or [features],
                                          "activation": lambda: nn.LeakyReLU(ENCODER_SLOPE)})
        self.embed_timestep = nn.Embedding(max_timestep + 1, embed_dim)
        self.embed_return = nn.Linear(1, embed_dim)
        self.embed_stage = nn.Linear(NUM_FEATURES + 3 * features, embed_dim)
        self.embed_exec = nn.Linear(NUM_DAG_FEATURES + 2 * features, embed_dim)
        self.embed_action = nn.Linear(2, embed_dim)
        self.embed_ln = nn.LayerNorm(embed_dim)
        self.stage_query = nn.Linear(embed_dim, embed_dim)
        self.stage_key = nn.Linear(embed_dim, embed_dim)
        self.exec_head = nn.Linear(embed_dim, num_executors)

    @classmethod
    def from_settings(cls, settings: dict, plm_dir: Path, adapter_dir: Path | None = None, **load_options):
        """The scheduler's policy a run's settings describe (run_plm.py's, or a saved policy's settings.json)."""
        backbone = load_backbone(plm_dir, settings["plm_type"], settings["plm_size"], settings["which_layer"],
                                 settings["rank"], settings.get("freeze_plm", False), adapter_dir,
                                 **load_options)
        return cls(backbone, settings["state_feature_dim"], settings["num_executors"], settings["max_timestep"],
                   settings["K"], settings.get("encoder_hidden_dims"))

    # ------------------------------------------------------------------------------------------ embeddings
    def encode_graphs(self, graphs: list[GraphObservation]):
        """Stage features of the schedulable nodes (graph by graph) and job features of every job."""
        batch = collate(graphs).to(self.embed_ln.weight.device)
        add_indices(batch)
        h_node, h_dag, h_glob = self.encoder(batch)
        mask = batch.stage_mask
        node_job = batch.node_job[mask]
        stages = torch.cat([batch.x[mask], h_node[mask], h_dag.index_select(0, node_job),
                            h_glob.index_select(0, batch.job_obs[node_job])], dim=1)
        jobs = torch.cat([batch.x[batch.job_ptr[:-1], :NUM_DAG_FEATURES], h_dag, h_glob.index_select(0, batch.job_obs)],
                         dim=1)
        return stages, jobs

    def timestep_embedding(self, timesteps: torch.Tensor) -> torch.Tensor:
        return self.embed_timestep(timesteps.clamp(max=self.max_timestep))

    def action_embedding(self, stage_fraction, exec_fraction, t_emb):
        return self.embed_action(torch.stack([stage_fraction, exec_fraction], dim=-1).float()) + t_emb

    def run_backbone(self, tokens, mask, positions, cache=None, use_cache=False):
        """(B, L, E) tokens, (B, 1, L, K) mask -> (B, L, E) hidden states (float32), cache."""
        inputs = self.embed_ln(tokens).to(self.backbone.dtype)
        hidden, cache = self.backbone(inputs, mask, positions.expand(tokens.shape[0], -1), cache, use_cache)
        return hidden.float(), cache

    def stage_scores(self, last_stage_hidden, stage_hidden):
        """Pointer scores of n stage tokens given the hidden state of the last one: (n,)."""
        query = self.stage_query(last_stage_hidden)
        return self.stage_key(stage_hidden) @ query / math.sqrt(query.shape[-1])

    def exec_logits(self, exec_hidden, caps):
        """(S, N) logits over 1..N executors, masked beyond each job's cap."""
        logits = self.exec_head(exec_hidden)
        allowed = torch.arange(self.num_executors, device=logits.device)[None, :] < caps[:, None]
        return logits.masked_fill(~allowed, -1e9)

    # ------------------------------------------------------------------------------------------ training
    def forward(self, graphs, window_lengths, stage_choice, job_choice, exec_choice, returns, timesteps):
        """Teacher-forced pass over a batch of windows (tensors on the policy's device). Returns, for every
        decision, the log-probabilities of its stages (concatenated, decision by decision) and of 1..N
        executors for the chosen stage's job (S, N)."""
        device = self.embed_ln.weight.device
        steps = len(graphs)
        stage_features, job_features = self.encode_graphs(graphs)
        counts = torch.tensor([int(g.stage_mask.sum()) for g in graphs], device=device)
        job_offsets = torch.tensor([0] + [g.num_jobs for g in graphs], device=device).cumsum(0)
        caps = torch.cat([torch.from_numpy(g.exec_caps) for g in graphs]).to(device)
        t_emb = self.timestep_embedding(timesteps)
        stage_step = torch.repeat_interleave(torch.arange(steps, device=device), counts)
        chosen_job = job_offsets[:-1] + job_choice
        all_tokens = torch.cat([
            self.embed_return(returns[:, None]) + t_emb,  # rows 0..S-1
            self.embed_stage(stage_features) + t_emb.index_select(0, stage_step),  # rows S..S+M-1
            self.embed_exec(job_features.index_select(0, chosen_job)) + t_emb,  # rows S+M..2S+M-1
            self.action_embedding(stage_choice / counts, exec_choice / self.num_executors, t_emb),
            torch.zeros(1, t_emb.shape[1], device=device),  # padding
        ])
        num_stages = len(stage_features)
        stage_starts = torch.cat([torch.zeros(1, dtype=torch.long, device=device), counts.cumsum(0)])

        # one row of token indices per window (rows of all_tokens: R, stages, exec, action, padding);
        # remember where the heads read
        rows, row_steps, stage_at, last_stage_at, exec_at = [], [], [], [], []
        step = 0
        for window, length in enumerate(window_lengths):
            indices, token_steps = [], []
            for local in range(length):
                s = step + local
                n = int(counts[s])
                first_stage = steps + int(stage_starts[s])
                stage_at += [(window, len(indices) + 1 + i) for i in range(n)]
                last_stage_at.append((window, len(indices) + n))
                exec_at.append((window, len(indices) + n + 1))
                indices += [s, *range(first_stage, first_stage + n), steps + num_stages + s,
                            2 * steps + num_stages + s]
                token_steps += [local] * (n + 3)
            rows.append(indices)
            row_steps.append(token_steps)
            step += length
        longest = max(len(r) for r in rows)
        padding = len(all_tokens) - 1
        index = torch.tensor([r + [padding] * (longest - len(r)) for r in rows], device=device)
        token_steps = torch.tensor([s + [10 ** 9] * (longest - len(s)) for s in row_steps], device=device)
        valid = index != padding
        positions = torch.arange(longest, device=device)
        mask = torch.stack([band_mask(positions, ts, positions, ts, self.K) for ts in token_steps])
        mask = mask & (valid[:, None, :] | torch.eye(longest, dtype=torch.bool, device=device))
        tokens = all_tokens.index_select(0, index.flatten()).view(*index.shape, -1)
        hidden, _ = self.run_backbone(tokens, mask[:, None], positions)

        def gather(places):
            places = torch.tensor(places, device=device).reshape(-1, 2)
            return hidden[places[:, 0], places[:, 1]]

        query = self.stage_query(gather(last_stage_at)).index_select(0, stage_step)
        scores = (self.stage_key(gather(stage_at)) * query).sum(-1) / math.sqrt(query.shape[-1])
        stage_log_probs = self._segment_log_softmax(scores, stage_step, steps)
        exec_log_probs = torch.log_softmax(self.exec_logits(gather(exec_at), caps[chosen_job]), dim=1)
        return stage_log_probs, exec_log_probs

    def loss(self, batch: dict) -> torch.Tensor:
        """Negative log-likelihood per decision of the chosen stage plus that of the number of executors, over
        a batch of windows (dataset.py)."""
        device = self.embed_ln.weight.device
        tensors = {key: batch[key].to(device) for key in ("stage_choice", "job_choice", "exec_choice", "returns",
                                                          "timesteps")}
        stage_log_probs, exec_log_probs = self(batch["graphs"], batch["window_lengths"], **tensors)
        counts = torch.tensor([int(g.stage_mask.sum()) for g in batch["graphs"]], device=device)
        first_stage = torch.cat([torch.zeros(1, dtype=torch.long, device=device), counts.cumsum(0)[:-1]])
        stage = stage_log_probs[first_stage + tensors["stage_choice"]].sum()
        executors = exec_log_probs.gather(1, tensors["exec_choice"][:, None]).sum()
        return -(stage + executors) / len(batch["graphs"])

    @staticmethod
    def _segment_log_softmax(scores, segment, num_segments):
        maxima = torch.full((num_segments,), -1e30, device=scores.device).scatter_reduce(
            0, segment, scores.detach(), reduce="amax")
        shifted = scores - maxima.index_select(0, segment)
        sums = torch.zeros(num_segments, device=scores.device).index_add(0, segment, shifted.exp())
        return shifted - sums.log().index_select(0, segment)
