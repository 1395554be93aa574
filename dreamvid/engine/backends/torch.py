"""PyTorch's part of the dream loop: autograd on the image only, frozen weights, TF32, devices.

Keras runs PyTorch eagerly: the octave's steps are a Python loop, but every tensor (image,
jitter table, gradient) stays on the device, so no step waits for a copy to the host.

The network itself runs natively (`torchnet`): its layers rebuilt as torch ops, channels-last,
the weights frozen, autocast in the precision asked for, and on a CUDA GPU its forward pass
through torch.compile, one graph per octave size; a network with a layer the converter does not
rebuild runs through Keras, as before (one log line says which layer). DREAMVID_TORCH_NATIVE=0
runs every network through Keras (to compare the two).
"""

from __future__ import annotations

import logging
import os
from contextlib import nullcontext

import torch

from dreamvid.engine.backends import torchnet

NAME = "torch"
log = logging.getLogger("dreamvid")


def grad(fn, xla: bool = False):
    """fn(state, x, *args) -> scalar  ==>  d fn / d x; weights are frozen (bind), so autograd
    builds no weight gradients."""
    def g(state, x, *args):
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            y = fn(state, x, *args)
            (gx,) = torch.autograd.grad(y, x)
        return gx
    return g


def compile(fn):
    """As is: Keras' PyTorch backend runs eagerly."""
    return fn


def bind(model):
    """(state, apply) with the weights frozen: requires_grad off, so only the input's gradient is
    computed (a third less work than a training step's backward pass). apply runs the network
    natively (module docstring) where it converts, else the Keras model."""
    model.trainable = False
    net = native(model)
    if net is None:
        return (), lambda state, x: model(x)
    return (), lambda state, x: net(x)


def native(model):
    """The Keras `model` as a torchnet.Network on Keras' device (compiled as compile_mode says),
    or None where it does not convert or DREAMVID_TORCH_NATIVE=0 (the reason logged)."""
    if os.environ.get("DREAMVID_TORCH_NATIVE", "1") == "0":
        return None
    where = torch.device(device())
    try:
        net = torchnet.convert(model, where)
    except torchnet.NotConvertible as exc:
        log.info("PyTorch: %s; this network runs through Keras (slower)", exc)
        return None
    return torchnet.compiled(net, torchnet.compile_mode(where.type))


def device() -> str:
    """The torch device Keras computes on ("cpu", "cuda", "mps")."""
    from keras.src.backend.torch.core import get_device

    return str(get_device())


def gpu_name() -> str | None:
    from keras.src.backend.torch.core import get_device

    if str(get_device()).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    if on_mps():
        return "Apple GPU (MPS)"
    return None


def on_mps() -> bool:
    """Whether Keras computes on PyTorch's Apple GPU (MPS): precision is measured there."""
    return device().startswith("mps")


def gpu_capability() -> tuple[int, int] | None:
    return torch.cuda.get_device_capability(0) if gpu_name() and not on_mps() else None


def placement(device: str):
    return nullcontext()  # fixed when Keras starts (KERAS_TORCH_DEVICE, set by backends.configure)


def loop_count(n: int) -> int:
    """A Python int: the eager loop runs `range(n)`, which must not wait on a device value."""
    return int(n)


def to_numpy(x):
    """float32 for any floating dtype (NumPy has no bfloat16); integers as they are."""
    x = x.detach()
    return (x.float() if x.is_floating_point() else x).cpu().numpy()


def setup() -> None:
    """TF32 tensor cores for float32 convolutions and matrix products (measured 3.6x faster than
    strict float32 for this loop on an H200), and cuDNN's autotuner (one size per octave)."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
