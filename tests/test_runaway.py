"""The carried dream does not run away within a shot (flow.limit_carried, VideoSettings.carry_limit),
and metrics.detail_tail sees it when it does.

The runaway is made for real on a tiny network built to feed back the way a deep layer does on
real footage: one 3x3 colour-opponent filter (red against green, and green against red) with an
exponential activation, so the objective's gradient grows with the colour the dream has already
pushed: each frame the carried detail is dreamed again where it is strongest. With the limit off,
a few pixels run into saturated magenta and green while the chain's share (chain.carry_share)
fades the rest; with the default limit, the shot's last quarter stays near its first frame.
"""

import glob
import os

import numpy as np
import pytest
from helpers import pan, tinted_texture, write_clip

from dreamvid.config.settings import Config, DreamSettings
from dreamvid.engine.dreamer import Dreamer
from dreamvid.engine.objectives import layer
from dreamvid.jobs import pipeline
from dreamvid.measure.metrics import Tail, detail_flicker, detail_tail
from dreamvid.media.sources import read_image
from dreamvid.motion import flow
from dreamvid.motion.carry import carry_init
from dreamvid.render.chain import carry_over

W, H, FRAMES, PAN = 128, 96, 32, 2


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """FRAMES frames panning PAN px a frame over smooth warm grey noise around 128 (its octaves
    alike), lossless; and the frames themselves."""
    frames = pan(tinted_texture(H, W + PAN * FRAMES, weighted=False), FRAMES, W, PAN)
    return write_clip(str(tmp_path_factory.mktemp("clip") / "pan.mp4"), frames), frames


@pytest.fixture(scope="module")
def feedback_model(tmp_path_factory):
    """The module docstring's network, saved as a .keras file and loaded as a user's would be."""
    import keras

    from dreamvid.engine.models import load_model

    inp = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(2, 3, padding="same", activation="exponential", use_bias=False, name="opp")
    out = conv(inp)
    k = np.zeros((3, 3, 3, 2), np.float32)
    k[..., 0, 0], k[..., 1, 0] = 2 / 9, -2 / 9  # red against green: magenta
    k[..., 1, 1], k[..., 0, 1] = 2 / 9, -2 / 9  # green against red
    conv.set_weights([k])
    path = tmp_path_factory.mktemp("model") / "opponent.keras"
    keras.Model(inp, out).save(path)
    return load_model(str(path))


def render(model, clip_path, out, **video):
    cfg = Config()
    cfg.dream.octaves, cfg.dream.iterations, cfg.dream.step, cfg.dream.seed, cfg.dream.xla = 2, 3, 1.5, 7, "off"
    cfg.dream.layers = "opp"
    cfg.video.iterations_next = 2
    for key, value in video.items():
        setattr(cfg.video, key, value)
    pipeline.render_video(cfg, clip_path, out, model=model)
    return [read_image(f) for f in sorted(glob.glob(os.path.join(out, "*.png")))]


def test_feedback_runs_away_without_the_limit_and_holds_with_it(feedback_model, clip, tmp_path):
    path, frames = clip
    free = render(feedback_model, path, str(tmp_path / "free") + "/", carry_limit=0.0)
    held = render(feedback_model, path, str(tmp_path / "held") + "/")  # the default limit
    assert len(free) == len(held) == FRAMES
    _, (free_shot,) = detail_tail(frames, free, cuts=[])
    _, (held_shot,) = detail_tail(frames, held, cuts=[])
    # the old way: saturated blobs grow over the shot while the rest fades
    assert free_shot.first.saturated < 0.001 and free_shot.last.saturated > 0.002
    assert free_shot.growth()[1] > 10 and free_shot.fades()
    # now: the shot's last quarter within 3x of its first frame, and the dream does not fade
    assert max(held_shot.growth()) <= 3.0
    assert not held_shot.fades()
    # and the detail still sticks to the scene as the flow carries it (this smooth filter's
    # dreams of single frames differ little: on real footage the ratio is 0.08-0.10, README)
    alone = render(feedback_model, path, str(tmp_path / "alone") + "/", no_flow=True)
    assert detail_flicker(frames, held, relative=True) < 0.5 * detail_flicker(frames, alone, relative=True)


