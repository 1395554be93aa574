"""The dream stage on a tiny network: the objective rises, octaves, jitter, tiling, tracing."""

import numpy as np
import pytest
from dream_asserts import assert_gradient_ascent

from dreamvid.config.settings import DreamSettings
from dreamvid.core.errors import LayerError
from dreamvid.engine.ascent import tile_grid
from dreamvid.engine.dreamer import Dreamer, octave_sizes
from dreamvid.engine.objectives import channel, layer, parse


def settings(**kw):
    base = dict(octaves=1, iterations=5, step=2.0, jitter=4, seed=0, tile_size=512)
    base.update(kw)
    return DreamSettings(**base)


@pytest.mark.parametrize("norm", ["std", "max", "mean"])
def test_objective_rises_over_steps(tiny_model, texture, norm):
    d = Dreamer(tiny_model, layer("conv2"), settings(grad_norm=norm, step=4.0 if norm == "max" else 2.0))
    assert_gradient_ascent(d, texture(32, 32))


def test_channel_and_weighted_objectives_rise(tiny_model, texture):
    obj = 1.0 * layer("conv1", "mean") + 0.5 * channel("conv2", 3)
    d = Dreamer(tiny_model, obj, settings())
    img = texture(40, 40)
    assert d.objective_value(d.dream(img)) > d.objective_value(img)


def test_dream_keeps_shape_and_range(tiny_model, texture):
    d = Dreamer(tiny_model, layer("conv2"), settings(octaves=3, octave_scale=1.5, step=50.0))
    img = texture(60, 90)
    out = d.dream(img)
    assert out.shape == img.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert np.abs(out - img).mean() > 1.0  # it dreamed


def test_octave_sizes_follow_scale():
    sizes = octave_sizes(300, 400, 4, 1.4)
    assert sizes[-1] == (300, 400) and len(sizes) == 4
    for (h0, w0), (h1, w1) in zip(sizes, sizes[1:]):
        assert abs(h1 / h0 - 1.4) < 0.05 and abs(w1 / w0 - 1.4) < 0.05
    # octaves below the minimum side are dropped, the full size always stays
    assert octave_sizes(40, 40, 6, 2.0) == [(40, 40)]


def test_each_octave_is_ascended_at_its_size(tiny_model, texture, monkeypatch):
    d = Dreamer(tiny_model, layer("conv2"), settings(octaves=3, octave_scale=1.5))
    seen = []
    real = d.ascend
    monkeypatch.setattr(d, "ascend", lambda img, *a, **k: (seen.append(img.shape[:2]), real(img, *a, **k))[1])
    d.dream(texture(90, 120))
    assert seen == octave_sizes(90, 120, 3, 1.5)


def test_jitter_roll_is_undone(tiny_model, texture):
    """A ramp image dreamed with a large jitter: the change must stay where the gradient is,
    not be rolled somewhere else. Compare with jitter 0 on a network whose receptive field is small."""
    img = texture(48, 48)
    img[:, :24] = 128.0  # flat left half: tiny gradient there
    a = Dreamer(tiny_model, layer("conv1"), settings(jitter=0, iterations=1)).ascend(img, iterations=1)
    b = Dreamer(tiny_model, layer("conv1"), settings(jitter=20, iterations=1, seed=3)).ascend(img, iterations=1)
    # with the roll undone, the per-pixel update of the circular-padded net is nearly the same
    diff_a, diff_b = np.abs(a - img), np.abs(b - img)
    corr = np.corrcoef(diff_a[4:-4, 28:-4].ravel(), diff_b[4:-4, 28:-4].ravel())[0, 1]
    assert corr > 0.8, corr


