"""Decima (Mao et al., SIGCOMM'19): a graph neural network over the job DAGs and two policy heads, one picking
a schedulable stage and one the number of executors for its job (original-code-spec section 6).

Plain torch and torch_geometric only: messages are summed with `torch_geometric.utils.scatter`, no
torch-scatter or torch-sparse. Parameter names match the original's model.pt, which loads as is.
"""
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn
from torch_geometric.utils import scatter

from common.errors import InputError
from spark_sched_sim.graph_observation import GraphObservation, GraphObserver, collate

from .scheduler import Scheduler

NUM_DAG_FEATURES = 3  # the first node features of a job's first node describe the job


def make_mlp(input_dim: int, hidden_dims: list[int], output_dim: int, activation) -> nn.Sequential:
    """Linear layers with the activation between them (none after the last), as the original's make_mlp."""
    dims = [input_dim, *hidden_dims, output_dim]
    layers = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def activation_class(name: str, **kwargs):
    cls = {"LeakyReLU": nn.LeakyReLU, "Tanh": nn.Tanh, "ReLU": nn.ReLU}[name]
    kwargs.pop("inplace", None)  # in-place activations would break autograd on the masked updates
    return lambda: cls(**kwargs)


class NodeEncoder(nn.Module):
    """Children-to-parents message passing, one DAG level at a time from the deepest:
    leaves: h = update(prep(x)); a parent: h = prep(x) + update(sum of msg(h_child) over its children)."""

    def __init__(self, embed_dim: int, mlp: dict):
        super().__init__()
        self.mlp_prep = make_mlp(5, mlp["hidden_dims"], embed_dim, mlp["activation"])
        self.mlp_msg = make_mlp(embed_dim, mlp["hidden_dims"], embed_dim, mlp["activation"])
        self.mlp_update = make_mlp(embed_dim, mlp["hidden_dims"], embed_dim, mlp["activation"])

    def forward(self, x, edge_index, edge_masks):
        h_init = self.mlp_prep(x)
        if edge_masks.shape[0] == 0:
            return h_init
        is_leaf = torch.ones(len(x), dtype=torch.bool, device=x.device)
        is_leaf[edge_index[0]] = False
        h = torch.where(is_leaf[:, None], self.mlp_update(h_init), torch.zeros_like(h_init))
        for mask in reversed(edge_masks):
            parents, children = edge_index[0, mask], edge_index[1, mask]
            if len(parents) == 0:
                continue
            aggregated = scatter(self.mlp_msg(h[children]), parents, dim=0, dim_size=len(x), reduce="sum")
            receives = torch.zeros(len(x), dtype=torch.bool, device=x.device)
            receives[parents] = True
            h = torch.where(receives[:, None], h_init + self.mlp_update(aggregated), h)
        return h


class DagEncoder(nn.Module):
    def __init__(self, embed_dim: int, mlp: dict):
        super().__init__()
        self.mlp = make_mlp(5 + embed_dim, mlp["hidden_dims"], embed_dim, mlp["activation"])

    def forward(self, x, h_node, node_job, num_jobs):
        return scatter(self.mlp(torch.cat([x, h_node], dim=1)), node_job, dim=0, dim_size=num_jobs, reduce="sum")


class GlobalEncoder(nn.Module):
    def __init__(self, embed_dim: int, mlp: dict):
        super().__init__()
        self.mlp = make_mlp(embed_dim, mlp["hidden_dims"], embed_dim, mlp["activation"])

    def forward(self, h_dag, job_obs, num_obs):
        return scatter(self.mlp(h_dag), job_obs, dim=0, dim_size=num_obs, reduce="sum")


