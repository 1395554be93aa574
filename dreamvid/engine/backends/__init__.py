"""Which framework runs the networks: TensorFlow, JAX or PyTorch, through Keras 3.

The dream loop (dreamvid.engine.dreamer) is written once on `keras.ops`; what Keras leaves to each
framework lives in one short module per backend, all with the same interface (`Backend`):

    grad(fn, xla)        fn(state, x, *args) -> scalar  ==>  (state, x, *args) -> d fn / d x
                         (TensorFlow: XLA-compiled on its own if `xla`)
    compile(fn)          fn compiled the way the framework is fast (tf.function / jax.jit / as is)
    loop_count(n)        a step count as the compiled loop takes it (a tensor, or an int to range over)
    placement(device)    a context that keeps the work on the CPU when device == "cpu"
    setup()              framework switches (PyTorch: TF32, cuDNN autotuning; JAX: compilation cache)
    bind(keras_model)    (state, apply): apply(state, x) runs the model; the weights travel in
                         `state` where the framework wants them as arguments (JAX), else state = ()
    gpu_name()           the GPU the framework computes on, or None for the CPU
    gpu_capability()     its CUDA compute capability (major, minor), for hardware.resolve_precision

Keras fixes its backend when it is first imported, so `configure(backend, device)` must run
before anything imports keras (the CLI calls it first thing). `auto` picks per platform
(`hardware.platform_name`): on Linux with an NVIDIA driver the fastest backend that sees the GPU
(JAX, then PyTorch, then TensorFlow's CUDA build); on Windows PyTorch with CUDA (TensorFlow has
had no Windows GPU build since 2.10, JAX none for CUDA on Windows); on macOS with Apple Silicon
PyTorch on its MPS GPU; else TensorFlow, the default install, on the CPU; for a PyTorch network
(torchvision:, timm:, a TorchScript file, a module) PyTorch first, where it runs natively.
KERAS_BACKEND, which Keras users already know, is honoured by `auto`. `why()` says why the last
`configure` chose as it did, for the start-up line.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from dreamvid.config.settings import DEFAULTS
from dreamvid.core.errors import ConfigError
from dreamvid.engine import hardware
from dreamvid.engine.torchmodels import is_torch_network

NAMES = ("tensorflow", "jax", "torch")
CHOICES = ("auto", *NAMES)
_EXTRA = {"tensorflow": "pip install dreamvid", "jax": "pip install 'dreamvid[jax]'",
          "torch": "pip install 'dreamvid[torch]'"}
_GPU_ORDER = ("jax", "torch", "tensorflow")  # fastest first, as measured through Keras on an H200


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _nvidia_present() -> bool:
    """An NVIDIA driver is loaded (cheap: no framework imported to ask)."""
    return os.path.exists("/proc/driver/nvidia/gpus") or os.path.exists("/dev/nvidia0")


def _sees_gpu(name: str) -> bool:
    """Whether framework `name` (imported here, so only call it on a GPU machine) has a GPU:
    CUDA, or for "mps" PyTorch's Apple GPU."""
    try:
        if name == "mps":
            import torch

            return torch.backends.mps.is_available()
        if name == "jax":
            import jax

            return any(d.platform == "gpu" for d in jax.devices())
        if name == "torch":
            import torch

            return torch.cuda.is_available()
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    except Exception:  # a broken CUDA install reads as "no GPU", never as a crash
        return False


_WHY = {"reason": ""}


def why() -> str:
    """Why the last configure() chose its backend ("" before it ran)."""
    return _WHY["reason"]


def resolve(backend: str = DEFAULTS["backend"], device: str = DEFAULTS["device"], network=None) -> str:
    """The backend `auto` stands for here (see the module docstring); a named one is checked."""
    return choose(backend, device, network)[0]