def test_limit_carried_passes_small_changes_and_bounds_large_ones():
    rng = np.random.default_rng(0)
    change = (rng.standard_normal((40, 50, 3)) * rng.uniform(0.5, 120, (40, 50, 1))).astype(np.float32)
    limit = 30.0
    out = flow.limit_carried(change, limit)
    rms_in = np.sqrt(np.mean(change ** 2, axis=2))
    rms_out = np.sqrt(np.mean(out ** 2, axis=2))
    assert rms_out.max() < limit  # no pixel reaches the limit
    small = rms_in < limit / 4
    assert small.any() and np.all(rms_out[small] >= 0.97 * rms_in[small])  # small changes pass almost as they are
    big = rms_in > 2 * limit
    assert big.any() and np.all(rms_out[big] > 0.9 * limit)  # large ones pressed against it, not cut to nothing
    # each pixel's colour (the direction of its change) is kept
    cos = np.sum(out * change, axis=2) / (np.linalg.norm(out, axis=2) * np.linalg.norm(change, axis=2))
    assert cos.min() > 0.9999
    assert flow.limit_carried(change, 0.0) is change  # 0: no limit


def scene(h=48, w=64, dx=3):
    """A scene panned by dx px between two frames, and a strong dream of the first one."""
    big = tinted_texture(h, w + 16, weighted=False)
    prev, cur = big[:, 8:8 + w], big[:, 8 - dx:8 - dx + w]
    ripple = 90 * np.sin(np.arange(w) / 2.0)[None, :, None] * np.cos(np.arange(h) / 3.0)[:, None, None]
    dream = np.clip(prev.astype(np.float32) + ripple * np.float32([1, -1, 1]), 0, 255).astype(np.uint8)
    return dream, np.ascontiguousarray(prev), np.ascontiguousarray(cur)


@pytest.mark.parametrize("carry", ["detail", "dream"])
def test_the_limit_on_the_device_makes_the_hosts_start_image(tiny_model, carry):
    from keras import ops

    dreamer = Dreamer(tiny_model, layer("conv2"), DreamSettings(octaves=1, iterations=2, seed=0, xla="off"))
    dreamer.carry_on_device = True  # a GPU's choice, here on the CPU
    dream, prev, cur = scene()
    move = flow.motion(prev, cur)
    free = flow.carry_over(dream, prev, cur, move, blend=0.9, carry=carry)
    for limit in (20.0, 35.0):
        host = flow.carry_over(dream, prev, cur, move, blend=0.9, carry=carry, limit=limit)
        device = dreamer.backend.to_numpy(carry_over(dreamer, dream, prev, cur, move, blend=0.9, carry=carry,
                                                     limit=ops.convert_to_tensor(np.float32(limit))))
        assert np.abs(device - host).max() < 1.0 and np.abs(device - host).mean() < 0.05
        assert np.abs(host - free).max() > 10.0  # the limit changed the start: the comparison means something
    limited = [key for key in dreamer._helpers if key[:2] == ("carry", carry)]
    assert limited == [("carry", carry, "limited")]  # one compiled carry for every limit
    # a limit of 0 on the device limits nothing, as on the host
    zero = carry_init(*(ops.convert_to_tensor(a) for a in (dream, prev, cur, move.flow, 0.9 * move.mask)), carry,
                      limit=ops.convert_to_tensor(np.float32(0.0)))
    assert np.abs(dreamer.backend.to_numpy(zero) - free).max() < 1.0


def test_tail_counts_extreme_and_saturated_pixels():
    inp = np.full((10, 10, 3), 128, np.uint8)
    out = inp.copy()
    out[0, :5] = (255, 0, 255)  # 5 saturated magenta pixels, changed by 128 on every channel: extreme
    out[1, :3] = (250, 128, 128)  # 3 changed by 122 / 3 on average: neither
    out[2, :2] = (240, 30, 128)  # a channel below 250: changed by 70 on average, not saturated
    t = Tail.of(inp, out)
    assert t.extreme == pytest.approx(0.05) and t.saturated == pytest.approx(0.05)
    assert t.mean == pytest.approx(np.abs(out.astype(float) - inp).mean())


def test_detail_tail_groups_frames_into_shots_at_the_cuts():
    rng = np.random.default_rng(2)
    a = rng.integers(60, 70, (20, 20, 3), np.uint8)
    b = rng.integers(180, 190, (20, 20, 3), np.uint8)
    inputs = [a] * 6 + [b] * 6  # a hard cut at frame 6
    outputs = [x.copy() for x in inputs]
    for k in range(6, 12):  # the second shot's saturated share grows: 1, 2, ... 6 rows of 20
        outputs[k][:k - 5] = (255, 0, 255)
    tails, shots = detail_tail(inputs, outputs)  # the cut found on the inputs
    assert len(tails) == 12 and [(s.start, s.end) for s in shots] == [(0, 6), (6, 12)]
    assert shots[0].growth() == (1.0, 1.0)  # nothing in the first: ratios of the floor
    assert shots[1].first.saturated == pytest.approx(0.05)
    assert shots[1].last.saturated == pytest.approx(0.3)  # its last quarter (one frame of six)
    assert shots[1].growth()[1] == pytest.approx(6.0)
