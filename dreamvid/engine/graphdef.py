"""Frozen TensorFlow graphs (GraphDef `.pb` files, such as googlenet's inception5h) read without
TensorFlow and rebuilt as Keras functional models, so they run on every Keras backend, in mixed
precision and under XLA like any Keras network. No image loops, no TensorFlow import here:
only the standard library, NumPy, `keras` and `keras.ops`.

Reading: a minimal protobuf wire-format parser for the few messages a frozen graph uses,
GraphDef -> NodeDef -> AttrValue -> TensorProto / TensorShapeProto.

Converting: Placeholder (the image input), Const (weights), Identity, Conv2D (a following
BiasAdd is fused into it), Relu, Relu6, MaxPool, AvgPool, LRN, Concat, ConcatV2, Add and AddV2
become Keras layers named after their nodes. Other ops (the classifier heads' Reshape, MatMul,
Softmax) are not translated; the layers that depend on them cannot be built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
from keras import ops

from dreamvid.core.errors import ModelError

# --- protobuf wire format -----------------------------------------------------------------------

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


class _WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """The unsigned varint at `pos` and the position after it."""
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise _WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise _WireError("varint longer than 10 bytes")


def _signed(value: int) -> int:
    """A varint read as a two's-complement int64 (negative int32/int64 fields use 10 bytes)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _fields(buf: memoryview):
    """Yield (field number, wire type, value) for each field of one message: an int for a
    varint, a memoryview for a length-delimited field, 4 or 8 raw bytes for a fixed one."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _WireError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _BYTES:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise _WireError("length-delimited field runs past the end")
            value, pos = buf[pos:pos + size], pos + size
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if pos + size > end:
                raise _WireError("fixed-size field runs past the end")
            value, pos = bytes(buf[pos:pos + size]), pos + size
        else:  # 3 and 4 are the long-deprecated groups, 6 and 7 do not exist
            raise _WireError(f"wire type {wire}")
        yield number, wire, value


def _varints(wire: int, value) -> list[int]:
    """A repeated varint field's values from one occurrence, packed (proto3's default) or not."""
    if wire == _VARINT:
        return [value]
    out, pos = [], 0
    while pos < len(value):
        item, pos = _varint(value, pos)
        out.append(item)
    return out


def _fixed(wire: int, value, fmt: str) -> list:
    """A repeated float ('<f4') or double ('<f8') field's values from one occurrence, packed or not."""
    return [float(v) for v in np.frombuffer(bytes(value), fmt)]  # packed: many; fixed: one


# --- GraphDef messages --------------------------------------------------------------------------

# TensorFlow DataType enum -> NumPy dtype (little-endian, as tensor_content is stored)
_DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?",
           17: "<u2", 19: "<f2", 22: "<u4", 23: "<u8"}


@dataclass
class Node:
    """One NodeDef: its name, op type, inputs ('name', 'name:1' or '^control') and attrs
    decoded to Python values (int, float, bool, bytes, shape tuple, np.ndarray, or lists)."""

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)


def _shape(buf: memoryview) -> tuple[int, ...] | None:
    """TensorShapeProto -> dims (-1 where unknown), or None for an unknown rank."""
    dims = []
    for number, wire, value in _fields(buf):
        if number == 2 and wire == _BYTES:  # dim { size = 1 }
            size = 0
            for n, w, v in _fields(value):
                if n == 1 and w == _VARINT:
                    size = _signed(v)
            dims.append(size)
        elif number == 3 and wire == _VARINT and value:  # unknown_rank
            return None
    return tuple(dims)


