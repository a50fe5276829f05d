"""Chunk-level streaming simulator, faithful to the Pensieve/NetLLM `Environment` (the original's
`baseline_special/env.py`; README, "Simulator").

Kept free of gymnasium so that evaluation loops pay only for the arithmetic. Quirks that the paper's
numbers depend on are preserved: the RTT and the delay noise do not advance the trace clock, and the
returned sleep time is what remains after the drain loop.
"""
import math
from dataclasses import dataclass

import numpy as np

from .constants import (
    BUFFER_THRESH_MS,
    DRAIN_BUFFER_SLEEP_MS,
    LINK_RTT_MS,
    NOISE_HIGH,
    NOISE_LOW,
    PACKET_PAYLOAD_PORTION,
    SHUFFLE_SEED,
    TOTAL_VIDEO_CHUNKS,
    VIDEO_CHUNK_LEN_MS,
)
from .datasets import Trace, TraceSet, Video

BYTES_PER_MBIT = 1_000_000.0 / 8.0


@dataclass
class Chunk:
    """What the player measured while downloading one chunk."""

    delay_ms: float
    sleep_ms: float
    buffer_s: float
    rebuffer_s: float
    size_bytes: int
    next_sizes: list[int]  # sizes of the next chunk at every level (chunk 0 after the last chunk)
    end_of_video: bool
    chunks_remaining: int


def episode_schedule(trace_set: TraceSet, fixed_order: bool, trace_num: int) -> list[tuple[int, int]]:
    """(trace index, start pointer) of each episode, drawn as the original does.

    The original reseeds NumPy with 998244353, shuffles the trace order unless the order is fixed, and
    draws a start pointer per trace (in shuffled order) when the trace set has no pointer file.
    """
    rng = np.random.RandomState(SHUFFLE_SEED)
    order = list(range(len(trace_set.traces)))
    if not fixed_order:
        rng.shuffle(order)
    if trace_set.pointers is not None:
        pointers = [trace_set.pointers[i] for i in order]
    else:
        pointers = [int(rng.randint(1, len(trace_set.traces[i].bandwidths))) for i in order]
    return list(zip(order[:trace_num], pointers[:trace_num]))


class StreamingSimulator:
    """Replays one trace at a time; `noise_rng=None` turns the multiplicative delay noise off."""

    def __init__(self, video: Video, noise_rng: np.random.RandomState | None = None):
        self.video = video
        self.noise_rng = noise_rng
        self.trace = None

    def start_episode(self, trace: Trace, start_pointer: int) -> None:
        self.trace = trace
        self.pointer = start_pointer
        self.last_time = trace.times[start_pointer - 1]
        self.buffer_ms = 0.0
        self.chunk_index = 0

    def _advance_pointer(self) -> None:
        self.pointer += 1
        if self.pointer >= len(self.trace.bandwidths):  # wrap around; traces start at time 0
            self.pointer = 1
            self.last_time = 0.0

    def download(self, quality: int) -> Chunk:
        times, bandwidths = self.trace.times, self.trace.bandwidths
        size = self.video.sizes[quality][self.chunk_index]

        delay = 0.0  # seconds
        sent = 0.0  # bytes
        while True:
            throughput = bandwidths[self.pointer] * BYTES_PER_MBIT  # bytes per second
            duration = times[self.pointer] - self.last_time
            payload = throughput * duration * PACKET_PAYLOAD_PORTION
            if sent + payload > size:
                fraction = (size - sent) / throughput / PACKET_PAYLOAD_PORTION
                delay += fraction
                self.last_time += fraction
                break
            sent += payload
            delay += duration
            self.last_time = times[self.pointer]
            self._advance_pointer()

        delay_ms = delay * 1000.0 + LINK_RTT_MS
        if self.noise_rng is not None:
            delay_ms *= self.noise_rng.uniform(NOISE_LOW, NOISE_HIGH)

        rebuffer_ms = max(delay_ms - self.buffer_ms, 0.0)
        self.buffer_ms = max(self.buffer_ms - delay_ms, 0.0) + VIDEO_CHUNK_LEN_MS

        sleep_ms = 0.0
        if self.buffer_ms > BUFFER_THRESH_MS:
            sleep_ms = math.ceil((self.buffer_ms - BUFFER_THRESH_MS) / DRAIN_BUFFER_SLEEP_MS) * DRAIN_BUFFER_SLEEP_MS
            self.buffer_ms -= sleep_ms
            while True:  # let the trace clock run while the player sleeps
                duration = times[self.pointer] - self.last_time
                if duration > sleep_ms / 1000.0:
                    self.last_time += sleep_ms / 1000.0
                    break
                sleep_ms -= duration * 1000.0
                self.last_time = times[self.pointer]
                self._advance_pointer()
        buffer_s = self.buffer_ms / 1000.0

        self.chunk_index += 1
        chunks_remaining = TOTAL_VIDEO_CHUNKS - self.chunk_index
        end_of_video = self.chunk_index >= TOTAL_VIDEO_CHUNKS
        if end_of_video:
            self.buffer_ms = 0.0
            self.chunk_index = 0
        next_sizes = [level[self.chunk_index] for level in self.video.sizes]
        return Chunk(delay_ms, sleep_ms, buffer_s, rebuffer_ms / 1000.0, size, next_sizes, end_of_video, chunks_remaining)
