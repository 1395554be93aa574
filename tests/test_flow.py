"""Behaviour tests for dreamvid.motion.flow on synthetic frames made here.

Frames are windows of a smooth random colour texture: moving the window by (-sx, -sy) makes the
scene move by (sx, sy) pixels, so the true current -> previous (backward) flow is (-sx, -sy).
"""

from functools import partial

import cv2
import numpy as np
import pytest
from helpers import smooth_texture

from dreamvid.core.errors import ConfigError, InputError
from dreamvid.motion.flow import (
    DEFAULT_CUT_THRESHOLD,
    compute_flow,
    cut_score,
    motion,
    occlusion_mask,
    temporal_init,
    warp,
)

H, W = 120, 160
M = 16  # interior margin: flow and warps are only trusted away from the borders


# texture(h, w, sigma=2.0, seed=0): smooth random RGB texture, uint8 in [30, 230] (no clipping
# when detail is added)
texture = partial(smooth_texture, levels=(30, 230))


def pan(big, sx, sy, y0=80, x0=80):
    """(prev, cur) windows of `big`; the scene moves by (sx, sy) px from prev to cur."""
    prev = big[y0:y0 + H, x0:x0 + W]
    cur = big[y0 - sy:y0 - sy + H, x0 - sx:x0 - sx + W]
    return prev, cur


def interior(a):
    return a[M:-M, M:-M]


BIG = texture(300, 320)


@pytest.mark.parametrize("method", ["dis", "farneback"])
@pytest.mark.parametrize("shift", [(3, 2), (-4, 1)])
def test_compute_flow_recovers_known_shift(method, shift):
    sx, sy = shift
    prev, cur = pan(BIG, sx, sy)
    flow = compute_flow(prev, cur, method=method)  # current -> previous
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    err = np.abs(interior(flow) - np.array([-sx, -sy], np.float32))
    assert np.median(err) < 0.5
    assert np.mean(err) < 0.5


def test_compute_flow_subpixel_shift_and_direction():
    # scene moves by (+1.5, -0.75): warpAffine out(x) = big(x - t)
    t = np.float32([[1, 0, 1.5], [0, 1, -0.75]])
    moved = cv2.warpAffine(BIG, t, (BIG.shape[1], BIG.shape[0]), flags=cv2.INTER_CUBIC)
    prev, cur = BIG[80:80 + H, 80:80 + W], moved[80:80 + H, 80:80 + W]
    bw = compute_flow(prev, cur)  # current -> previous ~ (-1.5, +0.75)
    fw = compute_flow(cur, prev)  # previous -> current ~ (+1.5, -0.75)
    assert np.median(np.abs(interior(bw) - [-1.5, 0.75])) < 0.5
    assert np.median(np.abs(interior(fw) - [1.5, -0.75])) < 0.5


@pytest.mark.parametrize("preset", ["ultrafast", "fast", "medium"])
def test_dis_presets_run(preset):
    prev, cur = pan(BIG, 2, 0)
    flow = compute_flow(prev, cur, preset=preset)
    assert abs(np.median(interior(flow)[..., 0]) + 2) < 0.5


def test_compute_flow_rejects_bad_arguments():
    prev, cur = pan(BIG, 1, 1)
    with pytest.raises(ConfigError, match="dis"):
        compute_flow(prev, cur, method="lucas")
    with pytest.raises(ConfigError, match="medium"):
        compute_flow(prev, cur, preset="slow")
    with pytest.raises(InputError, match="resize"):
        compute_flow(prev, cur[:-1])


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_warp_moves_pixels_where_the_flow_says(dtype):
    prev, cur = pan(BIG, 5, -3)
    flow = np.zeros((H, W, 2), np.float32)
    flow[..., 0], flow[..., 1] = -5, 3  # exact current -> previous flow
    out = warp(prev.astype(dtype), flow)
    assert out.dtype == dtype and out.shape == prev.shape
    # integer shift: exact wherever the source is inside the frame
    np.testing.assert_allclose(out[:-3, 5:].astype(np.float32), cur[:-3, 5:].astype(np.float32), atol=1e-3)
    # with the estimated flow, close in the interior
    est = warp(prev, compute_flow(prev, cur))
    assert np.mean(np.abs(interior(est).astype(np.float32) - interior(cur))) < 2.0


