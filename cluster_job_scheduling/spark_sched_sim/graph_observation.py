"""Observations for graph neural schedulers (Decima, the LLM's state encoder), as torch_geometric batches.

Node features (5, as the original NeuralObsWrapper): executors that may still be committed to the node's job
/ N, +1 for the job releasing executors (else -1), the job's executor supply / N, remaining tasks / 200,
remaining work (tasks x most recent duration) / 1e5. Messages flow from children to parents one DAG level
at a time: `edge_masks[k]` selects the edges among the nodes of topological generation k and their
children, as the original's DAGNN wrapper computes them.

Generations are computed per job and cached by (job, number of incomplete stages): a job's active
subgraph only changes when one of its stages completes, so most decisions reuse every job's structure.
"""
from dataclasses import dataclass

import numpy as np
import torch
from torch_geometric.data import Batch, Data

NUM_FEATURES = 5
NUM_DAG_FEATURES = 3  # the first features of a job's first node describe the job (committable, source, supply)
NUM_TASKS_SCALE = 200.0
WORK_SCALE = 1e5


def topological_generations(edges: np.ndarray, num_nodes: int) -> list[np.ndarray]:
    """Kahn's algorithm, level by level: nodes without parents, then nodes whose parents are all placed..."""
    indegree = np.bincount(edges[:, 1], minlength=num_nodes) if len(edges) else np.zeros(num_nodes, dtype=int)
    children = [[] for _ in range(num_nodes)]
    for parent, child in edges:
        children[parent].append(child)
    level = np.flatnonzero(indegree == 0)
    generations = []
    while len(level):
        generations.append(level)
        following = []
        for node in level:
            for child in children[node]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    following.append(child)
        level = np.array(sorted(following), dtype=np.int64)
    return generations


def level_edge_masks(edges: np.ndarray, num_nodes: int) -> np.ndarray:
    """(depth, E) masks: for each generation but the last, edges inside (generation + its children)."""
    generations = topological_generations(edges, num_nodes)
    masks = []
    for generation in generations[:-1]:
        inside = np.zeros(num_nodes, dtype=bool)
        inside[generation] = True
        inside[edges[np.isin(edges[:, 0], generation), 1]] = True
        masks.append(inside[edges[:, 0]] & inside[edges[:, 1]])
    return np.array(masks, dtype=bool).reshape(len(masks), len(edges))


@dataclass
class GraphObservation:
    x: np.ndarray  # (N, 5) float32 node features
    edge_index: np.ndarray  # (2, E) parent -> child, node indices of this observation
    ptr: np.ndarray  # (J + 1,) first node of each job
    stage_mask: np.ndarray  # (N,) schedulable nodes
    exec_caps: np.ndarray  # (J,) executors that may be committed to each job
    edge_masks: np.ndarray  # (depth, E)

    @property
    def num_jobs(self) -> int:
        return len(self.ptr) - 1

    def to_data(self) -> Data:
        return Data(x=torch.from_numpy(self.x), edge_index=torch.from_numpy(self.edge_index),
                    stage_mask=torch.from_numpy(self.stage_mask), num_nodes=len(self.x))


class GraphObserver:
    """Turns environment observations into GraphObservations, caching per-job DAG levels within an episode."""

    def __init__(self, num_executors: int, cache: bool = True):
        self.num_executors = num_executors
        self.cache = {} if cache else None

    def reset(self) -> None:
        if self.cache is not None:
            self.cache.clear()

    def _edge_masks(self, observation: dict) -> np.ndarray:
        dag = observation["dag_batch"]
        edges = dag.edge_links
        if self.cache is None:
            return level_edge_masks(edges, len(dag.nodes))
        ptr = observation["dag_ptr"]
        edge_job = np.searchsorted(ptr, edges[:, 0], side="right") - 1
        per_job, depth = [], 0
        for j, job_id in enumerate(observation["job_ids"]):
            count = int(ptr[j + 1] - ptr[j])
            key = (int(job_id), count)
            local_edges = edges[edge_job == j] - ptr[j]
            if key not in self.cache:
                self.cache[key] = level_edge_masks(local_edges, count)
            per_job.append(self.cache[key])
            depth = max(depth, len(self.cache[key]))
        masks = np.zeros((depth, len(edges)), dtype=bool)
        for j, job_masks in enumerate(per_job):
            masks[: len(job_masks), edge_job == j] = job_masks
        return masks

    def __call__(self, observation: dict) -> GraphObservation:
        dag = observation["dag_batch"]
        ptr = np.asarray(observation["dag_ptr"])
        supplies = np.asarray(observation["exec_supplies"])
        committable = int(observation["num_committable_execs"])
        source = int(observation["source_job_idx"])
        counts = np.diff(ptr)
        caps = np.minimum(np.maximum(self.num_executors - supplies, 0), committable)
        if source < len(supplies):
            caps[source] = committable
        x = np.zeros((len(dag.nodes), NUM_FEATURES), dtype=np.float32)
        x[:, 0] = np.repeat(caps, counts) / self.num_executors
        x[:, 1] = -1
        if source < len(supplies):
            x[ptr[source]: ptr[source + 1], 1] = 1
        x[:, 2] = np.repeat(supplies, counts) / self.num_executors
        x[:, 3] = dag.nodes[:, 0] / NUM_TASKS_SCALE
        x[:, 4] = dag.nodes[:, 0] * dag.nodes[:, 1] / WORK_SCALE
        return GraphObservation(x, dag.edge_links.T.astype(np.int64).copy(), ptr, dag.nodes[:, 2].astype(bool),
                                caps.astype(np.int64), self._edge_masks(observation))


def collate(observations: list[GraphObservation]) -> Batch:
    """One torch_geometric Batch of several observations; edge masks padded to the deepest one."""
    batch = Batch.from_data_list([o.to_data() for o in observations])
    depth = max(len(o.edge_masks) for o in observations)
    masks = [np.pad(o.edge_masks, ((0, depth - len(o.edge_masks)), (0, 0))) for o in observations]
    batch.edge_masks = torch.from_numpy(np.concatenate(masks, axis=1).reshape(depth, batch.edge_index.shape[1]))
    node_offsets = np.cumsum([0] + [len(o.x) for o in observations])
    batch.job_ptr = torch.from_numpy(np.concatenate(
        [o.ptr[:-1] + offset for o, offset in zip(observations, node_offsets)] + [node_offsets[-1:]]))
    batch.exec_caps = torch.from_numpy(np.concatenate([o.exec_caps for o in observations]))
    batch.jobs_per_obs = torch.tensor([o.num_jobs for o in observations])
    return batch
