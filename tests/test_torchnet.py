"""The network as native PyTorch ops (dreamvid.engine.backends.torchnet): every layer kind it rebuilds
gives the Keras layer's numbers (odd and even sizes, "same" padding's odd pixel, pooling's
edges), frozen graphs' LRN included; what it cannot rebuild is refused by name and runs through
Keras; on the PyTorch backend the Dreamer dreams with it the dream Keras' layers dream, and a
compiled network compiles once per octave size, never again across frames; and no ascent step,
nor the clip's chain kept on the device, reads a value back to the host but a frame's fetch."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dreamvid.engine.backends import torchnet


def _every_layer_model():
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(3)
    inp = keras.Input((None, None, 3))
    a = L.Conv2D(8, 3, padding="same", activation="relu", name="c_same")(inp)
    b = L.Conv2D(8, 4, strides=2, padding="same", name="c_stride2")(a)  # the odd pixel after
    b = L.BatchNormalization(name="bn")(b)
    b = L.Activation("relu", name="act")(b)
    c = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(b)
    c = L.ReLU(max_value=6.0, name="relu6")(c)
    d = L.SeparableConv2D(16, 3, padding="same", activation="tanh", name="sep")(c)
    e = L.Conv2D(16, 3, padding="same", dilation_rate=2, name="dilated")(c)
    f = L.Add(name="add")([d, e])
    g = L.MaxPooling2D(3, strides=2, padding="same", name="max_same")(f)
    h = L.AveragePooling2D(3, strides=1, padding="same", name="avg_same1")(g)
    i = L.AveragePooling2D(2, strides=2, padding="same", name="avg_same2")(g)
    j = L.ZeroPadding2D(((1, 0), (0, 1)), name="zpad")(g)
    j = L.Conv2D(8, 2, padding="valid", name="c_valid")(j)
    k = L.Concatenate(name="cat")([h, j])
    return keras.Model(inp, [k, i, L.MaxPooling2D(2, name="max_valid")(k)])


def _keras_out(model, x):
    from keras import ops

    return [ops.convert_to_numpy(o).astype(np.float32) for o in model(ops.convert_to_tensor(x))]


def _native_out(net, x):
    with torch.no_grad():
        return [o.float().numpy() for o in net(torch.from_numpy(x))]


@pytest.mark.parametrize("size", [(23, 30), (32, 32)])
def test_every_layer_kind_gives_the_keras_numbers(texture, size):
    model = _every_layer_model()
    net = torchnet.convert(model)
    x = (texture(*size, seed=2)[None] / 127.5 - 1.0).astype(np.float32)
    for a, b in zip(_keras_out(model, x), _native_out(net, x), strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * np.abs(a).max())
    assert not any(p.requires_grad for p in net.parameters())  # frozen


def test_a_frozen_graph_with_lrn_converts(tiny_pb, texture):
    from dreamvid.engine.models import load_model

    m = load_model(str(tiny_pb))
    keras_net = m.network(["mixed2", "lrn1", "pool_valid"])
    net = torchnet.convert(keras_net)
    x = np.asarray(m.preprocess(texture(29, 34, seed=1)[None]))
    for a, b in zip(_keras_out(keras_net, x), _native_out(net, x), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * np.abs(a).max())


def test_bfloat16_networks_compute_under_autocast(tiny_keras, texture):
    from dreamvid.engine.models import from_keras

    m = from_keras(tiny_keras, preprocess="tf", default_layer="conv2", precision="bfloat16")
    keras_net = m.network(["conv2"])
    net = torchnet.convert(keras_net)
    assert net.dtype == torch.bfloat16
    x = np.asarray(m.preprocess(texture(20, 24)[None]))
    (a,), (b,) = _keras_out(keras_net, x), _native_out(net, x)
    assert np.abs(a - b).max() <= 0.02 * np.abs(a).max()  # bfloat16's rounding, not another network


def test_a_layer_it_does_not_rebuild_is_named():
    import keras

    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c")(inp)
    x = keras.layers.UpSampling2D(name="up")(x)
    with pytest.raises(torchnet.NotConvertible, match="'up' is a UpSampling2D"):
        torchnet.convert(keras.Model(inp, x))
    assert torchnet.same_padding(10, 4, 2) == (1, 1) and torchnet.same_padding(11, 3, 2) == (1, 1)
    assert torchnet.same_padding(10, 3, 2) == (0, 1)  # TensorFlow's: the odd pixel after


def test_compile_mode_reads_the_switch(monkeypatch):
    monkeypatch.delenv("DREAMVID_TORCH_COMPILE", raising=False)
    assert torchnet.compile_mode("cpu") == "off"
    monkeypatch.setenv("DREAMVID_TORCH_COMPILE", "1")
    assert torchnet.compile_mode("cpu") == "on"
    monkeypatch.setenv("DREAMVID_TORCH_COMPILE", "reduce-overhead")
    assert torchnet.compile_mode("cuda") == "reduce-overhead"
    monkeypatch.setenv("DREAMVID_TORCH_COMPILE", "fast")
    from dreamvid.core.errors import ConfigError

    with pytest.raises(ConfigError, match="DREAMVID_TORCH_COMPILE=fast"):
        torchnet.compile_mode("cpu")


# ----------------------------------------------------------------------------- the Dreamer on PyTorch


@pytest.fixture
def on_torch():
    import keras

    if keras.backend.backend() != "torch":
        pytest.skip("the Dreamer's PyTorch path: KERAS_BACKEND=torch")


def _dreamer(model, **kw):
    from dreamvid.config.settings import DreamSettings
    from dreamvid.engine.dreamer import Dreamer
    from dreamvid.engine.objectives import layer

    return Dreamer(model, layer("c3"), DreamSettings(octaves=2, iterations=3, step=3.0, seed=5, device="cpu", **kw))


def test_the_native_network_dreams_the_keras_dream(on_torch, tiny3_keras_file, texture, monkeypatch):
    from dreamvid.engine.models import load_model

    m = load_model(tiny3_keras_file)
    img = texture(40, 52, seed=3)
    native = _dreamer(m)
    assert isinstance(native.backend.native(m.network(["c3"])), torchnet.Network)
    a = native.dream(img) - img
    monkeypatch.setenv("DREAMVID_TORCH_NATIVE", "0")
    b = _dreamer(m).dream(img) - img
    assert np.abs(a).mean() > 0.5
    assert abs(np.abs(a).mean() - np.abs(b).mean()) <= 0.02 * np.abs(b).mean()
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] >= 0.99


def test_nothing_recompiles_across_frames(on_torch, tiny3_keras_file, texture, monkeypatch):
    """With the network compiled (a counting backend stands for inductor), the first frame
    compiles one graph per octave size; later frames, first-frame step counts or not, none."""
    import torch._dynamo

    from dreamvid.engine.models import load_model

    graphs = []

    def counting(gm, inputs):
        graphs.append(tuple(inputs[0].shape) if inputs else ())
        return gm.forward

    torch._dynamo.reset()
    monkeypatch.setenv("DREAMVID_TORCH_COMPILE", "on")
    monkeypatch.setattr(torchnet, "COMPILE_BACKEND", counting)
    d = _dreamer(load_model(tiny3_keras_file))
    frame = texture(64, 80, seed=1).astype(np.uint8)
    d.dream(frame, as_uint8=True)
    first = len(graphs)
    assert first == len(d.octave_sizes(64, 80)) >= 2, graphs
    for k in range(3):
        d.dream(frame, seed=k, iterations=1 + k, as_uint8=True)
    assert len(graphs) == first, graphs


# ----------------------------------------------------------------------------- nothing waits for the device


# the tensor calls that wait for the device (a value read back to the host)
_READS = {"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "cpu", "numpy", "__array__"}


class _Reads(torch.overrides.TorchFunctionMode):
    """Records each call on a torch tensor that reads a value back to the host, with its caller chain."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in _READS:
            import traceback

            self.seen.append((name, [f.name for f in traceback.extract_stack()]))
        return func(*args, **(kwargs or {}))


