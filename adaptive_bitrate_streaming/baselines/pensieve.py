"""The Pensieve-family actors (Genet, UDR-1/2/3, UDR-real) in PyTorch, loaded from the original TF1 checkpoints.

Architecture (the original's `baseline_special/a3c.py`): one branch per state row, concatenated into 768
features, then 768->128->3.
The original's tflearn "conv_1d" layers see each row as 1 time step x 6 channels, so with 'same' padding
only kernel tap 1 ever touches data: each is exactly a dense 6->128 layer with weights W[1, 0].
The 3 outputs are "jump" actions: one level down, stay, one level up.
"""
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from abr_sim.constants import BITRATE_LEVELS
from common.errors import InputError
from abr_sim.policy import Policy
from baselines.tf_checkpoint import load_checkpoint

CHECKPOINT_EPOCHS = {"genet": 9900, "udr_1": 57600, "udr_2": 52400, "udr_3": 58000, "udr_real": 49000}
RAND_RANGE = 1000  # the original discretises its sampling threshold into 1/1000 steps

# torch module -> (TF variable scope, row of the state it reads)
BRANCHES = {
    "last_bitrate": ("FullyConnected", 0),
    "buffer": ("FullyConnected_1", 1),
    "throughput": ("Conv1D", 2),
    "download_time": ("Conv1D_1", 3),
    "next_sizes": ("Conv1D_2", 4),
    "chunks_left": ("FullyConnected_2", 5),
}
SCALAR_ROWS = (0, 1, 5)  # rows read at their last column only


def checkpoint_prefix(data_root: Path, model: str) -> Path:
    return data_root / "abr" / "all_models" / model / f"nn_model_ep_{CHECKPOINT_EPOCHS[model]}.ckpt"


class PensieveActor(nn.Module):
    def __init__(self):
        super().__init__()
        for name, (_, row) in BRANCHES.items():
            self.add_module(name, nn.Linear(1 if row in SCALAR_ROWS else 6, 128))
        self.hidden = nn.Linear(6 * 128, 128)
        self.out = nn.Linear(128, 3)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """(B, 6, 6) states -> (B, 3) action probabilities."""
        features = []
        for name, (_, row) in BRANCHES.items():
            x = states[:, row, -1:] if row in SCALAR_ROWS else states[:, row, :]
            features.append(torch.relu(getattr(self, name)(x)))
        hidden = torch.relu(self.hidden(torch.cat(features, dim=1)))
        return torch.softmax(self.out(hidden), dim=1)

    @classmethod
    def from_tf_checkpoint(cls, prefix: Path) -> "PensieveActor":
        scopes = [scope for scope, _ in BRANCHES.values()] + ["FullyConnected_3", "FullyConnected_4"]
        names = [f"actor/{scope}/{part}" for scope in scopes for part in ("W", "b")]
        tensors = load_checkpoint(prefix, names)
        actor = cls()
        modules = list(BRANCHES) + ["hidden", "out"]
        with torch.no_grad():
            for module_name, scope in zip(modules, scopes):
                module = getattr(actor, module_name)
                weight = tensors[f"actor/{scope}/W"]
                if weight.ndim == 4:  # conv kernel (taps, 1, 6, 128): only tap 1 sees the data
                    weight = weight[1, 0]
                if weight.T.shape != module.weight.shape:
                    raise InputError(f"checkpoint {prefix}: actor/{scope}/W has shape {weight.shape}, "
                                     "not the Pensieve actor's; is it a Pensieve checkpoint?")
                module.weight.copy_(torch.from_numpy(weight.T))
                module.bias.copy_(torch.from_numpy(tensors[f"actor/{scope}/b"]))
        return actor.eval()


def jump_to_quality(action: int, quality: int) -> int:
    """Jump action (0 down, 1 stay, 2 up) relative to the current quality, clipped to the ladder."""
    return min(max(quality + action - 1, 0), BITRATE_LEVELS - 1)


class PensievePolicy(Policy):
    """Samples a jump action as the original does (`cumsum(p) > randint(1, 1000) / 1000`, first index),
    from `rng`, or takes the most likely one when `deterministic`.

    `probabilities` maps (B, 6, 6) float32 states to (B, 3) probabilities: the PyTorch actor here, or the
    TensorFlow graph of baselines/pensieve_tf.py.
    """

    def __init__(self, name: str, probabilities, rng: np.random.RandomState, deterministic: bool = False):
        self.name = name
        self.probabilities = probabilities
        self.rng = rng
        self.deterministic = deterministic

    def act(self, observation, client=0):
        return self.act_batch([observation], [client])[0]

    def act_batch(self, observations: Sequence, clients: Sequence[int]) -> list[int]:
        states = np.stack([o.state for o in observations]).astype(np.float32)
        probabilities = self.probabilities(states)
        qualities = []
        for observation, p in zip(observations, probabilities):
            if self.deterministic:
                action = int(np.argmax(p))
            else:
                action = int((np.cumsum(p) > self.rng.randint(1, RAND_RANGE) / float(RAND_RANGE)).argmax())
            qualities.append(jump_to_quality(action, observation.quality))
        return qualities


def torch_probabilities(actor: PensieveActor):
    def probabilities(states: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return actor(torch.from_numpy(states)).numpy()

    return probabilities
