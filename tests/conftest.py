"""Shared fixtures: tiny networks built here (no downloads), and test images."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


def _texture(h, w, seed=0):
    """Smooth coloured noise at a few scales, float32 in [0, 255]: something with edges to dream on."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for scale in (2, 6, 16):
        small = rng.random((max(1, h // scale), max(1, w // scale), 3)).astype(np.float32)
        img += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img -= img.min()
    return (img / img.max() * 200 + 25).astype(np.float32)


@pytest.fixture
def texture():
    return _texture


@pytest.fixture(scope="session")
def tiny_keras():
    """A two-conv Keras network with fixed random weights (any input size)."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    return keras.Model(inp, x, name="tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_keras):
    from dreamvid.models import from_keras

    return from_keras(tiny_keras, name="tiny", preprocess="tf", default_layer="conv2")


@pytest.fixture(scope="session")
def tiny_keras_file(tiny_keras, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    tiny_keras.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_pb(tmp_path_factory):
    """A frozen graph shaped like inception5h: placeholder 'input', top-level ops
    'conv1_pre_relu' (BiasAdd), 'conv1' (Relu) and 'mixed1' (ConcatV2)."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (None, None, None, 3), name="input")
        w1 = tf.constant(rng.normal(0, 0.05, (3, 3, 3, 6)).astype(np.float32), name="conv1_w")
        b1 = tf.constant(np.zeros(6, np.float32), name="conv1_b")
        c = tf.nn.conv2d(x, w1, 1, "SAME", name="conv1_pre_relu/conv")
        pre = tf.nn.bias_add(c, b1, name="conv1_pre_relu")
        r = tf.nn.relu(pre, name="conv1")
        w2 = tf.constant(rng.normal(0, 0.05, (3, 3, 6, 4)).astype(np.float32), name="conv2_w")
        r2 = tf.nn.relu(tf.nn.conv2d(r, w2, 2, "SAME", name="conv2/conv"), name="conv2")
        tf.concat([r2, tf.nn.max_pool2d(r, 2, 2, "SAME", name="pool1")], -1, name="mixed1")
    path = tmp_path_factory.mktemp("graphs") / "tiny.pb"
    path.write_bytes(g.as_graph_def().SerializeToString())
    return path
