"""The network as PyTorch modules: a Keras model's layers rebuilt as torch ops, the same weights.

Keras 3 runs a convolution on PyTorch by transposing its input and kernel to channels-first and
back on every call (keras-team/keras #18457), and each layer call costs Python time of its own:
a dream through Keras' PyTorch backend ran at ~0.6x of the same network written in PyTorch.
`convert(keras_model)` walks the functional graph of the model the Dreamer dreams
(`DreamModel.network`) and rebuilds each layer as torch ops on NCHW tensors kept channels-last
in memory (the Dreamer's NHWC tensor permuted: a view, no copy), the weights copied once and
frozen (no gradient is ever taken for them). The precision the Keras layers compute in (their
mixed policy: `--precision`) becomes an autocast region around the forward pass; a layer
graphdef's LRN is computed in float32, as its Keras layer is.

Layers: InputLayer, Conv2D, DepthwiseConv2D, SeparableConv2D, BatchNormalization (inference),
ZeroPadding2D, MaxPooling2D, AveragePooling2D, Activation, ReLU, Concatenate and Add on the
channel axis, `dreamvid.engine.graphdef`'s LocalResponseNormalization and `onnxgraph`'s
PaddedPooling2D: googlenet, vgg16-hed, most Keras applications and the PyTorch and ONNX
networks. Any other layer raises NotConvertible naming it; the backend then runs the Keras model
as it is (`backends.torch.bind`).

`compiled(module, mode)` wraps the forward pass in `torch.compile` (one graph per input size,
never the gradient's own call: autograd runs outside it); whether it does is `compile_mode()`:
DREAMVID_TORCH_COMPILE = off | on | reduce-overhead (CUDA graphs) | auto (on a CUDA GPU where
Triton is installed, off on a CPU, where it measured no faster: see README).
"""

from __future__ import annotations

import importlib.util
import os

import torch
import torch.nn.functional as F

from dreamvid.core.errors import ConfigError

COMPILE_MODES = ("auto", "off", "on", "reduce-overhead")
COMPILE_BACKEND = "inductor"  # torch.compile's backend (tests count compiles with one of their own)
_ACTIVATIONS = {"linear": None, "relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
                "swish": F.silu, "silu": F.silu, "relu6": lambda x: F.hardtanh(x, 0.0, 6.0), "elu": F.elu,
                "gelu": F.gelu}
_DTYPES = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


class NotConvertible(ValueError):
    """A layer (or a use of one) the converter does not rebuild; the message names it."""


# --- padding as TensorFlow (and Keras) define it -------------------------------------------------

