"""PyTorch's networks, brought into the engine as ONNX graphs: `torchvision:NAME` and `timm:NAME`
(their pretrained weights through the library's own cache on first use; `weights` a state dict
fetched elsewhere, or "random"), TorchScript files, a whole pickled module where its user says it
is trusted (`trust_pickle`: unpickling runs the file's code), and any `torch.nn.Module` a program
hands the API. No image loops; nothing heavy at module level: `is_torch_network` (which the
backend's choice asks) imports nothing.

One route for all of them: the module is exported once with `torch.onnx.export`, the
TorchScript-based exporter (`dynamo=False`: offline with the `onnx` package alone; the dynamo
exporter needs onnxscript), its height and width dynamic, and `onnxgraph` rebuilds the graph as
a Keras model. So each runs on every backend (natively on PyTorch through `backends.torchnet`),
and a module and its TorchScript export dream alike by construction. What the network's input
expects (its mean and std: ImageNet's for torchvision, the model's own for timm) and its default
layer travel in the ONNX file's metadata (`onnxgraph.META`).

Exports of a named network or of a file are kept in the cache folder (`onnx/`), keyed by the
name, the library's version and the SHA-256 of the weights or the file: a later start reads the
ONNX file and needs no PyTorch at all (a process running on another backend, PyTorch kept out).
"""

from __future__ import annotations

import difflib
import importlib.metadata
import io
import os
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

from dreamvid.config.settings import DEFAULTS
from dreamvid.core.errors import ModelError, OutputError, reason
from dreamvid.core.files import atomic_write, cache_dir, sha256

LIBRARIES = ("torchvision", "timm")  # --model LIBRARY:NAME
TORCH_FILES = (".pt", ".pth", ".ts", ".jit", ".torchscript")  # --model FILE: TorchScript, or a pickled module
INSTALL = {"torch": "pip install 'dreamvid[torch]'", "torchvision": "pip install 'dreamvid[torchvision]'",
           "timm": "pip install 'dreamvid[torchvision]'"}
OPSET = 17  # the ONNX opset the TorchScript-based exporter writes every op of these networks in
EXPORT_SIDE = 224  # the example image traced (height and width are exported as dynamic)
EXPORT_VERSION = 1  # part of the cache key: raise it when the export's settings change
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # torchvision's normalisation (most timm models')
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # [-1, 1]: the input torchvision's GoogLeNet and Inception v3 were trained on
DEFAULT_LAYERS = {"torchvision:googlenet": "inception4c",  # the classic DeepDream layer (mixed4c)
                  "torchvision:vgg16": "features.22", "torchvision:vgg19": "features.26"}  # block4_conv3, block4_conv4


def _googlenet_map() -> dict[str, str]:
    """inception5h's layer names (the classic presets') -> torchvision GoogLeNet's modules: the
    blocks (mixed4c -> inception4c), the stem, and each branch, after its ReLU or, '_pre_relu',
    its convolution (torchvision's batch norm folded in). torchvision's '5x5' branch is a 3x3."""
    names = {"conv2d0": "conv1", "maxpool0": "maxpool1", "conv2d1": "conv2", "conv2d2": "conv3",
             "maxpool1": "maxpool2", "maxpool4": "maxpool3", "maxpool10": "maxpool4"}
    branches = {"1x1": "branch1", "3x3_bottleneck": "branch2.0", "3x3": "branch2.1",
                "5x5_bottleneck": "branch3.0", "5x5": "branch3.1", "pool_reduce": "branch4.1"}
    for block in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"):
        names[f"mixed{block}"] = f"inception{block}"
        for theirs, ours in branches.items():
            names[f"mixed{block}_{theirs}"] = f"inception{block}.{ours}"
            names[f"mixed{block}_{theirs}_pre_relu"] = f"inception{block}.{ours}.conv"
    return names


GOOGLENET_TO_TORCHVISION = _googlenet_map()


def googlenet_aliases(layers: list[str], synonyms: dict[str, str]) -> dict[str, str]:
    """The GoogLeNet names (GOOGLENET_TO_TORCHVISION) this network has a layer for: any network
    with torchvision GoogLeNet's module names, torchvision's own or one a user built."""
    have = {*layers, *synonyms}
    return {ours: synonyms.get(theirs, theirs) for ours, theirs in GOOGLENET_TO_TORCHVISION.items() if theirs in have}


