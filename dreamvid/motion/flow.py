"""Optical flow, warping, occlusion masks and scene-cut scores: numpy/OpenCV only, no file I/O.

Conventions (see DESIGN.md):
- frames are RGB, shape (H, W, 3), uint8 at the edges or float32 in [0, 255] inside;
- a flow is (H, W, 2) float32 in pixels, ``flow[y, x] = (dx, dy)``;
- **backward flow** ``flow_cur_to_prev[y, x] = (dx, dy)`` means pixel (x, y) of the current
  frame is at (x + dx, y + dy) in the previous frame, so ``warp(prev, flow_cur_to_prev)``
  lays the previous frame over the current one.

The temporal stage for frame t (``temporal_init``), after Ruder et al. 2016, "Artistic style
transfer for videos":
  1) flow both ways between the INPUT frames t-1 and t;
  2) occlusion mask from forward-backward consistency;
  3) warp what the previous dream carries onto frame t;
  4) blend it in where the mask says the pixel is visible in both frames.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from dreamvid.config.settings import DEFAULTS
from dreamvid.core.errors import ConfigError, InputError

__all__ = [
    "DEFAULT_CUT_THRESHOLD",
    "FLOW_METHODS",
    "DIS_PRESETS",
    "CARRY_MODES",
    "limit_carried",
    "compute_flow",
    "warp",
    "occlusion_mask",
    "cut_score",
    "Motion",
    "motion",
    "carry_over",
    "temporal_init",
]

FLOW_METHODS = ("dis", "farneback")
DIS_PRESETS = {
    "ultrafast": cv2.DISOpticalFlow_PRESET_ULTRAFAST,
    "fast": cv2.DISOpticalFlow_PRESET_FAST,
    "medium": cv2.DISOpticalFlow_PRESET_MEDIUM,
}
CARRY_MODES = ("detail", "dream")

# A hard cut on natural footage scores > 30 and frames within a shot ~0-10 (fast motion or
# flashes 10-25); 27 is PySceneDetect's ContentDetector default, whose score this follows.
DEFAULT_CUT_THRESHOLD = 27.0

# Ruder et al. 2016, eq. (6): a pixel is inconsistent if |w + ŵ|² >= A (|w|² + |ŵ|²) + B.
_CONSISTENCY_A = 0.01
_CONSISTENCY_B = 0.5  # px²

_CUT_MAX_WIDTH = 256  # cut_score works on a copy at most this wide: 20x faster at 1080p, same score

# One DIS object per (thread, preset): creating one costs about as much as a small frame's flow,
# and OpenCV's algorithm objects are not safe to share between threads.
_local = threading.local()


def _dis(preset: str) -> cv2.DISOpticalFlow:
    cache = getattr(_local, "dis", None)
    if cache is None:
        cache = _local.dis = {}
    if preset not in cache:
        cache[preset] = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    return cache[preset]


def _check_frame(name: str, frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f"{name} must be an RGB frame of shape (H, W, 3), got shape {frame.shape}")
    return frame


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint8:
        return frame
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def _gray(frame: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) uint8 or float [0, 255] -> (H, W) uint8 luma."""
    return cv2.cvtColor(np.ascontiguousarray(_to_uint8(frame)), cv2.COLOR_RGB2GRAY)