def test_warp_zero_flow_is_identity_and_flow_fields_can_be_warped():
    img = np.random.default_rng(1).random((20, 30, 2)).astype(np.float32)
    np.testing.assert_array_equal(warp(img, np.zeros((20, 30, 2), np.float32)), img)
    with pytest.raises(InputError, match="size"):
        warp(img, np.zeros((10, 30, 2), np.float32))


def test_occlusion_mask_pan_flags_entering_border_and_keeps_the_rest():
    sx = 6  # scene moves right: the leftmost sx columns of cur were not in prev
    prev, cur = pan(BIG, sx, 0)
    bw, fw = compute_flow(prev, cur), compute_flow(cur, prev)
    hard = occlusion_mask(bw, fw, soften=0)
    assert set(np.unique(hard)) <= {0.0, 1.0}
    assert hard[:, : sx - 1].mean() < 0.1
    assert hard[:, sx + 2:].mean() > 0.97
    soft = occlusion_mask(bw, fw)
    assert soft.dtype == np.float32 and soft.shape == (H, W)
    assert soft.min() >= 0.0 and soft.max() <= 1.0
    assert soft[:, : sx - 1].mean() < 0.2
    assert interior(soft).mean() > 0.97


def test_occlusion_mask_flags_background_uncovered_by_a_moving_object():
    bg, obj = texture(H, W, seed=1), texture(40, 40, seed=2)

    def frame(x):
        f = bg.copy()
        f[40:80, x:x + 40] = obj
        return f

    prev, cur = frame(50), frame(58)  # object moves 8 px right
    bw, fw = compute_flow(prev, cur), compute_flow(cur, prev)
    hard = occlusion_mask(bw, fw, soften=0)
    uncovered = hard[42:78, 50:58]  # background visible in cur, hidden behind the object in prev
    assert uncovered.mean() < 0.5
    assert hard[:, :30].mean() > 0.97 and hard[:30].mean() > 0.97  # static background kept
    assert hard[45:75, 63:95].mean() > 0.9  # the object itself is tracked
    assert occlusion_mask(bw, fw)[42:78, 50:58].mean() < hard[:, :30].mean()


def test_occlusion_mask_identical_frames_keep_everything():
    f = BIG[:H, :W]
    bw = compute_flow(f, f)
    assert occlusion_mask(bw, compute_flow(f, f)).min() > 0.99


def plain_occlusion_mask(w, fw, soften=2.0):
    """occlusion_mask as first written (Ruder et al. eq. 6, one NumPy expression per step): the
    reference the vectorised version must match."""
    h, wd = w.shape[:2]
    w_hat = warp(fw, w)
    diff2 = np.sum((w + w_hat) ** 2, axis=2)
    mag2 = np.sum(w ** 2, axis=2) + np.sum(w_hat ** 2, axis=2)
    reliable = diff2 < 0.01 * mag2 + 0.5
    ys, xs = np.mgrid[0:h, 0:wd].astype(np.float32)
    px, py = xs + w[..., 0], ys + w[..., 1]
    reliable &= (px >= -0.5) & (px <= wd - 0.5) & (py >= -0.5) & (py <= h - 0.5)
    mask = reliable.astype(np.float32)
    if soften > 0:
        mask = cv2.erode(mask, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=float(soften), borderType=cv2.BORDER_REPLICATE)
    return np.clip(mask, 0.0, 1.0).astype(np.float32)


def _object_pair(dx, seed):
    bg, obj = texture(H, W, seed=seed), texture(40, 40, seed=seed + 1)
    prev, cur = bg.copy(), bg.copy()
    prev[40:80, 50:90], cur[40:80, 50 + dx:90 + dx] = obj, obj
    return prev, cur


@pytest.mark.parametrize("pair", ["pan", "pan_back", "object", "still", "random"])
@pytest.mark.parametrize("soften", [2.0, 0.0, 0.7])
def test_occlusion_mask_equals_the_plain_formula(pair, soften):
    if pair == "random":  # large, rough flows: many pixels land outside the frame or disagree
        rng = np.random.default_rng(3)
        bw = cv2.GaussianBlur(rng.normal(0, 6, (H, W, 2)).astype(np.float32), (0, 0), 3) * 4
        fw = -bw + rng.normal(0, 0.8, (H, W, 2)).astype(np.float32)
    else:
        prev, cur = {"pan": lambda: pan(BIG, 5, 3), "pan_back": lambda: pan(BIG, -7, 2),
                     "object": lambda: _object_pair(8, 4), "still": lambda: pan(BIG, 0, 0)}[pair]()
        bw, fw = compute_flow(prev, cur), compute_flow(cur, prev)
    want = plain_occlusion_mask(bw, fw, soften)
    assert 0.0 < want.mean() < 1.0 or pair == "still"  # a test with something to flag
    bw0, fw0 = bw.copy(), fw.copy()
    np.testing.assert_array_equal(occlusion_mask(bw, fw, soften), want)
    np.testing.assert_array_equal(bw, bw0)  # the flows are left as they were
    np.testing.assert_array_equal(fw, fw0)
    # windows of larger arrays (not contiguous) are taken as well
    frame = np.zeros((H + 4, W + 4, 2), np.float32)
    frame[2:-2, 2:-2] = bw
    np.testing.assert_array_equal(occlusion_mask(frame[2:-2, 2:-2], fw, soften), want)