class Encoder(nn.Module):
    def __init__(self, embed_dim: int, mlp: dict):
        super().__init__()
        self.node_encoder = NodeEncoder(embed_dim, mlp)
        self.dag_encoder = DagEncoder(embed_dim, mlp)
        self.global_encoder = GlobalEncoder(embed_dim, mlp)

    def forward(self, batch):
        """Node (N, D), job (J, D) and global (B, D) representations of a collated batch."""
        h_node = self.node_encoder(batch.x, batch.edge_index, batch.edge_masks)
        h_dag = self.dag_encoder(batch.x, h_node, batch.node_job, batch.num_jobs)
        h_glob = self.global_encoder(h_dag, batch.job_obs, batch.num_graphs)
        return h_node, h_dag, h_glob


def add_indices(batch) -> None:
    """Which job each node belongs to and which observation each job belongs to."""
    job_sizes = torch.diff(batch.job_ptr)
    batch.num_jobs = len(job_sizes)
    batch.node_job = torch.repeat_interleave(torch.arange(batch.num_jobs), job_sizes)
    batch.job_obs = torch.repeat_interleave(torch.arange(batch.num_graphs), batch.jobs_per_obs)


class DecimaActor(nn.Module):
    def __init__(self, num_executors: int, embed_dim: int, gnn_mlp: dict, policy_mlp: dict):
        super().__init__()
        self.num_executors = num_executors
        self.encoder = Encoder(embed_dim, gnn_mlp)
        self.stage_policy_network = nn.Module()
        self.stage_policy_network.mlp_score = make_mlp(5 + 3 * embed_dim, policy_mlp["hidden_dims"], 1,
                                                       policy_mlp["activation"])
        self.exec_policy_network = nn.Module()
        self.exec_policy_network.mlp_score = make_mlp(NUM_DAG_FEATURES + 2 * embed_dim + 1,
                                                      policy_mlp["hidden_dims"], 1, policy_mlp["activation"])
        for name, parameter in self.named_parameters():  # as the original: biases start at zero
            if name.endswith("bias"):
                nn.init.zeros_(parameter)

    def stage_scores(self, batch, h_node, h_dag, h_glob):
        """Scores of the schedulable nodes of every observation, in batch order."""
        mask = batch.stage_mask
        node_job = batch.node_job[mask]
        inputs = torch.cat([batch.x[mask], h_node[mask], h_dag[node_job], h_glob[batch.job_obs[node_job]]], dim=1)
        return self.stage_policy_network.mlp_score(inputs).squeeze(-1)

    def exec_scores(self, batch, h_dag, h_glob, jobs: torch.Tensor):
        """Scores of committing k + 1 executors, k < the job's cap, for each job in `jobs` (concatenated)."""
        caps = batch.exec_caps[jobs]
        repeated = torch.repeat_interleave(jobs, caps)
        k = torch.cat([torch.arange(int(c)) for c in caps]).float() / self.num_executors
        x_dag = batch.x[batch.job_ptr[:-1][repeated], :NUM_DAG_FEATURES]
        inputs = torch.cat([x_dag, h_dag[repeated], h_glob[batch.job_obs[repeated]], k[:, None]], dim=1)
        return self.exec_policy_network.mlp_score(inputs).squeeze(-1)


def build_actor(num_executors: int, agent_config: dict) -> DecimaActor:
    def mlp(config):
        return {"hidden_dims": config["hid_dims"],
                "activation": activation_class(config["act_cls"], **config.get("act_kwargs", {}))}

    return DecimaActor(num_executors, agent_config["embed_dim"], mlp(agent_config["gnn_mlp_kwargs"]),
                       mlp(agent_config["policy_mlp_kwargs"]))


def load_state_dict(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Decima weights {path} not found; run ../download_data.py --only cjs/models "
                         "or pass --state-dict-path")
    try:
        if path.suffix == ".safetensors":
            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError(f"{path} is not a readable Decima state dict ({type(error).__name__}); "
                         "download it again or pass another --state-dict-path") from None


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
        exec_scores = self.actor.exec_scores(batch, h_dag, h_glob, torch.tensor(jobs))
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
