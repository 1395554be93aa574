"""PyTorch's networks and ONNX files (dreamvid.engine.torchmodels, dreamvid.engine.onnxgraph): an ONNX
graph rebuilt as a Keras model gives the numbers ONNX's own reference evaluator gives, every
translated op at odd sizes; a torch.nn.Module, its TorchScript export and its ONNX export give the
module's own activations, and dream the same dream from the same seed, stills and clips; torchvision
GoogLeNet's module names take the classic presets' layer names; each bad input is refused in one
line naming the fix; on PyTorch the rebuilt network runs natively. The networks are tiny ones built
in tests/torch_nets.py (random weights): torchvision's own are tested where torchvision loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

import dreamvid  # noqa: E402
from dreamvid.core.errors import LayerError, ModelError  # noqa: E402
from dreamvid.engine import onnxgraph, torchmodels  # noqa: E402
from dreamvid.engine.models import load_model  # noqa: E402

FAST = dict(octaves=2, iterations=3, iterations_next=2, step=3.0, seed=5, device="cpu")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A cache folder of each test's own: exports are kept there."""
    monkeypatch.setenv("DREAMVID_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _one_line(exc) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# ----------------------------------------------------------------------------- ONNX files (no PyTorch)


def _onnx_file(path: Path, seed: int = 0) -> list[str]:
    """An ONNX graph written with onnx.helper, every op the converter translates at sizes where
    padding and ceil mode matter, plus a classifier and an op it does not (Mul). Returns its
    translated nodes' output names, in order."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def conv(name, x, cin, cout, k, group=1, bias=True, **attrs):
        w = const(f"{name}_w", rng.normal(0, (2 / (cin // group * k * k)) ** 0.5, (cout, cin // group, k, k)))
        ins = [x, w] + ([const(f"{name}_b", rng.normal(0, 0.1, cout))] if bias else [])
        nodes.append(helper.make_node("Conv", ins, [name], name=name, group=group, kernel_shape=[k, k], **attrs))

    conv("conv_a", "data", 3, 8, 3, pads=[1, 1, 1, 1])
    nodes.append(helper.make_node("Relu", ["conv_a"], ["relu_a"], name="relu_a"))
    conv("conv_b", "relu_a", 8, 8, 4, group=2, bias=False, strides=[2, 2], pads=[1, 2, 2, 1])  # asymmetric
    stats = [const(f"bn_{k}", v) for k, v in (("scale", rng.uniform(.5, 1.5, 8)), ("bias", rng.normal(0, .1, 8)),
                                               ("mean", rng.normal(0, .2, 8)), ("var", rng.uniform(.5, 1.5, 8)))]
    nodes.append(helper.make_node("BatchNormalization", ["conv_b", *stats], ["bn_b"], name="bn_b", epsilon=1e-3))
    nodes.append(helper.make_node("Clip", ["bn_b", const("zero", 0.0), const("six", 6.0)], ["clip_b"], name="clip_b"))
    nodes.append(helper.make_node("MaxPool", ["clip_b"], ["pool_ceil"], name="pool_ceil", kernel_shape=[3, 3],
                                  strides=[2, 2], ceil_mode=1))
    conv("dw", "pool_ceil", 8, 16, 3, group=8, pads=[2, 2, 2, 2], dilations=[2, 2])
    nodes.append(helper.make_node("LRN", ["dw"], ["lrn"], name="lrn", size=5, alpha=1e-3, beta=0.75, bias=2.0))
    nodes.append(helper.make_node("AveragePool", ["lrn"], ["avg_inside"], name="avg_inside", kernel_shape=[3, 3],
                                  pads=[1, 1, 1, 1]))
    conv("squeeze", "lrn", 16, 16, 1, auto_pad="SAME_UPPER")
    nodes.append(helper.make_node("Add", ["avg_inside", "squeeze"], ["sum"], name="sum"))
    nodes.append(helper.make_node("Concat", ["sum", "dw"], ["cat"], name="cat", axis=1))
    nodes.append(helper.make_node("AveragePool", ["cat"], ["avg_counted"], name="avg_counted", kernel_shape=[3, 3],
                                  strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1))
    nodes.append(helper.make_node("Mul", ["avg_counted", const("two", 2.0)], ["scaled"], name="scaled"))
    nodes.append(helper.make_node("Relu", ["scaled"], ["after_mul"], name="after_mul"))
    nodes.append(helper.make_node("GlobalAveragePool", ["avg_counted"], ["gap"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flat"))
    nodes.append(helper.make_node("Gemm", ["flat", const("fc_w", rng.normal(0, .1, (4, 32)))], ["logits"], name="fc",
                                  transB=1))
    translated = [n.output[0] for n in nodes if n.op_type not in ("Mul", "GlobalAveragePool", "Flatten", "Gemm")
                  and n.name != "after_mul"]
    graph = helper.make_graph(nodes, "tiny",
                              [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())
    return translated


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    return path, _onnx_file(path)


def _reference(path: Path, names: list[str], nchw: np.ndarray) -> list[np.ndarray]:
    """ONNX's own reference evaluator (NumPy) on the graph, every name made an output; its LRN
    replaced by the spec's formula (onnx 1.23's sums the window for the first channels only)."""
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator
    from onnx.reference.op_run import OpRun

    class LRN(OpRun):
        op_domain = ""

        def _run(self, x, alpha=None, beta=None, bias=None, size=None):
            sq = np.pad(x ** 2, [(0, 0), ((size - 1) // 2, size // 2), (0, 0), (0, 0)])
            window = sum(sq[:, k:k + x.shape[1]] for k in range(size))
            return ((x / (bias + alpha / size * window) ** beta).astype(x.dtype),)

    model = onnx.load(str(path))
    del model.graph.output[:]
    model.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names)
    return ReferenceEvaluator(model, new_ops=[LRN]).run(None, {"data": nchw})


@pytest.mark.parametrize("size", [(37, 53), (32, 32)])
def test_an_onnx_graph_gives_onnx_s_own_numbers_on_every_layer(onnx_file, texture, size):
    path, translated = onnx_file
    m = load_model(str(path))
    assert m.layer_names() == translated  # in order; the classifier and what follows the Mul left out
    img = texture(*size, seed=4)[None]
    ours = m.extractor(translated)(img)
    x = np.asarray(m.preprocess(img)).transpose(0, 3, 1, 2).copy()  # ImageNet's normalisation: no metadata
    for name, a, b in zip(translated, ours, _reference(path, translated, x), strict=True):
        b = b.transpose(0, 2, 3, 1)
        assert a.shape == b.shape, name
        assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max(), name


def test_padded_pooling_sizes_follow_pytorch_s_ceil_rule():
    # (size, kernel, stride, pad) -> F.max_pool2d(..., ceil_mode=True)'s length, from PyTorch 2.13
    for (size, k, s, p), n in {(6, 3, 2, 1): 4, (7, 3, 2, 1): 4, (112, 3, 2, 0): 56, (113, 3, 2, 0): 56,
                               (4, 2, 2, 1): 3, (5, 2, 2, 1): 3}.items():  # the last: a window in the padding dropped
        assert onnxgraph.pooled_size(size, k, s, p, p, True) == n, (size, k, s, p)
    assert onnxgraph.pooled_size(113, 3, 2, 0, 0, False) == 56 and onnxgraph.pooled_size(5, 2, 2, 1, 1, False) == 3


def test_an_op_the_converter_lacks_is_named_in_one_line(onnx_file):
    path, _ = onnx_file
    m = load_model(str(path))
    with pytest.raises(LayerError) as err:
        m.check_layer("after_mul")
    assert "depends on 'scaled', a Mul op, which the ONNX converter does not translate" in _one_line(err)
    with pytest.raises(LayerError) as err:
        m.check_layer("fc")
    assert "'fc' is a Gemm op" in _one_line(err) and "dreamvid layers --model" in str(err.value)
    with pytest.raises(LayerError) as err:
        m.check_layer("avg_inside_")
    assert "did you mean avg_inside" in _one_line(err)


def test_files_that_are_neither_onnx_nor_torchscript_are_refused_in_one_line(tmp_path):
    bad_onnx, bad_pt = tmp_path / "x.onnx", tmp_path / "x.pt"
    bad_onnx.write_bytes(b"\x12\x34 not a model")
    bad_pt.write_bytes(b"GIF89a not a network")
    with pytest.raises(ModelError) as err:
        load_model(str(bad_onnx))
    assert "is not an ONNX model" in _one_line(err) and "torch.onnx.export" in str(err.value)
    with pytest.raises(ModelError) as err:
        load_model(str(bad_pt))
    assert "is neither TorchScript nor ONNX" in _one_line(err) and "torch.jit.save" in str(err.value)
    from onnx import TensorProto, helper

    grey = helper.make_graph([helper.make_node("Relu", ["g"], ["r"], name="r")], "grey",
                             [helper.make_tensor_value_info("g", TensorProto.FLOAT, [1, 1, 8, 8])],
                             [helper.make_tensor_value_info("r", TensorProto.FLOAT, None)])
    (tmp_path / "grey.onnx").write_bytes(helper.make_model(grey).SerializeToString())
    with pytest.raises(ModelError) as err:
        load_model(str(tmp_path / "grey.onnx"))
    assert "takes images of 1 channel (NCHW input [1, 1, 8, 8]), not RGB" in _one_line(err)
    with pytest.raises(ModelError) as err:
        load_model(str(tmp_path / "missing.onnx"))
    assert "does not exist" in _one_line(err)
    with pytest.raises(ModelError) as err:
        load_model("torchvison:googlenet")
    assert "torchvision:NAME" in _one_line(err)  # the unknown model's line lists the forms


def test_dreamvid_layers_lists_an_onnx_file(onnx_file, capsys):
    from dreamvid.cli import main

    path, translated = onnx_file
    assert main(["layers", "--model", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# tiny: dreamable layers in network order")
    assert "input: RGB in [0, 1] minus ImageNet's mean" in out[0]
    assert [line.split()[0] for line in out[2:]] == translated
    assert out[2].split() == ["conv_a", "8", "1"] and out[-1].split() == ["avg_counted", "32", "8"]


def test_googlenet_names_map_to_torchvision_s_modules():
    g = torchmodels.GOOGLENET_TO_TORCHVISION
    assert g["mixed4c"] == "inception4c" and g["mixed3a"] == "inception3a" and g["mixed5b"] == "inception5b"
    assert g["mixed4d_3x3_bottleneck_pre_relu"] == "inception4d.branch2.0.conv" and g["conv2d0"] == "conv1"
    names = ["conv1", "inception4c", "inception4c_branch2"]  # (Keras takes no '.' in a name)
    synonyms = {"inception4c.branch2": "inception4c_branch2", "inception4c.branch2.1": "inception4c_branch2"}
    aliases = torchmodels.googlenet_aliases(names, synonyms)
    assert aliases == {"conv2d0": "conv1", "mixed4c": "inception4c", "mixed4c_3x3": "inception4c_branch2"}
    assert onnxgraph.module_scopes("/inception3a/branch2/branch2.0/conv/Conv") == [
        "inception3a", "inception3a.branch2", "inception3a.branch2.0", "inception3a.branch2.0.conv"]
    assert onnxgraph.module_scopes("/layer1/0/relu_1/Relu")[-1] == "layer1.0.relu_1"  # a traced Sequential


def test_names_are_read_from_any_text():
    """The two small parsers here (a node's module scopes, a library:name) take any text."""
    hypothesis = pytest.importorskip("hypothesis")

    @hypothesis.settings(max_examples=300, deadline=None)
    @hypothesis.given(hypothesis.strategies.text())
    def check(text):
        scopes = onnxgraph.module_scopes(text)
        assert all(isinstance(s, str) for s in scopes) and len(scopes) <= text.count("/")
        named = torchmodels.library_name(text)
        assert named is None or (named[0] in torchmodels.LIBRARIES and f"{named[0]}:{named[1]}".lower() == text.lower())
        assert torchmodels.is_torch_network(text) in (True, False)

    check()


def test_auto_takes_pytorch_for_a_pytorch_network(monkeypatch):
    from dreamvid.engine import backends

    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setattr(backends, "installed", lambda name: True)
    for network in ("torchvision:googlenet", "timm:resnet18", "net.pt", Path("net.pth")):
        name, why = backends.choose("auto", "auto", network)
        assert name == "torch" and "a PyTorch network" in why, network
    assert backends.choose("auto", "cpu", "net.onnx")[0] != "torch" or not backends.installed("tensorflow")
    assert torchmodels.is_torch_network("TorchVision:vgg16") and not torchmodels.is_torch_network("vgg16")


def test_missing_libraries_are_named_with_the_extra_to_install(monkeypatch, tmp_path):
    try:  # imported first, so the stand-in below is undone by putting it back, never by a second import
        import torch
    except ImportError:
        torch = None
    monkeypatch.setitem(sys.modules, "torch", None)  # as backends.configure(exclusive=True) keeps it out
    with pytest.raises(ModelError) as err:
        load_model("torchvision:googlenet")
    assert "read through PyTorch, which this process keeps out" in _one_line(err)
    assert "--backend torch" in str(err.value)
    if torch is None:
        pytest.skip("the libraries' own lines need PyTorch")
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torchvision", None)  # not installed
    monkeypatch.setitem(sys.modules, "timm", None)
    for name, extra in (("torchvision:googlenet", "needs torchvision"), ("timm:resnet18", "needs timm")):
        with pytest.raises(ModelError) as err:
            load_model(name)
        assert extra in _one_line(err) and "pip install 'dreamvid[torchvision]'" in str(err.value)
    broken = tmp_path / "broken" / "torchvision"  # installed, but built for another PyTorch
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise RuntimeError('operator torchvision::nms does not exist')\n")
    monkeypatch.delitem(sys.modules, "torchvision")
    monkeypatch.syspath_prepend(str(broken.parent))
    with pytest.raises(ModelError) as err:
        load_model("torchvision:googlenet")
    assert "does not load beside PyTorch" in _one_line(err) and "nms does not exist" in str(err.value)


# ----------------------------------------------------------------------------- PyTorch's networks


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """The tiny GoogLeNet (torchvision's names) and the every-op network, their TorchScript
    exports (traced, scripted), the GoogLeNet's state dict, its whole pickle and its ONNX export."""
    torch = pytest.importorskip("torch")
    import torch_nets

    folder = tmp_path_factory.mktemp("torch")
    g, mixed = torch_nets.randomise(torch_nets.TinyGoogLeNet()), torch_nets.randomise(torch_nets.TinyMixed(), 1)
    vgg = torch_nets.randomise(torch_nets.TinyVGG(), 2)
    image = torch.zeros(1, 3, 64, 64)
    torch.jit.save(torch.jit.trace(g, image), folder / "g_traced.pt")
    torch.jit.save(torch.jit.script(g), folder / "g_scripted.pt")
    torch.jit.save(torch.jit.trace(mixed, image), folder / "mixed.pt")
    torch.save(g.state_dict(), folder / "g_state.pth")
    torch.save(g, folder / "g_whole.pt")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(g, (image,), str(folder / "g.onnx"), dynamo=False, input_names=["x"], opset_version=17,
                          dynamic_axes={"x": {2: "h", 3: "w"}})
    return dict(torch=torch, g=g, mixed=mixed, vgg=vgg, folder=folder)


def _torch_activations(torch, net, names, img):
    """The module's own outputs of the modules `names` (forward hooks; copied, since an in-place
    ReLU after a module overwrites its output), NHWC."""
    acts, mods = {}, dict(net.named_modules())
    hooks = [mods[n].register_forward_hook(lambda mod, i, o, n=n: acts.__setitem__(n, o.detach().clone().numpy()))
             for n in names]
    mean, std = np.array(torchmodels.IMAGENET[0], np.float32), np.array(torchmodels.IMAGENET[1], np.float32)
    x = torch.from_numpy(((img / 255.0 - mean) / std).astype(np.float32)).permute(0, 3, 1, 2)
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return [acts[n].transpose(0, 2, 3, 1) for n in names]


@pytest.mark.parametrize("size", [(37, 53), (64, 64)])
def test_a_module_s_layers_give_its_own_numbers(nets, texture, size):
    img = texture(*size, seed=2)[None]
    cases = {"g": ["conv1", "maxpool1", "conv3", "maxpool2", "inception3a", "inception3a.branch4.0", "maxpool3",
                   "inception4c"],
             "mixed": ["stem", "pool", "norm", "relu6", "depthwise", "grouped", "avg_counted", "avg_inside", "squeeze",
                       "avg_plain"],
             # exported at a fixed size (its adaptive pooling), dreamed at others
             "vgg": ["features.0", "features.2", "features.4", "features.6", "features"]}
    for key, names in cases.items():
        m = load_model(nets[key])
        assert set(names) <= set(m.layer_names()) | set(m.synonyms), m.layer_names()
        for name, a, b in zip(names, m.extractor(names)(img), _torch_activations(nets["torch"], nets[key], names, img)):
            assert a.shape == b.shape, (key, name)
            assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max(), (key, name)


def test_a_module_its_torchscript_and_its_onnx_export_dream_alike(nets, texture):
    """The same graph, so the same dream. In bfloat16 (`auto` on a CPU with AMX) only where the
    modules are named alike too: a scripted export names fewer of them, which orders the sums
    of the gradient's branches otherwise, and bfloat16 rounds those sums apart."""
    img = texture(48, 64, seed=3).astype(np.uint8)
    folder = nets["folder"]
    one = {**FAST, "octaves": 1}
    for precision, others in (("float32", ("g_scripted.pt", "g.onnx")), ("auto", ("g_traced.pt",))):
        base = dreamvid.dream(img, model=nets["g"], layers="inception4c", precision=precision, **one)
        assert np.abs(base.astype(np.float32) - img).mean() > 1.0  # it dreamed
        for other in others:
            out = dreamvid.dream(img, model=str(folder / other), layers="inception4c", precision=precision, **one)
            assert np.abs(out.astype(np.int16) - base).max() <= 1, (precision, other)  # float rounding at most
    m = dreamvid.load_model(nets["g"])
    assert m is dreamvid.load_model(nets["g"]) and m.default_layer == "inception4a" and m.preprocess_mode == "torch"


def test_a_clip_dreams_through_a_module_and_through_its_torchscript(nets, texture, tmp_path):
    from dreamvid.media.sinks import open_sink
    from dreamvid.media.sources import open_source

    tex = texture(40, 64).astype(np.uint8)
    clip = tmp_path / "clip.mp4"
    with open_sink(str(clip), fps=25, size=(48, 40), crf=0) as sink:
        for i in range(3):
            sink.write(np.ascontiguousarray(tex[:, 2 * i: 2 * i + 48]))
    frames = {}
    for label, model in (("module", nets["g"]), ("torchscript", str(nets["folder"] / "g_traced.pt"))):
        result = dreamvid.render_video(str(clip), str(tmp_path / f"{label}.mp4"), model=model, layers="mixed4c",
                                       crf=0, precision="float32", **FAST)
        assert result.frames == 3
        with open_source(result.path) as src:
            frames[label] = np.stack(list(src)).astype(np.int16)
    assert np.abs(frames["module"] - frames["torchscript"]).max() <= 1


def test_the_classic_presets_googlenet_layers_dream_on_torchvision_s_names(nets, texture):
    img = texture(48, 64, seed=1).astype(np.uint8)
    notes = []
    out = dreamvid.dream(img, model=nets["g"], preset="classic", octaves=1, iterations=2, seed=1,
                         progress=lambda u: notes.append(u.message))
    assert out.shape == img.shape
    assert any("mixed4c dreamed as inception4c" in n for n in notes), notes
    m = load_model(nets["g"])
    assert m.resolve("mixed4c") == "inception4c" and m.resolve("mixed4c_3x3") == "inception4c_branch2"
    assert m.resolve("inception4c.branch2.1") == "inception4c_branch2"  # a module ending on the same node
    assert m.resolve("inception4c.branch2") == "inception4c_branch2"  # PyTorch's own name
    m.check_layer("mixed4c_pool_reduce_pre_relu")
    with pytest.raises(LayerError) as err:
        m.check_layer("inception9z")
    assert "list them with 'dreamvid layers --model TinyGoogLeNet'" in _one_line(err)


def test_an_export_is_kept_and_read_back_without_pytorch(nets, monkeypatch, cache):
    path = str(nets["folder"] / "mixed.pt")
    first = load_model(path)
    kept = list((cache / "onnx").glob("mixed-*.onnx"))
    assert len(kept) == 1
    monkeypatch.setattr(torchmodels, "_torch", lambda label: pytest.fail("PyTorch asked for a kept export"))
    from dreamvid.engine import models

    again = models.load_model(path)  # (load_model itself: the process cache would answer first)
    assert again.layer_names() == first.layer_names()


def test_a_pickled_module_loads_only_when_trusted(nets):
    folder = nets["folder"]
    with pytest.raises(ModelError) as err:
        load_model(str(folder / "g_whole.pt"))
    assert "runs code from the file; pass --trust-pickle" in _one_line(err)
    assert "inception4c" in load_model(str(folder / "g_whole.pt"), trust_pickle=True).layer_names()
    with pytest.raises(ModelError) as err:
        load_model(str(folder / "g_state.pth"))
    assert "holds a state dict" in _one_line(err) and "--weights" in str(err.value)
    with pytest.raises(ModelError) as err:
        load_model(str(folder / "g_traced.pt"), weights=str(folder / "g_state.pth"))
    assert "--weights is for torchvision:NAME and timm:NAME" in _one_line(err)


def test_torchvision_s_route_with_the_library_stood_in(nets, tmp_path, monkeypatch):
    """torchvision:NAME's path (names, suggestions, the pretrained weights' cache, a state dict,
    random weights) against a stand-in module with torchvision's model functions, which serves
    the tiny GoogLeNet as 'googlenet': torchvision itself does not load beside this PyTorch."""
    import types

    import torch_nets

    fetched = []

    def get_model(name, weights=None, **config):
        if weights == "DEFAULT":
            fetched.append(name)
            raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")
        return torch_nets.randomise(torch_nets.TinyGoogLeNet(), seed=9)

    models = types.ModuleType("torchvision.models")
    models.list_models = lambda module=None: ["googlenet", "vgg16", "vgg19"]
    models.get_model = get_model
    package = types.ModuleType("torchvision")
    package.models = models
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.models", models)
    with pytest.raises(ModelError) as err:
        load_model("torchvision:googlenett")
    assert "torchvision has no model 'googlenett'; did you mean torchvision:googlenet?" in _one_line(err)
    with pytest.raises(ModelError) as err:
        load_model("torchvision:googlenet")
    assert fetched == ["googlenet"] and "could not be fetched" in _one_line(err) and "--weights FILE" in str(err.value)
    m = load_model("torchvision:googlenet", weights=str(nets["folder"] / "g_state.pth"))
    assert m.name == "torchvision:googlenet" and m.default_layer == "inception4c"
    assert m.resolve("mixed4c") == "inception4c"
    img = (np.arange(48 * 64 * 3) % 251).reshape(1, 48, 64, 3).astype(np.float32)
    ours = m.extractor(["inception4c"])(img)[0]
    np.testing.assert_allclose(ours, load_model(nets["g"]).extractor(["inception4c"])(img)[0], rtol=1e-4, atol=1e-4)
    (bad := tmp_path / "other.pth").write_bytes(b"")
    nets["torch"].save({"fc.weight": nets["torch"].zeros(1)}, bad)
    with pytest.raises(ModelError) as err:
        load_model("torchvision:googlenet", weights=str(bad))
    assert "does not fit torchvision:googlenet" in _one_line(err)
    assert "inception4c" in load_model("torchvision:googlenet", weights="random").layer_names()


def _torchvision_loads() -> str:
    try:
        import torchvision.models  # noqa: F401
    except Exception as exc:  # not installed, or built for another PyTorch (operator torchvision::nms ...)
        return f"torchvision does not load here ({type(exc).__name__}: {str(exc)[:80]})"
    return ""


@pytest.mark.skipif(bool(_torchvision_loads()), reason=_torchvision_loads() or "torchvision loads")
def test_torchvision_s_googlenet_takes_the_classic_names(texture):
    m = load_model("torchvision:googlenet", weights="random")
    assert {"inception3a", "inception4c", "inception5b", "maxpool4"} <= set(m.layer_names())
    assert m.resolve("mixed4c") == "inception4c" and m.default_layer == "inception4c"
    out = dreamvid.dream(texture(64, 80).astype(np.uint8), model="torchvision:googlenet", weights="random",
                         preset="classic", octaves=1, iterations=2, seed=1)
    assert out.shape == (64, 80, 3)


@pytest.mark.skipif(bool(_torchvision_loads()), reason=_torchvision_loads() or "torchvision loads")
def test_timm_networks_load_by_name():
    pytest.importorskip("timm")
    m = load_model("timm:resnet18", weights="random")
    assert "layer3" in m.layer_names()
    with pytest.raises(ModelError) as err:
        load_model("timm:resnet1888")
    assert "timm has no model 'resnet1888'" in _one_line(err)


# ----------------------------------------------------------------------------- PyTorch's backend


def test_padded_pooling_converts_to_pytorch_s_own_pooling(texture):
    torch = pytest.importorskip("torch")
    import keras

    from dreamvid.engine.backends import torchnet

    x = texture(23, 30, seed=5)[None] / 50.0
    for mode, pads, ceil, include in (("max", (1, 1, 1, 1), True, False), ("avg", (1, 1, 1, 1), True, True),
                                      ("avg", (1, 1, 1, 1), False, False), ("max", (0, 0, 0, 0), True, False)):
        layer = onnxgraph.PaddedPooling2D(mode, (3, 3), (2, 2), pads, ceil, include)
        inp = keras.Input((None, None, 3))
        model = keras.Model(inp, layer(inp))
        a = keras.ops.convert_to_numpy(model(keras.ops.convert_to_tensor(x.astype(np.float32))))
        with torch.no_grad():
            b = torchnet.convert(model)(torch.from_numpy(x.astype(np.float32)))[0].numpy()
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5, err_msg=str((mode, pads, ceil, include)))
    with pytest.raises(torchnet.NotConvertible, match="pads"):
        inp = keras.Input((None, None, 3))
        torchnet.convert(keras.Model(inp, onnxgraph.PaddedPooling2D("max", (3, 3), (2, 2), (0, 0, 1, 1))(inp)))


