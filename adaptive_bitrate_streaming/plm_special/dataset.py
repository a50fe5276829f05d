"""Training data from an experience pool: whole episodes with normalised rewards and returns-to-go."""
import math

import numpy as np
import torch
from torch.utils.data import DataLoader

from .experience import ExperiencePool
from .return_scaling import ReturnScaling


class ExperienceDataset(torch.utils.data.Dataset):
    """One item per episode: states (T, 6, 6), actions (T,), returns-to-go (T,), timesteps 0..T-1."""

    def __init__(self, pool: ExperiencePool, gamma: float, scale: float, unit: float = 0.0,
                 floor_quantile: float = 0.0):
        self.scaling = ReturnScaling.from_rewards(pool.rewards, gamma, scale, unit, floor_quantile)
        normalized = self.scaling.normalize(pool.rewards)
        self.episodes = []
        for episode in pool.episodes():
            returns = self.scaling.returns_to_go(normalized[episode])
            self.episodes.append({
                "states": torch.from_numpy(pool.states[episode].astype(np.float32)),
                "actions": torch.from_numpy(pool.actions[episode].astype(np.int64)),
                "returns": torch.from_numpy(returns.astype(np.float32)),
                "timesteps": torch.arange(episode.stop - episode.start),
            })
        self.scaling.max_return = max(float(e["returns"][0]) for e in self.episodes)
        self.max_timestep = max(len(e["actions"]) for e in self.episodes) - 1

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, index: int) -> dict:
        return self.episodes[index]


def collate_episodes(batch: list[dict]) -> dict:
    """Right-pad episodes to the longest one; `valid` (B, T) marks real steps."""
    length = max(len(item["actions"]) for item in batch)
    padded = {}
    for key in ("states", "actions", "returns", "timesteps"):
        tensors = [item[key] for item in batch]
        shape = (len(batch), length, *tensors[0].shape[1:])
        padded[key] = torch.zeros(shape, dtype=tensors[0].dtype)
        for i, tensor in enumerate(tensors):
            padded[key][i, : len(tensor)] = tensor
    padded["valid"] = torch.zeros(len(batch), length, dtype=torch.bool)
    for i, item in enumerate(batch):
        padded["valid"][i, : len(item["actions"])] = True
    return padded


class EpisodeBatches:
    """The trainer's batch source: each round (epoch) visits every episode once, in batches of `batch_size`
    episodes, in an order drawn from the trainer's generator."""

    def __init__(self, dataset: ExperienceDataset, batch_size: int):
        self.dataset, self.batch_size = dataset, batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / self.batch_size)

    def round(self, generator: torch.Generator) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.batch_size, shuffle=True, collate_fn=collate_episodes,
                          generator=generator)
