"""The model registry: loading by path, frozen graphs, the googlenet download/cache path (with a
local file standing in for the server), offline fallback, errors, layer listing."""

import hashlib
import zipfile

import numpy as np
import pytest

from dreamvid import models
from dreamvid.models import load_model
from dreamvid.errors import LayerError, ModelError


def test_keras_file_loads_and_lists_layers(tiny_keras_file):
    m = models.load_model(str(tiny_keras_file))
    info = {l.name: l for l in m.layers()}
    assert list(info) == ["conv1", "conv2"]  # network order
    assert info["conv1"].channels == 8 and info["conv1"].stride == 1
    assert info["conv2"].channels == 16 and info["conv2"].stride == 2


def test_frozen_graph_loads_like_inception5h(tiny_pb):
    m = models.load_model(str(tiny_pb))
    names = [l.name for l in m.layers()]
    assert names == ["conv1_pre_relu", "conv1", "conv2", "pool1", "mixed1"]
    mixed = {l.name: l for l in m.layers()}["mixed1"]
    assert mixed.channels == 10 and mixed.stride == 2
    acts = m.extractor(["conv1", "mixed1"])(np.full((1, 16, 16, 3), 117.0, np.float32))
    assert acts[0].shape == (1, 16, 16, 6) and acts[1].shape == (1, 8, 8, 10)


def _serve_zip(tmp_path, pb_path, monkeypatch):
    """Put an inception5h-like zip where the downloader looks (a file: address, no network)."""
    archive = tmp_path / "server" / "inception5h.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as z:
        z.write(pb_path, models.GOOGLENET_PB)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    monkeypatch.setattr(models, "GOOGLENET_URL", archive.as_uri())
    monkeypatch.setattr(models, "GOOGLENET_SHA256", digest)
    monkeypatch.setenv("DREAMVID_CACHE", str(tmp_path / "cache"))
    return archive


def test_googlenet_downloads_once_into_cache_with_progress(tmp_path, tiny_pb, monkeypatch):
    archive = _serve_zip(tmp_path, tiny_pb, monkeypatch)
    ticks = []
    m = models.load_model("googlenet", progress=lambda done, total: ticks.append((done, total)))
    assert "mixed1" in m.layer_names()
    assert (tmp_path / "cache" / "inception5h" / models.GOOGLENET_PB).is_file()
    assert ticks and ticks[-1][0] == archive.stat().st_size
    archive.unlink()  # the server is gone: the cache serves
    assert "conv1" in models.load_model("googlenet").layer_names()


def test_corrupt_download_is_rejected_and_removed(tmp_path, tiny_pb, monkeypatch):
    _serve_zip(tmp_path, tiny_pb, monkeypatch)
    monkeypatch.setattr(models, "GOOGLENET_SHA256", "0" * 64)
    with pytest.raises(ModelError, match="corrupt"):
        models.load_model("googlenet")
    assert not any((tmp_path / "cache").rglob("*.zip")) and not any((tmp_path / "cache").rglob("*.part"))


def test_googlenet_offline_error_names_the_fixes(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMVID_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(models, "GOOGLENET_URL", (tmp_path / "missing.zip").as_uri())
    with pytest.raises(ModelError) as err:
        models.load_model("googlenet")
    assert "--weights" in str(err.value) and "vgg16-hed" in str(err.value)


def test_weights_option_takes_a_local_pb_or_zip(tmp_path, tiny_pb, monkeypatch):
    monkeypatch.setenv("DREAMVID_CACHE", str(tmp_path / "cache"))
    assert "mixed1" in models.load_model("googlenet", weights=str(tiny_pb)).layer_names()
    archive = _serve_zip(tmp_path, tiny_pb, monkeypatch)
    monkeypatch.setattr(models, "GOOGLENET_URL", "file:///nonexistent")
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
    import tensorflow as tf

    from dreamvid.config import DreamSettings
    from dreamvid.dream import Dreamer
    from dreamvid.objectives import parse

    full = load_model(str(tiny_keras_file))
    low = load_model(str(tiny_keras_file), precision=precision)
    assert low.precision == precision and full.precision == "float32"
    img = texture(40, 48)
    act_full = full.extractor(["conv2"])(tf.constant(img[None]))[0]
    act_low = low.extractor(["conv2"])(tf.constant(img[None]))[0]
    assert act_full.dtype == tf.float32 and act_low.dtype == getattr(tf, precision)
    # same weights, less precise arithmetic: close to float32's activations, not equal
    a, b = act_full.numpy(), tf.cast(act_low, tf.float32).numpy()
    assert not np.array_equal(a, b) and np.abs(a - b).mean() < 0.05 * np.abs(a).mean()
    dreamer = Dreamer(low, parse("conv2"), DreamSettings(octaves=1, iterations=4, seed=1, device="cpu"))
    out = dreamer.dream(img)
    assert out.dtype == np.float32 and dreamer.objective_value(out) > 1.2 * dreamer.objective_value(img)


def test_frozen_graphs_refuse_lower_precision_in_one_line(tiny_pb):
    with pytest.raises(ModelError, match="float32"):
        load_model(str(tiny_pb), precision="bfloat16")