def test_on_pytorch_the_rebuilt_network_runs_natively(nets, texture):
    import keras

    if keras.backend.backend() != "torch":
        pytest.skip("the native network: KERAS_BACKEND=torch")
    from dreamvid.engine.backends import torch as torch_backend
    from dreamvid.engine.backends import torchnet

    m = load_model(nets["g"])
    assert isinstance(torch_backend.native(m.network(["inception4c"])), torchnet.Network)
    assert isinstance(torch_backend.native(load_model(nets["mixed"]).network(["avg_plain"])), torchnet.Network)


def test_the_command_line_takes_pytorch_for_a_torchscript_file(nets, texture, tmp_path):
    """`--backend auto` with a PyTorch network runs PyTorch (a child process: Keras' backend is
    chosen once per process)."""
    import cv2

    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), texture(40, 48).astype(np.uint8))
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", DREAMVID_CACHE=str(tmp_path / "cache"))
    code = ("import sys; from dreamvid.cli import main; "
            f"rc = main(['image', {str(photo)!r}, '-o', {str(tmp_path / 'o.png')!r}, '--model', "
            f"{str(nets['folder'] / 'g_traced.pt')!r}, '--layers', 'mixed4c', '--octaves', '1', '--iterations', '2']); "
            "import keras; print(rc, keras.backend.backend())")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "0 torch", done.stdout + done.stderr[-2000:]
    assert "auto: a PyTorch network, which runs natively on PyTorch" in done.stderr