def library_name(model) -> tuple[str, str] | None:
    """'torchvision:googlenet' -> ('torchvision', 'googlenet'); None for anything else."""
    if not isinstance(model, str) or ":" not in model:
        return None
    library, _, name = model.partition(":")
    return (library.lower(), name) if library.lower() in LIBRARIES else None


def is_torch_network(model) -> bool:
    """Whether `model` (a --model value, or an object the API was given) is a PyTorch network:
    torchvision:NAME, timm:NAME, a TorchScript or pickled-module file, or a torch.nn.Module."""
    if isinstance(model, (str, os.PathLike)):
        return library_name(os.fspath(model)) is not None or Path(os.fspath(model)).suffix.lower() in TORCH_FILES
    torch = sys.modules.get("torch")  # a module object exists only where torch is imported
    return torch is not None and isinstance(model, torch.nn.Module)


@dataclass
class Source:
    """A network as an ONNX graph: a file (an export in the cache, or the user's .onnx) or the
    bytes of one, and the name the network goes by."""

    onnx: Path | bytes
    name: str


def source(model, weights: str | None = None, trust_pickle: bool = DEFAULTS["trust_pickle"]) -> Source:
    """The ONNX graph of `model`: an .onnx path as it is; torchvision:NAME, timm:NAME or a
    PyTorch file exported (once: from the cache after); a torch.nn.Module exported here."""
    if not isinstance(model, (str, os.PathLike)):
        if weights:
            raise ModelError("weights= is for torchvision:NAME and timm:NAME; load them into your module first "
                             "(module.load_state_dict(torch.load(FILE)))")
        return Source(_export(model, type(model).__name__), type(model).__name__)
    text = os.fspath(model)
    named = library_name(text)
    if named:
        return _library(named[0], named[1], weights)
    path = Path(text)
    if weights:
        raise ModelError(f"--weights is for torchvision:NAME and timm:NAME networks; '{path}' carries its own weights")
    if not path.is_file():
        raise ModelError(f"model file '{path}' does not exist; check the path")
    if path.suffix.lower() == ".onnx":
        return Source(path, path.stem)
    return _torch_file(path, trust_pickle)


# --- PyTorch and the libraries, imported when asked for ------------------------------------------

def _torch(label: str):
    """torch, or ModelError saying how to get it for `label`."""
    if "torch" in sys.modules and sys.modules["torch"] is None:  # backends.configure(exclusive=True) keeps it out
        raise ModelError(f"{label} is read through PyTorch, which this process keeps out (it runs on "
                         f"{os.environ.get('KERAS_BACKEND', 'another backend')}); use --backend torch or auto "
                         f"(the page: KERAS_BACKEND=torch), or pass its ONNX export (--model FILE.onnx), "
                         f"which runs on every backend")
    try:
        import torch
    except ImportError:
        raise ModelError(f"{label} is read through PyTorch, which is not installed: {INSTALL['torch']}") from None
    return torch


def _import(library: str, label: str):
    """torchvision.models or timm, or ModelError naming the extra (not installed, or a build
    that does not load beside this PyTorch)."""
    torch = _torch(label)
    try:
        if library == "torchvision":
            import torchvision.models as lib
        else:
            import timm as lib
    except ModuleNotFoundError as exc:
        missing = exc.name or library
        raise ModelError(f"{label} needs {missing}, which is not installed: {INSTALL[library]}") from None
    except Exception as exc:  # e.g. RuntimeError: operator torchvision::nms does not exist
        raise ModelError(f"{library} is installed but does not load beside PyTorch {torch.__version__} "
                         f"({reason(exc)}); install the {library} built for that PyTorch: {INSTALL[library]}") from None
    return lib


def _library(library: str, name: str, weights: str | None) -> Source:
    label = f"--model {library}:{name}"
    try:
        version = importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        version = None
    digest = "random" if weights == "random" else (sha256(_weights_file(weights)) if weights else "default")
    key = f"{library}-{name}-{version}-{digest[:16]}-e{EXPORT_VERSION}"
    cached = cache_dir() / "onnx" / f"{_slug(key)}.onnx"
    if version and weights != "random" and cached.is_file():  # read without PyTorch
        return Source(cached, f"{library}:{name}")
    lib = _import(library, label)
    names = list(lib.list_models()) if library == "timm" else list(lib.list_models(module=lib))
    if not (lib.is_model(name) if library == "timm" else name in names):  # timm's names may carry a tag
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(f'{library}:{c}' for c in close)}? " if close else ""
        listing = "timm.list_models()" if library == "timm" else "torchvision.models.list_models()"
        raise ModelError(f"{library} has no model '{name}'; {hint}its models: {listing}")
    module = _build(lib, library, name, weights, label)
    mean, std = _normalisation(module, library)
    data = _export(module, f"{library}:{name}", mean, std, DEFAULT_LAYERS.get(f"{library}:{name}", ""))
    if weights != "random":
        _keep(cached, data)
    return Source(data, f"{library}:{name}")