def test_motion_is_compute_flow_both_ways_and_the_mask():
    prev, cur = _object_pair(6, 7)
    move = motion(prev, cur)
    bw, fw = compute_flow(prev, cur), compute_flow(cur, prev)
    np.testing.assert_array_equal(move.flow, bw)
    np.testing.assert_array_equal(move.mask, plain_occlusion_mask(bw, fw))


def test_cut_score_small_within_a_pan_large_at_a_cut():
    smooth = texture(300, 320, sigma=8, seed=3)
    prev, cur = pan(smooth, 3, 2)
    other = texture(H, W, sigma=8, seed=4)
    other[..., 2] //= 3  # another scene, less blue
    within, cut = cut_score(prev, cur), cut_score(prev, other)
    assert cut_score(prev, prev) == 0.0
    assert within < DEFAULT_CUT_THRESHOLD < cut
    assert cut > 3 * within


def test_cut_score_downscales_large_frames_consistently():
    a = texture(300, 320, sigma=8, seed=5)
    b = texture(300, 320, sigma=8, seed=6)
    big_a = cv2.resize(a, (1280, 1200), interpolation=cv2.INTER_LINEAR)
    big_b = cv2.resize(b, (1280, 1200), interpolation=cv2.INTER_LINEAR)
    assert abs(cut_score(big_a, big_b) - cut_score(a, b)) < 0.25 * cut_score(a, b)


def test_temporal_init_blend_zero_returns_cur():
    prev, cur = pan(BIG, 3, 1)
    dream = np.clip(prev.astype(np.float32) + 40 * np.sin(np.arange(W) / 3.0)[None, :, None], 0, 255)
    for carry in ("detail", "dream"):
        init, mask, flow = temporal_init(dream, prev, cur, blend=0.0, carry=carry)
        assert init.dtype == np.float32 and init.shape == cur.shape
        np.testing.assert_array_equal(init, cur.astype(np.float32))
        assert mask.shape == (H, W) and flow.shape == (H, W, 2)


def test_temporal_init_carries_detail_with_the_scene():
    sx, sy = 4, 2
    prev, cur = pan(BIG, sx, sy)
    detail_big = (texture(300, 320, sigma=1.5, seed=9).astype(np.float32) - 130) * 0.2  # about +-20
    d_prev, d_cur = pan(detail_big, sx, sy)  # the detail that sticks to the scene
    dream = prev.astype(np.float32) + d_prev
    init, mask, flow = temporal_init(dream, prev, cur, blend=1.0, carry="detail")
    assert np.median(np.abs(interior(flow) - [-sx, -sy])) < 0.5
    # interior: init = cur + detail moved with the scene
    assert np.mean(np.abs(interior(init) - interior(cur.astype(np.float32) + d_cur))) < 1.5
    assert np.mean(np.abs(interior(init) - interior(dream))) > 5  # not just the old dream in place
    half, _, _ = temporal_init(dream, prev, cur, blend=0.5, carry="detail")
    np.testing.assert_allclose(half - cur, 0.5 * (init - cur), atol=1e-3)  # linear in blend (no clipping here)
    # "dream" with blend=1 is the warped dream where the mask is 1
    full, _, _ = temporal_init(dream, prev, cur, blend=1.0, carry="dream")
    assert np.mean(np.abs(interior(full) - interior(cur.astype(np.float32) + d_cur))) < 1.5


def test_temporal_init_rejects_bad_arguments():
    prev, cur = pan(BIG, 1, 0)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        temporal_init(prev, prev, cur, blend=1.5)
    with pytest.raises(ConfigError, match="detail"):
        temporal_init(prev, prev, cur, blend=0.5, carry="style")
    with pytest.raises(InputError, match="size"):
        temporal_init(prev[:-2], prev, cur, blend=0.5)
