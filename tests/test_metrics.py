"""Behaviour tests for dreamvid.measure.metrics on synthetic clips made here.

The input clip is a pan over a smooth random texture (scene moves (3, 1) px a frame). A
"coherent" output adds a detail pattern that moves with the scene (a window of a second texture
taken at the same offsets); an "independent" output adds fresh noise of the same strength to
every frame, like dreaming each frame on its own.
"""

import cv2
import numpy as np
import pytest
from helpers import smooth_texture, write_clip

from dreamvid.core.errors import InputError
from dreamvid.measure.metrics import added_amount, detail_flicker, main, warping_error

H, W = 96, 128
N = 5
SX, SY = 3, 1


def clip(big, n=N):
    """n windows of `big`, the scene moving by (SX, SY) px a frame."""
    y0, x0 = 40, 40
    return [big[y0 - t * SY:y0 - t * SY + H, x0 - t * SX:x0 - t * SX + W] for t in range(n)]


INPUTS = [(40 + 170 * f).astype(np.uint8) for f in clip(smooth_texture(160, 200, seed=0))]  # [40, 210]
DETAIL = [30 * (f - 0.5) for f in clip(smooth_texture(160, 200, sigma=1.5, seed=1))]  # about +-15, moves with scene
NOISE = [30 * (smooth_texture(H, W, sigma=1.5, seed=10 + t) - 0.5) for t in range(N)]  # fresh each frame


def add(inputs, details):
    return [np.clip(i.astype(np.float32) + d, 0, 255).astype(np.uint8) for i, d in zip(inputs, details)]


COHERENT = add(INPUTS, DETAIL)
INDEPENDENT = add(INPUTS, NOISE)


def test_warping_error_lower_for_coherent_output():
    e_in = warping_error(INPUTS, INPUTS)
    e_coh = warping_error(INPUTS, COHERENT)
    e_ind = warping_error(INPUTS, INDEPENDENT)
    assert 0 <= e_in < e_ind and e_coh >= 0
    assert e_coh < 0.25 * e_ind


def test_detail_flicker_separates_coherent_from_independent_detail():
    f_coh = detail_flicker(INPUTS, COHERENT)
    f_ind = detail_flicker(INPUTS, INDEPENDENT)
    assert f_coh < 0.25 * f_ind
    assert detail_flicker(INPUTS, INPUTS) == 0.0  # nothing added, nothing flickers
    r_coh = detail_flicker(INPUTS, COHERENT, relative=True)
    r_ind = detail_flicker(INPUTS, INDEPENDENT, relative=True)
    assert r_coh < 0.3 < 1.0 < r_ind < 3.0  # ~0 stuck to the scene, ~2 independent zero-mean
    assert detail_flicker(INPUTS, INPUTS, relative=True) == 0.0


def test_detail_flicker_ignores_a_constant_added_offset():
    shifted = add(INPUTS, [np.full((H, W, 3), 20.0, np.float32)] * N)
    assert detail_flicker(INPUTS, shifted) < 1e-3 * detail_flicker(INPUTS, INDEPENDENT) + 1e-6


def test_added_amount_matches_known_constant():
    assert added_amount(INPUTS, add(INPUTS, [np.full((H, W, 3), 12.0, np.float32)] * N)) == pytest.approx(12.0)
    assert added_amount(INPUTS, add(INPUTS, [np.full((H, W, 3), -7.0, np.float32)] * N)) == pytest.approx(7.0)
    assert added_amount(INPUTS, INPUTS) == 0.0


def test_measures_reject_mismatched_clips():
    with pytest.raises(InputError, match="same frames"):
        warping_error(INPUTS, COHERENT[:-1])
    with pytest.raises(InputError, match="resize"):
        detail_flicker(INPUTS, [f[:-2] for f in COHERENT])
    with pytest.raises(InputError, match="at least 2"):
        warping_error(INPUTS[:1], COHERENT[:1])


def _write(path, frames):
    """Encodes frames to an MP4 at high quality (lossy, but far below the detail's size): H.264 at
    crf 0 in 4:2:0, what imageio-ffmpeg's quality 10 writes."""
    write_clip(path, frames, fps=10, pix_fmt="yuv420p")


def test_main_prints_one_line_per_output(tmp_path, capsys):
    inp, coh, ind = tmp_path / "in.mp4", tmp_path / "coh.mp4", tmp_path / "ind.mp4"
    _write(inp, INPUTS)
    _write(coh, COHERENT)
    _write(ind, INDEPENDENT)
    main([str(inp), str(coh), str(ind), "--max-frames", "4"])
    printed = capsys.readouterr().out.strip().splitlines()
    lines = [line for line in printed if not line.startswith("  ")]
    assert len(lines) == 2
    assert lines[0].startswith(str(coh)) and lines[1].startswith(str(ind))
    # under each, its tail per shot: one shot of the four frames
    tails = [line for line in printed if line.startswith("  frames ")]
    assert len(tails) == 2 and all(t.startswith("  frames 0-3: extreme ") for t in tails), printed

    def value(line, key):
        return float(line.split(key + "=")[1].split()[0])

    assert value(lines[0], "frames") == 4
    assert value(lines[0], "detail_flicker") < value(lines[1], "detail_flicker")
    assert value(lines[0], "warping_error") < value(lines[1], "warping_error")


def test_main_resizes_input_to_output_size(tmp_path, capsys):
    inp, out = tmp_path / "in.mp4", tmp_path / "small.mp4"
    _write(inp, INPUTS)
    _write(out, [cv2.resize(f, (W // 2, H // 2), interpolation=cv2.INTER_AREA) for f in COHERENT])
    main([str(inp), str(out)])
    line = capsys.readouterr().out.strip().splitlines()[0]
    assert "frames=5" in line and "nan" not in line


def test_main_missing_file_exits_with_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "nope.mp4"), str(tmp_path / "out.mp4")])
    assert e.value.code == 2
    assert "not found" in capsys.readouterr().err