def test_tiling_covers_the_image_and_bounds_tile_size(tiny_model, texture):
    seen = []
    d = Dreamer(tiny_model, layer("conv2"), settings(tile_size=64, jitter=0))
    real = d._apply

    def spy(state, batch):
        seen.append(tuple(batch.shape[1:3]))
        return real(state, batch)

    d._apply = spy  # read when the loop is traced: records the tile shape
    img = texture(150, 200)
    out = d.ascend(img, iterations=1)
    g = np.abs(out - img).mean(axis=2)
    # every region of the image moved: no tile was skipped
    for y in range(0, 150, 50):
        for x in range(0, 200, 50):
            assert g[y:y + 50, x:x + 50].mean() > 0.05
    assert seen and all(h <= 64 and w <= 64 for h, w in seen), seen
    assert (50, 50) in seen  # 3x4 equal tiles of 50x50, none a sliver


def test_tile_grid_is_equal_tiles_of_at_most_the_tile_size():
    assert tile_grid(100, 200, 512) is None
    assert tile_grid(150, 200, 64) == (3, 4, 50, 50)
    ny, nx, th, tw = tile_grid(721, 1281, 512)
    assert (ny, nx) == (2, 3) and th <= 512 and tw <= 512 and ny * th >= 721 and nx * tw >= 1281


def test_tiled_gradient_equals_the_sum_of_each_tiles_own_gradient(tiny_model, texture):
    """Tiles wrap round the (already rolled) image: their gradients, put back in place and summed,
    are what the loop ascends on; checked against tiles cut out and differentiated one by one."""
    d = Dreamer(tiny_model, layer("conv2"), settings(tile_size=32))
    h, w = 45, 70  # 2x3 tiles of 23x24: one row and two columns wrap round
    img = texture(h, w)
    whole = d._call(d._gradient, img, d._weights(None))
    ny, nx, th, tw = tile_grid(h, w, 32)
    ext = np.concatenate([img, img[: ny * th - h]], 0)
    ext = np.concatenate([ext, ext[:, : nx * tw - w]], 1)
    single = Dreamer(tiny_model, layer("conv2"), settings(tile_size=4096))
    total = np.zeros((ny * th, nx * tw, 3), np.float32)
    for iy in range(ny):
        for ix in range(nx):
            y0, x0 = iy * th, ix * tw
            total[y0:y0 + th, x0:x0 + tw] = single._call(single._gradient, ext[y0:y0 + th, x0:x0 + tw],
                                                         d._weights(None))
    folded = total[:h, :w].copy()
    folded[: ny * th - h] += total[h:, :w]
    folded[:, : nx * tw - w] += total[:h, w:]
    folded[: ny * th - h, : nx * tw - w] += total[h:, w:]
    assert (ny, nx) == (2, 3) and np.allclose(whole, folded, atol=1e-5 * np.abs(whole).max())


def test_same_sized_frames_never_recompile(tiny_model, texture):
    """The loop is compiled once per octave size; more frames, other step counts, steps and seeds
    reuse it (PyTorch runs eagerly: nothing to compile)."""
    import keras

    if keras.backend.backend() == "torch":
        pytest.skip("PyTorch runs the loop eagerly")
    d = Dreamer(tiny_model, layer("conv2"), settings(octaves=2, octave_scale=1.5, iterations=2))
    for seed in range(4):
        d.dream(texture(48, 64, seed), seed=seed)
    first = d.trace_count
    d.dream(texture(48, 64), iterations=7, step=0.5, seed=9)  # other steps, step size and seed
    assert first == 2 and d.trace_count == 2  # two octave sizes
    d.dream(texture(70, 90), iterations=1)  # a new size compiles its own two octaves
    assert d.trace_count == 4


def test_seed_reproduces(tiny_model, texture):
    img = texture(40, 40)
    a = Dreamer(tiny_model, layer("conv2"), settings(seed=7)).dream(img)
    b = Dreamer(tiny_model, layer("conv2"), settings(seed=7)).dream(img)
    c = Dreamer(tiny_model, layer("conv2"), settings(seed=8)).dream(img)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_gradient_view_and_strip(tiny_model, texture):
    d = Dreamer(tiny_model, layer("conv2"), settings())
    img = texture(32, 32)
    g = d.gradient_image(img)
    assert g.dtype == np.uint8 and g.shape == img.shape and g.std() > 1
    strip = d.steps_strip(img, every=2, count=3)
    values = [d.objective_value(s) for s in strip]
    assert len(strip) == 3 and values[0] < values[1] < values[2]


