"""The Pensieve-family actors as the original runs them: a tflearn graph in TF1 graph mode, restored with a
Saver. Only for the TensorFlow environment (requirements-baselines.txt); the main environment uses the
PyTorch port in pensieve.py, and tests/tf_backend checks that both give the same probabilities.
"""
import os
from pathlib import Path

import numpy as np

from common.errors import InputError
from baselines.tf_checkpoint import load_checkpoint

TF_ENVIRONMENT_HINT = ("the tf backend needs the TensorFlow environment: run `make baselines-env` at the "
                       "repository root, then `../.venv-tf/bin/python run_baseline.py --backend tf ...`")


def import_tflearn():
    """Import TensorFlow in TF1 graph mode and tflearn 0.5.0, which predates TensorFlow 2.16+ and Pillow 10."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import tensorflow.compat.v1 as tf
    except ImportError:
        raise InputError(TF_ENVIRONMENT_HINT) from None
    from PIL import Image
    from tensorflow.python.util import nest

    # Shim 1: tflearn's recurrent layers import nest.is_sequence, renamed is_nested in TensorFlow 2.
    if not hasattr(nest, "is_sequence"):
        nest.is_sequence = nest.is_nested
    # Shim 2: tflearn's image utilities use a default argument Image.ANTIALIAS, removed in Pillow 10.
    if not hasattr(Image, "ANTIALIAS"):
        Image.ANTIALIAS = Image.LANCZOS
    import tflearn

    tf.disable_v2_behavior()
    tf.logging.set_verbosity(tf.logging.ERROR)
    return tf, tflearn


def build_actor(tf, tflearn):
    """The actor of the original a3c.py, layers created in its order so that variable names match."""
    with tf.variable_scope("actor"):
        inputs = tflearn.input_data(shape=[None, 6, 6])
        split_0 = tflearn.fully_connected(inputs[:, 0:1, -1], 128, activation="relu")
        split_1 = tflearn.fully_connected(inputs[:, 1:2, -1], 128, activation="relu")
        split_2 = tflearn.conv_1d(inputs[:, 2:3, :], 128, 4, activation="relu")
        split_3 = tflearn.conv_1d(inputs[:, 3:4, :], 128, 4, activation="relu")
        split_4 = tflearn.conv_1d(inputs[:, 4:5, :6], 128, 4, activation="relu")
        split_5 = tflearn.fully_connected(inputs[:, 5:6, -1], 128, activation="relu")
        merged = tflearn.merge([split_0, split_1, tflearn.flatten(split_2), tflearn.flatten(split_3),
                                tflearn.flatten(split_4), split_5], "concat")
        hidden = tflearn.fully_connected(merged, 128, activation="relu")
        out = tflearn.fully_connected(hidden, 3, activation="softmax")
    return inputs, out


def tf_probabilities(prefix: Path):
    """states (B, 6, 6) -> (B, 3) probabilities from the TF graph restored from the checkpoint `prefix`."""
    load_checkpoint(prefix, ["actor/FullyConnected_4/W"])  # one clear error for a missing or damaged file
    tf, tflearn = import_tflearn()
    graph = tf.Graph()
    with graph.as_default():
        inputs, out = build_actor(tf, tflearn)
        actor_variables = tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope="actor")
        session = tf.Session(graph=graph)
        try:
            tf.train.Saver(var_list=actor_variables).restore(session, str(prefix))
        except (tf.errors.NotFoundError, tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
            raise InputError(f"checkpoint {prefix} cannot be restored into the Pensieve actor "
                             f"({error.message.splitlines()[0]})") from None

    def probabilities(states: np.ndarray) -> np.ndarray:
        return session.run(out, feed_dict={inputs: states})

    return probabilities
