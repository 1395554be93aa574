"""The model registry: loading by path, frozen graphs (read without TensorFlow and rebuilt as
Keras models, checked against TensorFlow's own import), the googlenet download/cache path (with a
local file standing in for the server), offline fallback, errors, layer listing."""

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dreamvid.core import files
from dreamvid.core.errors import LayerError, ModelError
from dreamvid.engine import downloads, models
from dreamvid.engine.models import load_model


def test_keras_file_loads_and_lists_layers(tiny_keras_file):
    m = models.load_model(str(tiny_keras_file))
    info = {layer.name: layer for layer in m.layers()}
    assert list(info) == ["conv1", "conv2"]  # network order
    assert info["conv1"].channels == 8 and info["conv1"].stride == 1
    assert info["conv2"].channels == 16 and info["conv2"].stride == 2


TINY_LAYERS = ["conv1_pre_relu", "conv1", "maxpool1", "lrn1", "mixed1_1x1_pre_relu", "mixed1_1x1", "conv2",
               "mixed1_pool", "mixed1_pool_reduce_pre_relu", "mixed1_pool_reduce", "mixed1", "mixed2_3x3_pre_relu",
               "mixed2_3x3", "mixed2", "add_a_pre_relu", "add_a", "add_b_pre_relu", "add_b", "add1", "relu6",
               "pool_valid"]


def _tf_activations(pb_path, names, images):
    """The reference: TensorFlow's own import of the frozen graph, run on `images` as they are."""
    tf = pytest.importorskip("tensorflow")
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(pb_path).read_bytes())
    with tf.Graph().as_default() as graph:
        x = tf.compat.v1.placeholder(tf.float32, (None, None, None, 3))
        outs = tf.import_graph_def(graph_def, input_map={"input": x}, return_elements=[f"{n}:0" for n in names],
                                   name="")
        with tf.compat.v1.Session(graph=graph) as sess:
            return sess.run(outs, {x: images})


def _rel_err(a, b):
    return float(np.abs(np.asarray(a, np.float32) - b).max() / max(np.abs(b).max(), 1e-12))


def test_frozen_graph_loads_like_inception5h(tiny_pb):
    m = models.load_model(str(tiny_pb))
    # the graph's top-level conv/relu/pool/LRN/concat/add nodes, in graph order; not 'conv2/conv'
    # (not top level) nor the head behind its Reshape and MatMul
    assert m.layer_names() == TINY_LAYERS
    info = {layer.name: layer for layer in m.layers()}
    assert info["conv1"].channels == 16 and info["conv1"].stride == 1
    assert info["mixed1"].channels == 18 and info["mixed1"].stride == 2
    assert info["mixed2"].channels == 26 and info["pool_valid"].stride == 4
    acts = m.extractor(["conv1", "mixed1"])(np.full((1, 16, 16, 3), 117.0, np.float32))
    assert acts[0].shape == (1, 16, 16, 16) and acts[1].shape == (1, 8, 8, 18)


