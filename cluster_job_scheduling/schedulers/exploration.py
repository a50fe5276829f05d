"""Exploration for best-of-N experience pools: a scheduler that, with probability `epsilon` per decision,
takes the Random scheduler's decision instead of its own (one seeded generator for both draws)."""
import numpy as np

from .heuristics import RandomScheduler
from .scheduler import Scheduler


class Exploring(Scheduler):
    def __init__(self, scheduler: Scheduler, epsilon: float, seed: int):
        self.scheduler, self.epsilon = scheduler, epsilon
        self.name = f"{scheduler.name}+explore"
        self.rng = np.random.default_rng(seed)
        self.random = RandomScheduler(int(self.rng.integers(2**31)))

    def reset(self, env_id=0):
        self.scheduler.reset(env_id)

    def act(self, observation, env_id=0):
        action = self.scheduler.act(observation, env_id)
        return self.random.act(observation, env_id) if self.rng.random() < self.epsilon else action

    def observe(self, reward, env_id=0):
        self.scheduler.observe(reward, env_id)
