"""Training data from an experience pool: whole episodes with normalised rewards and returns-to-go."""
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .experience import ExperiencePool


@dataclass
class ReturnScaling:
    """How rewards become the returns-to-go the policy is conditioned on (original-code-spec 4.7, 4.9).

    r~ = (clip(r, min, max) - min) / (max - min) with the pool's min and max reward; RTG_t =
    sum_k gamma^(k-t) r~_k / scale over the rest of the episode. At test time the target starts at
    `max_return` (the pool's largest RTG) times --target-return-scale and drops by r~/scale per chunk.
    """

    reward_min: float
    reward_max: float
    gamma: float
    scale: float
    max_return: float = 0.0

    def normalize(self, rewards):
        span = self.reward_max - self.reward_min or 1.0
        return (np.clip(rewards, self.reward_min, self.reward_max) - self.reward_min) / span

    def process_reward(self, reward: float) -> float:
        return float(self.normalize(reward)) / self.scale

    def returns_to_go(self, rewards: np.ndarray) -> np.ndarray:
        returns = np.zeros(len(rewards))
        running = 0.0
        for t in range(len(rewards) - 1, -1, -1):
            running = rewards[t] + self.gamma * running
            returns[t] = running
        return returns / self.scale

    def to_dict(self) -> dict:
        return asdict(self)


class ExperienceDataset(torch.utils.data.Dataset):
    """One item per episode: states (T, 6, 6), actions (T,), returns-to-go (T,), timesteps 0..T-1."""

    def __init__(self, pool: ExperiencePool, gamma: float, scale: float):
        self.scaling = ReturnScaling(float(pool.rewards.min()), float(pool.rewards.max()), gamma, scale)
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
        self.scaling.max_return = max(float(e["returns"].max()) for e in self.episodes)
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