def _check_flow(name: str, flow: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise InputError(f"{name} must have shape (H, W, 2) (dx, dy in pixels), got shape {flow.shape}")
    if shape is not None and flow.shape[:2] != tuple(shape):
        raise InputError(f"{name} is {flow.shape[:2]} but the image is {tuple(shape)}; "
                         "compute the flow at the image's size")
    return flow.astype(np.float32, copy=False)


def compute_flow(src: np.ndarray, dst: np.ndarray, method: str = "dis", preset: str = "medium") -> np.ndarray:
    """Dense optical flow such that ``dst(x) ≈ src(x + flow(x))``.

    The flow lives on dst's pixel grid and points into src, ready for ``warp(src, flow)``.
    For backward warping of the previous frame pass ``(src=prev, dst=cur)``: the result is the
    current -> previous flow. ``(src=cur, dst=prev)`` gives the previous -> current flow.

    src, dst: RGB frames (H, W, 3), uint8 (or float in [0, 255]), same size; the flow is computed
    on their luma. method: "dis" (cv2.DISOpticalFlow; preset "ultrafast", "fast" or "medium")
    or "farneback" (cv2.calcOpticalFlowFarneback; preset ignored).
    Returns (H, W, 2) float32, pixels, (dx, dy).
    """
    src = _check_frame("src", src)
    dst = _check_frame("dst", dst)
    if src.shape != dst.shape:
        raise InputError(f"flow frames differ in size: {src.shape} vs {dst.shape}; resize them to one size first")
    return _flow_of_gray(_gray(src), _gray(dst), method, preset)


def _flow_of_gray(g_src: np.ndarray, g_dst: np.ndarray, method: str, preset: str) -> np.ndarray:
    """compute_flow on the luma (H, W) uint8 of src and dst, already checked."""
    # OpenCV's calc(I0, I1) returns f with I0(x) ≈ I1(x + f(x)), so I0 = dst, I1 = src.
    if method == "dis":
        if preset not in DIS_PRESETS:
            raise ConfigError(f"unknown DIS preset {preset!r}; use one of {', '.join(DIS_PRESETS)}")
        flow = _dis(preset).calc(g_dst, g_src, None)  # (H, W, 2) float32, pixels, dst -> src
    elif method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(
            g_dst, g_src, None,
            pyr_scale=0.5, levels=5, winsize=15,  # OpenCV sample values, 5 levels for motions up to ~30 px
            iterations=3, poly_n=5, poly_sigma=1.2, flags=0,
        )  # (H, W, 2) float32, pixels, dst -> src
    else:
        raise ConfigError(f"unknown flow method {method!r}; use one of {', '.join(FLOW_METHODS)}")
    return np.asarray(flow, dtype=np.float32)


_grid_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
_points_cache: dict[tuple[int, int], np.ndarray] = {}


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (xs, ys), each (H, W) float32; cached per size (a video has one size)."""
    grid = _grid_cache.get((h, w))
    if grid is None:
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        if len(_grid_cache) > 8:
            _grid_cache.clear()
        grid = _grid_cache[(h, w)] = (xs, ys)
    return grid


def _points(h: int, w: int) -> np.ndarray:
    """Pixel coordinates as one (H, W, 2) float32 array of (x, y), the layout of a flow, so
    `points + flow` is one vectorised add; cached per size like _grid."""
    points = _points_cache.get((h, w))
    if points is None:
        points = np.ascontiguousarray(np.stack(_grid(h, w), axis=-1))
        if len(_points_cache) > 8:
            _points_cache.clear()
        _points_cache[(h, w)] = points
    return points


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: ``out(x) = image(x + flow(x))``, bilinear, border replicated.

    image: (H, W) or (H, W, C) with C <= 4, uint8 or float32 (a flow field can be warped too).
    flow: (H, W, 2) float32 pixels on the OUTPUT grid pointing into image, e.g. the
    current -> previous flow to lay the previous frame over the current one.
    Returns the same shape and dtype as image.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and not 1 <= image.shape[2] <= 4):
        raise InputError(f"warp takes an (H, W) or (H, W, C<=4) image, got shape {image.shape}")
    flow = _check_flow("flow", flow, image.shape[:2])
    dtype = image.dtype
    if dtype not in (np.uint8, np.float32):
        image = image.astype(np.float32)
    xs, ys = _grid(*image.shape[:2])
    map_x = xs + flow[..., 0]  # (H, W) float32: where each output pixel samples image
    map_y = ys + flow[..., 1]
    out = cv2.remap(np.ascontiguousarray(image), map_x, map_y,
                    interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if image.ndim == 3 and out.ndim == 2:  # remap drops a single channel axis
        out = out[..., None]
    return out.astype(dtype, copy=False)


def occlusion_mask(flow_bw: np.ndarray, flow_fw: np.ndarray, soften: float = 2.0) -> np.ndarray:
    """Which pixels of the current frame can take their value from the previous frame.

    flow_bw: (H, W, 2) current -> previous flow w (``compute_flow(prev, cur)``).
    flow_fw: (H, W, 2) previous -> current flow (``compute_flow(cur, prev)``).
    Forward-backward consistency (Ruder et al. 2016, eq. 6): with ŵ(x) = flow_fw(x + w(x)), the
    forward flow sampled where x lands in the previous frame, the pixel is occluded (it was not
    visible in the previous frame, or the flow there is wrong) when
    ``|w + ŵ|² >= 0.01 (|w|² + |ŵ|²) + 0.5``, and also when x + w(x) falls outside the frame
    (content entering at the border during a pan).
    soften: blur radius in pixels; > 0 erodes the reliable region by one pixel and blurs it with a
    Gaussian of sigma ``soften`` so the blend has no hard seams; 0 gives the hard 0/1 mask.
    Returns (H, W) float32 in [0, 1]: 1 = carry over, 0 = occluded.
    """
    w = np.ascontiguousarray(_check_flow("flow_bw", flow_bw))
    fw = np.ascontiguousarray(_check_flow("flow_fw", flow_fw, w.shape[:2]))
    if soften < 0:
        raise ConfigError(f"soften must be >= 0 pixels, got {soften}")
    h, wd = w.shape[:2]
    # Vectorised with few temporaries (this runs for every frame pair, beside the DIS flows):
    # OpenCV's element-wise ops for the (H, W, 2) arrays, in-place NumPy for the rest, float32
    # throughout. Each sum and product is the one of the plain formula, in the same order, so
    # the mask is the same to the bit (tests/test_flow.py keeps the plain version to compare).
    # 1) where each current pixel came from, x + w(x), and the forward flow there, ŵ(x)
    src = cv2.add(w, _points(h, wd))  # (H, W, 2) float32 (x, y) in the previous frame
    w_hat = cv2.remap(fw, src, None, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # 3) (before src's buffer is reused) pixels whose source lies outside the previous frame
    #    (half-pixel footprint allowed): inRange's bounds are inclusive, as the plain test's
    inside = cv2.inRange(src, (-0.5, -0.5), (wd - 0.5, h - 0.5))  # (H, W) uint8, 255 inside
    # 2) consistency test: forward and backward flow should cancel, |w + ŵ|² < A (|w|² + |ŵ|²) + B
    sq = cv2.add(w, w_hat, dst=src)  # src's buffer from here on
    cv2.multiply(sq, sq, dst=sq)
    diff2 = np.add(sq[..., 0], sq[..., 1])  # (H, W) |w + ŵ|²
    cv2.multiply(w, w, dst=sq)
    mag2 = np.add(sq[..., 0], sq[..., 1])  # |w|²
    cv2.multiply(w_hat, w_hat, dst=w_hat)
    np.add(w_hat[..., 0], w_hat[..., 1], out=sq[..., 0])  # |ŵ|²
    mag2 += sq[..., 0]
    mag2 *= np.float32(_CONSISTENCY_A)
    mag2 += np.float32(_CONSISTENCY_B)
    reliable = np.less(diff2, mag2).view(np.uint8)  # (H, W) 0/1
    np.bitwise_and(reliable, inside, out=reliable)  # 1 & 255 = 1
    # 4) soft edges: shrink, then blur, so occluded borders fade in (erosion is a minimum: the
    #    same on 0/1 bytes as on 0/1 floats, and 4x less to read)
    if soften > 0:
        reliable = cv2.erode(reliable, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    mask = reliable.astype(np.float32)  # (H, W) 1 = carry over
    if soften > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=float(soften), borderType=cv2.BORDER_REPLICATE)
        np.clip(mask, 0.0, 1.0, out=mask)  # the kernel's float sum may exceed 1 by a rounding
    return mask


def _small_hsv(frame: np.ndarray) -> np.ndarray:
    frame = _to_uint8(frame)
    h, w = frame.shape[:2]
    if w > _CUT_MAX_WIDTH:
        scale = _CUT_MAX_WIDTH / w
        frame = cv2.resize(frame, (_CUT_MAX_WIDTH, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    # _FULL: hue on 0..255 like saturation and value (plain HSV puts hue on 0..179)
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2HSV_FULL).astype(np.int16)


def cut_score(prev: np.ndarray, cur: np.ndarray) -> float:
    """Content change between two RGB frames, after PySceneDetect's ContentDetector.

    The mean absolute difference of hue, saturation and value (each on a 0..255 scale), averaged
    over the three channels, on copies at most 256 px wide. Hue differences go the short way
    round the colour circle (red 250 vs 5 differs by 11, not 245). Typical values on natural
    footage: 0-10 within a shot, 10-25 for fast motion or flashes, > 30 at a hard cut; compare
    with DEFAULT_CUT_THRESHOLD (27, PySceneDetect's default). Identical frames score 0.
    """
    prev = _check_frame("prev", prev)
    cur = _check_frame("cur", cur)
    if prev.shape != cur.shape:
        raise InputError(f"cut_score frames differ in size: {prev.shape} vs {cur.shape}; resize them to one size first")
    a, b = _small_hsv(prev), _small_hsv(cur)  # (h, w, 3) int16, 0..255
    d = np.abs(a - b)
    d[..., 0] = np.minimum(d[..., 0], 256 - d[..., 0])  # hue is circular
    return float(d.reshape(-1, 3).mean(axis=0).mean())


@dataclass(frozen=True)
class Motion:
    """How frame t-1's pixels reach frame t, from the INPUT frames alone (so it can be computed
    ahead, while frame t-1 is still being dreamed).

    flow: (H, W, 2) float32 current -> previous flow (backward flow, see the module docstring);
    mask: (H, W) float32 in [0, 1], 1 where frame t's pixel was visible in frame t-1.
    """

    flow: np.ndarray
    mask: np.ndarray


def motion(prev_frame: np.ndarray, cur_frame: np.ndarray, flow_method: str = "dis",
           preset: str = "medium") -> Motion:
    """Steps 1-2 of the temporal stage: flow both ways between the input frames t-1 and t (the
    dream's patterns would mislead the flow), and the occlusion mask from their consistency."""
    prev_frame = _check_frame("prev_frame", prev_frame)
    cur_frame = _check_frame("cur_frame", cur_frame)
    if prev_frame.shape != cur_frame.shape:
        raise InputError(f"motion frames differ in size: {prev_frame.shape} vs {cur_frame.shape}; "
                         f"resize them to one size first")
    g_prev, g_cur = _gray(prev_frame), _gray(cur_frame)  # once for both directions
    flow_bw = _flow_of_gray(g_prev, g_cur, flow_method, preset)  # (H, W, 2) current -> previous
    flow_fw = _flow_of_gray(g_cur, g_prev, flow_method, preset)  # (H, W, 2) previous -> current
    return Motion(flow=flow_bw, mask=occlusion_mask(flow_bw, flow_fw))


def check_carry(prev_dream, prev_frame, cur_frame, move: Motion, blend: float, carry: str):
    """carry_over's arguments checked (here and for dreamvid.motion.carry): the three frames as arrays
    of one size, matching the motion; a blend in [0, 1]; a known carry mode."""
    prev_dream = _check_frame("prev_dream", prev_dream)
    prev_frame = _check_frame("prev_frame", prev_frame)
    cur_frame = _check_frame("cur_frame", cur_frame)
    if not prev_dream.shape == prev_frame.shape == cur_frame.shape == (*move.mask.shape, 3):
        raise InputError(
            f"temporal_init frames differ in size: dream {prev_dream.shape}, previous {prev_frame.shape}, "
            f"current {cur_frame.shape}; render the dream at the input frame size"
        )
    if not 0.0 <= blend <= 1.0:
        raise ConfigError(f"blend must be in [0, 1], got {blend}")
    if carry not in CARRY_MODES:
        raise ConfigError(f"unknown carry mode {carry!r}; use one of {', '.join(CARRY_MODES)}")
    return prev_dream, prev_frame, cur_frame


def carry_share(move: Motion, blend: float, mask: np.ndarray | None = None) -> np.ndarray:
    """(H, W) float32: how much of the previous dream each pixel of frame t carries, the blend
    times the occlusion mask, times the user's dream mask when there is one."""
    if mask is None:
        return move.mask if blend == 1.0 else np.float32(blend) * move.mask
    return cv2.multiply(move.mask, np.asarray(mask, np.float32).reshape(move.mask.shape), scale=float(blend))


def limit_carried(change: np.ndarray, limit: float) -> np.ndarray:
    """The change a carry lays over frame t, soft-limited per pixel: each pixel's change vector
    c (its three channels, 0..255 scale) is scaled to ``limit * tanh(|c| / limit) / |c|``, with
    |c| its root mean square over the channels, so its direction (the dream's colour) is kept,
    a change well below the limit passes almost as it is (at a quarter of it, 2% less) and no
    change reaches the limit. `limit` <= 0: no limit. (carry.limit_carried: the same on the device.)

    Why: the carry feeds each frame's dream back into the next, and a pixel the dream pushes
    hard is pushed again every frame; carry_share holds the chain's MEAN amount, but the tail
    runs away: saturated blobs that grow over a shot (metrics.detail_tail). The chain's limit
    is a multiple of what a fresh dream of the shot's first frame adds (VideoSettings.carry_limit).
    """
    if not limit > 0:
        return change
    rms = np.sqrt(np.mean(np.square(change), axis=2, keepdims=True))  # (H, W, 1)
    scale = np.divide(np.float32(limit) * np.tanh(rms / np.float32(limit)), rms,
                      out=np.ones_like(rms), where=rms > 1e-6)
    return cv2.multiply(change, cv2.merge([scale[..., 0]] * 3))


def carry_over(prev_dream: np.ndarray, prev_frame: np.ndarray, cur_frame: np.ndarray, move: Motion, *,
               blend: float, carry: str = DEFAULTS["carry"], mask: np.ndarray | None = None,
               limit: float = 0.0) -> np.ndarray:
    """Steps 3-4 of the temporal stage: warp what the previous dream carries onto frame t along
    `move` and blend it in where the mask says; see temporal_init for the arguments and formulas.
    mask: None, or the user's dream mask of frame t, (H, W) float32 in [0, 1] (masks.py): the
    blend is multiplied by it, so no dream is carried where frame t may not dream (it would
    otherwise drift outside along the flow, frame after frame).
    limit: the carried change soft-limited per pixel at this many levels (limit_carried; 0: none).
    Returns init: (H, W, 3) float32 clipped to [0, 255]."""
    prev_dream, prev_frame, cur_frame = check_carry(prev_dream, prev_frame, cur_frame, move, blend, carry)
    # OpenCV's arithmetic where it can (one pass each, outside the GIL): this runs on the dream's
    # thread, between two frames (dreamvid.motion.carry has the same on the dream's device)
    share = carry_share(move, blend, mask)
    m = cv2.merge([share] * 3)  # (H, W, 3) float32, 0..blend
    if carry == "detail":  # what the dream added to frame t-1
        carried = warp(cv2.subtract(prev_dream, prev_frame, dtype=cv2.CV_32F), move.flow)  # signed, 0..255 scale
    else:  # the dreamed frame t-1 itself, as a change of frame t
        carried = cv2.subtract(warp(prev_dream.astype(np.float32), move.flow), cur_frame, dtype=cv2.CV_32F)
    change = limit_carried(cv2.multiply(m, carried), limit)
    init = cv2.add(cur_frame, change, dtype=cv2.CV_32F)
    return np.clip(init, 0.0, 255.0, out=init)  # in place (cv2.min with a number would read it as (255, 0, 0, 0))


def temporal_init(
    prev_dream: np.ndarray,
    prev_frame: np.ndarray,
    cur_frame: np.ndarray,
    *,
    blend: float,
    flow_method: str = "dis",
    preset: str = "medium",
    carry: str = DEFAULTS["carry"],
    limit: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The image the dream of frame t starts from, carrying over the dream of frame t-1:
    `motion` (steps 1-2) then `carry_over` (steps 3-4) in one call.

    prev_dream: the dreamed frame t-1, (H, W, 3) float32 [0, 255] or uint8.
    prev_frame, cur_frame: the INPUT frames t-1 and t, (H, W, 3) uint8 (or float [0, 255]).
    blend: in [0, 1], how much of the previous dream to carry where it is visible.
    carry: "detail" carries what the dream added, prev_dream - prev_frame, and adds it to the new
    frame: ``init = cur + blend * mask * warped_detail`` (the new frame's own colours and
    lighting stay; recommended). "dream" carries the dreamed image itself:
    ``init = cur * (1 - blend * mask) + blend * mask * warped_dream``.
    limit: where > 0, the change laid over cur (``blend * mask * warped_detail``, or
    ``blend * mask * (warped_dream - cur)``) soft-limited per pixel at `limit` levels
    (limit_carried), so the dream fed back cannot run away where it is strongest.

    Returns (init, mask, flow):
      init: (H, W, 3) float32 clipped to [0, 255]; equal to cur_frame when blend == 0;
      mask: (H, W) float32 in [0, 1], 1 where frame t's pixel was visible in frame t-1;
      flow: (H, W, 2) float32 current -> previous flow of the input frames.
    """
    move = motion(prev_frame, cur_frame, flow_method, preset)
    init = carry_over(prev_dream, prev_frame, cur_frame, move, blend=blend, carry=carry, limit=limit)
    return init, move.mask, move.flow
