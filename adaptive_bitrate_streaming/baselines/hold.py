"""Hold: repeat the bitrate of the chunk just downloaded. The cheapest partner for APC: an analysis of the
NetLLM ABR policy found it agrees with the LLM on most decisions (../README.md, APC)."""
from abr_sim.policy import Policy


class Hold(Policy):
    name = "hold"

    def act(self, observation, client=0):
        return observation.quality