def test_converted_graph_matches_tensorflow_on_every_layer(tiny_pb, texture):
    # 37x53: odd sizes, so SAME padding at stride 2 pads unevenly, and VALID drops an edge
    img = texture(37, 53)[None]
    m = models.load_model(str(tiny_pb))
    ours = m.extractor(TINY_LAYERS)(img)
    ref = _tf_activations(tiny_pb, TINY_LAYERS, img - 117.0)  # googlenet's preprocessing
    for name, a, b in zip(TINY_LAYERS, ours, ref):
        assert a.shape == b.shape, name
        assert _rel_err(a, b) < 1e-4, name
    assert np.abs(ref[TINY_LAYERS.index("relu6")]).max() == 6.0  # Relu6 really clips here


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_graph_converter_runs_on_other_backends_without_tensorflow(tiny_pb, texture, tmp_path, backend):
    pytest.importorskip(backend)
    img = texture(37, 53)[None] - 117.0
    names = ["lrn1", "mixed1", "mixed2", "relu6", "pool_valid"]
    np.savez(tmp_path / "ref.npz", img=img, **dict(zip(names, _tf_activations(tiny_pb, names, img))))
    script = f"""
import sys
import numpy as np
import keras
from dreamvid.engine import graphdef
ref = dict(np.load({str(tmp_path / "ref.npz")!r}))
img = ref.pop("img")
model = graphdef.read_graph({str(tiny_pb)!r}).to_keras(list(ref))
outs = model(img)
assert keras.backend.backend() == {backend!r}, keras.backend.backend()
assert "tensorflow" not in sys.modules, "tensorflow was imported"
for name, out in zip(ref, outs):
    out, want = keras.ops.convert_to_numpy(out), ref[name]
    err = np.abs(out - want).max() / np.abs(want).max()
    assert out.shape == want.shape and err < 1e-4, (name, out.shape, err)
print("ok")
"""
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(Path(models.__file__).parents[2])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_lrn_layer_matches_tensorflow_and_rebuilds_from_its_config():
    tf = pytest.importorskip("tensorflow")
    from dreamvid.engine.graphdef import LocalResponseNormalization

    # 20 channels > the 11-channel window, and values large enough that the window's sum
    # outweighs the bias: an off-by-one window or a wrong power would show
    x = np.random.default_rng(3).normal(0, 60, (2, 7, 9, 20)).astype(np.float32)
    lrn = LocalResponseNormalization(depth_radius=5, bias=2.0, alpha=1e-4, beta=0.5)
    want = tf.nn.local_response_normalization(x, depth_radius=5, bias=2.0, alpha=1e-4, beta=0.5).numpy()
    assert _rel_err(lrn(x), want) < 1e-5
    assert _rel_err(x, want) > 0.1  # it normalised
    other = dict(depth_radius=2, bias=1.0, alpha=1e-3, beta=0.75)
    clone = LocalResponseNormalization.from_config(LocalResponseNormalization(**other).get_config())
    assert _rel_err(clone(x), tf.nn.local_response_normalization(x, **other).numpy()) < 1e-5


def test_graph_parser_reads_constants_like_tensorflow(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from dreamvid.engine import graphdef

    g = tf.Graph()
    with g.as_default():  # tensor_content, a value filled from one float_val, ints, int64, bool, half
        tf.constant(np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5, name="content")
        tf.constant(1.5, shape=(2, 3), name="filled")
        tf.constant([1, -2, 3], tf.int32, name="ints")
        tf.constant(-(2 ** 40), tf.int64, name="int64")
        tf.constant([True, False], name="bools")
        tf.constant(np.array([0.5, -2.0], np.float16), name="half")
    graph_def = g.as_graph_def()
    nodes = {n.name: n for n in graphdef.parse_graph(graph_def.SerializeToString())}
    for node in graph_def.node:
        want = tf.make_ndarray(node.attr["value"].tensor)
        got = nodes[node.name].attrs["value"]
        assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want), node.name


def test_layer_behind_an_untranslated_op_says_which_op(tiny_pb):
    from dreamvid.engine import graphdef

    m = models.load_model(str(tiny_pb))
    assert "head_conv" not in m.layer_names() and "nn0" not in m.layer_names()
    with pytest.raises(ModelError, match="depends on 'head_reshape', a Reshape op") as err:
        m.extractor(["head_conv"])
    assert "\n" not in str(err.value) and "dreamvid layers --model tiny" in str(err.value)
    with pytest.raises(ModelError, match="MatMul"):
        m.check_layer("nn0")
    with pytest.raises(LayerError, match="has no layer 'mixed9'"):  # not in the graph at all
        m.check_layer("mixed9")
    with pytest.raises(ModelError, match="Reshape op, which the graph converter does not translate"):
        graphdef.read_graph(tiny_pb).to_keras(["conv1", "head_conv"])