def test_unknown_layer_and_channel_are_rejected(tiny_model):
    with pytest.raises(LayerError, match="conv2"):
        Dreamer(tiny_model, parse("conv3"), settings())
    with pytest.raises(LayerError, match="0..15"):
        Dreamer(tiny_model, parse("conv2:16"), settings())


def test_parse_objective_forms():
    obj = parse("mixed3b:1.0, mixed4c:0.5, mixed4d_3x3:139, mixed5a:3:2.5")
    assert [str(t) for t in obj.terms] == ["mixed3b", "mixed4c", "mixed4d_3x3:139", "mixed5a:3"]
    assert obj.weights == [1.0, 0.5, 1.0, 2.5]
    assert obj.layers == ["mixed3b", "mixed4c", "mixed4d_3x3", "mixed5a"]
    combined = layer("a") + 2 * layer("a") + channel("b", 1)
    assert combined.weights == [3.0, 1.0]


def test_objective_spec_parses_back_to_the_same_objective():
    for text in ("a", "a:2.0", "a:3", "a:3:2.0", "a:0.5,b:1:1e-05", "a:-2.0"):
        obj = parse(text)
        again = parse(obj.spec())
        assert [str(t) for t in again.terms] == [str(t) for t in obj.terms]
        assert again.weights == obj.weights
    assert parse("mixed4c:2.0").spec({"mixed4c": "block4_conv3"}.get) == "block4_conv3:2.0"


def test_xla_loop_matches_the_plain_one_tiled_or_not(tiny_model, texture):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the xla setting is TensorFlow's (JAX always compiles with XLA, PyTorch never)")
    img = texture(48, 80)
    for tile in (512, 64):  # one tile, then 2x2 tiles of 24x40
        plain = Dreamer(tiny_model, layer("conv2"), settings(xla="off", tile_size=tile, seed=3))
        xla = Dreamer(tiny_model, layer("conv2"), settings(xla="on", tile_size=tile, seed=3))
        assert xla.xla and not plain.xla
        a, b = plain.dream(img), xla.dream(img)
        assert np.abs(a - img).mean() > 1.0  # it dreamed
        assert np.abs(a - b).max() < 0.5  # the same steps, up to float rounding


@pytest.mark.parametrize("norm", ["std", "max", "mean"])
def test_normalised_step_does_not_depend_on_the_gradients_scale(tiny_model, texture, norm):
    # an untrained network's deep layers give gradients ~1e-11: they must dream like any other
    img = texture(40, 48)
    unit = Dreamer(tiny_model, parse("conv2"), settings(grad_norm=norm, seed=2)).dream(img)
    tiny = Dreamer(tiny_model, parse("conv2:1e-12"), settings(grad_norm=norm, seed=2)).dream(img)
    assert np.abs(unit - img).mean() > 0.5
    assert np.abs(unit - tiny).max() < 0.05


def test_uint8_frames_go_in_and_come_out_as_the_host_would_round_them(tiny_model, texture):
    """A video frame goes to the device as uint8 and its dream comes back rounded there: the same
    dream as from float32, the same bytes as to_uint8 on the host."""
    from dreamvid.core.frames import to_uint8

    d = Dreamer(tiny_model, layer("conv2"), settings(octaves=2, octave_scale=1.5, step=20.0))
    frame = np.clip(np.rint(texture(40, 56)), 0, 255).astype(np.uint8)
    as_float = d.dream(frame.astype(np.float32), seed=5)
    assert np.abs(as_float - frame).mean() > 1.0  # it dreamed
    np.testing.assert_allclose(d.dream(frame, seed=5), as_float, atol=1e-3)
    rounded = d.dream(frame, seed=5, as_uint8=True)
    assert rounded.dtype == np.uint8 and rounded.shape == frame.shape
    assert np.mean(rounded != to_uint8(as_float)) < 1e-3  # ties aside (a 1e-6 difference can flip one)
    assert np.abs(rounded.astype(np.int16) - to_uint8(as_float)).max() <= 1


