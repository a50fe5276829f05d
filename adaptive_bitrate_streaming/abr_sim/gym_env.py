"""The streaming simulator as a gymnasium environment.

Observation: the 6x6 Pensieve state after the last download. Action: the bitrate index of the next
chunk. One episode streams the 48 chunks of the video over one trace; `reset` fetches chunk 0 at the
lowest quality (as the original does), so an episode has 47 steps. `info` carries the raw measurements
of the last download and its QoE (`reward` of step t is the QoE of chunk t).
"""
from dataclasses import asdict

import gymnasium as gym
import numpy as np

from .constants import BITRATE_LEVELS, S_INFO, S_LEN
from .datasets import TraceSet, Video
from .simulator import StreamingSimulator, episode_schedule
from .streaming import Observation, StreamingClient


class StreamingEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, trace_set: TraceSet, video: Video, fixed_order: bool = True, trace_num: int | None = None,
                 seed: int | None = None):
        self.trace_set = trace_set
        self.fixed_order = fixed_order
        self.schedule = episode_schedule(trace_set, fixed_order, trace_num or len(trace_set.traces))
        noise_rng = None if fixed_order else np.random.RandomState(seed)
        self.client = StreamingClient(StreamingSimulator(video, noise_rng))
        self.observation_space = gym.spaces.Box(low=0.0, high=np.inf, shape=(S_INFO, S_LEN), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(BITRATE_LEVELS)
        self.episode = -1

    @staticmethod
    def _info(observation: Observation) -> dict:
        return {**asdict(observation.chunk), "quality": observation.quality, "qoe": observation.reward,
                "timestep": observation.timestep}

    def reset(self, *, seed=None, options=None):
        """Start the next episode of the schedule (trace order and start pointers as the original).

        A `seed` restarts the schedule from its first episode and reseeds the delay noise (which is only
        applied when the order is not fixed), so the same seed gives the same episodes.
        """
        super().reset(seed=seed)
        if seed is not None:
            self.episode = -1
            if not self.fixed_order:
                self.client.simulator.noise_rng = np.random.RandomState(seed)
        self.episode += 1
        trace_index, start_pointer = self.schedule[self.episode % len(self.schedule)]
        observation = self.client.start_episode(self.trace_set.traces[trace_index], start_pointer)
        return observation.state.astype(np.float32), self._info(observation)

    def step(self, action):
        if not self.action_space.contains(int(action)):
            raise ValueError(f"action must be a bitrate index in 0..{BITRATE_LEVELS - 1}, got {action}")
        observation = self.client.step(int(action))
        return observation.state.astype(np.float32), observation.reward, observation.done, False, self._info(observation)
