"""BBA: buffer-based rate adaptation with a 5 s reservoir and a 10 s cushion (the original's `run_baseline.py`)."""
from abr_sim.constants import BITRATE_LEVELS
from abr_sim.policy import Policy

RESERVOIR_S = 5.0
CUSHION_S = 10.0


class BBA(Policy):
    name = "bba"

    def act(self, observation, client=0):
        buffer_s = observation.chunk.buffer_s
        if buffer_s < RESERVOIR_S:
            return 0
        if buffer_s >= RESERVOIR_S + CUSHION_S:
            return BITRATE_LEVELS - 1
        return int((BITRATE_LEVELS - 1) * (buffer_s - RESERVOIR_S) / CUSHION_S)
