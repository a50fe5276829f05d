"""Training data from a scheduling pool: windows of K consecutive decisions of one episode, with returns to go."""
import math

import numpy as np
import torch

from .experience import SchedulingPool
from .return_scaling import ReturnScaling


class WindowDataset(torch.utils.data.Dataset):
    """Windows of up to K decisions starting every `sample_step` decisions; they never cross episodes."""

    def __init__(self, pool: SchedulingPool, K: int, sample_step: int, gamma: float, scale: float, unit: float = 0.0,
                 floor_quantile: float = 0.0):
        rewards = pool.arrays["rewards"]
        self.scaling = ReturnScaling.from_rewards(rewards, gamma, scale, unit, floor_quantile)
        self.pool = pool
        self.returns = np.zeros(len(pool), dtype=np.float32)
        self.timesteps = np.zeros(len(pool), dtype=np.int64)
        self.windows = []
        for episode in pool.episodes():
            self.returns[episode] = self.scaling.returns_to_go(self.scaling.normalize(rewards[episode]))
            self.timesteps[episode] = np.arange(episode.stop - episode.start)
            self.windows += [(s, min(s + K, episode.stop)) for s in range(episode.start, episode.stop, sample_step)]
        self.scaling.max_return = max(float(self.returns[episode.start]) for episode in pool.episodes())
        self.max_timestep = int(self.timesteps.max())
        self.graphs = {}

    def __len__(self) -> int:
        return len(self.windows)

    def graph(self, t: int):
        if t not in self.graphs:
            self.graphs[t] = self.pool.graph(t)
        return self.graphs[t]

    def __getitem__(self, index: int) -> dict:
        start, stop = self.windows[index]
        a = self.pool.arrays
        return {"graphs": [self.graph(t) for t in range(start, stop)],
                "stage_choice": a["stage_choice"][start:stop], "job_choice": a["job_choice"][start:stop],
                "exec_choice": a["exec_choice"][start:stop], "returns": self.returns[start:stop],
                "timesteps": self.timesteps[start:stop]}


def collate_windows(items: list[dict]) -> dict:
    """Windows side by side: their decisions concatenated, with each window's length."""
    batch = {"graphs": [g for item in items for g in item["graphs"]],
             "window_lengths": [len(item["graphs"]) for item in items]}
    for key in ("stage_choice", "job_choice", "exec_choice", "timesteps"):
        batch[key] = torch.from_numpy(np.concatenate([item[key] for item in items]).astype(np.int64))
    batch["returns"] = torch.from_numpy(np.concatenate([item["returns"] for item in items]).astype(np.float32))
    return batch


class WindowBatches:
    """The trainer's batch source: each round (iteration) draws `windows_per_round` windows with replacement
    from the trainer's generator, in batches of `batch_size` windows."""

    def __init__(self, dataset: WindowDataset, windows_per_round: int, batch_size: int):
        self.dataset, self.windows_per_round, self.batch_size = dataset, windows_per_round, batch_size

    def __len__(self) -> int:
        return math.ceil(self.windows_per_round / self.batch_size)

    def round(self, generator: torch.Generator):
        windows = torch.randint(len(self.dataset), (self.windows_per_round,), generator=generator).tolist()
        for start in range(0, len(windows), self.batch_size):
            yield collate_windows([self.dataset[w] for w in windows[start:start + self.batch_size]])
