"""A player's report after each chunk (the JSON that Pensieve's and Genet's dash.js ABR rules POST) and the
observation the server builds from it, as the simulator's client does (abr_sim/streaming.py).

Fields used (others, e.g. `bufferAdjusted`, `bandwidthEst`, are accepted and ignored):
    lastRequest          index of the chunk just downloaded, 0..47 (reports arrive in order)
    lastquality          its bitrate index, 0..5
    buffer               playback buffer after it, seconds
    RebufferTime         total rebuffering since the session started, milliseconds
    lastChunkStartTime, lastChunkFinishTime   when its download started and finished, milliseconds
    lastChunkSize        its size in bytes
    nextChunkSize        sizes in bytes of the next chunk at each of the 6 bitrates
The chunk's QoE is computed by the server, as Pensieve's does: Mbps - 4.3 x rebuffering (s) - |change| (Mbps).
"""
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from abr_sim.constants import BITRATE_LEVELS, DEFAULT_QUALITY, M_IN_K, S_INFO, S_LEN, TOTAL_VIDEO_CHUNKS, VIDEO_BIT_RATE
from abr_sim.simulator import Chunk
from abr_sim.streaming import Observation, chunk_qoe, next_state


class ReportError(ValueError):
    """A report the server cannot use; the message is the one-line reason sent back (HTTP 4xx)."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class ChunkReport(BaseModel):
    model_config = ConfigDict(extra="ignore")

    lastRequest: int = Field(ge=0, lt=TOTAL_VIDEO_CHUNKS)
    lastquality: int = Field(ge=0, lt=BITRATE_LEVELS)
    buffer: float = Field(ge=0)
    RebufferTime: float = Field(ge=0)
    lastChunkStartTime: float
    lastChunkFinishTime: float
    lastChunkSize: int = Field(gt=0)
    nextChunkSize: list[int] = Field(min_length=BITRATE_LEVELS, max_length=BITRATE_LEVELS)


def parse_report(payload) -> ChunkReport:
    """The report in a request body, or a ReportError naming the first problem."""
    try:
        report = ChunkReport.model_validate(payload)
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"]) or "body"
        raise ReportError(f"{field}: {problem['msg']}") from None
    if report.lastChunkFinishTime <= report.lastChunkStartTime:
        raise ReportError("lastChunkFinishTime must be later than lastChunkStartTime")
    if min(report.nextChunkSize) < 0:
        raise ReportError("nextChunkSize: sizes must not be negative")
    return report


@dataclass
class ReportTracker:
    """One session's reports turned into observations; chunk 0's QoE is measured against the lowest bitrate,
    as the simulator's client does."""

    chunks: int = 0
    last_quality: int = DEFAULT_QUALITY
    total_rebuffer_ms: float = 0.0

    def __post_init__(self):
        self.state = np.zeros((S_INFO, S_LEN))

    def observe(self, report: ChunkReport) -> Observation:
        if report.lastRequest != self.chunks:
            raise ReportError(f"lastRequest is {report.lastRequest}, but this session's next chunk is {self.chunks}; "
                              "reports must arrive in order, one per chunk", status=409)
        if report.RebufferTime < self.total_rebuffer_ms:
            raise ReportError(f"RebufferTime went down ({report.RebufferTime} after {self.total_rebuffer_ms} ms); "
                              "it is the session's total")
        remaining = TOTAL_VIDEO_CHUNKS - self.chunks - 1
        chunk = Chunk(delay_ms=report.lastChunkFinishTime - report.lastChunkStartTime, sleep_ms=0.0,
                      buffer_s=report.buffer, rebuffer_s=(report.RebufferTime - self.total_rebuffer_ms) / M_IN_K,
                      size_bytes=report.lastChunkSize, next_sizes=list(report.nextChunkSize),
                      end_of_video=remaining == 0, chunks_remaining=remaining)
        quality = report.lastquality
        reward = chunk_qoe(quality, self.last_quality, chunk.rebuffer_s)
        smoothness = abs(VIDEO_BIT_RATE[quality] - VIDEO_BIT_RATE[self.last_quality]) / M_IN_K
        self.state = next_state(self.state, quality, chunk)
        observation = Observation(self.state, quality, chunk, reward, smoothness, self.chunks)
        self.chunks += 1
        self.last_quality = quality
        self.total_rebuffer_ms = report.RebufferTime
        return observation


def report_of(observation: Observation, start_ms: float, total_rebuffer_ms: float) -> dict:
    """The report a player sends after the download that `observation` describes (the load generator's and
    the tests' clients); `start_ms` is when the download started, `total_rebuffer_ms` includes this chunk's."""
    chunk = observation.chunk
    return {"lastRequest": observation.timestep, "lastquality": observation.quality, "buffer": chunk.buffer_s,
            "RebufferTime": total_rebuffer_ms, "lastChunkStartTime": start_ms,
            "lastChunkFinishTime": start_ms + chunk.delay_ms, "lastChunkSize": int(chunk.size_bytes),
            "nextChunkSize": [int(size) for size in chunk.next_sizes]}