def test_frozen_graph_computes_in_lower_precision(tiny_pb, texture):
    import keras

    full = load_model(str(tiny_pb))
    low = load_model(str(tiny_pb), precision="bfloat16")
    assert low.precision == "bfloat16" and low.layer_names() == full.layer_names()
    img = texture(37, 53)[None]
    names = ["lrn1", "mixed2", "pool_valid"]
    for name, a, b in zip(names, full.extractor(names)(img), low.extractor(names)(img)):
        assert keras.backend.standardize_dtype(b.dtype) == "bfloat16", name
        a, b = keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(keras.ops.cast(b, "float32"))
        assert not np.array_equal(a, b) and np.abs(a - b).mean() < 0.05 * np.abs(a).mean(), name


@pytest.mark.slow
def test_real_googlenet_matches_tensorflow(texture):
    # only where inception5h has been downloaded into the cache (no download here)
    pb = files.cache_dir() / "inception5h" / downloads.GOOGLENET_PB
    if not pb.is_file():
        pytest.skip(f"inception5h is not in the cache ({pb}); "
                    "run 'python render.py layers --model googlenet' online once")
    names = ["mixed4c", "mixed4d_3x3_bottleneck_pre_relu"]
    m = models.load_model("googlenet", weights=str(pb))
    assert set(names) <= set(m.layer_names()) and {"conv2d0", "localresponsenorm0", "mixed3a"} <= set(m.layer_names())
    img = texture(131, 179)[None]
    ref = _tf_activations(pb, names, img - 117.0)
    for name, a, b in zip(names, m.extractor(names)(img), ref):
        assert a.shape == b.shape and _rel_err(a, b) < 1e-4, name


def _serve_zip(tmp_path, pb_path, monkeypatch):
    """Put an inception5h-like zip where the downloader looks (a file: address, no network)."""
    archive = tmp_path / "server" / "inception5h.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as z:
        z.write(pb_path, downloads.GOOGLENET_PB)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    monkeypatch.setattr(downloads, "GOOGLENET_URL", archive.as_uri())
    monkeypatch.setattr(downloads, "GOOGLENET_SHA256", digest)
    monkeypatch.setenv("DREAMVID_CACHE", str(tmp_path / "cache"))
    return archive


def test_googlenet_downloads_once_into_cache_with_progress(tmp_path, tiny_pb, monkeypatch):
    archive = _serve_zip(tmp_path, tiny_pb, monkeypatch)
    ticks = []
    m = models.load_model("googlenet", progress=lambda done, total: ticks.append((done, total)))
    assert "mixed1" in m.layer_names()
    assert (tmp_path / "cache" / "inception5h" / downloads.GOOGLENET_PB).is_file()
    assert ticks and ticks[-1][0] == archive.stat().st_size
    archive.unlink()  # the server is gone: the cache serves
    assert "conv1" in models.load_model("googlenet").layer_names()


def test_corrupt_download_is_rejected_and_removed(tmp_path, tiny_pb, monkeypatch):
    _serve_zip(tmp_path, tiny_pb, monkeypatch)
    monkeypatch.setattr(downloads, "GOOGLENET_SHA256", "0" * 64)
    with pytest.raises(ModelError, match="corrupt"):
        models.load_model("googlenet")
    assert not any((tmp_path / "cache").rglob("*.zip")) and not any((tmp_path / "cache").rglob("*.part"))


