"""One streaming client: the original's decision loop (its `run_baseline.py` `run`), the QoE and the 6x6
state."""
from dataclasses import dataclass

import numpy as np

from .constants import (
    BUFFER_NORM_FACTOR,
    DEFAULT_QUALITY,
    M_IN_K,
    MAX_VIDEO_BIT_RATE,
    REBUF_PENALTY,
    S_INFO,
    S_LEN,
    SMOOTH_PENALTY,
    TOTAL_VIDEO_CHUNKS,
    VIDEO_BIT_RATE,
)
from .datasets import Trace
from .simulator import Chunk, StreamingSimulator


def chunk_qoe(quality: int, last_quality: int, rebuffer_s: float) -> float:
    """QoE of one chunk = bitrate (Mbps) - 4.3 * rebuffering (s) - |bitrate change| (Mbps)."""
    return (
        VIDEO_BIT_RATE[quality] / M_IN_K
        - REBUF_PENALTY * rebuffer_s
        - SMOOTH_PENALTY * abs(VIDEO_BIT_RATE[quality] - VIDEO_BIT_RATE[last_quality]) / M_IN_K
    )


def next_state(state: np.ndarray, quality: int, chunk: Chunk) -> np.ndarray:
    """Shift the 6x6 history left by one column and write the newest measurements into the last column.

    Rows: last bitrate / 4300, buffer / 10 s, throughput in MB/s (bytes/ms/1000), download time / 10 s,
    next chunk sizes in MB (all 6 columns), fraction of chunks remaining.
    """
    state = np.roll(state, -1, axis=1)
    state[0, -1] = VIDEO_BIT_RATE[quality] / float(MAX_VIDEO_BIT_RATE)
    state[1, -1] = chunk.buffer_s / BUFFER_NORM_FACTOR
    state[2, -1] = float(chunk.size_bytes) / float(chunk.delay_ms) / M_IN_K
    state[3, -1] = float(chunk.delay_ms) / M_IN_K / BUFFER_NORM_FACTOR
    state[4, :] = np.array(chunk.next_sizes) / M_IN_K / M_IN_K
    state[5, -1] = min(chunk.chunks_remaining, TOTAL_VIDEO_CHUNKS) / float(TOTAL_VIDEO_CHUNKS)
    return state


@dataclass
class Observation:
    """What a policy sees after each chunk download; it then picks the next chunk's bitrate index."""

    state: np.ndarray  # (6, 6) float64, after this chunk
    quality: int  # bitrate index of the chunk just downloaded
    chunk: Chunk  # raw measurements of that download
    reward: float  # its QoE
    smoothness_mbps: float
    timestep: int  # index of the chunk just downloaded within the episode (0..47)

    @property
    def done(self) -> bool:
        return self.chunk.end_of_video


class StreamingClient:
    """Streams one video over one trace per episode; chunk 0 is always fetched at the lowest quality."""

    def __init__(self, simulator: StreamingSimulator):
        self.simulator = simulator

    def start_episode(self, trace: Trace, start_pointer: int) -> Observation:
        self.simulator.start_episode(trace, start_pointer)
        self.state = np.zeros((S_INFO, S_LEN))
        self.last_quality = DEFAULT_QUALITY
        self.timestep = -1
        return self.step(DEFAULT_QUALITY)

    def step(self, quality: int) -> Observation:
        chunk = self.simulator.download(quality)
        reward = chunk_qoe(quality, self.last_quality, chunk.rebuffer_s)
        smoothness = abs(VIDEO_BIT_RATE[quality] - VIDEO_BIT_RATE[self.last_quality]) / M_IN_K
        self.last_quality = quality
        self.state = next_state(self.state, quality, chunk)
        self.timestep += 1
        return Observation(self.state, quality, chunk, reward, smoothness, self.timestep)
