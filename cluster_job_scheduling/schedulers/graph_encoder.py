"""The graph encoder of Decima (Mao et al., SIGCOMM'19), also the LLM scheduler's state encoder: message passing
over the job DAGs, then job and cluster summaries (the original's `decima/encoder.py`).

Plain torch and torch_geometric only: messages are summed with `torch_geometric.utils.scatter`, no
torch-scatter or torch-sparse. Parameter names match the original's model.pt.
Rows are gathered with index_select, whose backward is deterministic on the CPU (see plm_special/rl_policy.py).
"""
import torch
from torch import nn
from torch_geometric.utils import scatter

from spark_sched_sim.graph_observation import NUM_FEATURES


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
        self.mlp_prep = make_mlp(NUM_FEATURES, mlp["hidden_dims"], embed_dim, mlp["activation"])
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
            messages = self.mlp_msg(h.index_select(0, children))
            aggregated = scatter(messages, parents, dim=0, dim_size=len(x), reduce="sum")
            receives = torch.zeros(len(x), dtype=torch.bool, device=x.device)
            receives[parents] = True
            h = torch.where(receives[:, None], h_init + self.mlp_update(aggregated), h)
        return h


class DagEncoder(nn.Module):
    def __init__(self, embed_dim: int, mlp: dict):
        super().__init__()
        self.mlp = make_mlp(NUM_FEATURES + embed_dim, mlp["hidden_dims"], embed_dim, mlp["activation"])

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
    batch.node_job = torch.repeat_interleave(torch.arange(batch.num_jobs, device=job_sizes.device), job_sizes)
    batch.job_obs = torch.repeat_interleave(torch.arange(batch.num_graphs, device=job_sizes.device), batch.jobs_per_obs)
