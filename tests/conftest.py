"""Shared fixtures: tiny networks built here (no downloads), and test images (the helpers behind
them, and the clips and the command-line runner the tests share, are plain functions in helpers.py).

The suite tests the installed package, what a user's `pip install` gives, never the checkout's
source next to it: the checkout's folder is taken off the import path here (`python -m pytest`
puts the folder it runs in there), and PYTHONSAFEPATH=1 keeps it off in the Python processes the
tests start. To test a checkout without installing it, name it in PYTHONPATH, or install it
editable (pip install -e .); test_packaging then says the suite ran against the source.
"""

import os
import sys

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ASKED = {os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != CHECKOUT or os.path.abspath(p) in _ASKED]
os.environ["PYTHONSAFEPATH"] = "1"  # (Python 3.11+) no script folder or current folder on a child's path
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import helpers
import numpy as np
import pytest


@pytest.fixture
def texture():
    """helpers.texture: texture(h, w, seed=0), smooth coloured noise, float32 in [0, 255]."""
    return helpers.texture


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
    from dreamvid.engine.models import from_keras

    return from_keras(tiny_keras, name="tiny", preprocess="tf", default_layer="conv2")


@pytest.fixture(scope="session")
def tiny_keras_file(tiny_keras, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    tiny_keras.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_pb(tmp_path_factory):
    """A frozen graph shaped like inception5h, with every op the graph converter translates:
    placeholder 'input'; 'conv1_pre_relu' (Conv2D + BiasAdd, weights read through Identity),
    'conv1' (Relu); 'maxpool1' (MaxPool 3x3, stride 2, SAME); 'lrn1' (LRN as inception5h's, on
    16 channels so the 11-channel window matters); 'conv2' (Relu of a Conv2D without bias);
    'mixed1' (ConcatV2 of a 1x1 branch, 'conv2' and an AvgPool branch); 'mixed2' (an old-style
    Concat with the axis first), 'add1' (AddV2), 'relu6' (Relu6), 'pool_valid' (AvgPool VALID,
    stride 2); and a classifier head the converter leaves alone: 'head_conv' behind a Reshape,
    'nn0' behind a MatMul, 'softmax0'."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    g = tf.Graph()

    def const(shape, name, scale=0.15):
        return tf.constant(rng.normal(0, scale, shape).astype(np.float32), name=name)

    def conv(x, cin, cout, k, name, bias=True, stride=1):
        w = tf.identity(const((k, k, cin, cout), f"{name}_w"), name=f"{name}_w/read")
        y = tf.nn.conv2d(x, w, stride, "SAME", name=f"{name}_pre_relu/conv" if bias else f"{name}/conv")
        if bias:
            y = tf.nn.bias_add(y, const((cout,), f"{name}_b", 1.0), name=f"{name}_pre_relu")
        return tf.nn.relu(y, name=name)

    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (None, None, None, 3), name="input")
        r = conv(x, 3, 16, 3, "conv1")
        pool = tf.nn.max_pool2d(r, 3, 2, "SAME", name="maxpool1")
        lrn = tf.nn.local_response_normalization(pool, depth_radius=5, bias=2.0, alpha=1e-4, beta=0.5, name="lrn1")
        b1 = conv(lrn, 16, 8, 1, "mixed1_1x1")
        c2 = conv(lrn, 16, 6, 3, "conv2", bias=False)
        avg = tf.nn.avg_pool2d(lrn, 3, 1, "SAME", name="mixed1_pool")
        b3 = conv(avg, 16, 4, 1, "mixed1_pool_reduce")
        mixed1 = tf.concat([b1, c2, b3], -1, name="mixed1")  # ConcatV2, 18 channels
        b4 = conv(mixed1, 18, 8, 3, "mixed2_3x3")
        mixed2 = tf.raw_ops.Concat(concat_dim=tf.constant(3, name="mixed2/concat_dim"), values=[mixed1, b4],
                                   name="mixed2")
        add = tf.raw_ops.AddV2(x=conv(mixed2, 26, 8, 1, "add_a"), y=conv(mixed2, 26, 8, 1, "add_b"), name="add1")
        r6 = tf.nn.relu6(add, name="relu6")
        valid = tf.nn.avg_pool2d(r6, 3, 2, "VALID", name="pool_valid")
        # the head: a 4D layer behind a Reshape, and a classifier behind a MatMul
        reshaped = tf.reshape(valid, tf.shape(valid), name="head_reshape")
        conv(reshaped, 8, 4, 1, "head_conv")
        flat = tf.reshape(tf.reduce_mean(r6, [1, 2]), [-1, 8], name="head_flat")
        nn0 = tf.nn.relu(tf.nn.bias_add(tf.matmul(flat, const((8, 5), "nn0_w"), name="nn0_pre_relu/matmul"),
                                        const((5,), "nn0_b"), name="nn0_pre_relu"), name="nn0")
        tf.nn.softmax(nn0, name="softmax0")
    path = tmp_path_factory.mktemp("graphs") / "tiny.pb"
    path.write_bytes(g.as_graph_def().SerializeToString())
    return path


@pytest.fixture(scope="session")
def tiny3_keras_file(tmp_path_factory):
    """A three-conv Keras network (c1, c2 at stride 2, c3) with fixed random weights, saved as a
    .keras file: what the pipeline, gallery and cluster tests render with (any input size)."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c3")(x)
    path = tmp_path_factory.mktemp("model") / "tiny3.keras"
    keras.Model(inp, x).save(path)
    return str(path)


@pytest.fixture(scope="module")
def model(tiny3_keras_file):
    """The network of tiny3_keras_file loaded through load_model, as a user's own model file is;
    one per test module (test_masks has a `model` of its own: the two-conv network)."""
    from dreamvid.engine.models import load_model

    return load_model(tiny3_keras_file)
