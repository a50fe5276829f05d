import shutil

import numpy as np
import pytest
import torch

from common.errors import InputError
from baselines.pensieve import PensieveActor, PensievePolicy, checkpoint_prefix, jump_to_quality, torch_probabilities
from baselines.tf_checkpoint import load_checkpoint, read_index


def random_states(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1.5, size=(n, 6, 6)).astype(np.float32)


def test_checkpoint_reader_lists_the_actor_and_critic_towers(real_data):
    num_shards, entries = read_index(checkpoint_prefix(real_data, "genet"))
    assert num_shards == 1
    assert entries["actor/Conv1D/W"]["shape"] == [4, 1, 6, 128]
    assert entries["actor/FullyConnected_4/W"]["shape"] == [128, 3]
    assert entries["critic/FullyConnected_4/W"]["shape"] == [128, 1]


def test_actor_uses_kernel_tap_1_of_the_conv_layers(real_data):
    """The port equals a NumPy evaluation of the checkpoint's weights with tap 1 as a dense layer."""
    prefix = checkpoint_prefix(real_data, "udr_1")
    w = load_checkpoint(prefix)
    states = random_states(64)
    relu = lambda x: np.maximum(x, 0)  # noqa: E731

    def layer(scope, x):
        weight = w[f"actor/{scope}/W"]
        return x @ (weight[1, 0] if weight.ndim == 4 else weight) + w[f"actor/{scope}/b"]

    branches = [relu(layer("FullyConnected", states[:, 0, -1:])), relu(layer("FullyConnected_1", states[:, 1, -1:])),
                relu(layer("Conv1D", states[:, 2])), relu(layer("Conv1D_1", states[:, 3])),
                relu(layer("Conv1D_2", states[:, 4])), relu(layer("FullyConnected_2", states[:, 5, -1:]))]
    logits = layer("FullyConnected_4", relu(layer("FullyConnected_3", np.concatenate(branches, axis=1))))
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    actual = torch_probabilities(PensieveActor.from_tf_checkpoint(prefix))(states)
    assert np.abs(actual - expected).max() < 1e-5


def test_batched_act_equals_one_by_one(real_data):
    from types import SimpleNamespace

    probabilities = torch_probabilities(PensieveActor.from_tf_checkpoint(checkpoint_prefix(real_data, "genet")))
    observations = [SimpleNamespace(state=s, quality=q % 6) for q, s in enumerate(random_states(50, seed=1))]
    batched = PensievePolicy("genet", probabilities, np.random.RandomState(3))
    single = PensievePolicy("genet", probabilities, np.random.RandomState(3))
    assert batched.act_batch(observations, range(50)) == [single.act(o) for o in observations]


def test_jump_actions_are_relative_and_clipped():
    assert [jump_to_quality(a, 0) for a in range(3)] == [0, 0, 1]
    assert [jump_to_quality(a, 5) for a in range(3)] == [4, 5, 5]


def copy_checkpoint(real_data, tmp_path):
    source = checkpoint_prefix(real_data, "genet")
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(f"{source}{suffix}", tmp_path / f"model.ckpt{suffix}")
    return tmp_path / "model.ckpt"


def test_truncated_or_missing_checkpoint_is_an_input_error(real_data, tmp_path):
    prefix = copy_checkpoint(real_data, tmp_path)
    data = tmp_path / "model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:200_000])
    with pytest.raises(InputError, match="truncated"):
        PensieveActor.from_tf_checkpoint(prefix)
    index = tmp_path / "model.ckpt.index"
    index.write_bytes(index.read_bytes()[:100])
    with pytest.raises(InputError, match="unreadable"):
        PensieveActor.from_tf_checkpoint(prefix)
    with pytest.raises(InputError, match="missing"):
        PensieveActor.from_tf_checkpoint(tmp_path / "nothing.ckpt")


def test_actor_is_a_plain_torch_module(real_data):
    actor = PensieveActor.from_tf_checkpoint(checkpoint_prefix(real_data, "genet"))
    probabilities = actor(torch.from_numpy(random_states(4)))
    assert probabilities.shape == (4, 3) and torch.allclose(probabilities.sum(1), torch.ones(4))