def test_googlenet_offline_error_names_the_fixes(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMVID_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(downloads, "GOOGLENET_URL", (tmp_path / "missing.zip").as_uri())
    with pytest.raises(ModelError) as err:
        models.load_model("googlenet")
    assert "--weights" in str(err.value) and "vgg16-hed" in str(err.value)


def test_weights_option_takes_a_local_pb_or_zip(tmp_path, tiny_pb, monkeypatch):
    monkeypatch.setenv("DREAMVID_CACHE", str(tmp_path / "cache"))
    assert "mixed1" in models.load_model("googlenet", weights=str(tiny_pb)).layer_names()
    archive = _serve_zip(tmp_path, tiny_pb, monkeypatch)
    monkeypatch.setattr(downloads, "GOOGLENET_URL", "file:///nonexistent")
    assert "mixed1" in models.load_model("googlenet", weights=str(archive)).layer_names()


def test_keras_app_without_cached_weights_says_how_to_go_offline(tmp_path, monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):  # what Keras' fetcher raises without a network
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(ModelError, match="vgg16-hed"):
        models.load_model("mobilenet_v2")


def test_keras_app_with_random_weights_builds(monkeypatch):
    m = models.load_model("mobilenet_v2", weights="random")
    assert m.default_layer in m.layer_names()


def test_unknown_model_suggests_a_name():
    with pytest.raises(ModelError, match="did you mean 'googlenet'"):
        models.load_model("googlenett")


def test_missing_model_path_and_bad_pb(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        models.load_model(str(tmp_path / "nope.keras"))
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"not a graph")
    with pytest.raises(ModelError, match="frozen"):
        models.load_model(str(bad))


def test_unknown_layer_suggests_close_names(tiny_model):
    with pytest.raises(LayerError, match="did you mean conv1"):
        tiny_model.check_layer("conv_1")


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_lower_precision_computes_in_that_type_and_still_dreams(tiny_keras_file, texture, precision):
    from keras import ops

    from dreamvid.config.settings import DreamSettings
    from dreamvid.engine.dreamer import Dreamer
    from dreamvid.engine.objectives import parse

    full = load_model(str(tiny_keras_file))
    low = load_model(str(tiny_keras_file), precision=precision)
    assert low.precision == precision and full.precision == "float32"
    img = texture(40, 48)
    act_full = full.extractor(["conv2"])(img[None])[0]
    act_low = low.extractor(["conv2"])(img[None])[0]
    assert ops.dtype(act_full) == "float32" and ops.dtype(act_low) == precision
    # same weights, less precise arithmetic: close to float32's activations, not equal
    a = ops.convert_to_numpy(act_full)
    b = ops.convert_to_numpy(ops.cast(act_low, "float32"))
    assert not np.array_equal(a, b) and np.abs(a - b).mean() < 0.05 * np.abs(a).mean()
    dreamer = Dreamer(low, parse("conv2"), DreamSettings(octaves=1, iterations=4, seed=1, device="cpu"))
    out = dreamer.dream(img)
    assert out.dtype == np.float32 and dreamer.objective_value(out) > 1.2 * dreamer.objective_value(img)


def test_a_googlenet_look_on_another_network_is_mapped_or_refused_in_one_line(tiny_keras_file):
    """The classic presets name GoogLeNet's layers: vgg16-hed maps them (GOOGLENET_TO_VGG), any
    other network refuses them in one line that names --layers and one of its own layers."""
    hed = load_model("vgg16-hed")
    assert hed.resolve("mixed4c") == "block4_conv3" and hed.resolve("block3_conv3") == "block3_conv3"
    hed.check_layer("mixed4c")  # dreamable: mapped
    tiny = load_model(str(tiny_keras_file))
    with pytest.raises(LayerError) as err:
        tiny.check_layer("mixed4c")
    message = str(err.value)
    assert "GoogLeNet layer" in message and f"--layers {tiny.default_layer}" in message and "\n" not in message


def test_a_tensorflow_run_imports_neither_jax_nor_torch(tiny_keras_file, tmp_path):
    """The command line runs one framework: TensorFlow imports JAX by itself where it is installed
    (its tf.lite converter), which backends.configure(exclusive=True) keeps out."""
    from test_robustness import pan_frames, write_png

    photo = tmp_path / "p.png"
    write_png(photo, pan_frames(1)[0])
    code = ("import sys; from dreamvid.cli import main; "
            f"rc = main(['image', {str(photo)!r}, '-o', {str(tmp_path / 'o.png')!r}, "
            f"'--model', {str(tiny_keras_file)!r}, "
            "'--layers', 'conv2', '--octaves', '1', '--iterations', '2']); "
            "print(rc, sorted(m for m in ('jax', 'torch', 'tensorflow') if sys.modules.get(m)))")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "0 ['tensorflow']", out.stdout + out.stderr
