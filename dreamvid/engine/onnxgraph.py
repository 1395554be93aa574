"""ONNX graphs (`.onnx` files, and every PyTorch network once `torchmodels` has exported it) read
with the `onnx` package and rebuilt as Keras functional models, channels-last, so they run on
every Keras backend, in mixed precision and under XLA like any Keras network (and natively on
PyTorch through `backends.torchnet`). No image loops, no PyTorch here: `onnx` (imported when a
graph is read), NumPy, `keras` and `keras.ops`.

Converting (NCHW to NHWC): Conv (explicit pads, SAME_UPPER or VALID, strides, dilations, groups;
depthwise as DepthwiseConv2D), Relu, Clip from 0 (ReLU6), MaxPool and AveragePool (pads,
ceil_mode, count_include_pad: `PaddedPooling2D` where Keras' own pooling differs), Concat on the
channels, Add and Sum, LRN (graphdef's layer), BatchNormalization (inference), Identity and
Dropout. Other ops (the classifier's GlobalAveragePool, Flatten, Gemm) are not translated: the
layers behind them cannot be built, and `why_not` names the op. Dreaming needs only the
convolutional trunk.

Layers: a graph exported from PyTorch names its nodes by module scope ('/inception4c/Concat',
'/features/features.3/Relu'): each module's output (the last node of its scope) is a layer named
after the module, its PyTorch name with '_' for '.' ('inception4c', 'features_3': Keras' PyTorch
backend takes no '.' in a name), under the shortest module's name where several end on one node;
PyTorch's own names ('features.3') and the other modules' are `synonyms`. Another graph's layers
are its nodes, named after the node (or its output), any character outside letters, digits, '_'
and '-' written '_'.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import ops

from dreamvid.core.errors import ModelError, reason
from dreamvid.engine.graphdef import LocalResponseNormalization

INSTALL = "pip install 'dreamvid[onnx]'"
META = "dreamvid."  # metadata keys dreamvid writes into its exports: the input's mean and std, the default layer
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # an ONNX file's normalisation unless its metadata says
TRANSLATED = frozenset({"Conv", "Relu", "Clip", "MaxPool", "AveragePool", "Concat", "Add", "Sum", "LRN",
                        "BatchNormalization", "Identity", "Dropout"})
_PASS = frozenset({"Identity", "Dropout"})  # no layer of their own: the tensor passes through
_WEIGHTS = {"Conv": 1, "BatchNormalization": 1, "Clip": 1}  # data inputs before the constant ones


@dataclass
class Op:
    """One ONNX node: its name, op type, input and output tensor names ('' for an absent optional
    input), attributes decoded to Python values (ints, floats, bytes, lists, arrays), and its
    place in the graph's (topological) order."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict
    index: int


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ModelError(f"reading ONNX networks needs the onnx package: {INSTALL}") from None
    return onnx, numpy_helper


def read(source: str | Path | bytes, label: str = "") -> OnnxGraph:
    """The graph of an ONNX model (a path, or its serialised bytes); ModelError naming `label`
    (the file) when it is not one."""
    onnx, numpy_helper = _onnx()
    label = label or (f"'{source}'" if not isinstance(source, bytes) else "this ONNX model")
    try:
        model = onnx.load_model_from_string(source) if isinstance(source, bytes) else onnx.load(str(source))
    except FileNotFoundError:
        raise ModelError(f"model file {label} does not exist; check the path") from None
    except Exception as exc:  # protobuf's DecodeError, a missing external-data file, ...
        raise ModelError(f"{label} is not an ONNX model ({reason(exc)}); pass a .onnx file "
                         f"(torch.onnx.export writes one) or a TorchScript .pt") from None
    graph = model.graph
    if not graph.node or not graph.input:
        raise ModelError(f"{label} is not an ONNX model (no nodes or no input); pass a .onnx file "
                         f"(torch.onnx.export writes one) or a TorchScript .pt")
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = []
    for k, node in enumerate(graph.node):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Constant" and "value" in attrs:
            consts[node.output[0]] = numpy_helper.to_array(attrs["value"])
            continue
        nodes.append(Op(node.name, node.op_type, list(node.input), list(node.output), attrs, k))
    inputs = [i for i in graph.input if i.name not in consts]
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim] if inputs else []
    if len(dims) == 4 and dims[1] not in (0, 3):  # 0: a dimension without a fixed size
        raise ModelError(f"{label} takes images of {dims[1]} channel{'s' * (dims[1] != 1)} (NCHW input {dims}), "
                         f"not RGB; "
                         f"export a network whose input is (N, 3, H, W)")
    inputs = [i.name for i in inputs]
    return OnnxGraph(nodes, consts, inputs, label, {p.key: p.value for p in model.metadata_props})


