"""The evaluation loop: any Policy, over a schedule of episodes, with per-chunk logs and the paper's metrics."""
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from .constants import VIDEO_BIT_RATE
from .datasets import TraceSet, Video
from .policy import Policy
from .simulator import StreamingSimulator
from .streaming import Observation, StreamingClient

LOG_COLUMNS = ["time_s", "bitrate_kbps", "buffer_s", "rebuffer_s", "chunk_bytes", "delay_ms", "smoothness_mbps", "reward"]


@dataclass
class EpisodeLog:
    trace_name: str
    rows: list[tuple] = field(default_factory=list)  # one per chunk, LOG_COLUMNS

    def add(self, observation: Observation, time_s: float) -> None:
        chunk = observation.chunk
        self.rows.append((
            time_s, VIDEO_BIT_RATE[observation.quality], chunk.buffer_s, chunk.rebuffer_s,
            chunk.size_bytes, chunk.delay_ms, observation.smoothness_mbps, observation.reward,
        ))


def run_episodes(
    policy: Policy,
    trace_set: TraceSet,
    video: Video,
    schedule: list[tuple[int, int]],
    noise_rng: np.random.RandomState | None = None,
    num_clients: int = 1,
    progress: bool = True,
) -> list[EpisodeLog]:
    """Stream one episode per (trace index, start pointer) of `schedule` and log every chunk.

    `num_clients` clients stream side by side and the policy decides for all of them in one `act_batch`
    call per chunk; with one client the order of random draws is the original's (delay noise of the
    download, then the policy's draw). Every episode has the same number of chunks, so clients stay in step.
    """
    logs = []
    clients = [StreamingClient(StreamingSimulator(video, noise_rng)) for _ in range(num_clients)]
    with tqdm(total=len(schedule), desc=f"{policy.name}", unit="trace", disable=not progress) as bar:
        for first in range(0, len(schedule), num_clients):
            batch = schedule[first : first + num_clients]
            ids = list(range(len(batch)))
            episode_logs = [EpisodeLog(trace_set.traces[trace_index].name) for trace_index, _ in batch]
            for client_id in ids:
                policy.reset(client_id)
            observations = [clients[i].start_episode(trace_set.traces[t], p) for i, (t, p) in enumerate(batch)]
            times_ms = [0.0] * len(batch)  # playback clock of each client, from the start of its episode
            while True:
                for i, observation in enumerate(observations):
                    times_ms[i] += observation.chunk.delay_ms + observation.chunk.sleep_ms
                    episode_logs[i].add(observation, times_ms[i] / 1000.0)
                qualities = policy.act_batch(observations, ids)  # also after the last chunk, as the original
                if observations[0].done:
                    break
                observations = [clients[i].step(q) for i, q in enumerate(qualities)]
            logs.extend(episode_logs)
            bar.update(len(batch))
    return logs


def summarize(logs: list[EpisodeLog]) -> dict:
    """The paper's metric (mean QoE per chunk, chunk 0 of every episode excluded) and its components."""
    rows = np.array([row for log in logs for row in log.rows[1:]], dtype=np.float64)
    all_rewards = [row[-1] for log in logs for row in log.rows]
    return {
        "mean_qoe": float(rows[:, 7].mean()),
        "mean_qoe_all_chunks": float(np.mean(all_rewards)),
        "mean_bitrate_mbps": float(rows[:, 1].mean() / 1000.0),
        "rebuffer_s": float(rows[:, 3].mean()),
        "smoothness_mbps": float(rows[:, 6].mean()),
        "num_traces": len(logs),
        "num_chunks": int(len(rows)),
    }