def _tensor(buf: memoryview) -> np.ndarray:
    """TensorProto -> ndarray, from tensor_content or the typed *_val fields (a short value list
    is padded with its last value, as TensorFlow does for constant fills)."""
    dtype, shape, content, values = 1, (), None, []
    for number, wire, value in _fields(buf):
        if number == 1 and wire == _VARINT:
            dtype = value
        elif number == 2 and wire == _BYTES:
            shape = _shape(value) or ()
        elif number == 4 and wire == _BYTES:
            content = bytes(value)
        elif number == 5:  # float_val
            values += _fixed(wire, value, "<f4")
        elif number == 6:  # double_val
            values += _fixed(wire, value, "<f8")
        elif number in (7, 10, 11, 16, 17):  # int_val, int64_val, bool_val, uint32_val, uint64_val
            values += [_signed(v) for v in _varints(wire, value)]
        elif number == 13:  # half_val: the float16 bit patterns, as int32 varints
            values += list(np.array(_varints(wire, value), np.uint16).view(np.float16))
    if dtype not in _DTYPES:
        raise _WireError(f"tensor of DataType {dtype}, which has no NumPy equivalent here")
    np_dtype = np.dtype(_DTYPES[dtype])
    count = int(np.prod(shape, dtype=np.int64))
    if content is not None:
        return np.frombuffer(content, np_dtype).reshape(shape).copy()
    flat = np.zeros(count, np_dtype)
    if values:
        n = min(len(values), count)
        flat[:n] = np.array(values[:n]).astype(np_dtype)
        flat[n:] = flat[n - 1] if n else 0
    return flat.reshape(shape)


def _attr_list(buf: memoryview) -> list:
    """AttrValue.ListValue -> a Python list of whichever kind it holds."""
    out: list = []
    for number, wire, value in _fields(buf):
        if number == 2 and wire == _BYTES:
            out.append(bytes(value))
        elif number in (3, 6):  # i, type
            out += [_signed(v) for v in _varints(wire, value)]
        elif number == 4:
            out += [float(v) for v in _fixed(wire, value, "<f4")]
        elif number == 5:
            out += [bool(v) for v in _varints(wire, value)]
        elif number == 7 and wire == _BYTES:
            out.append(_shape(value))
        elif number == 8 and wire == _BYTES:
            out.append(_tensor(value))
    return out


def _attr(buf: memoryview):
    """AttrValue -> its one value (None for kinds the converter never reads: func, placeholder)."""
    result = None
    for number, wire, value in _fields(buf):
        if number == 1 and wire == _BYTES:
            result = _attr_list(value)
        elif number == 2 and wire == _BYTES:
            result = bytes(value)
        elif number in (3, 6) and wire == _VARINT:  # i, type
            result = _signed(value)
        elif number == 4 and wire == _FIXED32:
            result = float(np.frombuffer(value, "<f4")[0])
        elif number == 5 and wire == _VARINT:
            result = bool(value)
        elif number == 7 and wire == _BYTES:
            result = _shape(value)
        elif number == 8 and wire == _BYTES:
            result = _tensor(value)
    return result


def _node(buf: memoryview) -> Node:
    node = Node("", "")
    for number, wire, value in _fields(buf):
        if wire != _BYTES:
            continue
        if number == 1:
            node.name = bytes(value).decode()
        elif number == 2:
            node.op = bytes(value).decode()
        elif number == 3:
            node.inputs.append(bytes(value).decode())
        elif number == 5:  # map<string, AttrValue>: entries of key = 1, value = 2
            key, attr = "", None
            for n, w, v in _fields(value):
                if n == 1 and w == _BYTES:
                    key = bytes(v).decode()
                elif n == 2 and w == _BYTES:
                    attr = _attr(v)
            node.attrs[key] = attr
    return node


