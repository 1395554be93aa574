"""Speed choices made for the machine at hand: the arithmetic (`--precision auto`) and XLA
(`--xla auto`), decided from what the processor is, never from one machine's measurements.

- GPUs: bfloat16 from compute capability 8.0 (Ampere and later: bfloat16 tensor cores), float16
  on 7.x (Volta, Turing: float16 tensor cores), float32 before; Apple's GPU (PyTorch's MPS),
  which has no such generation to read: float16 where a short measurement finds it faster.
- CPUs: bfloat16 where the processor has AVX-512 BF16 or AMX (oneDNN's bfloat16 kernels; a
  2-core Zen 4 EPYC dreamed 1.67x faster than the float32 reference, same strength), float32
  elsewhere (on a Zen 3 without them bfloat16 was 9.4x slower).
- XLA (TensorFlow on a CPU): on for CPUs without AVX-512 and networks up to XLA_AUTO_MAX_DEPTH
  layers to the dreamed one (Zen 3: 1.29x), off with AVX-512 (Zen 4: XLA ran at 0.71x of
  TensorFlow's own kernels), off on GPUs (TensorFlow's own kernels). JAX is XLA by nature,
  PyTorch never is.
Where the flags cannot tell (no /proc/cpuinfo: macOS, Windows), a short measurement decides,
cached per machine in the cache folder (`machine.json`).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable

from dreamvid.core.files import cache_dir

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
# "auto" compiles networks up to this many layers deep to the dreamed layer: vgg16-hed to
# block4_conv3 (14 layers) compiles in ~1-2 s per octave size and steps ~1.2-1.3x faster on an
# AVX2 CPU; InceptionV3 to mixed5 (165 layers) took ~6 s per size for ~1.09x, which a clip repays
# only after ~170 frames.
XLA_AUTO_MAX_DEPTH = 40
_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


def platform_name() -> str:
    """"linux", "windows", "macos-arm" (Apple Silicon), "macos-intel" or another OS's name: what
    `--backend auto` chooses by."""
    system = platform.system().lower()
    if system == "darwin":
        return "macos-arm" if platform.machine().lower() in ("arm64", "aarch64") else "macos-intel"
    return system


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo, or None where there is none to read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def flop_per_cycle(flags: set[str] | None, precision: str, cpu: str = "") -> tuple[int, str]:
    """(FLOP per core per cycle, the vector units it assumes) for the convolutions' arithmetic in
    `precision` on a CPU with these flags: two FMA units of the widest vectors (AVX2: 8 float32
    lanes; AVX-512: 16, except on AMD's Zen 4, which runs a 512-bit FMA as two 256-bit halves),
    mul + add; bfloat16 with AVX512_BF16 pairs two products per float32 lane (2x), with AMX a
    tile unit of 1024 bfloat16 FLOP per cycle. Vendors' figures, not measured: an estimate."""
    flags = flags or set()
    if precision == "bfloat16" and "amx_bf16" in flags:
        return 1024, "AMX bfloat16 tiles"
    wide = "avx512f" in flags and "amd" not in cpu.lower()
    lanes, unit = ((16, "AVX-512 FMA") if wide
                   else (8, "AVX2 FMA" if "fma" in flags or "avx512f" in flags else "FMA assumed"))
    if "avx512f" in flags and not wide:
        unit = "AVX-512 FMA as two 256-bit halves"
    per = 2 * lanes * 2
    if precision == "bfloat16" and "avx512_bf16" in flags:
        return 2 * per, f"AVX512_BF16 dot products on {unit.split(' FMA')[0]}"
    return per, unit


def gpu_precision(capability: tuple[int, int] | None) -> str:
    """The fast arithmetic of an NVIDIA GPU of this compute capability."""
    if capability is None:
        return "float32"
    if tuple(capability) >= (8, 0):
        return "bfloat16"
    return "float16" if tuple(capability) >= (7, 0) else "float32"


def resolve_precision(requested: str, backend, device: str) -> str:
    """`requested`, or for "auto" what this device runs fast (module docstring). `backend`: a
    dreamvid.engine.backends module; `device`: "gpu" or "cpu" (where the Dreamer will run)."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested != "auto":
        return requested
    if device == "gpu":
        if getattr(backend, "on_mps", lambda: False)():  # Apple's GPU: no generation to read, so measure once
            return "float16" if measured(f"float16-faster|{backend.NAME}|mps",
                                         lambda: _probe_lower(backend, "mixed_float16")) else "float32"
        return gpu_precision(backend.gpu_capability())
    flags = cpu_flags()
    if flags is not None and not (flags & _BF16_FLAGS):
        return "float32"
    if flags is not None and backend.NAME != "jax":
        return "bfloat16"  # oneDNN's bfloat16 kernels (TensorFlow, PyTorch)
    # no flags to read, or JAX on a bfloat16 CPU (XLA's CPU kernels, not measured): measure once
    faster = measured(f"bfloat16-faster|{backend.NAME}", lambda: _probe_bfloat16(backend))
    return "bfloat16" if faster else "float32"


def use_xla(mode: str, backend_name: str, device: str, precision: str, depth: Callable[[], int | None]) -> bool:
    """Whether the ascent loop is XLA-compiled: JAX always, PyTorch never; TensorFlow as `mode`
    says, "auto" by the rules in the module docstring. `depth()`: layers up to the dreamed one."""
    if backend_name != "tensorflow":
        return backend_name == "jax"
    if mode != "auto":
        return mode == "on"
    if device != "cpu" or precision != "float32" or (depth() or 10**9) > XLA_AUTO_MAX_DEPTH:
        return False
    flags = cpu_flags()
    if flags is not None:
        return "avx512f" not in flags
    return measured("xla-faster|tensorflow", _probe_xla)


# ----------------------------------------------------------------------------- measured once


def _cache_file():
    return cache_dir() / "machine.json"


def measured(question: str, probe: Callable[[], bool]) -> bool:
    """probe()'s answer, measured once per machine (CPU model, Keras version) and kept in the
    cache folder; a cache that cannot be written only means measuring again next time."""
    import keras

    key = f"{question}|{cpu_model()}|keras {keras.__version__}"
    path = _cache_file()
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return bool(cache[key])
    answer = bool(probe())
    cache[key] = answer
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
    return answer


def _probe_model(policy: str):
    """Three 3x3 convolutions of 64 channels: the shape of VGG's first blocks, where dreaming spends its time."""
    import keras

    inp = keras.Input((None, None, 3))
    x = inp
    for i in range(3):
        x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", dtype=policy, name=f"probe{i}")(x)
    return keras.Model(inp, x)


def _time_gradient(backend, policy: str, xla: bool = False, size: int = 96, runs: int = 3) -> float:
    """Best of `runs` seconds for one compiled input gradient of the probe network."""
    import numpy as np
    from keras import ops

    state, apply = backend.bind(_probe_model(policy))
    grad = backend.compile(backend.grad(lambda s, x: ops.mean(ops.square(ops.cast(apply(s, x), "float32"))), xla=xla))
    x = ops.convert_to_tensor(np.random.default_rng(0).random((1, size, size, 3), np.float32) * 255)
    backend.to_numpy(grad(state, x))  # compile
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        backend.to_numpy(grad(state, x))
        best = min(best, time.perf_counter() - t)
    return best


def _probe_lower(backend, policy: str) -> bool:
    return _time_gradient(backend, policy) < 0.9 * _time_gradient(backend, "float32")


def _probe_bfloat16(backend) -> bool:
    return _probe_lower(backend, "mixed_bfloat16")


def _probe_xla() -> bool:
    from dreamvid.engine.backends import tensorflow as tf_backend  # imports TensorFlow: only where it is the backend

    return _time_gradient(tf_backend, "float32", xla=True) < 0.9 * _time_gradient(tf_backend, "float32")