def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's "same": the output is ceil(size / stride) long, the padding split with the
    odd pixel after (what Keras' layers do on every backend)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pads(x, kernel, strides, dilation=(1, 1)):
    """(left, right, top, bottom) of "same" for NCHW x, as F.pad takes them."""
    top, bottom = same_padding(x.shape[2], kernel[0], strides[0], dilation[0])
    left, right = same_padding(x.shape[3], kernel[1], strides[1], dilation[1])
    return left, right, top, bottom


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _activation(layer, key: str = "activation"):
    fn = getattr(layer, key, None)
    name = getattr(fn, "__name__", "linear") if fn is not None else "linear"
    if name not in _ACTIVATIONS:
        raise NotConvertible(f"layer '{layer.name}' has activation '{name}'")
    return _ACTIVATIONS[name]


class config:  # (lower case: it reads like the dict it stands for)
    """A layer's settings read from its attributes, as `config(layer)["strides"]`:
    Layer.get_config() imports TensorFlow where it is installed (Keras' serialisation), and
    the PyTorch path must not pay that."""

    def __init__(self, layer):
        self.layer = layer

    def __getitem__(self, key):
        return getattr(self.layer, key)

    def get(self, key, default=None):
        return getattr(self.layer, key, default)


def _weight(v) -> torch.Tensor:
    """A Keras variable's value as a float32 torch tensor of its own (frozen)."""
    import keras

    return torch.as_tensor(keras.ops.convert_to_numpy(v.value if hasattr(v, "value") else v)).float()


# --- the layers ----------------------------------------------------------------------------------

class Conv(torch.nn.Module):
    """Conv2D, DepthwiseConv2D (groups = channels) or SeparableConv2D (depthwise, then 1x1)."""

    def __init__(self, layer, kind: str):
        super().__init__()
        cfg = config(layer)
        self.name = layer.name
        self.strides, self.dilation = _pair(cfg["strides"]), _pair(cfg["dilation_rate"])
        self.same = cfg["padding"] == "same"
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise NotConvertible(f"layer '{layer.name}' is channels_first")
        self.pointwise = None
        if kind == "Conv2D":
            k = _weight(layer.kernel)  # (kh, kw, cin / groups, cout)
            self.groups = int(cfg.get("groups", 1))
            weight = k.permute(3, 2, 0, 1)
        else:
            k = _weight(layer.depthwise_kernel if kind == "SeparableConv2D" else layer.kernel)  # (kh, kw, cin, mult)
            kh, kw, cin, mult = k.shape
            self.groups = int(cin)
            weight = k.reshape(kh, kw, cin * mult).permute(2, 0, 1).unsqueeze(1)  # out c*mult+m
            if kind == "SeparableConv2D":
                self.pointwise = torch.nn.Parameter(_weight(layer.pointwise_kernel).permute(3, 2, 0, 1),
                                                    requires_grad=False)
        self.kernel = tuple(weight.shape[2:])
        self.weight = torch.nn.Parameter(weight.contiguous(memory_format=torch.channels_last), requires_grad=False)
        self.bias = torch.nn.Parameter(_weight(layer.bias), requires_grad=False) if cfg.get("use_bias") else None
        self.act = _activation(layer)

    def forward(self, x):
        padding = 0
        if self.same:
            left, right, top, bottom = _pads(x, self.kernel, self.strides, self.dilation)
            if left == right and top == bottom:
                padding = (top, left)
            else:
                x = F.pad(x, (left, right, top, bottom))
        if self.pointwise is None:
            y = F.conv2d(x, self.weight, self.bias, self.strides, padding, self.dilation, self.groups)
        else:
            y = F.conv2d(x, self.weight, None, self.strides, padding, self.dilation, self.groups)
            y = F.conv2d(y, self.pointwise, self.bias)
        return y if self.act is None else self.act(y)


class Pool(torch.nn.Module):
    """MaxPooling2D / AveragePooling2D; "same" as TensorFlow's: -inf padding for the max, and an
    average over the window's cells inside the image only."""

    def __init__(self, layer, kind: str):
        super().__init__()
        cfg = config(layer)
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise NotConvertible(f"layer '{layer.name}' is channels_first")
        self.size = _pair(cfg["pool_size"])
        self.strides = _pair(cfg["strides"] or cfg["pool_size"])
        self.same = cfg["padding"] == "same"
        self.max = kind == "MaxPooling2D"

    def forward(self, x):
        pads = _pads(x, self.size, self.strides) if self.same else (0, 0, 0, 0)
        left, right, top, bottom = pads
        symmetric = left == right and top == bottom and 2 * top <= self.size[0] and 2 * left <= self.size[1]
        if self.max:
            if symmetric:
                return F.max_pool2d(x, self.size, self.strides, (top, left))
            return F.max_pool2d(F.pad(x, pads, value=float("-inf")), self.size, self.strides)
        if symmetric:
            return F.avg_pool2d(x, self.size, self.strides, (top, left), count_include_pad=False)
        total = F.avg_pool2d(F.pad(x, pads), self.size, self.strides)
        ones = F.pad(torch.ones_like(x[:1, :1]), pads)
        return total / F.avg_pool2d(ones, self.size, self.strides)


class PaddedPool(torch.nn.Module):
    """onnxgraph's PaddedPooling2D (PyTorch's own pooling exported to ONNX: explicit pads, ceil
    mode, count_include_pad) as PyTorch's pooling, where the pads are symmetric and at most half
    the window, as PyTorch's modules make them."""

    def __init__(self, layer):
        super().__init__()
        top, left, bottom, right = layer.pads
        self.size, self.strides = tuple(layer.pool_size), tuple(layer.strides)
        if (top, left) != (bottom, right) or 2 * top > self.size[0] or 2 * left > self.size[1]:
            raise NotConvertible(f"layer '{layer.name}' pads {layer.pads} (top, left, bottom, right), "
                                 "which PyTorch's pooling does not")
        self.padding, self.ceil = (top, left), layer.ceil_mode
        self.include, self.max = layer.count_include_pad, layer.mode == "max"

    def forward(self, x):
        if self.max:
            return F.max_pool2d(x, self.size, self.strides, self.padding, ceil_mode=self.ceil)
        return F.avg_pool2d(x, self.size, self.strides, self.padding, ceil_mode=self.ceil,
                            count_include_pad=self.include)


class BatchNorm(torch.nn.Module):
    """BatchNormalization at inference, folded into one scale and shift per channel."""

    def __init__(self, layer):
        super().__init__()
        cfg = config(layer)
        if cfg["axis"] not in (-1, 3, [3], [-1]):  # (Keras keeps -1 as 3 once built)
            raise NotConvertible(f"layer '{layer.name}' normalises axis {cfg['axis']}")
        var, mean = _weight(layer.moving_variance), _weight(layer.moving_mean)
        gamma = _weight(layer.gamma) if cfg["scale"] else torch.ones_like(var)
        beta = _weight(layer.beta) if cfg["center"] else torch.zeros_like(var)
        scale = gamma / torch.sqrt(var + cfg["epsilon"])
        self.scale = torch.nn.Parameter(scale.reshape(1, -1, 1, 1), requires_grad=False)
        self.shift = torch.nn.Parameter((beta - mean * scale).reshape(1, -1, 1, 1), requires_grad=False)

    def forward(self, x):
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)