def test_a_frame_in_one_compiled_call_is_the_octave_by_octave_dream(tiny_model, texture):
    """fuse_octaves (a GPU's default) dreams all octaves of a frame in one compiled call: the
    same jitter tables in the same order, so the same dream as one call per octave, masked or
    not; it compiles once per frame size, a uint8 frame and a float32 start sharing one
    compile; progress is told once, at the end."""
    d = Dreamer(tiny_model, layer("conv2"), settings(octaves=3, octave_scale=1.4, step=20.0, tile_size=32))
    frame = np.clip(np.rint(texture(48, 64)), 0, 255).astype(np.uint8)
    mask = np.zeros((48, 64), np.float32)
    mask[:, :30] = 1.0
    octave_by_octave = [d.dream(frame, seed=3, as_uint8=True), d.dream(frame, seed=3, mask=mask)]
    d.fuse_octaves = True
    told = []
    fused = d.dream(frame, seed=3, as_uint8=True, progress=lambda done, total: told.append((done, total)))
    traces = d.trace_count
    assert np.abs(fused.astype(np.float32) - frame).mean() > 1.0  # it dreamed
    n = len(d.octave_sizes(48, 64))
    assert n >= 2 and told == [(n, n)]
    assert np.abs(fused.astype(np.int16) - octave_by_octave[0]).max() <= 1  # (ties in rounding aside)
    assert np.mean(fused != octave_by_octave[0]) < 1e-3
    masked = d.dream(frame, seed=3, mask=mask)
    np.testing.assert_allclose(masked, octave_by_octave[1], atol=1e-3)
    np.testing.assert_array_equal(masked[:, 34:], frame[:, 34:])  # nothing outside the mask
    traces = d.trace_count
    for k in range(3):  # more frames, float32 starts, other step counts: no new compile
        d.dream(frame.astype(np.float32) + k, seed=k, iterations=2 + k, as_uint8=True)
    assert d.trace_count == traces or d.backend.NAME == "torch"  # (PyTorch runs eagerly: nothing compiles)


def test_a_work_map_scales_the_steps_and_cuts_nothing_in_either_loop(tiny_model, texture):
    """`work` (a touch-up's map from the occlusion mask, chain.touch_up) moves the picture more
    where it is 1 than where it is a quarter, but unlike a mask it cuts nothing: a quarter's
    side still changes. With a mask beside it the mask still cuts. One compiled call per frame
    (fuse_octaves) dreams the same as one per octave."""
    d = Dreamer(tiny_model, layer("conv2"), settings(octaves=2, octave_scale=1.4, step=20.0, tile_size=32))
    frame = np.clip(np.rint(texture(48, 64)), 0, 255).astype(np.uint8)
    work = np.full((48, 64), 0.25, np.float32)
    work[:, :32] = 1.0
    mask = np.ones((48, 64), np.float32)
    mask[:, 48:] = 0.0

    def dreams():
        return d.dream(frame, seed=3, work=work), d.dream(frame, seed=3, work=work, mask=mask)

    steered, both = dreams()
    change = np.abs(steered - frame).mean(axis=2)
    assert change[:, 4:28].mean() > 2 * change[:, 36:60].mean() > 0.5  # less where the map is low, not nothing
    np.testing.assert_array_equal(both[:, 52:], frame[:, 52:])  # the mask still cuts
    assert np.abs(both[:, :40] - frame[:, :40]).mean() > 1.0
    d.fuse_octaves = True
    for one_call, per_octave in zip(dreams(), (steered, both)):
        np.testing.assert_allclose(one_call, per_octave, atol=1e-3)


