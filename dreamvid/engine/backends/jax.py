"""JAX's part of the dream loop: jax.grad, jax.jit with the weights as arguments, devices, and
the persistent compilation cache (a clip's first frame compiles once per octave size; later
runs on the same machine load the compiled code instead)."""

from __future__ import annotations

import os
from contextlib import nullcontext

import jax

from dreamvid.core.files import cache_dir

NAME = "jax"


def grad(fn, xla: bool = False):
    """fn(state, x, *args) -> scalar  ==>  d fn / d x. The weights in `state` are arguments but
    not differentiated, so XLA computes no weight gradient."""
    return jax.grad(fn, argnums=1)


def compile(fn):
    """jax.jit: compiled once per input shape (octave size), reused for every frame."""
    return jax.jit(fn)


def bind(model):
    """(state, apply): the weights as arrays passed into the jitted loop (not baked in as
    constants, which would make XLA fold 60+ MB of weights into every compile)."""
    state = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables])

    def apply(state, x):
        trainable, non_trainable = state
        out, _ = model.stateless_call(trainable, non_trainable, x)
        return out
    return state, apply


def _gpu():
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    return gpus[0] if gpus else None


def gpu_name() -> str | None:
    d = _gpu()
    return d.device_kind if d is not None else None


def gpu_capability() -> tuple[int, int] | None:
    d = _gpu()
    cc = getattr(d, "compute_capability", None) if d is not None else None
    if not cc:
        return None
    major, _, minor = str(cc).partition(".")
    return int(major), int(minor or 0)


def placement(device: str):
    return jax.default_device(jax.devices("cpu")[0]) if device == "cpu" and _gpu() is not None else nullcontext()


def loop_count(n: int):
    """The number of steps as an array: a traced loop bound, so another count never recompiles."""
    import jax.numpy as jnp

    return jnp.asarray(int(n), jnp.int32)


def to_numpy(x):
    import numpy as np

    return np.asarray(x)


def setup() -> None:
    """Keep compiled loops across runs (jax's persistent compilation cache) in dreamvid's cache
    folder, unless the user pointed JAX elsewhere; DREAMVID_JAX_CACHE=0 turns it off."""
    if os.environ.get("DREAMVID_JAX_CACHE", "1") == "0" or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    path = cache_dir() / "jax"
    try:
        path.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)  # only what is worth keeping
    except (OSError, AttributeError):
        pass  # read-only home or an old JAX: compile every run, as without the cache
