import numpy as np
import pytest

from abr_sim.constants import TOTAL_VIDEO_CHUNKS
from abr_sim.datasets import Trace, TraceSet, Video, load_trace_set
from abr_sim.simulator import StreamingSimulator, episode_schedule
from abr_sim.streaming import StreamingClient, chunk_qoe

MB = 1_000_000 / 8  # bytes per second at 1 Mbps


def constant_video(size_bytes: int) -> Video:
    return Video("flat", [[size_bytes] * (TOTAL_VIDEO_CHUNKS + 1) for _ in range(6)])


def constant_trace(mbps: float, seconds: int = 1000) -> Trace:
    return Trace("flat", [float(t) for t in range(seconds)], [mbps] * seconds)


def test_download_time_is_size_over_payload_rate_plus_rtt():
    simulator = StreamingSimulator(constant_video(int(0.95 * MB * 2.5)))  # 2.5 s at 1 Mbps
    simulator.start_episode(constant_trace(1.0), start_pointer=1)
    chunk = simulator.download(0)
    assert chunk.delay_ms == pytest.approx(2500 + 80)
    assert chunk.rebuffer_s == pytest.approx(2.58)  # empty buffer at the start
    assert chunk.buffer_s == pytest.approx(4.0)
    assert chunk.chunks_remaining == TOTAL_VIDEO_CHUNKS - 1 and not chunk.end_of_video


def test_buffer_is_capped_at_60_s_by_sleeping_in_500_ms_steps():
    simulator = StreamingSimulator(constant_video(1000))  # tiny chunks: the buffer fills up
    simulator.start_episode(constant_trace(10.0), start_pointer=1)
    chunks = [simulator.download(0) for _ in range(20)]
    assert max(c.buffer_s for c in chunks) <= 60.0
    slept = [c for c in chunks if c.sleep_ms > 0 or c.buffer_s > 59.5]
    assert slept, "the buffer never reached the cap"
    assert all(c.rebuffer_s == 0 for c in chunks[1:])


def test_trace_wraps_around_and_episode_ends_after_48_chunks():
    simulator = StreamingSimulator(constant_video(int(MB * 3)))  # 3+ s per chunk on a 20 s trace
    simulator.start_episode(constant_trace(1.0, seconds=20), start_pointer=1)
    chunks = [simulator.download(5) for _ in range(TOTAL_VIDEO_CHUNKS)]
    assert [c.end_of_video for c in chunks].count(True) == 1 and chunks[-1].end_of_video
    assert chunks[-1].chunks_remaining == 0
    assert all(c.delay_ms > 3000 for c in chunks)


def test_delay_noise_is_seeded_and_only_multiplicative():
    def delays(rng):
        simulator = StreamingSimulator(constant_video(int(MB)), rng)
        simulator.start_episode(constant_trace(1.0), start_pointer=1)
        return np.array([simulator.download(0).delay_ms for _ in range(5)])

    clean = delays(None)
    noisy = delays(np.random.RandomState(7))
    assert np.array_equal(noisy, delays(np.random.RandomState(7)))
    assert np.all((noisy >= 0.9 * clean) & (noisy <= 1.1 * clean)) and not np.array_equal(noisy, clean)


def test_qoe_formula():
    assert chunk_qoe(5, 5, 0.0) == pytest.approx(4.3)
    assert chunk_qoe(0, 5, 1.0) == pytest.approx(0.3 - 4.3 - 4.0)


def test_schedule_uses_the_pointer_file_in_fixed_order(real_data):
    trace_set = load_trace_set(real_data, "fcc-test")
    schedule = episode_schedule(trace_set, fixed_order=True, trace_num=100)
    assert [t for t, _ in schedule] == list(range(100))
    assert [p for _, p in schedule] == trace_set.pointers
    assert schedule[:3] == [(0, 28), (1, 99), (2, 32)]


def test_schedule_draws_pointers_as_the_original_when_there_is_no_pointer_file():
    traces = [constant_trace(1.0, seconds=n) for n in (5, 50, 500, 7)]
    trace_set = TraceSet("toy", None, traces, None)
    shuffled = episode_schedule(trace_set, fixed_order=False, trace_num=3)
    assert shuffled == episode_schedule(trace_set, fixed_order=False, trace_num=3)
    rng = np.random.RandomState(998244353)
    order = list(range(4))
    rng.shuffle(order)
    expected = [(i, rng.randint(1, len(traces[i].bandwidths))) for i in order]
    assert shuffled == expected[:3]
    assert all(1 <= p < len(traces[t].bandwidths) for t, p in shuffled)


def test_client_state_rows():
    client = StreamingClient(StreamingSimulator(constant_video(int(MB))))
    observation = client.start_episode(constant_trace(1.0), 1)
    state = observation.state
    assert state.shape == (6, 6) and np.all(state[:, :-1][[0, 1, 2, 3, 5]] == 0)
    assert state[0, -1] == pytest.approx(300 / 4300)
    assert state[2, -1] == pytest.approx(MB / observation.chunk.delay_ms / 1000)
    assert state[5, -1] == pytest.approx(47 / 48)
    observation = client.step(3)
    assert observation.state[0, -2] == pytest.approx(300 / 4300)  # history shifted left
    assert observation.state[0, -1] == pytest.approx(1850 / 4300)
    assert observation.smoothness_mbps == pytest.approx(1.55) and observation.timestep == 1