class Lrn(torch.nn.Module):
    """graphdef's LocalResponseNormalization (TensorFlow's LRN), in float32 as the Keras layer."""

    def __init__(self, layer):
        super().__init__()
        self.r, self.bias, self.alpha, self.beta = layer.depth_radius, layer.bias, layer.alpha, layer.beta

    def forward(self, x):
        x32 = x.float()
        sq = F.pad(x32.square(), (0, 0, 0, 0, self.r, self.r))  # NCHW: pad the channels
        c = x.shape[1]
        window = sq[:, 0:c]
        for k in range(1, 2 * self.r + 1):  # shifted slices added up, exactly as the Keras layer
            window = window + sq[:, k:k + c]
        return (x32 * torch.pow(self.bias + self.alpha * window, -self.beta)).to(x.dtype)


class Elementwise(torch.nn.Module):
    """Layers without weights: an activation, a padding, a concatenation or a sum."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


def _relu(layer):
    cfg = config(layer)
    if cfg.get("negative_slope", 0.0) or cfg.get("threshold", 0.0):
        raise NotConvertible(f"layer '{layer.name}' is a leaky or thresholded ReLU")
    top = cfg.get("max_value")
    return F.relu if top is None else (lambda x: F.hardtanh(x, 0.0, float(top)))


def _zero_padding(layer):
    (top, bottom), (left, right) = config(layer)["padding"]
    return lambda x: F.pad(x, (left, right, top, bottom))


def _channel_axis(layer):
    axis = config(layer)["axis"]
    if axis not in (-1, 3):  # (for an NHWC tensor)
        raise NotConvertible(f"layer '{layer.name}' joins along axis {axis}, not the channels")


def _add(*xs):
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


def _layer_module(layer) -> torch.nn.Module:
    kind = type(layer).__name__
    if kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D"):
        return Conv(layer, kind)
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return Pool(layer, kind)
    if kind == "PaddedPooling2D":
        return PaddedPool(layer)
    if kind == "BatchNormalization":
        return BatchNorm(layer)
    if kind == "LocalResponseNormalization":
        return Lrn(layer)
    if kind == "ReLU":
        return Elementwise(_relu(layer))
    if kind == "Activation":
        fn = _activation(layer)
        return Elementwise(fn if fn is not None else (lambda x: x))
    if kind == "ZeroPadding2D":
        return Elementwise(_zero_padding(layer))
    if kind == "Concatenate":
        _channel_axis(layer)
        return Elementwise(lambda *xs: torch.cat(xs, dim=1))
    if kind == "Add":
        return Elementwise(_add)
    raise NotConvertible(f"layer '{layer.name}' is a {kind}, which the PyTorch converter does not rebuild")


# --- the network ---------------------------------------------------------------------------------

class Network(torch.nn.Module):
    """A Keras functional model's graph as torch ops: NHWC in, [NHWC activations] out, as the
    Keras model (the tensors are views of channels-last NCHW ones). `dtype`: the autocast type
    the layers compute in (None: float32)."""

    def __init__(self, ops, plan, outputs, dtype):
        super().__init__()
        self.ops = torch.nn.ModuleList(ops)
        self.plan = plan  # per op: (its index in ops, input slots, output slot); slot 0 the input
        self.outputs = outputs
        self.dtype = dtype

    def run(self, x):
        values = {0: x.permute(0, 3, 1, 2)}  # NCHW shape, channels-last in memory: no copy
        for k, ins, out in self.plan:
            values[out] = self.ops[k](*[values[i] for i in ins])
        return [values[i].permute(0, 2, 3, 1) for i in self.outputs]

    def forward(self, x):
        if self.dtype is None:
            return self.run(x)
        with torch.autocast(x.device.type, dtype=self.dtype):
            return self.run(x)


def _compute_dtype(model):
    for layer in model.layers:
        policy = getattr(layer, "dtype_policy", None)
        name = getattr(policy, "compute_dtype", "float32")
        if type(layer).__name__ != "InputLayer" and name != "float32":
            if name not in _DTYPES:
                raise NotConvertible(f"layer '{layer.name}' computes in {name}")
            return _DTYPES[name]
    return None


def convert(model, device=None) -> Network:
    """The Keras functional `model` (one image input, 4D outputs) as a Network on `device`;
    NotConvertible where a layer or its use is not one the converter rebuilds."""
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 1 or not hasattr(model, "outputs"):
        raise NotConvertible(f"'{model.name}' is not a functional model with one input")
    slots = {id(inputs[0]): 0}
    modules: dict[int, int] = {}  # id(layer) -> index in ops (a layer called twice shares its weights)
    ops, plan = [], []

    def visit(tensor) -> int:
        """The slot of a Keras tensor, its producers planned first (iteratively: graphs are deep)."""
        stack = [tensor]
        while stack:
            t = stack[-1]
            if id(t) in slots:
                stack.pop()
                continue
            history = getattr(t, "_keras_history", None)
            if history is None or history.operation is None:
                raise NotConvertible(f"'{model.name}' has a tensor that no layer made")
            layer, node = history.operation, history.operation._inbound_nodes[history.node_index]
            if node.is_input:
                raise NotConvertible(f"'{model.name}' has a second input '{layer.name}'")
            missing = [x for x in node.input_tensors if id(x) not in slots]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            if len(node.outputs) != 1:
                raise NotConvertible(f"layer '{layer.name}' has {len(node.outputs)} outputs")
            given = sorted(k for k, v in node.arguments.kwargs.items() if v is not None)
            if given:
                raise NotConvertible(f"layer '{layer.name}' is called with {given}")
            if id(layer) not in modules:
                modules[id(layer)] = len(ops)
                ops.append(_layer_module(layer))
            slot = len(slots)
            plan.append((modules[id(layer)], [slots[id(x)] for x in node.input_tensors], slot))
            slots[id(t)] = slot
        return slots[id(tensor)]

    outputs = [visit(t) for t in model.outputs]
    net = Network(ops, plan, outputs, _compute_dtype(model))
    net.requires_grad_(False)
    net.eval()
    return net.to(device) if device is not None else net


# --- compiling -----------------------------------------------------------------------------------

def compile_mode(device_type: str) -> str:
    """off | on | reduce-overhead, from DREAMVID_TORCH_COMPILE (default auto: on for a CUDA GPU
    where Triton, which torch.compile's GPU code needs, is installed; off elsewhere)."""
    mode = os.environ.get("DREAMVID_TORCH_COMPILE", "auto").strip().lower() or "auto"
    mode = {"0": "off", "1": "on", "false": "off", "true": "on"}.get(mode, mode)
    if mode not in COMPILE_MODES:
        raise ConfigError(f"DREAMVID_TORCH_COMPILE={mode} is not one of {', '.join(COMPILE_MODES)}")
    if mode == "auto":
        return "on" if device_type == "cuda" and importlib.util.find_spec("triton") is not None else "off"
    return mode


def compiled(net: Network, mode: str, backend=None):
    """net's forward pass through torch.compile, one static graph per input size (each octave
    size compiles once; frames of a clip reuse them); `net` itself where mode is off."""
    if mode == "off":
        return net
    backend = backend or COMPILE_BACKEND
    options = {"backend": backend, "dynamic": False, "fullgraph": True}
    if mode == "reduce-overhead" and backend == "inductor":
        options["mode"] = "reduce-overhead"
    return torch.compile(net, **options)


__all__ = ["COMPILE_MODES", "Network", "NotConvertible", "compile_mode", "compiled", "convert", "same_padding"]