def choose(backend: str = DEFAULTS["backend"], device: str = DEFAULTS["device"], network=None) -> tuple[str, str]:
    """(backend, why): resolve's answer and the reason, in a few words. `network`: the --model
    value (or module) to run; a PyTorch network makes `auto` take PyTorch where it is installed."""
    if backend not in CHOICES:
        raise ConfigError(f"backend must be one of {', '.join(CHOICES)}; got {backend!r}")
    if backend != "auto":
        if not installed(backend):
            raise ConfigError(f"--backend {backend}, but {backend} is not installed; {_EXTRA[backend]}")
        return backend, "asked for"
    env = os.environ.get("KERAS_BACKEND")
    if env:
        if env not in NAMES:
            raise ConfigError(f"KERAS_BACKEND={env} is not a backend dreamvid runs on; use one of {', '.join(NAMES)}")
        return env, "KERAS_BACKEND"
    if network is not None and is_torch_network(network) and installed("torch"):
        return "torch", "auto: a PyTorch network, which runs natively on PyTorch"
    where = hardware.platform_name()
    if device != "cpu":
        if where == "windows" and installed("torch") and _sees_gpu("torch"):
            return "torch", "auto: Windows with a CUDA GPU, which only PyTorch reaches there"
        if where == "macos-arm" and installed("torch") and _sees_gpu("mps"):
            return "torch", "auto: Apple Silicon, whose GPU PyTorch reaches (MPS)"
        if where == "linux" and _nvidia_present():
            for name in _GPU_ORDER:
                if installed(name) and _sees_gpu(name):
                    return name, ("auto: the fastest installed backend that sees the NVIDIA GPU "
                                  "(JAX, PyTorch, TensorFlow)")
    for name in ("tensorflow", "jax", "torch"):
        if installed(name):
            reason = "asked for the CPU" if device == "cpu" else "no GPU that an installed backend reaches"
            return name, f"auto: {reason}; the first installed of TensorFlow, JAX, PyTorch"
    raise ConfigError("no Keras backend is installed; "
                      "pip install dreamvid (TensorFlow), 'dreamvid[jax]' or 'dreamvid[torch]'")


# the frameworks a process on another backend never needs, kept out by `exclusive` (TensorFlow
# imports JAX by itself where it is installed: tf.lite's converter looks for it at import time)
OTHERS = {"tensorflow": ("jax", "torch"), "jax": ("torch",), "torch": ("jax",)}


def configure(backend: str = DEFAULTS["backend"], device: str = DEFAULTS["device"], *, exclusive: bool = False,
              network=None) -> str:
    """Choose the backend and the device for this process, before Keras is imported; returns the
    backend's name. device "cpu" hides GPUs from the framework. `exclusive` (the command line's
    processes, which run one backend): the other frameworks (OTHERS) are made unimportable here,
    so a TensorFlow run neither imports JAX nor pays for it (seconds of start-up) nor runs its
    garbage-collection callbacks; a library user's process (a notebook) keeps them importable.
    `network` (the --model value): a PyTorch network takes PyTorch under `auto`, and keeps it
    importable on another backend (it is exported to ONNX through PyTorch, then runs there)."""
    if "keras" in sys.modules:  # already chosen in this process (a library user, the tests)
        import keras

        active = keras.backend.backend()
        if backend not in ("auto", active):
            raise ConfigError(f"Keras already runs on {active} in this process; --backend {backend} must be chosen "
                              f"before Keras is imported (set KERAS_BACKEND={backend})")
        return active
    name, _WHY["reason"] = choose(backend, device, network)
    os.environ["KERAS_BACKEND"] = name
    if exclusive:
        for other in OTHERS.get(name, ()):
            if other not in sys.modules and not (other == "torch" and network is not None
                                                 and is_torch_network(network)):
                sys.modules[other] = None  # Python's own rule: `import other` raises ImportError
    if device == "cpu":  # hide GPUs from whichever framework runs
        os.environ["JAX_PLATFORMS"] = "cpu"
        os.environ["KERAS_TORCH_DEVICE"] = "cpu"
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    return name


def current():
    """The module (dreamvid.engine.backends.<name>) for the backend Keras runs on."""
    import keras

    return importlib.import_module(f"dreamvid.engine.backends.{keras.backend.backend()}")


def describe(device_gpu: str | None) -> str:
    """'jax on GPU (NVIDIA H200)' or 'tensorflow on CPU (16 cores)' for the start-up line."""
    import keras

    where = f"GPU ({device_gpu})" if device_gpu else f"CPU ({os.cpu_count()} cores)"
    return f"{keras.backend.backend()} on {where}"