@pytest.mark.parametrize("fused", [False, True], ids=["per-octave", "one-call"])
def test_a_step_count_compiled_in_dreams_the_same_and_compiles_once_per_count(tiny_model, texture, fused):
    """static_steps (a GPU's default: XLA's GPU while loop of unknown length waits on the host
    after every step): the count is compiled into the loop instead of passed in. The same dream;
    one compile per count, none again for a count already seen; past two counts (a shot's first
    frame and the rest), one more loop with the count passed in serves every other count."""
    d = Dreamer(tiny_model, layer("conv2"), settings(octaves=2, octave_scale=1.5, step=20.0))
    d.fuse_octaves = fused
    frame = np.clip(np.rint(texture(40, 56)), 0, 255).astype(np.uint8)
    passed_in = [d.dream(frame, seed=4, iterations=n, as_uint8=True) for n in (3, 2)]
    d.static_steps = True
    before = d.trace_count
    compiled_in = [d.dream(frame, seed=4, iterations=n, as_uint8=True) for n in (3, 2)]
    for a, b in zip(passed_in, compiled_in):
        assert np.abs(a.astype(np.int16) - b).max() <= 1 and np.mean(a != b) < 1e-3  # (ties in rounding aside)
    assert np.abs(compiled_in[0].astype(np.float32) - frame).mean() > 1.0  # it dreamed
    traced = d.trace_count - before
    for k, n in enumerate((3, 2, 3, 2)):  # counts already compiled: nothing traced again
        d.dream(frame, seed=k, iterations=n, as_uint8=True)
    if d.backend.NAME != "torch":  # (PyTorch runs eagerly: nothing compiles, every call "traces")
        assert traced > 0 and d.trace_count - before == traced
        # past two counts, a schedule's further counts (4, 5, 6) share one loop with the count passed in
        fresh = Dreamer(tiny_model, layer("conv2"), settings(octaves=2, octave_scale=1.5, step=20.0))
        fresh.fuse_octaves, fresh.static_steps = fused, True
        for n in (3, 2):
            fresh.dream(frame, seed=4, iterations=n, as_uint8=True)
        two = fresh.trace_count
        for n in (4, 5, 6, 3):
            fresh.dream(frame, seed=4, iterations=n, as_uint8=True)
        assert two > 0 and fresh.trace_count - two == two // 2


def test_a_touch_up_skips_the_finest_octaves_and_keeps_the_image_s_own_fine_detail(tiny_model, texture,
                                                                                      monkeypatch):
    """skip_top=1 (a later frame's touch-up): the octaves below the full size are ascended, the
    full size is not, and what they added comes back upsampled onto the image; at least one
    octave is dreamed whatever skip_top asks."""
    d = Dreamer(tiny_model, layer("conv2"), settings(octaves=3, octave_scale=1.5, iterations=2, step=8.0))
    img = texture(96, 96).astype(np.float32)
    sizes = [tuple(s) for s in d.octave_sizes(96, 96)]
    seen = []
    real = d.ascend
    monkeypatch.setattr(d, "ascend",
                        lambda image, *a, **k: (seen.append(tuple(image.shape[:2])), real(image, *a, **k))[1])
    full = d.dream(img, seed=1)
    assert seen == sizes
    seen.clear()
    touched = d.dream(img, seed=1, skip_top=1)
    assert seen == sizes[:-1] and touched.shape == img.shape
    added = np.abs(touched - img).mean()
    assert 0 < added < np.abs(full - img).mean()  # dreamed, less than every octave adds
    # what was added is smooth at the full size: its finest (pixel-to-pixel) variation below the full dream's
    fine = lambda x: np.abs(np.diff(x - img, axis=1)).mean()  # noqa: E731
    assert fine(touched) < fine(full)
    seen.clear()
    d.dream(img, seed=1, skip_top=9)
    assert seen == sizes[:1]  # the smallest octave still dreams
