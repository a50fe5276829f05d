"""Experience pools of scheduling decisions, stored without pickles.

A pool is a folder with `transitions.npz` and `metadata.json`. Every decision stores the graph observation
the scheduler saw (spark_sched_sim/graph_observation.py) and what it did; graphs have different sizes,
so their arrays are concatenated and cut by offsets:
    x (sum N, 5) float32, stage_mask (sum N,)        node features and schedulable nodes of every decision
    edge_index (2, sum E)                            parent -> child, node indices within the decision
    job_sizes, exec_caps (sum J,)                    nodes and committable executors of every job
    node_offsets, edge_offsets, job_offsets (T + 1,) where decision t's rows start
    stage_choice, job_choice, exec_choice (T,)       index among the schedulable stages, job index,
                                                     executors - 1
    rewards, wall_times (T,) float64, dones (T,)     reward of the step, time of the decision (ms), last step
Decisions that schedule nothing (stage -1, which heuristics sometimes return) are not stored.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import InputError
from common.files import atomic_folder, read_pool_folder
from spark_sched_sim.graph_observation import NUM_FEATURES, GraphObservation, level_edge_masks

FORMAT_VERSION = 1
TASK = "cjs"
STATE_LAYOUT = "decima-graph-5"
ARRAYS = ("x", "stage_mask", "edge_index", "job_sizes", "exec_caps", "node_offsets", "edge_offsets", "job_offsets",
          "stage_choice", "job_choice", "exec_choice", "rewards", "wall_times", "dones")


@dataclass
class DecisionRecorder:
    """Collects decisions into the pool's arrays."""

    graphs: list = field(default_factory=list)
    choices: list = field(default_factory=list)  # (stage, job, executors - 1)
    rewards: list = field(default_factory=list)
    wall_times: list = field(default_factory=list)
    dones: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rewards)

    def add(self, graph: GraphObservation, stage: int, job: int, exec_index: int, reward: float, wall_time: float,
            done: bool) -> None:
        self.graphs.append(graph)
        self.choices.append((stage, job, exec_index))
        self.rewards.append(reward)
        self.wall_times.append(wall_time)
        self.dones.append(done)

    def to_pool(self, metadata: dict) -> "SchedulingPool":
        graphs = self.graphs
        stage, job, exec_index = (np.array(c, dtype=np.int64) for c in zip(*self.choices))
        return SchedulingPool({
            "x": np.concatenate([g.x for g in graphs]),
            "stage_mask": np.concatenate([g.stage_mask for g in graphs]),
            "edge_index": np.concatenate([g.edge_index for g in graphs], axis=1),
            "job_sizes": np.concatenate([np.diff(g.ptr) for g in graphs]),
            "exec_caps": np.concatenate([g.exec_caps for g in graphs]),
            "node_offsets": np.cumsum([0] + [len(g.x) for g in graphs]),
            "edge_offsets": np.cumsum([0] + [g.edge_index.shape[1] for g in graphs]),
            "job_offsets": np.cumsum([0] + [g.num_jobs for g in graphs]),
            "stage_choice": stage, "job_choice": job, "exec_choice": exec_index,
            "rewards": np.array(self.rewards, dtype=np.float64),
            "wall_times": np.array(self.wall_times, dtype=np.float64),
            "dones": np.array(self.dones, dtype=bool),
        }, metadata)


