"""In the TensorFlow environment: the original TF1 graphs and the PyTorch port agree (make test-baselines)."""
import numpy as np
import pytest

import run_baseline
from abr_sim.datasets import load_trace_set, load_video
from abr_sim.evaluation import run_episodes
from abr_sim.policy import Policy
from abr_sim.simulator import episode_schedule
from baselines.mpc import MPC
from baselines.pensieve import CHECKPOINT_EPOCHS, PensieveActor, checkpoint_prefix, torch_probabilities
from baselines.pensieve_tf import tf_probabilities


class StateRecorder(Policy):
    """MPC's decisions, keeping every state it saw: real states of the simulator."""

    def __init__(self, policy):
        self.policy, self.name, self.states = policy, policy.name, []

    def act(self, observation, client=0):
        self.states.append(observation.state.astype(np.float32))
        return self.policy.act(observation, client)


@pytest.fixture(scope="module")
def states(real_data):
    trace_set, video = load_trace_set(real_data, "fcc-test"), load_video(real_data, "video1")
    recorder = StateRecorder(MPC(video))
    run_episodes(recorder, trace_set, video, episode_schedule(trace_set, True, 40), progress=False)
    rng = np.random.default_rng(0)
    synthetic = np.stack([rng.uniform(0, 1, (1000, 6)), rng.uniform(0, 6, (1000, 6)), rng.uniform(0, 3, (1000, 6)),
                          rng.uniform(0, 2, (1000, 6)), rng.uniform(0, 2.5, (1000, 6)), rng.uniform(0, 1, (1000, 6))],
                         axis=1).astype(np.float32)
    return np.concatenate([np.stack(recorder.states), synthetic])


@pytest.mark.parametrize("model", list(CHECKPOINT_EPOCHS))
def test_both_backends_give_the_same_probabilities(real_data, states, model):
    prefix = checkpoint_prefix(real_data, model)
    tf_probs = tf_probabilities(prefix)(states)
    torch_probs = torch_probabilities(PensieveActor.from_tf_checkpoint(prefix))(states)
    assert len(states) > 2500
    assert np.abs(tf_probs - torch_probs).max() < 1e-5
    assert tf_probs.std(axis=0).min() > 1e-3  # the states exercise the actor: its choices vary


def test_genet_qoe_is_the_same_with_both_backends(real_data, tmp_path):
    flags = ["--model", "genet", "--data-dir", str(real_data), "--quiet"]
    tf_run = run_baseline.main([*flags, "--backend", "tf", "--results-dir", str(tmp_path / "tf")])
    torch_run = run_baseline.main([*flags, "--backend", "torch", "--results-dir", str(tmp_path / "torch")])
    assert tf_run["mean_qoe"] == pytest.approx(torch_run["mean_qoe"], abs=1e-4)
    assert tf_run["mean_qoe"] == pytest.approx(0.847871, abs=2e-3)