def parse_graph(data: bytes, source: str = "this file") -> list[Node]:
    """The nodes of a serialised GraphDef, in file order; ModelError when `data` is not one."""
    try:
        nodes = [_node(value) for number, wire, value in _fields(memoryview(data))
                 if number == 1 and wire == _BYTES]
    except (_WireError, ValueError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
        raise ModelError(f"{source} is not a frozen TensorFlow graph ({exc}); pass a .pb GraphDef file") from None
    if not nodes or any(not n.name or not n.op for n in nodes):
        raise ModelError(f"{source} is not a frozen TensorFlow graph (no nodes, or one without a name or op); "
                         "pass a .pb GraphDef file")
    return nodes


def read_graph(path: str | Path) -> Graph:
    """The frozen graph in the .pb file `path`; ModelError naming the file when it is not one."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read frozen graph '{path}' ({exc.strerror}); check the path") from None
    return Graph(parse_graph(data, f"'{path}'"), f"'{path}'")


# --- the LRN layer ------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="dreamvid")
class LocalResponseNormalization(keras.layers.Layer):
    """TensorFlow's LRN on channels-last input: x / (bias + alpha * sum of x^2 over the
    channels c - depth_radius .. c + depth_radius) ** beta, computed in float32."""

    def __init__(self, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1.0,
                 beta: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, x):
        # float32 even under a bfloat16/float16 policy: a sum of squares overflows float16 and
        # loses the window's small terms in bfloat16
        x32 = ops.cast(x, "float32")
        r = self.depth_radius
        channels = x.shape[-1] if x.shape[-1] is not None else ops.shape(x)[-1]
        padded = ops.pad(ops.square(x32), [[0, 0], [0, 0], [0, 0], [r, r]])
        # the window as 2r+1 shifted slices added up: exact, where a cumsum's differences would
        # cancel large partial sums
        window = padded[..., 0:channels]
        for k in range(1, 2 * r + 1):
            window = window + padded[..., k:k + channels]
        out = x32 * ops.power(self.bias + self.alpha * window, -self.beta)
        return ops.cast(out, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "depth_radius": self.depth_radius, "bias": self.bias,
                "alpha": self.alpha, "beta": self.beta}


# --- conversion ---------------------------------------------------------------------------------

TRANSLATED_OPS = frozenset({"Placeholder", "Const", "Identity", "Conv2D", "BiasAdd", "Relu", "Relu6",
                            "MaxPool", "AvgPool", "LRN", "Concat", "ConcatV2", "Add", "AddV2"})


def _source(name: str) -> tuple[str, int]:
    """An input reference 'node:k' -> ('node', k); 'node' is output 0."""
    node, _, index = name.partition(":")
    return node, int(index) if index.isdigit() else 0


def _text(value, default: str = "") -> str:
    return value.decode() if isinstance(value, bytes) else (value if isinstance(value, str) else default)


def _spatial(values, what: str) -> tuple[int, int] | str:
    """NHWC [1, h, w, 1] -> (h, w); a reason string when batch or channel is not 1."""
    values = list(values or [1, 1, 1, 1])
    if len(values) != 4 or values[0] != 1 or values[3] != 1:
        return f"{what} {values} (the converter handles spatial {what} only)"
    return int(values[1]), int(values[2])


class Graph:
    """A parsed frozen graph: its nodes by name (file order), the image input, and its
    conversion to a Keras model."""

    def __init__(self, nodes: Sequence[Node], source: str = ""):
        self.nodes = {n.name: n for n in nodes}
        self.consumers: dict[str, int] = {}  # node -> how many data inputs read it
        for n in nodes:
            for ref in n.inputs:
                if not ref.startswith("^"):
                    src = _source(ref)[0]
                    self.consumers[src] = self.consumers.get(src, 0) + 1
        placeholders = [n.name for n in nodes if n.op == "Placeholder"]
        if not placeholders:
            where = f"frozen graph {source}" if source else "this frozen graph"
            raise ModelError(f"{where} has no Placeholder input; export it with its image input as a placeholder")
        self.input_name = "input" if "input" in placeholders else placeholders[0]

    # --- what can be translated ---

    def _inputs(self, node: Node) -> list[str]:
        return [r for r in node.inputs if not r.startswith("^")]  # control edges carry no data

    def _const(self, ref: str) -> np.ndarray | None:
        """The value of a constant input (through Identity nodes), or None when it is computed."""
        name = _source(ref)[0]
        while name in self.nodes and self.nodes[name].op == "Identity":
            name = _source(self._inputs(self.nodes[name])[0])[0]
        node = self.nodes.get(name)
        return node.attrs.get("value") if node is not None and node.op == "Const" else None

    def _data_inputs(self, node: Node) -> list[str]:
        """The inputs of `node` that carry image activations (not its weights or axis)."""
        refs = self._inputs(node)
        if node.op in ("Conv2D", "BiasAdd"):
            return refs[:1]
        if node.op == "Concat":
            return refs[1:]
        if node.op == "ConcatV2":
            return refs[:-1]
        if node.op in ("Placeholder", "Const") or node.op not in TRANSLATED_OPS:
            return []  # an untranslated op is where the search stops: it is the obstacle
        return refs

    def _fusable_conv(self, node: Node) -> Node | None:
        """The Conv2D a BiasAdd can be fused into: its input, read by nothing else."""
        src = self.nodes.get(_source(self._inputs(node)[0])[0]) if self._inputs(node) else None
        if src is not None and src.op == "Conv2D" and self.consumers.get(src.name, 0) == 1:
            return src
        return None

    def _reason(self, node: Node) -> str | None:
        """Why `node` cannot become part of the Keras model (None when it can)."""
        op, refs, attrs = node.op, self._inputs(node), node.attrs
        if op not in TRANSLATED_OPS:
            return f"a {op} op, which the graph converter does not translate"
        if op == "Const":
            return "a constant (Const), not computed from the image"
        if op == "Placeholder" and node.name != self.input_name:
            return f"a second input (Placeholder; the image input is '{self.input_name}')"
        if any(_source(r)[1] for r in refs):
            return f"a {op} op reading a second output of a node, which the converter does not translate"
        if _text(attrs.get("data_format"), "NHWC") != "NHWC":
            return f"a {op} op in {_text(attrs.get('data_format'))} layout (the converter handles NHWC only)"
        if op in ("Conv2D", "MaxPool", "AvgPool") and _text(attrs.get("padding")) not in ("SAME", "VALID"):
            return f"a {op} op with padding {_text(attrs.get('padding'))} (the converter handles SAME and VALID)"
        if op == "Conv2D":
            kernel = self._const(refs[1]) if len(refs) == 2 else None
            if kernel is None or kernel.ndim != 4:
                return "a Conv2D op whose filter is not a constant"
            for key in ("strides", "dilations"):
                spatial = _spatial(attrs.get(key), key)
                if isinstance(spatial, str):
                    return f"a Conv2D op with {spatial}"
        if op == "BiasAdd":
            if self._fusable_conv(node) is None:
                return "a BiasAdd op that does not follow a Conv2D of its own (the converter fuses the two)"
            bias = self._const(refs[1]) if len(refs) == 2 else None
            if bias is None or bias.ndim != 1:
                return "a BiasAdd op whose bias is not a constant vector"
        if op in ("MaxPool", "AvgPool"):
            for key in ("ksize", "strides"):
                spatial = _spatial(attrs.get(key), key)
                if isinstance(spatial, str):
                    return f"a {op} op with {spatial}"
        if op in ("Concat", "ConcatV2"):
            axis = self._const(refs[0] if op == "Concat" else refs[-1]) if len(refs) >= 2 else None
            if axis is None or axis.size != 1:
                return f"a {op} op whose axis is not a constant"
        return None  # a Const among the data inputs (an Add of a constant) is flagged as that input

    def blocker(self, name: str) -> tuple[Node, str] | None:
        """The node furthest upstream that layer `name` depends on (itself included) and that
        cannot be translated, with the reason; None when the whole path from the input can be,
        or when the graph has no node `name`."""
        if name not in self.nodes:
            return None
        for current in self._postorder([name], fused=False):
            node = self.nodes.get(current)
            if node is None:
                return Node(current, "missing"), "a node missing from the graph file"
            reason = self._reason(node)
            if reason:
                return node, reason
        return None

    def why_not(self, name: str) -> str | None:
        """One line saying which node keeps layer `name` from being built, or None."""
        found = self.blocker(name)
        if found is None:
            return None
        node, reason = found
        where = "is" if node.name == name else f"depends on '{node.name}',"
        return f"layer '{name}' {where} {reason}"

    # --- building ---

    def to_keras(self, outputs: Sequence[str], name: str = "graph"):
        """A functional keras.Model from an (H, W, 3) image input to the activations of the
        nodes `outputs`, each a layer named after its node ('/' becomes '_'); ModelError when
        one of them cannot be built."""
        for out in outputs:
            if out not in self.nodes:
                raise ModelError(f"frozen graph has no node '{out}'; pass one of its layer names")
            why = self.why_not(out)
            if why:
                raise ModelError(f"{why}; dream a layer before it (a convolution, pooling or concatenation)")
        used: set[str] = set()
        image = keras.Input((None, None, 3), name=self._keras_name(self.input_name, used))
        tensors = {self.input_name: image}
        for node_name in self._postorder(outputs):
            if node_name not in tensors:
                tensors[node_name] = self._build(self.nodes[node_name], tensors, used)
        return keras.Model(image, [tensors[o] for o in outputs], name=self._keras_name(name, set()))

    def _postorder(self, roots: Sequence[str], fused: bool = True) -> list[str]:
        """The nodes `roots` need, each after its data inputs (iterative: graphs are deep).
        `fused`: a BiasAdd reads what its Conv2D reads, as in the built model."""
        order, done, stack = [], set(), [(r, False) for r in reversed(roots)]
        while stack:
            current, expanded = stack.pop()
            if current in done:
                continue
            if expanded or current not in self.nodes:
                done.add(current)
                order.append(current)
                continue
            stack.append((current, True))
            node = self.nodes[current]
            if fused and node.op == "BiasAdd":
                node = self._fusable_conv(node)
            stack.extend((_source(r)[0], False) for r in reversed(self._data_inputs(node))
                         if _source(r)[0] not in done)
        return order

    def _keras_name(self, node_name: str, used: set[str]) -> str:
        """`node_name` as a Keras layer name: '/' is not allowed there; unique among `used`."""
        base = node_name.replace("/", "_")
        candidate = base
        while candidate in used or (candidate != node_name and candidate in self.nodes):
            candidate += "_"
        used.add(candidate)
        return candidate

    def _build(self, node: Node, tensors: dict, used: set[str]):
        """The Keras tensor of `node`, its data inputs already in `tensors`."""
        op, refs, attrs = node.op, self._inputs(node), node.attrs
        if op == "Identity":
            return tensors[_source(refs[0])[0]]
        layer_name = self._keras_name(node.name, used)
        if op in ("Conv2D", "BiasAdd"):
            conv = node if op == "Conv2D" else self._fusable_conv(node)
            conv_refs = self._inputs(conv)
            kernel = self._const(conv_refs[1]).astype(np.float32)
            weights = [kernel]
            if op == "BiasAdd":
                weights.append(self._const(refs[1]).astype(np.float32))
            x = tensors[_source(conv_refs[0])[0]]
            groups = max(1, int(x.shape[-1]) // kernel.shape[2]) if x.shape[-1] else 1
            layer = keras.layers.Conv2D(
                kernel.shape[3], kernel.shape[:2], strides=_spatial(conv.attrs.get("strides"), "strides"),
                padding=_text(conv.attrs.get("padding")).lower(),
                dilation_rate=_spatial(conv.attrs.get("dilations"), "dilations"), groups=groups,
                use_bias=op == "BiasAdd", name=layer_name,
                # zeros, overwritten below: a random initializer would compile a sampler per
                # kernel shape on JAX (seconds each, minutes for inception5h)
                kernel_initializer="zeros", bias_initializer="zeros")
            y = layer(x)
            layer.set_weights(weights)
            return y
        inputs = [tensors[_source(r)[0]] for r in self._data_inputs(node)]
        if op in ("Relu", "Relu6"):
            return keras.layers.ReLU(max_value=6.0 if op == "Relu6" else None, name=layer_name)(inputs[0])
        if op in ("MaxPool", "AvgPool"):
            pool = keras.layers.MaxPooling2D if op == "MaxPool" else keras.layers.AveragePooling2D
            return pool(pool_size=_spatial(attrs.get("ksize"), "ksize"),
                        strides=_spatial(attrs.get("strides"), "strides"),
                        padding=_text(attrs.get("padding")).lower(), name=layer_name)(inputs[0])
        if op == "LRN":
            lrn = LocalResponseNormalization(depth_radius=attrs.get("depth_radius", 5), bias=attrs.get("bias", 1.0),
                                             alpha=attrs.get("alpha", 1.0), beta=attrs.get("beta", 0.5),
                                             name=layer_name)
            return lrn(inputs[0])
        if op in ("Concat", "ConcatV2"):
            axis = int(self._const(refs[0] if op == "Concat" else refs[-1]).reshape(()))
            if len(inputs) == 1:
                return inputs[0]
            return keras.layers.Concatenate(axis=axis, name=layer_name)(inputs)
        if op in ("Add", "AddV2"):
            return keras.layers.Add(name=layer_name)(inputs)
        # unreachable: to_keras checks every output's path with blocker() first
        raise ModelError(f"node '{node.name}' is a {op} op, which the graph converter does not translate")