class SchedulingPool:
    def __init__(self, arrays: dict, metadata: dict):
        self.arrays, self.metadata = arrays, metadata

    def __len__(self) -> int:
        return len(self.arrays["rewards"])

    def graph(self, t: int) -> GraphObservation:
        a = self.arrays
        nodes = slice(a["node_offsets"][t], a["node_offsets"][t + 1])
        jobs = slice(a["job_offsets"][t], a["job_offsets"][t + 1])
        edge_index = a["edge_index"][:, a["edge_offsets"][t]: a["edge_offsets"][t + 1]]
        return GraphObservation(a["x"][nodes], edge_index, np.concatenate([[0], np.cumsum(a["job_sizes"][jobs])]),
                                a["stage_mask"][nodes], a["exec_caps"][jobs],
                                level_edge_masks(edge_index.T, nodes.stop - nodes.start))

    def episodes(self) -> list[slice]:
        ends = [int(e) + 1 for e in np.flatnonzero(self.arrays["dones"])]
        if not ends or ends[-1] != len(self):
            ends.append(len(self))
        return [slice(s, e) for s, e in zip([0] + ends[:-1], ends) if e > s]

    def statistics(self) -> dict:
        rewards = self.arrays["rewards"]
        episodes = self.episodes()
        schedulable = np.add.reduceat(self.arrays["stage_mask"], self.arrays["node_offsets"][:-1])
        return {"num_transitions": len(self), "num_episodes": len(episodes),
                "max_timestep": max(e.stop - e.start for e in episodes) - 1,
                "reward_min": float(rewards.min()), "reward_max": float(rewards.max()),
                "zero_reward_fraction": float(np.mean(rewards == 0)),
                "max_schedulable_stages": int(schedulable.max()),
                "max_executor_choice": int(self.arrays["exec_choice"].max())}

    def decisions(self, start: int, stop: int) -> "SchedulingPool":
        """The pool of decisions start..stop-1 (same metadata)."""
        a = self.arrays
        cut = {}
        for prefix, offsets in (("node", ("x", "stage_mask")), ("job", ("job_sizes", "exec_caps"))):
            bounds = a[f"{prefix}_offsets"]
            for name in offsets:
                cut[name] = a[name][bounds[start]:bounds[stop]]
        cut["edge_index"] = a["edge_index"][:, a["edge_offsets"][start]:a["edge_offsets"][stop]]
        for name in ("node_offsets", "edge_offsets", "job_offsets"):
            cut[name] = a[name][start:stop + 1] - a[name][start]
        for name in ("stage_choice", "job_choice", "exec_choice", "rewards", "wall_times", "dones"):
            cut[name] = a[name][start:stop]
        return SchedulingPool(cut, dict(self.metadata))

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        if folder.exists():
            raise InputError(f"experience pool {folder} already exists; remove it or write another",
                             fixes=("output",))
        metadata = {"format_version": FORMAT_VERSION, "task": TASK, "state_layout": STATE_LAYOUT,
                    "num_node_features": NUM_FEATURES, **self.metadata, "statistics": self.statistics()}
        with atomic_folder(folder) as staging:
            np.savez(staging / "transitions.npz", **self.arrays)
            (staging / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")


def concatenate(pools: list[SchedulingPool], metadata: dict) -> SchedulingPool:
    """One pool holding the decisions of `pools` in order (edge indices are per decision: unchanged)."""
    arrays = {}
    for name in ARRAYS:
        if name.endswith("_offsets"):
            totals = np.cumsum([0] + [pool.arrays[name][-1] for pool in pools])
            arrays[name] = np.concatenate([[0]] + [pool.arrays[name][1:] + total for pool, total in zip(pools, totals)])
        else:
            arrays[name] = np.concatenate([pool.arrays[name] for pool in pools], axis=-1 if name == "edge_index" else 0)
    return SchedulingPool(arrays, metadata)


def load_pool(path: Path) -> SchedulingPool:
    path = Path(path)
    folder = path.parent if path.name in ("transitions.npz", "metadata.json") else path
    if not (folder / "metadata.json").is_file() or not (folder / "transitions.npz").is_file():
        raise InputError(f"{folder} is not an experience pool (needs metadata.json and transitions.npz); "
                         "make one with generate_exp_pool.py")
    metadata, arrays = read_pool_folder(folder, ARRAYS)
    if metadata.get("task") != TASK or metadata.get("state_layout") != STATE_LAYOUT:
        raise InputError(f"{folder} is a pool for task '{metadata.get('task')}' with state layout "
                         f"'{metadata.get('state_layout')}', not {TASK}/{STATE_LAYOUT}")
    if arrays["x"].ndim != 2 or arrays["x"].shape[1] != NUM_FEATURES or arrays["node_offsets"][-1] != len(arrays["x"]):
        raise InputError(f"{folder}: node features do not match the {NUM_FEATURES}-feature graph layout")
    metadata.pop("statistics", None)
    return SchedulingPool(arrays, metadata)
