"""APC's learned router: sends a request to the LLM where the LLM would decide otherwise than the fast policy.

On the calibration set the LLM streams alone while the fast policy decides every request beside it; a small
network (plm_special/routing.py `DisagreementModel`; features: the 6x6 state and the current bitrate, one-hot)
learns the probability that the two decisions differ. The router sends the requests with the highest
probability (a threshold calibrated as the network router's): where following the fast policy would most
likely change the episode. With `hold` as the partner, that is where the LLM would switch bitrate.
"""
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from abr_sim.constants import BITRATE_LEVELS
from abr_sim.evaluation import run_episodes
from abr_sim.policy import Policy
from abr_sim.simulator import episode_schedule
from common.errors import InputError

from .apc import ScoreRouter
from .routing import DisagreementModel, disagreement_network, fit_disagreement


def router_features(observation) -> np.ndarray:
    quality = np.zeros(BITRATE_LEVELS)
    quality[observation.quality] = 1.0
    return np.concatenate([np.asarray(observation.state, dtype=np.float64).ravel(), quality])


class DisagreementRecorder(Policy):
    """The LLM decides; the fast policy decides the same requests beside it; both are recorded."""

    def __init__(self, llm: Policy, fast: Policy):
        self.llm, self.fast, self.name = llm, fast, llm.name
        self.features, self.disagree = [], []

    def reset(self, client=0):
        self.llm.reset(client)
        self.fast.reset(client)

    def act_batch(self, observations, clients):
        actions = self.llm.act_batch(observations, clients)
        for observation, fast_action, action in zip(observations, self.fast.act_batch(observations, clients), actions):
            if not observation.done:
                self.features.append(router_features(observation))
                self.disagree.append(float(fast_action != action))
        return actions


def fit_disagreement_model(llm: Policy, fast: Policy, trace_set, video, num_clients: int, seed: int,
                           steps: int = 500) -> tuple[DisagreementModel, list[float], float]:
    """The model fitted on the calibration set's requests, its scores of those requests, and the share of
    them on which the two policies disagree."""
    recorder = DisagreementRecorder(llm, fast)
    run_episodes(recorder, trace_set, video, episode_schedule(trace_set, True, len(trace_set.traces)), None,
                 num_clients, progress=False)
    labels = np.asarray(recorder.disagree)
    model, scores = fit_disagreement(router_features, np.stack(recorder.features), labels, seed, steps)
    return model, scores, float(labels.mean())


def save_disagreement_model(model: DisagreementModel, path: Path) -> None:
    tensors = {f"network.{k}": v for k, v in model.network.state_dict().items()}
    tensors.update(mean=torch.from_numpy(model.mean), std=torch.from_numpy(model.std))
    temporary = path.with_name(path.name + ".tmp")
    save_file(tensors, temporary)
    temporary.replace(path)


def load_disagreement_model(path: Path) -> DisagreementModel:
    try:
        tensors = load_file(path)
        network = disagreement_network(tensors["mean"].shape[0])
        network.load_state_dict({k.removeprefix("network."): v for k, v in tensors.items() if k.startswith("network.")})
    except (OSError, KeyError, RuntimeError, SafetensorError) as error:
        raise InputError(f"{path} is not a learned router that serve_policy.py --save-router wrote "
                         f"({str(error).splitlines()[0]})", "learned_router") from None
    return DisagreementModel(network.eval(), tensors["mean"].numpy(), tensors["std"].numpy(), router_features)


class LearnedRouter(ScoreRouter):
    name = "learned"

    def __init__(self, model: DisagreementModel, threshold: float):
        super().__init__(model, threshold)
