"""Constants of the Pensieve/Genet streaming setting (the original's `baseline_special/utils/constants.py`
and `baseline_special/env.py`)."""

VIDEO_BIT_RATE = [300, 750, 1200, 1850, 2850, 4300]  # kbps, the 6-level ladder
BITRATE_LEVELS = len(VIDEO_BIT_RATE)
MAX_VIDEO_BIT_RATE = VIDEO_BIT_RATE[-1]
DEFAULT_QUALITY = 0  # first chunk of every episode

REBUF_PENALTY = 4.3  # QoE penalty per second of rebuffering
SMOOTH_PENALTY = 1.0  # QoE penalty per Mbps of bitrate change

TOTAL_VIDEO_CHUNKS = 48  # chunks per episode (the original stores 48.0)
VIDEO_CHUNK_LEN_MS = 4000.0
BUFFER_THRESH_MS = 60_000.0  # the player sleeps while its buffer holds more than this
DRAIN_BUFFER_SLEEP_MS = 500.0
PACKET_PAYLOAD_PORTION = 0.95
LINK_RTT_MS = 80.0
NOISE_LOW, NOISE_HIGH = 0.9, 1.1  # multiplicative delay noise when the order is not fixed

S_INFO, S_LEN = 6, 6  # the 6x6 state
BUFFER_NORM_FACTOR = 10.0
M_IN_K = 1000.0

SHUFFLE_SEED = 998244353  # the original reseeds NumPy with this to shuffle traces and draw start pointers
