"""The temporal stage's steps 3-4 on the dream's device: carry the previous dream along the flow.

`flow.carry_over` does this on the host with OpenCV; on a GPU that host work sits between two
dreams, on the one path every frame must wait for (frame t starts from frame t-1's dream), and
costs a third as much as dreaming a 720p frame. Here the same formulas run as `keras.ops` on the
device that dreams, inside one compiled call per frame size, so the frame's start never comes
back to the host: `chain.carry_over` uploads the inputs (uint8 frames, the flow, the mask) and
hands the result to `Dreamer.dream` as a device tensor.

Contract (as flow.carry_over, see flow.temporal_init for the formulas):
  prev_dream, prev_frame, frame: (H, W, 3) uint8 (or float32 on 0..255);
  flow: (H, W, 2) float32 current -> previous, pixels (x, y);
  share: (H, W) float32 in [0, 1], how much of the previous dream to carry at each pixel
         (the blend times the occlusion mask times the user's mask);
  limit: None, or a scalar: the carried change soft-limited per pixel (flow.limit_carried).
  Returns init: (H, W, 3) float32 clipped to [0, 255].

The warp is bilinear with the border replicated, like `flow.warp`; OpenCV's remap rounds its
interpolation weights to 1/32, this does not, so the two agree to a fraction of a level.
"""

from __future__ import annotations

from dreamvid.config.settings import DEFAULTS
from dreamvid.motion.flow import CARRY_MODES


def warp(image, flow):
    """Backward warp on the device: ``out(x) = image(x + flow(x))``, bilinear, border replicated.
    image (H, W, C) float32, flow (H, W, 2) float32 -> (H, W, C) float32. H, W >= 2."""
    from keras import ops

    h, w, c = image.shape
    xs = ops.arange(w, dtype="float32")[None, :]
    ys = ops.arange(h, dtype="float32")[:, None]
    # a coordinate clamped to the image is the replicated border: both neighbours of a point
    # outside are the edge pixel
    x = ops.clip(xs + flow[..., 0], 0.0, w - 1.0)
    y = ops.clip(ys + flow[..., 1], 0.0, h - 1.0)
    x0 = ops.minimum(ops.floor(x), w - 2.0)  # the right neighbour x0 + 1 stays inside
    y0 = ops.minimum(ops.floor(y), h - 2.0)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    flat = ops.reshape(image, (h * w, c))
    top = ops.cast(y0, "int32") * w + ops.cast(x0, "int32")  # (H, W) index of the top-left neighbour

    def at(offset):
        return ops.take(flat, top + offset, axis=0)  # (H, W, C)

    upper = at(0) + fx * (at(1) - at(0))
    lower = at(w) + fx * (at(w + 1) - at(w))
    return upper + fy * (lower - upper)


def limit_carried(change, limit):
    """flow.limit_carried on the device (keras.ops, traceable): `change` (H, W, 3) float32
    soft-limited per pixel at `limit` levels, a scalar tensor; a limit <= 0 limits nothing."""
    from keras import ops

    limit = ops.cast(limit, "float32")
    rms = ops.sqrt(ops.mean(ops.square(change), axis=-1, keepdims=True))  # (H, W, 1)
    safe_limit, safe_rms = ops.maximum(limit, 1e-6), ops.maximum(rms, 1e-6)
    scale = ops.where(ops.logical_and(limit > 0.0, rms > 1e-6), safe_limit * ops.tanh(rms / safe_limit) / safe_rms, 1.0)
    return change * scale


def carry_init(prev_dream, prev_frame, frame, flow, share, carry: str = DEFAULTS["carry"], limit=None):
    """The image the dream of `frame` starts from (module docstring); keras.ops, traceable.
    limit: None, or a scalar tensor: the carried change soft-limited per pixel (limit_carried)."""
    from keras import ops

    cur = ops.cast(frame, "float32")
    if carry == "detail":  # what the dream added to frame t-1, laid over frame t
        carried = warp(ops.cast(prev_dream, "float32") - ops.cast(prev_frame, "float32"), flow)
    elif carry == "dream":  # the dreamed frame t-1 itself, as a change of frame t
        carried = warp(ops.cast(prev_dream, "float32"), flow) - cur
    else:
        raise ValueError(f"unknown carry mode {carry!r}; use one of {', '.join(CARRY_MODES)}")
    change = share[..., None] * carried
    if limit is not None:
        change = limit_carried(change, limit)
    return ops.clip(cur + change, 0.0, 255.0)


def carry_share_scale(blend, target, previous):
    """chain.carry_share on scalar tensors (keras.ops, traceable): `blend`, lowered to
    blend * target / previous when the previous frame's amount exceeds the shot's first's."""
    from keras import ops

    blend, target, previous = (ops.cast(x, "float32") for x in (blend, target, previous))
    lower = ops.logical_and(previous > target, previous > 0.0)
    return ops.where(lower, blend * target / ops.maximum(previous, 1e-30), blend)


__all__ = ["warp", "limit_carried", "carry_init", "carry_share_scale"]
