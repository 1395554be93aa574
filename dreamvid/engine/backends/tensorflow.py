"""TensorFlow's part of the dream loop: gradient tapes, tf.function (XLA where it pays), devices."""

from __future__ import annotations

from contextlib import nullcontext

import tensorflow as tf

NAME = "tensorflow"


def grad(fn, xla: bool = False):
    """fn(state, x, *args) -> scalar  ==>  g(state, x, *args) -> d fn / d x (shape of x).
    Only x is watched: the network's weights get no gradient (dreaming never trains). With `xla`,
    the gradient (forward and backward of the network) is XLA-compiled on its own, once per
    input shape, inside the loop's graph: on CPUs that measured faster than compiling the whole
    loop, whose while-loop XLA runs far slower (a 96x64 clip: 0.27x of the loop without XLA)."""
    def g(state, x, *args):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            y = fn(state, x, *args)
        return tape.gradient(y, x)
    return tf.function(g, jit_compile=True, reduce_retracing=False) if xla else g


def compile(fn):
    """One graph per input shape (octave size), reused for every frame (XLA, if asked, applies to
    the gradient inside it: see grad)."""
    return tf.function(fn, reduce_retracing=False)


def bind(model):
    """(state, apply): the model's own variables are read inside the graph, so state is empty."""
    return (), lambda state, x: model(x)


def gpu_name() -> str | None:
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU 0")


def gpu_capability() -> tuple[int, int] | None:
    gpus = tf.config.list_physical_devices("GPU")
    return tf.config.experimental.get_device_details(gpus[0]).get("compute_capability") if gpus else None


def placement(device: str):
    """Context pinning the work to the CPU when device == "cpu" (else TensorFlow's choice)."""
    return tf.device("/CPU:0") if device == "cpu" else nullcontext()


def loop_count(n: int):
    """The number of steps as a tensor, so another count never retraces the loop."""
    return tf.constant(int(n), tf.int32)


def to_numpy(x):
    return x.numpy()


def setup() -> None:
    """Nothing to switch: TensorFlow's own GPU kernels; oneDNN is set in dreamvid/__init__.py."""
