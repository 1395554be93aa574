"""The Python API (dreamvid.api): stills, videos and zooms as functions with keyword settings,
the CLI's validation and one-line errors, progress and cancel, a network loaded once, and the
chain frame by frame. The tiny network of conftest (a .keras file, loaded as `--model` loads it)."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import pan, write_clip

import dreamvid
from dreamvid.media.sources import open_source
from dreamvid.motion import flow

H, W = 48, 64
FAST = dict(octaves=2, iterations=4, iterations_next=2, step=3.0, seed=7)


@pytest.fixture
def clip(tmp_path, texture):
    """6 frames panning 2 px right per frame over a smooth texture (one shot), lossless."""
    import cv2

    tex = cv2.GaussianBlur(texture(H, W + 12, seed=3), (0, 0), 2).astype(np.uint8)
    return str(write_clip(tmp_path / "clip.mp4", pan(tex, 6, W)))


def frames_of(path):
    with open_source(path) as src:
        return list(src)


def test_dream_takes_an_array_or_a_path_and_returns_rgb_uint8(tiny_keras_file, texture, tmp_path):
    img = texture(H, W).astype(np.uint8)
    out = dreamvid.dream(img, model=tiny_keras_file, **FAST)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.abs(out.astype(np.float32) - img).mean() > 1.0  # it dreamed
    np.testing.assert_array_equal(out, dreamvid.dream(img, model=tiny_keras_file, **FAST))  # a seed repeats
    path = tmp_path / "in.png"
    import cv2

    cv2.imwrite(str(path), img[:, :, ::-1])
    np.testing.assert_array_equal(out, dreamvid.dream(path, model=tiny_keras_file, **FAST))
    assert dreamvid.dream(img, model=tiny_keras_file, width=32, **FAST).shape == (24, 32, 3)


def test_settings_are_checked_where_the_cli_checks_them(tiny_keras_file, texture, capsys):
    img = texture(H, W).astype(np.uint8)
    for options, words in (({"octaves": 0}, "octaves must be between 1 and 12"),
                           ({"iteratons": 3}, "did you mean iterations"),
                           ({"preset": "clasic"}, "did you mean 'classic'"),
                           ({"reduce": "max"}, "reduce must be one of square, mean")):
        with pytest.raises(dreamvid.ConfigError, match=words) as err:
            dreamvid.dream(img, model=tiny_keras_file, **options)
        assert "\n" not in str(err.value)
    from dreamvid.cli import main

    assert main(["image", "x.png", "-o", "y.png", "--octaves", "0"]) == 2  # the same words on the command line
    assert "octaves must be between 1 and 12" in capsys.readouterr().err
    with pytest.raises(dreamvid.InputError, match="RGB"):
        dreamvid.dream(np.zeros((8, 8), np.uint8), model=tiny_keras_file)


def _still(img) -> str:
    import tempfile

    from dreamvid.core.files import write_image

    path = tempfile.mkstemp(suffix=".png")[1]
    write_image(path, img)
    return path


def test_a_network_loads_once_for_many_calls(tiny_keras_file, texture, monkeypatch):
    from dreamvid.engine import models

    loads = []
    real = models.load_model
    monkeypatch.setattr(models, "load_model", lambda *a, **k: (loads.append(a), real(*a, **k))[1])
    monkeypatch.setattr(models, "_LOADED", {})  # the one cache (models.cached_model), empty for this test
    img = texture(H, W).astype(np.uint8)
    for seed in range(3):
        dreamvid.dream(img, model=tiny_keras_file, seed=seed, octaves=1, iterations=1)
    assert len(loads) == 1
    net = dreamvid.load_model(tiny_keras_file)
    assert dreamvid.load_model(tiny_keras_file) is net and len(loads) == 1
    dreamvid.dream(img, model=net, octaves=1, iterations=1)
    assert len(loads) == 1
    dreamvid.render_gallery(img_path := _still(img), img_path + ".g.png", model=tiny_keras_file, tile_width=32,
                            layers="conv1,conv2", octaves=1, iterations=1)  # the gallery's tiles: the same cache
    assert len(loads) == 1


def test_render_video_reports_progress_and_returns_a_result(tiny_keras_file, clip, tmp_path):
    updates = []
    out = tmp_path / "out.mp4"
    result = dreamvid.render_video(clip, out, model=tiny_keras_file, progress=updates.append, **FAST)
    assert isinstance(result, dreamvid.RenderResult)
    assert result.frames == 6 and result.path == str(out) and os.path.isfile(out)
    assert result.record.endswith("out.mp4.json") and os.path.isfile(result.record)
    kinds = [u.kind for u in updates]
    assert kinds.count("frame") == 6 and kinds.index("start") < kinds.index("frame")
    assert [u.index for u in updates if u.kind == "frame"] == list(range(6))
    assert any(u.kind == "info" and "dreaming" in u.message for u in updates)


@pytest.mark.parametrize("how", ["callback", "event"])
def test_cancel_stops_at_a_frame_and_the_same_call_resumes_to_the_same_frames(tiny_keras_file, clip, tmp_path, how):
    whole = tmp_path / "whole/"
    dreamvid.render_video(clip, str(whole) + "/", model=tiny_keras_file, **FAST)
    out = str(tmp_path / "cut") + "/"
    stop = threading.Event()

    def progress(u):
        if u.kind == "frame" and u.index == 2:
            if how == "event":
                stop.set()
            else:
                return False

    with pytest.raises(dreamvid.Cancelled, match="resumes"):
        dreamvid.render_video(clip, out, model=tiny_keras_file, progress=progress, cancel=stop, **FAST)
    assert not os.path.exists(out)  # nothing under the output's name
    assert os.path.isdir(os.path.join(tmp_path, ".cut.dreamvid"))  # the work folder stays
    result = dreamvid.render_video(clip, out, model=tiny_keras_file, **FAST)
    assert result.resumed_from == 3 and result.frames == 6
    for a, b in zip(frames_of(out), frames_of(str(whole) + "/"), strict=True):
        np.testing.assert_array_equal(a, b)


def test_render_zoom_makes_its_frames(tiny_keras_file, texture, tmp_path):
    import cv2

    start = tmp_path / "still.png"
    cv2.imwrite(str(start), texture(H, W).astype(np.uint8))
    result = dreamvid.render_zoom(start, str(tmp_path / "zoom") + "/", model=tiny_keras_file, frames=4,
                                  zoom="0:(1.05), 3:(1.1)", **FAST)
    shots = frames_of(str(tmp_path / "zoom") + "/")
    assert result.frames == 4 and len(shots) == 4
    assert np.abs(shots[1].astype(np.float32) - shots[0]).mean() > 1.0  # each frame moved on


def test_video_dreamer_is_the_video_jobs_chain_frame_by_frame(tiny_keras_file, clip, tmp_path):
    """Fed the clip's frames one at a time, it makes the frames render_video makes."""
    out = str(tmp_path / "job") + "/"
    result = dreamvid.render_video(clip, out, model=tiny_keras_file, **FAST)
    job = frames_of(out)
    with dreamvid.VideoDreamer(model=tiny_keras_file, **FAST) as vd:
        mine = [vd.dream(f) for f in frames_of(clip)]
        assert vd.frames == 6 and vd.cuts == result.cuts == []
    for a, b in zip(mine, job, strict=True):
        np.testing.assert_array_equal(a, b)
    # the carry is what makes them: frame 3 dreamed alone differs
    alone = dreamvid.VideoDreamer(model=tiny_keras_file, no_flow=True, **FAST)
    lone = [alone.dream(f) for f in frames_of(clip)]
    np.testing.assert_array_equal(lone[0], mine[0])
    assert np.abs(lone[3].astype(np.float32) - mine[3]).mean() > 0.5


