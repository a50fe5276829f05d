"""How rewards become the returns to go that the policy is conditioned on (the original's
`plm_special/data/dataset.py` and `evaluate.py`; README, "ABR with Trailblazer")."""
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class ReturnScaling:
    """r~ = (clip(r, min, max) - min) / (max - min) with the pool's min and max reward (the original's), or
    r~ = r / unit when a unit is given (the returns then keep the rewards' sign and proportions); RTG_t =
    sum_k gamma^(k-t) r~_k / scale over the rest of the episode. At test time the target starts at
    `max_return` (the pool's largest RTG at an episode's start) times the target-return scale and drops by
    r~ / scale after every decision."""

    reward_min: float
    reward_max: float
    gamma: float
    scale: float
    max_return: float = 0.0
    unit: float = 0.0  # 0: min-max normalisation

    def normalize(self, rewards):
        if self.unit:
            return np.asarray(rewards, dtype=np.float64) / self.unit
        span = self.reward_max - self.reward_min or 1.0
        return (np.clip(rewards, self.reward_min, self.reward_max) - self.reward_min) / span

    def process_reward(self, reward: float) -> float:
        return float(self.normalize(reward)) / self.scale

    def returns_to_go(self, rewards: np.ndarray) -> np.ndarray:
        returns, running = np.zeros(len(rewards)), 0.0
        for t in range(len(rewards) - 1, -1, -1):
            running = rewards[t] + self.gamma * running
            returns[t] = running
        return returns / self.scale

    def to_dict(self) -> dict:
        return asdict(self)
