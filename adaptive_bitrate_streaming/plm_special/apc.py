"""Adaptive policy collaboration (APC): a router judges each request by the client's network conditions and
sends the difficult ones to the LLM policy, the rest to a fast conventional policy.

`network_difficulty` scores an observation (higher = harder), from what the client measured:
    throughput variability   coefficient of variation of the last (up to) 6 chunk throughputs
    low throughput           1 / (1 + mean of those throughputs in Mbps)
    low buffer               max(0, 1 - buffer / 10 s)
    rebuffering              1 if the chunk just downloaded stalled playback, else 0
    slow download            the last chunk's download time / 10 s (at most 1)
    mismatch                 |ln(mean throughput / bitrate of the chunk just downloaded)|, how far the network
                             has moved from the current decision
summed with equal weights. `NetworkRouter` sends a request to the LLM when its score exceeds a threshold
(plm_special/routing.py calibrates it so that about a share p of a calibration set's requests exceed it);
`RandomRouter` sends the same share uniformly at random (the control that shows whether judging difficulty
matters).

`CollaborativePolicy` is an ABR Policy like any other: the fast policy decides every request (so that its
own state, e.g. RobustMPC's error history, follows the whole episode) and its answer is taken unless the
router picks the LLM; steps the fast policy decided enter the LLM's context with the action taken.
"""
from collections.abc import Sequence

import numpy as np

from abr_sim.constants import BUFFER_NORM_FACTOR, VIDEO_BIT_RATE
from abr_sim.evaluation import run_episodes
from abr_sim.simulator import episode_schedule
from abr_sim.policy import Policy

from .llm_policy import LLMPolicy
from .routing import calibrate_threshold

ROUTERS = ["network", "random", "learned"]  # learned: plm_special/learned_router.py


def network_difficulty(observation) -> float:
    throughputs = observation.state[2]
    throughputs = throughputs[throughputs > 0] * 8.0  # MB/s -> Mbps, columns not yet filled left out
    level = float(throughputs.mean()) if len(throughputs) else 0.0
    variability = float(throughputs.std() / level) if level > 0 else 0.0
    mismatch = abs(float(np.log(level / (VIDEO_BIT_RATE[observation.quality] / 1000.0)))) if level > 0 else 0.0
    return (variability + 1.0 / (1.0 + level) + max(0.0, 1.0 - observation.chunk.buffer_s / BUFFER_NORM_FACTOR)
            + float(observation.chunk.rebuffer_s > 0) + min(1.0, float(observation.state[3, -1])) + mismatch)


class DifficultyRecorder(Policy):
    """Passes a policy's decisions through and records the score of every request it answers."""

    def __init__(self, policy: Policy, score=network_difficulty):
        self.policy, self.name, self.score, self.scores = policy, policy.name, score, []

    def reset(self, client=0):
        self.policy.reset(client)

    def act_batch(self, observations, clients):
        self.scores += [self.score(o) for o in observations if not o.done]
        return self.policy.act_batch(observations, clients)


def difficulty_scores(policy: Policy, trace_set, video, num_clients: int, score=network_difficulty) -> list[float]:
    """The scores of the requests `policy` answers streaming every trace of the set alone (in fixed order,
    without delay noise): what the routers' thresholds are calibrated on (routing.py)."""
    recorder = DifficultyRecorder(policy, score)
    run_episodes(recorder, trace_set, video, episode_schedule(trace_set, True, len(trace_set.traces)), None,
                 num_clients, progress=False)
    return recorder.scores


def calibrate_on_collaboration(scores, share: float, collaboration, trace_set, video, num_clients: int,
                               rounds: int, score=network_difficulty) -> float:
    """A score router's threshold for `share`: first from `scores` (the LLM alone); then, `rounds` times,
    `collaboration(threshold)` (a CollaborativePolicy) streams the calibration set and the threshold is set
    from the scores of the requests it met, whose states differ from the LLM's own (a fixed-point iteration
    towards the share realised by the collaboration itself)."""
    threshold = calibrate_threshold(scores, share)
    for _ in range(rounds if 0 < share < 1 else 0):
        threshold = calibrate_threshold(difficulty_scores(collaboration(threshold), trace_set, video, num_clients,
                                                          score), share)
    return threshold


class ScoreRouter:
    """Sends a request to the LLM when its score (higher = the LLM is more needed) exceeds a threshold."""

    name = "score"

    def __init__(self, score, threshold: float):
        self.score, self.threshold = score, threshold

    def to_llm(self, observations, clients) -> list[bool]:
        return [self.score(observation) > self.threshold for observation in observations]


class NetworkRouter(ScoreRouter):
    name = "network"

    def __init__(self, threshold: float):
        super().__init__(network_difficulty, threshold)


class RandomRouter:
    name = "random"

    def __init__(self, share: float, seed: int):
        self.share = share
        self.rng = np.random.default_rng(seed)

    def to_llm(self, observations, clients) -> list[bool]:
        return list(self.rng.random(len(observations)) < self.share)


class ConventionalPartner(Policy):
    """A conventional policy in the LLM's place in CollaborativePolicy, as a server's sessions outside the LLM
    get it: it answers the router's picks and decides every other step too (its answer unused), so that its
    own state (e.g. RobustMPC's error history) follows the whole episode."""

    def __init__(self, policy: Policy):
        self.policy, self.name = policy, policy.name

    def reset(self, client=0):
        self.policy.reset(client)

    def act_batch(self, observations, clients):
        return self.policy.act_batch(observations, clients)

    def follow(self, observation, client, action):
        self.policy.act(observation, client)


class CollaborativePolicy(Policy):
    """Counts the requests it serves and those the LLM decided (`llm_share`); the decision after an
    episode's last chunk, which is discarded, is not counted and always goes to the fast policy."""

    def __init__(self, llm: LLMPolicy, fast: Policy, router):
        self.llm, self.fast, self.router = llm, fast, router
        self.name = f"apc_{router.name}_{fast.name}"
        self.requests = self.llm_requests = 0

    @property
    def llm_share(self) -> float:
        return self.llm_requests / max(1, self.requests)

    def reset(self, client=0):
        self.llm.reset(client)
        self.fast.reset(client)

    def act_batch(self, observations, clients):
        actions = self.fast.act_batch(observations, clients)
        to_llm = [pick and not o.done for pick, o in zip(self.router.to_llm(observations, clients), observations)]
        chosen = [i for i, pick in enumerate(to_llm) if pick]
        if chosen:
            for i, action in zip(chosen, self.llm.act_batch([observations[i] for i in chosen],
                                                            [clients[i] for i in chosen])):
                actions[i] = action
        for i, pick in enumerate(to_llm):
            if not pick:
                self.llm.follow(observations[i], clients[i], actions[i])
        served = sum(not o.done for o in observations)
        self.requests += served
        self.llm_requests += len(chosen)
        return actions
