"""How rewards become the returns to go that the policy is conditioned on (the original's
`plm_special/data/dataset.py` and `evaluate.py`; README, "ABR with Trailblazer")."""
from dataclasses import asdict, dataclass

import numpy as np

from common.errors import InputError


@dataclass
class ReturnScaling:
    """r~ = (clip(r, min, max) - min) / (max - min) with the pool's min and max reward (the original's; the min
    may be a low quantile instead, `from_rewards`), or
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

    @classmethod
    def from_rewards(cls, rewards: np.ndarray, gamma: float, scale: float, unit: float = 0.0,
                     floor_quantile: float = 0.0) -> "ReturnScaling":
        """The scaling of a pool's rewards; `floor_quantile` > 0 sets the min-max floor to that quantile of
        the rewards instead of their minimum, so that a few extreme rewards do not squeeze all the others."""
        if not 0 <= floor_quantile < 0.5:
            raise InputError(f"must be at least 0 and below 0.5, got {floor_quantile}", "reward_floor_quantile")
        if floor_quantile and unit:
            raise InputError("applies to min-max normalised rewards; leave --return-unit at 0 to use it",
                             "reward_floor_quantile")
        floor = np.quantile(rewards, floor_quantile) if floor_quantile else rewards.min()
        return cls(float(floor), float(rewards.max()), gamma, scale, unit=unit)

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
