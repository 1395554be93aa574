"""Masks (--mask): outside the mask the input stays, inside the dream is as strong as without
one, the edge can be soft, the unmasked loop is untouched, and bad masks stop the render with
one line and nothing written. Tiny networks (conftest) and 64x48 clips, so it runs in seconds."""

import glob
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_asserts import one_line_error
from helpers import pan, write_clip

from dreamvid.cli import main
from dreamvid.config.settings import Config, DreamSettings
from dreamvid.engine.dreamer import Dreamer
from dreamvid.engine.objectives import layer
from dreamvid.jobs import pipeline
from dreamvid.media.masks import prepare
from dreamvid.media.sources import open_source, read_image
from dreamvid.motion.flow import carry_over, motion

W, H = 64, 48


def settings(**kw):
    base = dict(octaves=2, octave_scale=1.4, iterations=4, step=3.0, jitter=4, seed=0, tile_size=512)
    base.update(kw)
    return DreamSettings(**base)


def left_half(h=H, w=W):
    m = np.zeros((h, w), np.float32)
    m[:, : w // 2] = 1.0
    return m


def write_grey(path, m):
    cv2.imwrite(str(path), np.clip(np.rint(m * 255), 0, 255).astype(np.uint8))
    return str(path)


@pytest.fixture(scope="module")
def model(tiny_keras_file):
    from dreamvid.engine.models import load_model

    return load_model(str(tiny_keras_file))


@pytest.fixture
def clip(tmp_path, texture):
    """4 frames panning 2 px right per frame over a texture, lossless."""
    tex = texture(H, W + 8, seed=3).astype(np.uint8)
    return str(write_clip(tmp_path / "clip.mp4", pan(tex, 4, W)))


def cfg_small(**dream):
    cfg = Config()
    cfg.dream.octaves, cfg.dream.iterations, cfg.dream.seed, cfg.dream.step = 2, 4, 7, 3.0
    cfg.dream.layers = "conv2"
    cfg.video.iterations_next = 3
    for k, v in dream.items():
        setattr(cfg.dream, k, v)
    return cfg


# ----------------------------------------------------------------------------- the dream


def test_no_mask_traces_only_the_unmasked_loop(tiny_model, texture):
    import keras

    if keras.backend.backend() == "torch":
        pytest.skip("PyTorch runs the loop eagerly: nothing is compiled, every call traces")
    d = Dreamer(tiny_model, layer("conv2"), settings())
    img = texture(48, 64)
    d.dream(img)
    assert d.trace_count == 2  # two octave sizes, as before masks existed: no masked loop traced
    d.dream(img, mask=left_half())
    assert d.trace_count == 4  # the masked loop: its own traces, once per size
    d.dream(img)
    d.dream(img, mask=left_half())
    assert d.trace_count == 4  # neither traced again


def test_all_white_mask_dreams_as_no_mask(tiny_model, texture):
    d = Dreamer(tiny_model, layer("conv2"), settings())
    img = texture(48, 64)
    plain = d.dream(img, seed=3)
    white = d.dream(img, seed=3, mask=np.ones((48, 64), np.float32))
    assert np.abs(plain - img).mean() > 1.0
    assert np.abs(plain - white).max() < 0.05, np.abs(plain - white).max()  # float rounding only


def test_hard_mask_keeps_outside_and_dreams_inside_as_strongly(tiny_model, texture):
    d = Dreamer(tiny_model, layer("conv2"), settings())
    img = texture(48, 64)
    m = left_half()
    plain = d.dream(img, seed=3)
    masked = d.dream(img, seed=3, mask=m)
    inside, outside = m > 0.5, m < 0.5
    assert np.abs(masked - img)[outside].max() <= 2.0  # exactly the input in fact
    strength = np.abs(masked - img)[inside].mean() / np.abs(plain - img)[inside].mean()
    assert 0.8 < strength < 1.25, strength


def test_inverted_feathered_mask_is_soft_and_flipped():
    m = prepare(np.repeat((left_half() * 255).astype(np.uint8)[..., None], 3, axis=2), (W, H), invert=True, feather=8)
    assert m[:, 0].max() < 0.01 and m[:, -1].min() > 0.99  # inverted: the right half dreams
    row = m[H // 2]
    ramp = row[(row > 0.05) & (row < 0.95)]
    assert len(ramp) >= 4  # a soft edge several pixels wide, not a step
    assert np.all(np.diff(row) >= -1e-6)  # rising monotonically across it
    hard = prepare(np.repeat((left_half() * 255).astype(np.uint8)[..., None], 3, axis=2), (W, H))
    assert set(np.unique(hard[H // 2])) == {0.0, 1.0}


def test_feathered_mask_dreams_less_on_the_edge(tiny_model, texture):
    d = Dreamer(tiny_model, layer("conv2"), settings())
    img = texture(48, 64)
    m = prepare((left_half() * 255).astype(np.uint8), (W, H), feather=12)
    out = d.dream(img, seed=3, mask=m)
    diff = np.abs(out - img).mean(axis=(0, 2))  # per column
    assert diff[:8].mean() > diff[28:36].mean() > diff[56:].mean()
    assert diff[56:].max() <= 2.0


def test_carry_over_carries_nothing_outside_the_mask(texture):
    a = texture(48, 64, seed=1).astype(np.uint8)
    b = np.roll(a, 2, axis=1)
    dream_a = np.clip(a.astype(np.float32) + 40, 0, 255).astype(np.uint8)
    move = motion(a, b, "dis", "medium")
    init = carry_over(dream_a, a, b, move, blend=1.0, mask=left_half())
    assert np.abs(init - b)[:, W // 2:].max() == 0.0
    assert np.abs(init - b)[:, 4: W // 2 - 4].mean() > 10.0


# ----------------------------------------------------------------------------- the jobs


def test_video_with_flow_stays_the_input_outside_the_mask(model, clip, tmp_path):
    mask = write_grey(tmp_path / "mask.png", left_half())
    out = str(tmp_path / "o") + "/"
    pipeline.render_video(cfg_small(mask=mask), clip, out, model=model)
    pipeline.render_video(cfg_small(), clip, str(tmp_path / "plain") + "/", model=model)
    frames = [read_image(f) for f in sorted(glob.glob(out + "*.png"))]
    plain = [read_image(f) for f in sorted(glob.glob(str(tmp_path / "plain") + "/*.png"))]
    inputs = list(open_source(clip))
    assert len(frames) == len(inputs) == 4
    for k, (f, p, x) in enumerate(zip(frames, plain, inputs)):
        diff = np.abs(f.astype(np.int16) - x)
        assert diff[:, W // 2:].max() <= 2, k  # nothing leaks outside along the flow
        assert diff[:, : W // 2].mean() > 0.5 * np.abs(p.astype(np.int16) - x)[:, : W // 2].mean(), k
    record = json.loads(Path(str(tmp_path / "o") + ".json").read_text())["settings"]["dream"]
    assert record["mask"] == mask and record["mask_invert"] is False and record["mask_feather"] == 0.0


def test_a_mask_folder_gives_each_frame_its_own_mask(model, clip, tmp_path):
    folder = tmp_path / "masks"
    folder.mkdir()
    for k in range(4):  # the masked band moves right 8 px a frame
        m = np.zeros((H, W), np.float32)
        m[:, 8 * k: 8 * k + 24] = 1.0
        write_grey(folder / f"m{k:02d}.png", m)
    out = str(tmp_path / "o") + "/"
    pipeline.render_video(cfg_small(mask=str(folder)), clip, out, model=model)
    for k, (f, x) in enumerate(zip(sorted(glob.glob(out + "*.png")), open_source(clip))):
        diff = np.abs(read_image(f).astype(np.int16) - x).max(axis=(0, 2))
        outside = np.ones(W, bool)
        outside[8 * k: 8 * k + 24] = False
        assert diff[outside].max() <= 2 and diff[~outside].max() > 2, k


def test_zoom_and_still_take_a_mask(model, tmp_path, texture):
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), texture(H, W).astype(np.uint8))
    mask = write_grey(tmp_path / "mask.png", left_half())
    out = tmp_path / "still.png"
    pipeline.render_image(cfg_small(mask=mask, mask_invert=True), str(photo), str(out), model=model)
    diff = np.abs(read_image(str(out)).astype(np.int16) - read_image(str(photo))).max(axis=(0, 2))
    assert diff[: W // 2].max() <= 2 and diff[W // 2:].max() > 2  # inverted: the right half dreamed
    cfg = cfg_small(mask=mask)
    cfg.zoom.frames, cfg.zoom.zoom = 2, "1.0"
    pipeline.render_zoom(cfg, str(photo), str(tmp_path / "z") + "/", model=model)
    first = read_image(sorted(glob.glob(str(tmp_path / "z") + "/*.png"))[0])
    assert np.abs(first.astype(np.int16) - read_image(str(photo)))[:, W // 2:].max() <= 2


# ----------------------------------------------------------------------------- bad masks


def _bad(capsys, tmp_path, tiny_keras_file, clip, mask, *words):
    out = tmp_path / "bad.mp4"
    code = main(["video", clip, "-o", str(out), "--model", str(tiny_keras_file), "--layers", "conv2",
                 "--octaves", "1", "--iterations", "1", "--mask", str(mask)])
    one_line_error(code, capsys.readouterr().err, *words)
    assert not out.exists() and not os.path.exists(tmp_path / ".bad.mp4.dreamvid")  # nothing written
    assert not os.path.exists(str(out) + ".json")


def test_a_mask_of_another_count_is_refused(capsys, tmp_path, tiny_keras_file, clip):
    folder = tmp_path / "masks"
    folder.mkdir()
    for k in range(3):
        write_grey(folder / f"m{k}.png", left_half())
    _bad(capsys, tmp_path, tiny_keras_file, clip, folder, "3 frames", "input has 4")


def test_a_mask_of_another_shape_is_refused(capsys, tmp_path, tiny_keras_file, clip):
    _bad(capsys, tmp_path, tiny_keras_file, clip, write_grey(tmp_path / "square.png", np.ones((48, 48))), "aspect")


def test_an_unreadable_mask_is_refused(capsys, tmp_path, tiny_keras_file, clip):
    junk = tmp_path / "mask.png"
    junk.write_text("not an image")
    _bad(capsys, tmp_path, tiny_keras_file, clip, junk, "mask.png")
    _bad(capsys, tmp_path, tiny_keras_file, clip, tmp_path / "missing.png", "missing.png")


def test_a_masked_render_resumes_to_the_same_frames(model, clip, tmp_path):
    folder = tmp_path / "masks"
    folder.mkdir()
    for k in range(4):  # a mask per frame: the resumed run must skip to frame k's own mask
        m = np.zeros((H, W), np.float32)
        m[:, 8 * k: 8 * k + 24] = 1.0
        write_grey(folder / f"m{k:02d}.png", m)
    cfg = cfg_small(mask=str(folder))

    def stop_at_1(k, stats):
        if k == 1:
            raise KeyboardInterrupt

    out = str(tmp_path / "resumed") + "/"
    with pytest.raises(KeyboardInterrupt):
        pipeline.render_video(cfg, clip, out, pipeline.Progress(frame=stop_at_1), model=model)
    assert pipeline.render_video(cfg, clip, out, model=model).resumed_from == 2
    whole = str(tmp_path / "whole") + "/"
    pipeline.render_video(cfg, clip, whole, model=model)
    a, b = sorted(glob.glob(out + "*.png")), sorted(glob.glob(whole + "*.png"))
    assert len(a) == len(b) == 4
    assert all(np.array_equal(read_image(x), read_image(y)) for x, y in zip(a, b))