def with_metadata(data: bytes, mean, std, default_layer: str = "") -> bytes:
    """The ONNX model `data` with dreamvid's metadata: the input's normalisation (RGB in [0, 1],
    minus `mean`, over `std`) and the layer to dream by default."""
    onnx, _ = _onnx()
    model = onnx.load_model_from_string(data)
    values = {"mean": ",".join(f"{v:g}" for v in mean), "std": ",".join(f"{v:g}" for v in std),
              "default_layer": default_layer}
    for key, value in values.items():
        if value:
            entry = model.metadata_props.add()
            entry.key, entry.value = META + key, value
    return model.SerializeToString()




# --- pooling as PyTorch (and ONNX) define it ----------------------------------------------------

def pooled_size(size: int, kernel: int, stride: int, before: int, after: int, ceil: bool) -> int:
    """Output length of a pooling along one axis: floor or ceil of (size + pads - kernel) / stride,
    plus 1; in ceil mode a last window that would start past the input and its leading padding
    is dropped (PyTorch's rule, which ONNX follows)."""
    span = size + before + after - kernel
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + before:
        out -= 1
    return out


@keras.saving.register_keras_serializable(package="dreamvid")
class PaddedPooling2D(keras.layers.Layer):
    """Max or average pooling with explicit padding (top, left, bottom, right), ceil mode and
    count_include_pad, as PyTorch computes it, on channels-last input: the max pads with -inf;
    the average divides by the cells of each window inside the input (and inside the padding with
    `count_include_pad`), never by the cells ceil mode adds past it."""

    def __init__(self, mode: str = "max", pool_size=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0),
                 ceil_mode: bool = False, count_include_pad: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.mode = mode
        self.pool_size = tuple(int(v) for v in pool_size)
        self.strides = tuple(int(v) for v in strides)
        self.pads = tuple(int(v) for v in pads)
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def _sizes(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(out_h, out_w, extra bottom, extra right): the padding ceil mode adds past the pads."""
        t, left, b, r = self.pads
        (kh, kw), (sh, sw) = self.pool_size, self.strides
        oh = pooled_size(h, kh, sh, t, b, self.ceil_mode)
        ow = pooled_size(w, kw, sw, left, r, self.ceil_mode)
        return oh, ow, max((oh - 1) * sh + kh - (h + t + b), 0), max((ow - 1) * sw + kw - (w + left + r), 0)

    def call(self, x):
        h, w = x.shape[1], x.shape[2]  # static: the dream compiles one graph per image size
        t, left, b, r = self.pads
        oh, ow, eh, ew = self._sizes(h, w)
        spec = [[0, 0], [t, b + eh], [left, r + ew], [0, 0]]
        if self.mode == "max":
            padded = ops.pad(x, spec, constant_values=float("-inf"))
            return ops.max_pool(padded, self.pool_size, self.strides, "valid")[:, :oh, :ow]
        total = ops.average_pool(ops.pad(x, spec), self.pool_size, self.strides, "valid")[:, :oh, :ow]
        # the divisor, known from the sizes alone: the share of each window the average counts
        inside = np.ones((1, h + t + b, w + left + r, 1), np.float32) if self.count_include_pad else \
            np.pad(np.ones((1, h, w, 1), np.float32), [[0, 0], [t, b], [left, r], [0, 0]])
        inside = np.pad(inside, [[0, 0], [0, eh], [0, ew], [0, 0]])
        share = np.lib.stride_tricks.sliding_window_view(inside[0, :, :, 0], self.pool_size)
        share = share[::self.strides[0], ::self.strides[1]][:oh, :ow].mean(axis=(2, 3))
        return total / ops.cast(share[None, :, :, None], total.dtype)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        if h is None or w is None:
            return (n, h, w, c)
        oh, ow, _, _ = self._sizes(h, w)
        return (n, oh, ow, c)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "pool_size": self.pool_size, "strides": self.strides,
                "pads": self.pads, "ceil_mode": self.ceil_mode, "count_include_pad": self.count_include_pad}


# --- names --------------------------------------------------------------------------------------

def _clean(name: str) -> str:
    """A layer name Keras takes on every backend (no '/', no '.')."""
    return re.sub(r"[^A-Za-z0-9_\-]", "_", name).strip("_") or "node"


def module_scopes(node_name: str) -> list[str]:
    """'/inception3a/branch2/branch2.0/conv/Conv' -> ['inception3a', 'inception3a.branch2',
    'inception3a.branch2.0', 'inception3a.branch2.0.conv']: the PyTorch modules a node of an
    exported graph belongs to, outermost first (the exporter writes a Sequential's child 'branch2.0'
    or '0' under 'branch2'; both read '0')."""
    parts = node_name.strip("/").split("/")[:-1]
    out, path, previous = [], [], ""
    for segment in parts:
        short = segment[len(previous) + 1:] if previous and segment.startswith(previous + ".") else segment
        previous = segment
        path.append(short)
        out.append(".".join(path))
    return out


# --- the graph ----------------------------------------------------------------------------------

class OnnxGraph:
    """A parsed ONNX graph: its ops in order, constants, the image input; its dreamable layers
    (`layer_names`, `synonyms`, `default_layer`), what keeps another layer from being built
    (`why_not`), and its conversion to a Keras model (`to_keras`)."""

    def __init__(self, nodes: Sequence[Op], consts: dict, inputs: Sequence[str], source: str = "",
                 metadata: dict | None = None):
        self.ops = list(nodes)
        self.metadata = metadata or {}
        self.consts = consts
        self.source = source or "this ONNX model"
        if not inputs:
            raise ModelError(f"{self.source} has no image input (every input is a constant); "
                             "export it with the image as its input")
        self.input_name, self.other_inputs = inputs[0], set(inputs[1:])
        self.producer = {out: op for op in self.ops for out in op.outputs if out}
        self.readers: dict[str, int] = {}
        for op in self.ops:
            for ref in op.inputs:
                self.readers[ref] = self.readers.get(ref, 0) + 1
        self._blocked = self._blockers()
        self._depth: dict[str, int] = {}  # a module's layer -> how deep the module sits (0: the network's own)
        self._layers, self.synonyms = self._find_layers()
        self.default_layer = self._default()

    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) of the input, RGB in [0, 1]: the metadata's, else ImageNet's (torchvision's)."""
        try:
            mean, std = (tuple(float(v) for v in self.metadata[META + k].split(",")) for k in ("mean", "std"))
        except (KeyError, ValueError):
            return IMAGENET
        return (mean, std) if len(mean) == len(std) == 3 and all(std) else IMAGENET

    # --- what can be translated ---

    def const(self, ref: str) -> np.ndarray | None:
        """The constant a tensor holds (through Identity nodes), or None when it is computed."""
        while ref not in self.consts and ref in self.producer and self.producer[ref].op == "Identity":
            ref = self.producer[ref].inputs[0]
        return self.consts.get(ref)

    def data_inputs(self, op: Op) -> list[str]:
        """The inputs of `op` that carry image activations (not its weights)."""
        if op.op not in TRANSLATED:
            return []  # an untranslated op is where the search stops: it is the obstacle
        refs = [r for r in op.inputs if r]
        return refs[:_WEIGHTS.get(op.op, len(refs))]

    def _reason(self, op: Op) -> str | None:
        """Why `op` cannot become part of the Keras model (None when it can)."""
        kind, a = op.op, op.attrs
        if kind not in TRANSLATED:
            return (f"a {kind} op, which the ONNX converter does not translate "
                    f"(it translates {', '.join(sorted(TRANSLATED))})")
        for ref in self.data_inputs(op):
            if ref in self.other_inputs:
                return f"a {kind} op reading a second input '{ref}' (the image input is '{self.input_name}')"
            if ref != self.input_name and ref not in self.producer:
                return (f"a {kind} op of a constant '{ref}', not of the image "
                        "(a bias or a scale the converter does not translate)")
        if any(self.readers.get(out, 0) for out in op.outputs[1:]):
            return f"a {kind} op whose second output is read (training mode, or pooling indices)"
        if kind == "Conv":
            w = self.const(op.inputs[1]) if len(op.inputs) > 1 else None
            b = self.const(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else np.zeros(1)
            if w is None or b is None:
                return "a Conv op whose weights are not constants"
        if kind in ("Conv", "MaxPool", "AveragePool"):
            size = w.ndim - 2 if kind == "Conv" else len(a.get("kernel_shape", ()))
            if size != 2:
                return f"a {size}D {kind} op (the converter handles 2D images only)"
            pad = _text(a.get("auto_pad", b"NOTSET"))
            if pad not in ("NOTSET", "VALID", "SAME_UPPER"):
                return f"a {kind} op with auto_pad {pad} (the converter handles NOTSET, VALID and SAME_UPPER)"
            if pad == "SAME_UPPER" and (a.get("ceil_mode") or (kind == "AveragePool" and a.get("count_include_pad"))):
                return f"a {kind} op with auto_pad SAME_UPPER and ceil_mode or count_include_pad"
        if kind == "MaxPool" and any(d != 1 for d in a.get("dilations", [1, 1])):
            return "a MaxPool op with dilations (the converter pools without)"
        if kind == "Concat" and a.get("axis") not in (1, -3):
            return f"a Concat op along axis {a.get('axis')} (the converter joins channels only)"
        if kind == "LRN" and int(a.get("size", 0)) % 2 == 0:
            return f"an LRN op of even size {a.get('size')} (the converter handles odd windows)"
        if kind == "BatchNormalization" and any(self.const(r) is None for r in op.inputs[1:5]):
            return "a BatchNormalization op whose statistics are not constants"
        if kind == "Clip":
            lo = self.const(op.inputs[1]) if len(op.inputs) > 1 and op.inputs[1] else a.get("min")
            if lo is None or float(np.asarray(lo)) != 0.0:
                return "a Clip op whose lower bound is not 0 (the converter translates ReLU and ReLU6)"
        return None

    def _blockers(self) -> dict[str, tuple[Op, str] | None]:
        """Every tensor -> the op furthest upstream on its path (its own op last) that cannot be
        translated, with the reason, or None: one pass in the graph's order (ONNX's nodes are
        sorted: each after the nodes it reads)."""
        found: dict[str, tuple[Op, str] | None] = {}
        for op in self.ops:
            upstream = next((found[r] for r in self.data_inputs(op) if found.get(r)), None)
            reason = None if upstream else self._reason(op)
            for out in op.outputs:
                found[out] = upstream or ((op, reason) if reason else None)
        return found

    def blocker(self, tensor: str) -> tuple[Op, str] | None:
        """The op furthest upstream that `tensor` depends on (its own included) and that cannot be
        translated, with the reason; None when the whole path from the input can be."""
        return self._blocked.get(tensor)

    def why_not(self, name: str) -> str | None:
        """One line saying which op keeps layer `name` from being built, or None (a layer the
        graph has not at all is for the caller to say)."""
        scopes = self._all_scopes()
        tensor = scopes.get(name) or {_clean(k): t for k, t in scopes.items()}.get(name) or self._tensor_named(name)
        found = self.blocker(tensor) if tensor else None
        if found is None:
            return None
        op, reason = found
        where = "is" if op.outputs[0] == tensor else f"depends on '{op.name or op.outputs[0]}',"
        return f"layer '{name}' {where} {reason}"

    # --- layers ---

    def _torch_style(self) -> bool:
        return sum(op.name.startswith("/") for op in self.ops) * 2 > len(self.ops)

    def _all_scopes(self) -> dict[str, str]:
        """Every module scope (PyTorch's name, 'features.3') -> the tensor its last op computes."""
        if not self._torch_style():
            return {}
        last: dict[str, Op] = {}
        for op in self.ops:
            for scope in module_scopes(op.name):
                last[scope] = op
        return {scope: op.outputs[0] for scope, op in last.items()}

    def _tensor_named(self, name: str) -> str | None:
        for op in self.ops:
            if _clean(op.name or op.outputs[0]) == name:
                return op.outputs[0]
        return None

    def _dreamable(self, op: Op) -> bool:
        if op.op in _PASS or (op.op in ("Concat", "Sum") and len(self.data_inputs(op)) == 1):
            return False
        return self.blocker(op.outputs[0]) is None

    def _find_layers(self) -> tuple[dict[str, str], dict[str, str]]:
        """(layer name -> tensor, in network order; other name -> layer name)."""
        layers: dict[str, str] = {}
        synonyms: dict[str, str] = {}
        if self._torch_style():
            by_tensor: dict[str, list[str]] = {}
            for scope, tensor in self._all_scopes().items():
                by_tensor.setdefault(tensor, []).append(scope)
            for op in self.ops:
                scopes = sorted(by_tensor.get(op.outputs[0], ()), key=lambda s: (s.count("."), s))
                if scopes and self._dreamable(op):
                    name = _clean(scopes[0])
                    layers[name] = op.outputs[0]
                    self._depth[name] = scopes[0].count(".")
                    synonyms.update({other: name for s in scopes for other in (s, _clean(s)) if other != name})
        else:
            for op in self.ops:
                if self._dreamable(op):
                    name = _clean(op.name or op.outputs[0])
                    while name in layers:
                        name += "_"
                    layers[name] = op.outputs[0]
        if not layers:
            first = next((f for op in self.ops if (f := self.blocker(op.outputs[0]))), None)
            why = f": its first op '{first[0].name or first[0].outputs[0]}' is {first[1]}" if first else ""
            raise ModelError(f"{self.source} has no layer to dream{why}; export the network's convolutional part")
        return layers, synonyms

    def layer_names(self) -> list[str]:
        return list(self._layers)

    def _default(self) -> str:
        """The metadata's default layer; else two thirds into the outermost level with at least 4
        layers (a network's blocks), its poolings left out (a pooling dreams as the layer before it)."""
        wanted = self.metadata.get(META + "default_layer", "")
        if self.synonyms.get(wanted, wanted) in self._layers:
            return self.synonyms.get(wanted, wanted)
        names = [n for n, t in self._layers.items() if self.producer[t].op not in ("MaxPool", "AveragePool")]
        names = names or self.layer_names()
        for depth in range(max(self._depth.get(n, 0) for n in names) + 1):
            level = [n for n in names if self._depth.get(n, 0) == depth]
            if len(level) >= 4:
                return level[len(level) * 2 // 3]
        return names[len(names) * 2 // 3]

    # --- building ---

    def _postorder(self, roots: Sequence[str]) -> list[str]:
        """The tensors `roots` need, each after the tensors it is computed from (iteratively)."""
        order, done, stack = [], set(), [(r, False) for r in reversed(roots)]
        while stack:
            ref, expanded = stack.pop()
            if ref in done:
                continue
            op = self.producer.get(ref)
            if expanded or op is None:
                done.add(ref)
                order.append(ref)
                continue
            stack.append((ref, True))
            stack.extend((r, False) for r in reversed(self.data_inputs(op)) if r not in done)
        return order

    def to_keras(self, names: Sequence[str], name: str = "onnx"):
        """A functional keras.Model from an (H, W, 3) image input to the activations of the layers
        `names`, each a Keras layer of that name; ModelError when one cannot be built."""
        tensors_of = {**self._layers, **{s: self._layers[t] for s, t in self.synonyms.items()}}
        for n in names:
            if n not in tensors_of:
                raise ModelError(f"{self.source} has no layer '{n}'; pass one of its layer names")
        layer_of = {t: n for n, t in self._layers.items()}
        used = set(self._layers)
        image = keras.Input((None, None, 3), name=_unique(_clean(self.input_name), used))
        built = {self.input_name: image}
        for ref in self._postorder([tensors_of[n] for n in names]):
            if ref not in built:
                op = self.producer[ref]
                label = layer_of.get(ref) or _unique(_clean(op.name or ref), used)
                try:
                    built[ref] = _build(self, op, [built[r] for r in self.data_inputs(op)], label, used)
                except (ValueError, TypeError) as exc:  # shapes that do not fit (a weight for other channels)
                    raise ModelError(f"{self.source}: cannot rebuild its {op.op} op '{op.name or ref}' "
                                     f"({reason(exc)}); "
                                     f"dream a layer before it") from None
        return keras.Model(image, [built[tensors_of[n]] for n in names], name=_clean(name))

# --- building ---------------------------------------------------------------------------------

def _build(graph: OnnxGraph, op: Op, xs: list, label: str, used: set[str]):
    """The Keras tensor of `op`'s first output, its data inputs `xs` already built."""
    kind, a = op.op, op.attrs
    if kind in _PASS or (kind in ("Concat", "Sum") and len(xs) == 1):
        return xs[0]
    if kind == "Conv":
        return _conv(graph, op, xs[0], label, used)
    if kind == "Relu":
        return keras.layers.ReLU(name=label)(xs[0])
    if kind == "Clip":
        hi = graph.const(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else a.get("max")
        top = float(np.asarray(hi)) if hi is not None and np.isfinite(np.asarray(hi)) else None
        return keras.layers.ReLU(max_value=top, name=label)(xs[0])
    if kind in ("MaxPool", "AveragePool"):
        return _pool(kind, a, xs[0], label)
    if kind == "Concat":
        return keras.layers.Concatenate(axis=-1, name=label)(xs)
    if kind in ("Add", "Sum"):
        return keras.layers.Add(name=label)(xs)
    if kind == "LRN":  # ONNX divides alpha by the window's size; TensorFlow's LRN does not
        size = int(a["size"])
        return LocalResponseNormalization(depth_radius=(size - 1) // 2, bias=float(a.get("bias", 1.0)),
                                          alpha=float(a.get("alpha", 1e-4)) / size, beta=float(a.get("beta", 0.75)),
                                          name=label)(xs[0])
    if kind == "BatchNormalization":
        gamma, beta, mean, var = (graph.const(r).astype(np.float32) for r in op.inputs[1:5])
        bn = keras.layers.BatchNormalization(epsilon=float(a.get("epsilon", 1e-5)), name=label)
        y = bn(xs[0])
        bn.set_weights([gamma, beta, mean, var])
        return y
    # unreachable: to_keras builds only layers whose path blocker() found clear
    raise ModelError(f"op '{op.name}' is a {kind} op, which the ONNX converter does not translate")


def _conv(graph: OnnxGraph, op: Op, x, label: str, used: set[str]):
    """A Conv as Conv2D (grouped too) or DepthwiseConv2D, after a ZeroPadding2D where "same" and
    "valid" do not say its pads."""
    a = op.attrs
    w = graph.const(op.inputs[1]).astype(np.float32)  # (out, in / groups, kh, kw)
    bias = graph.const(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
    out, _, kh, kw = w.shape
    strides, dilation = tuple(a.get("strides", [1, 1])), tuple(a.get("dilations", [1, 1]))
    padding, pads = _padding(a, (kh, kw), strides, dilation)
    if pads is not None:
        x = keras.layers.ZeroPadding2D(((pads[0], pads[2]), (pads[1], pads[3])), name=_unique(label + "_pad", used))(x)
    groups, cin = int(a.get("group", 1)), int(x.shape[-1])
    common = dict(strides=strides, padding=padding, dilation_rate=dilation, use_bias=bias is not None, name=label,
                  # zeros, overwritten below: a random initializer would compile a sampler per
                  # kernel shape on JAX (seconds each)
                  bias_initializer="zeros")
    if groups > 1 and groups == cin:  # depthwise: output channel c * multiplier + m
        layer = keras.layers.DepthwiseConv2D((kh, kw), depth_multiplier=out // cin, depthwise_initializer="zeros",
                                             **common)
        kernel = w.reshape(cin, out // cin, kh, kw).transpose(2, 3, 0, 1)
    else:
        layer = keras.layers.Conv2D(out, (kh, kw), groups=groups, kernel_initializer="zeros", **common)
        kernel = w.transpose(2, 3, 1, 0)  # (kh, kw, in / groups, out)
    y = layer(x)
    layer.set_weights([kernel] + ([bias.astype(np.float32)] if bias is not None else []))
    return y


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _unique(name: str, used: set[str]) -> str:
    while name in used:
        name += "_"
    used.add(name)
    return name


def _padding(a: dict, kernel, strides, dilation=(1, 1)) -> tuple[str, tuple | None]:
    """(Keras padding, explicit pads (top, left, bottom, right) to add first, or None): "same"
    where TensorFlow's same equals the pads (stride 1, an odd window, symmetric pads)."""
    auto = _text(a.get("auto_pad", b"NOTSET"))
    if auto in ("VALID", "SAME_UPPER"):
        return ("valid" if auto == "VALID" else "same"), None
    t, left, b, r = (list(a.get("pads", [])) or [0, 0, 0, 0])
    if not any((t, left, b, r)):
        return "valid", None
    half = [(k - 1) * d // 2 for k, d in zip(kernel, dilation)]
    if tuple(strides) == (1, 1) and all((k - 1) * d % 2 == 0 for k, d in zip(kernel, dilation)) and \
            (t, b) == (half[0], half[0]) and (left, r) == (half[1], half[1]):
        return "same", None
    return "valid", (t, left, b, r)


def _pool(kind: str, a: dict, x, label: str):
    size, strides = tuple(a["kernel_shape"]), tuple(a.get("strides", [1, 1]))
    keras_pool = keras.layers.MaxPooling2D if kind == "MaxPool" else keras.layers.AveragePooling2D
    auto = _text(a.get("auto_pad", b"NOTSET"))
    ceil, include = bool(a.get("ceil_mode", 0)), bool(a.get("count_include_pad", 0))
    if auto in ("VALID", "SAME_UPPER"):
        return keras_pool(size, strides, padding="valid" if auto == "VALID" else "same", name=label)(x)
    padding, pads = _padding(a, size, strides)
    if pads is None and padding == "valid" and not ceil:
        return keras_pool(size, strides, padding="valid", name=label)(x)
    if pads is None and padding == "same" and (kind == "MaxPool" or not include):
        return keras_pool(size, strides, padding="same", name=label)(x)  # stride 1: ceil mode changes nothing
    return PaddedPooling2D("max" if kind == "MaxPool" else "avg", size, strides, pads or (0, 0, 0, 0), ceil, include,
                           name=label)(x)