def test_the_recorder_sees_what_waits_for_the_device():
    with _Reads() as r:
        float(torch.ones(()))
        torch.ones(2).cpu().numpy()
        bool(torch.ones(()) > 0)
    assert [n for n, _ in r.seen] == ["__float__", "cpu", "numpy", "__bool__"]


def test_no_step_waits_for_the_device(on_torch, tiny3_keras_file, texture):
    """A frame's octaves of steps left on the device (to_host=False) read nothing back: no
    .item(), no bool of a tensor, no copy to the host, whatever the step count; the frame's one
    read is its fetch."""
    from dreamvid.engine.models import load_model

    d = _dreamer(load_model(tiny3_keras_file))
    frame = texture(64, 80, seed=1).astype(np.uint8)
    d.dream(frame, as_uint8=True)
    for steps in (3, 8):
        with _Reads() as r:
            out = d.dream(frame, iterations=steps, as_uint8=True, to_host=False)
        assert r.seen == [], r.seen
        with _Reads() as r:
            d.backend.to_numpy(out)
        assert [n for n, _ in r.seen] == ["cpu", "numpy"]


def test_the_chain_on_the_device_reads_only_its_fetches(on_torch, tiny3_keras_file, texture):
    """With the chain kept on the device (a GPU's choice, here on the CPU), frame k's start is
    carried, dreamed and measured there: the only reads back are frame k - 1's fetch once frame k
    is queued (chain.DeviceValues.fetch), none on frame 0, and the frames match the host chain's."""
    import dreamvid

    fast = {"octaves": 2, "iterations": 3, "iterations_next": 2, "step": 3.0, "seed": 7}
    frames = [np.ascontiguousarray(np.roll(texture(48, 64, seed=2), 2 * k, axis=1)).astype(np.uint8) for k in range(4)]
    host = dreamvid.VideoDreamer(model=tiny3_keras_file, **fast)
    expected = [host.dream(f) for f in frames]
    vd = dreamvid.VideoDreamer(model=tiny3_keras_file, **fast)
    vd.dreamer.carry_on_device = vd.dreamer.chain_on_device = True
    vd.reset()  # a chain with the values on the device
    got = []
    for k, f in enumerate(frames):
        with _Reads() as r:
            done = vd.push(f)
        assert [k - 1] == [i for i, _, _ in done] if k else done == []
        assert bool(r.seen) == (k > 0)  # frame k - 1 fetched
        assert all("fetch" in stack for _, stack in r.seen), [(n, s[-6:]) for n, s in r.seen if "fetch" not in s]
        got += [out for _, out, _ in done]
    got += [out for _, out, _ in vd.flush()]
    assert len(got) == 4
    for a, b in zip(got, expected):
        assert np.abs(a.astype(np.float32) - b).mean() < 0.5  # the device warp's rounding