def _build(lib, library: str, name: str, weights: str | None, label: str):
    """The network with its weights: the library's pretrained ones (its own cache, downloaded on
    first use), a state dict from a file, or random ones."""
    extra = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    if weights:  # a state dict, or "random"
        if weights != "random" and extra:
            extra["transform_input"] = True  # as torchvision builds them for its ImageNet weights
        if library == "torchvision":
            module = lib.get_model(name, weights=None, **extra)
        else:
            module = lib.create_model(name, pretrained=False)
        if weights != "random":
            _load_state(module, _weights_file(weights), label)
        return module
    try:
        if library == "torchvision":
            return lib.get_model(name, weights="DEFAULT")
        return lib.create_model(name, pretrained=True)
    except Exception as exc:  # URLError, HTTPError, OSError, huggingface_hub's errors, ...
        where = ("torchvision's cache (torch.hub.get_dir()/checkpoints)" if library == "torchvision"
                 else "Hugging Face's cache (~/.cache/huggingface)")
        raise ModelError(f"weights for '{library}:{name}' are not in {where} and could not be fetched ({reason(exc)}); "
                         f"connect once to cache them, pass --weights FILE (its state dict, fetched elsewhere), "
                         f"or use --model vgg16-hed (works offline)") from None


def _weights_file(weights: str) -> Path:
    path = Path(weights)
    if not path.is_file():
        raise ModelError(f"weights file '{weights}' does not exist; "
                         "pass the network's state dict (a .pth file) or 'random'")
    return path


def _load_state(module, path: Path, label: str) -> None:
    torch = _torch(label)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors only: no code runs
    except Exception as exc:
        raise ModelError(f"weights file '{path}' is not a PyTorch state dict ({reason(exc)}); pass the .pth file "
                         f"torch.save(model.state_dict(), ...) wrote") from None
    for wrapper in ("state_dict", "model"):  # training checkpoints keep it under one of these
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise ModelError(f"weights file '{path}' holds a {type(state).__name__}, not a state dict; pass the .pth file "
                         f"torch.save(model.state_dict(), ...) wrote")
    network = label.removeprefix("--model ")
    try:
        missing = module.load_state_dict(state, strict=False).missing_keys
    except RuntimeError as exc:  # a weight of another shape
        raise ModelError(f"weights file '{path}' does not fit {network} ({' '.join(str(exc).split())[:200]}); "
                         f"pass the state dict saved from that network") from None
    if missing:
        raise ModelError(f"weights file '{path}' does not fit {network}: {len(missing)} weights missing "
                         f"({', '.join(missing[:3])}, ...); pass the state dict saved from that network")


def _normalisation(module, library: str) -> tuple[tuple, tuple]:
    """The mean and std the network's input is normalised with (RGB in [0, 1])."""
    if getattr(module, "transform_input", False) is True:
        return HALF  # torchvision's GoogLeNet / Inception v3 turn ImageNet's normalisation into this first
    cfg = getattr(module, "pretrained_cfg", None) or {}
    mean, std = cfg.get("mean"), cfg.get("std")
    if library == "timm" and mean and std and len(mean) == len(std) == 3:
        return tuple(float(v) for v in mean), tuple(float(v) for v in std)
    return IMAGENET


# --- files ----------------------------------------------------------------------------------------