def test_video_dreamer_resets_at_a_cut_and_on_request(tiny_keras_file, texture):
    a = texture(H, W, seed=1).astype(np.uint8)
    b = (255 - texture(H, W, seed=9)).astype(np.uint8)  # another scene
    assert flow.cut_score(a, b) > dreamvid.settings("video").video.cut_threshold
    vd = dreamvid.VideoDreamer(model=tiny_keras_file, **FAST)
    first = vd.dream(a)
    vd.dream(a)
    vd.dream(b)
    assert vd.cuts == [2]
    vd.reset()
    np.testing.assert_array_equal(vd.dream(a)[..., :], vd_fresh(tiny_keras_file, a, seed=FAST["seed"] + 3))
    assert first.shape == a.shape
    with pytest.raises(dreamvid.InputError, match="one size"):
        vd.dream(a[:-2])


def vd_fresh(model, frame, seed):
    """Frame `frame` dreamed in full as frame 0 of a chain whose seed makes it frame k's."""
    vd = dreamvid.VideoDreamer(model=model, **{**FAST, "seed": seed})
    return vd.dream(frame)


def test_the_readme_example_runs(tmp_path, monkeypatch):
    """The README's Python API example, as written, from a folder holding the shipped samples."""
    readme = Path(os.path.dirname(os.path.dirname(__file__)), "README.md").read_text(encoding="utf-8")
    code = re.search(r"## The Python API.*?```python\n(.*?)```", readme, re.S).group(1)
    samples = os.path.join(os.path.dirname(os.path.dirname(__file__)), "samples")
    monkeypatch.chdir(tmp_path)
    os.symlink(samples, tmp_path / "samples")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert os.path.isfile(tmp_path / "pan-dream.mp4") and os.path.isfile(tmp_path / "coffee-dream.png")
    assert scope["result"].frames == 12