def file_kind(path: Path) -> str | None:
    """"torchscript", "pickle" (torch.save of an object) or "onnx" from the file's bytes, or None."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
            if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
                return "torchscript"
            return "pickle" if any(n.endswith("data.pkl") for n in names) else None
        with open(path, "rb") as f:
            head = f.read(2)
    except (OSError, zipfile.BadZipFile):
        return None
    if head[:1] == b"\x80":  # a pickle's protocol marker: torch.save's legacy format
        return "pickle"
    try:
        import onnx

        model = onnx.load(str(path))
        return "onnx" if model.graph.node else None
    except Exception:  # not installed, or not an ONNX file
        return None


def _torch_file(path: Path, trust_pickle: bool) -> Source:
    kind = file_kind(path)
    if kind == "onnx":
        return Source(path, path.stem)
    if kind is None:
        raise ModelError(f"'{path}' is neither TorchScript nor ONNX; save the network with "
                         f"torch.jit.save(torch.jit.trace(net, image), 'net.pt') "
                         f"or torch.onnx.export(net, image, 'net.onnx')")
    cached = cache_dir() / "onnx" / f"{_slug(path.stem)}-{sha256(path)[:16]}-e{EXPORT_VERSION}.onnx"
    if cached.is_file():
        return Source(cached, path.stem)
    torch = _torch(f"'{path}'")
    if kind == "torchscript":
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise ModelError(f"'{path}' is not a TorchScript file PyTorch {torch.__version__} loads ({reason(exc)}); "
                             f"save it again with torch.jit.save") from None
    else:
        module = _unpickle(torch, path, trust_pickle)
    data = _export(module, f"'{path}'")
    _keep(cached, data)
    return Source(data, path.stem)


def _unpickle(torch, path: Path, trust_pickle: bool):
    """A whole module saved with torch.save: unpickled only when trusted (it runs the file's code)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as exc:
        if not trust_pickle:
            raise ModelError(f"'{path}' is a pickled PyTorch module: loading it runs code from the file; pass "
                             f"--trust-pickle (trust_pickle=True) if you trust its source, or save it as TorchScript "
                             f"(torch.jit.save) or ONNX") from None
        raise ModelError(f"cannot unpickle '{path}' ({reason(exc)}); import the module's class first, or save it as "
                         f"TorchScript (torch.jit.save)") from None
    if isinstance(obj, dict):
        raise ModelError(f"'{path}' holds a state dict (weights without their network); pass it as --weights with the "
                         f"network it belongs to, e.g. --model torchvision:googlenet --weights {path}")
    if not isinstance(obj, torch.nn.Module):
        raise ModelError(f"'{path}' holds a {type(obj).__name__}, not a torch.nn.Module; save the network itself")
    return obj


# --- the export -----------------------------------------------------------------------------------

def _export(module, label: str, mean=None, std=None, default_layer: str = "") -> bytes:
    """`module` as the bytes of an ONNX model (eval mode), the input's normalisation and the default
    layer in its metadata; the module's own mode is restored. Height and width are exported as
    dynamic; where the exporter refuses that (an adaptive pooling to a fixed size, as before
    torchvision VGG's and AlexNet's classifiers), at EXPORT_SIDE: the rebuilt layers take any
    size, and only such a pooling computes as at that size."""
    from dreamvid.engine import onnxgraph  # Keras and onnx behind it: only once the backend is chosen

    torch = _torch(label)
    if mean is None:
        mean, std = IMAGENET if isinstance(module, torch.jit.ScriptModule) else _normalisation(module, "")
    # a traced or scripted module keeps its own input transform (its graph has it)
    transform = None if isinstance(module, torch.jit.ScriptModule) else getattr(module, "transform_input", None)
    training = module.training
    params = list(module.parameters())
    image = torch.zeros(1, 3, EXPORT_SIDE, EXPORT_SIDE, device=params[0].device if params else "cpu")
    buffer = io.BytesIO()
    try:
        module.eval()
        if transform is True:
            module.transform_input = False  # HALF's normalisation does what it did
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notices; its errors still raise
            for dynamic in ({"image": {0: "batch", 2: "height", 3: "width"}}, None):
                try:
                    torch.onnx.export(module, (image,), buffer, dynamo=False, input_names=["image"],
                                      opset_version=OPSET, dynamic_axes=dynamic)
                    break
                except Exception:
                    if dynamic is None:
                        raise
                    buffer = io.BytesIO()
    except Exception as exc:
        raise ModelError(f"cannot export {label} to ONNX ({reason(exc)}); pass its convolutional part "
                         f"(a module taking an image (1, 3, H, W)), or export it to ONNX yourself") from None
    finally:
        module.train(training)
        if transform is True:
            module.transform_input = True
    return onnxgraph.with_metadata(buffer.getvalue(), mean=mean, std=std, default_layer=default_layer)


def _keep(path: Path, data: bytes) -> None:
    """Keep an export in the cache (a cache that cannot be written only costs the next export)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(str(path), data)
    except (OSError, OutputError):
        pass


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)




