"""The chain of a clip's frames: frame 0 of a shot dreamed in full, each later frame started from
the previous frame's dream carried along the optical flow, dreamed on, and handed to the writer.
`Chain` takes one frame at a time (the API's VideoDreamer and a live source use it alone);
`dream_clip` is its loop over a clip, run by `render_video` and by a segment of a render in
segments (segments.py) alike; `prepare.video_inputs` feeds it the decoded frames and their
motion, the writer stores and encodes behind it.

Where the chain lives. On a CPU each dream comes back to the host, is rounded and measured there,
and the next frame's start is made from it with OpenCV (flow.carry_over). On a GPU
(`Dreamer.chain_on_device`) the chain stays on the device: the previous dream, the amount it
added and the share of it to carry (carry.carry_share_scale) are device values, the next frame's
start is made there (`carry_over` here, with dreamvid.motion.carry's formulas), and frame k comes back
to the host only once frame k+1 is queued behind it. So the device never idles while the host fetches, stores and
reports a frame and uploads the next frame and its flow (what is left of a frame's host work once the
warp runs on the device), and no device value is read back before it is due. What leaves the
device is what the CPU path saves: the dream rounded to uint8 (a dream wanted in float, for
--keep-colors or a 16-bit output, keeps the chain on the host).

Resume: frame k is dreamed with seed `base_seed + k` and the chain carries each frame exactly as
saved; the amounts are measured the same way (on the device or on the host) whether a frame was
just dreamed or read back from the work folder, so a resumed render makes the frames an
uninterrupted one would.
"""

from __future__ import annotations

import time

import numpy as np

from dreamvid.config.settings import DEFAULTS, TOUCH_LETGO, TOUCH_STEP, TOUCH_STEPS, TOUCH_WORK, Config
from dreamvid.core.errors import InputError
from dreamvid.core.frames import amount, to_uint8
from dreamvid.engine.dreamer import Dreamer, is_tensor
from dreamvid.motion import flow
from dreamvid.motion.carry import carry_init, carry_share_scale
from dreamvid.motion.colors import keep_colors
from dreamvid.render.threads import Clock
from dreamvid.render.workfolder import stored_for_sink


def full_float(cfg: Config) -> bool:
    """Whether a frame's dream is needed on the host in float: to change its colours or to save
    it at 16 bits. Else it comes back rounded to uint8 (on a GPU, a quarter of the bytes)."""
    return cfg.dream.keep_colors or cfg.output.bit_depth == 16


def palette(cfg: Config, dreamed: np.ndarray, original: np.ndarray) -> np.ndarray:
    """The dreamed frame as it is saved, before rounding: with `original`'s colours back when
    dream.keep_colors (colors.keep_colors: the dream's luma, the original's chroma)."""
    if not cfg.dream.keep_colors:
        return dreamed
    return keep_colors(dreamed, original)


def carry_share(blend: float, target: float, previous: float) -> float:
    """The blend passed to temporal_init: `blend`, lowered in proportion when the previous
    frame's added amount exceeds the shot's first frame's (`target`).

    Why: each later frame keeps `blend` of the carried detail and the dream adds to it again,
    so the amount A obeys A' = blend * A + a, with a what `iterations_next` steps add. With the
    defaults (blend 0.9, a about half a full dream) A settles near 5x the first frame's: the
    dream runs away along the clip (measured: 12 -> 34 on 0..255 over 20 frames). Scaling the
    carry by target / A caps the fixed point at blend * target + a, about 1.4x (measured:
    12 -> 16). Only the previous frame (as saved) and the shot's first are read, so a resumed
    render computes the same share. (carry.carry_share_scale: the same on device scalars.)
    """
    if previous <= target or previous <= 0.0:
        return blend
    return blend * target / previous


def touch_blend(blend: float) -> float:
    """The share of the carried dream a touch-up keeps, blend ** TOUCH_LETGO: about a tenth of
    what a full dream lets go of where it keeps most (0.9 -> 0.99), since it adds less each frame;
    0 stays 0 (nothing carried) and 1 stays 1 (config.settings)."""
    return float(blend) ** TOUCH_LETGO


def touch_up(iterations: int, step: float, move) -> tuple[int, float, np.ndarray | None]:
    """A later frame's touch-up (video.next_skip > 0, config.settings' TOUCH_*): its steps
    (TOUCH_STEPS of `iterations`, at least 1 where there were any), their length, and its work
    map, (H, W) float32: 1 where the occlusion mask of `move` (flow.Motion) says the picture is
    new, TOUCH_WORK where the carried dream lies (None without a motion)."""
    steps = max(1, round(iterations * TOUCH_STEPS)) if iterations > 0 else 0
    work = None if move is None else (TOUCH_WORK + (1.0 - TOUCH_WORK) * (1.0 - move.mask)).astype(np.float32)
    return steps, step * TOUCH_STEP, work


def carry_over(dreamer: Dreamer, prev_dream, prev_frame, frame, move, *, blend, carry: str = DEFAULTS["carry"],
               mask=None, limit=0.0):
    """flow.carry_over for a video frame `dreamer` dreams next: the previous dream carried along
    `move` onto `frame`, the image `dream` starts from. With carry_on_device (a GPU) made on
    the device (dreamvid.motion.carry: the uint8 frames and the flow go up, nothing comes back) and
    returned as a backend tensor for `dream`; there `prev_dream` may be the tensor `dream`
    left on the device, and `blend` a device scalar (DeviceValues.share), so the chain
    of frames never waits for the host. Else on the host, a NumPy image. `limit`: the carried
    change soft-limited per pixel at this many levels (flow.limit_carried; 0: none), a float or,
    on the device, a scalar tensor (the chain's: carry_limit times the shot's first amount)."""
    from keras import ops  # Keras only once its backend is chosen

    if not dreamer.carry_on_device:
        return flow.carry_over(prev_dream, prev_frame, frame, move, blend=blend, carry=carry, mask=mask,
                               limit=float(limit))
    on_device = is_tensor(prev_dream)
    if on_device and tuple(prev_dream.shape) != tuple(np.shape(prev_frame)):
        raise InputError(f"temporal_init frames differ in size: dream {tuple(prev_dream.shape)}, "
                         f"previous {np.shape(prev_frame)}; render the dream at the input frame size")
    # (a device scalar blend is checked where it is made: no value comes back to check it here)
    arrays = flow.check_carry(prev_frame if on_device else prev_dream, prev_frame, frame, move,
                              1.0 if is_tensor(blend) else blend, carry)
    limited = is_tensor(limit) or limit > 0  # one compiled carry with the limit, one without
    key = ("carry", carry, "limited") if limited else ("carry", carry)
    fn = dreamer.compiled(key, lambda a, b, c, f, s, k, *cap: carry_init(a, b, c, f, s * ops.cast(k, "float32"), carry,
                                                                        limit=cap[0] if cap else None))
    with dreamer.backend.placement(dreamer.device):
        share = flow.carry_share(move, 1.0, mask)  # the blend multiplies it on the device
        inputs = (prev_dream if on_device else arrays[0], *arrays[1:], move.flow, share,
                  *((x if is_tensor(x) else np.float32(x)) for x in ((blend, limit) if limited else (blend,))))
        return fn(*[ops.convert_to_tensor(a) for a in inputs])


class HostValues:
    """The chain's values on the host: NumPy frames, amounts and shares as floats."""

    on_device = False  # each frame handed on as soon as it is dreamed

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def amount(self, a, b) -> float:
        return amount(a, b)

    def share(self, blend: float, target: float, previous: float) -> float:
        return carry_share(blend, target, previous)

    def kept(self, dreamed, frame):
        """(the dream as saved, the frame the chain carries on (uint8), the amount it added)"""
        dreamed = palette(self.cfg, dreamed, frame)
        out = to_uint8(dreamed)
        return dreamed, out, self.amount(out, frame)

    def fetch(self, dreamed, kept, added, carried):
        """(what the writer gets, the amount added, the share carried), on the host"""
        return (dreamed if self.cfg.output.bit_depth == 16 else kept), added, carried


class DeviceValues:
    """The chain's values on the dream's device (module docstring): frames as backend tensors,
    amounts and shares as scalar tensors, read back only in `fetch`. Its small device functions
    are compiled once per Dreamer (Dreamer.compiled)."""

    on_device = True  # each frame handed on once the next is queued

    def __init__(self, dreamer: Dreamer):
        self.dreamer = dreamer

    def amount(self, a, b):
        """frames.amount (mean |a - b| on 0..255) as a scalar tensor on the dream's device, for
        uint8 images or tensors (NumPy arrays go up): what `share` reads."""
        from keras import ops  # Keras only once its backend is chosen

        d = self.dreamer
        fn = d.compiled("amount", lambda x, y: ops.mean(ops.abs(ops.cast(x, "float32") - ops.cast(y, "float32"))))
        with d.backend.placement(d.device):
            return fn(ops.convert_to_tensor(a), ops.convert_to_tensor(b))

    def share(self, blend: float, target, previous):
        """carry_share on the dream's device (carry.carry_share_scale): the blend `carry_over`
        takes, from the amounts `amount` made, as a scalar tensor."""
        d = self.dreamer
        fn = d.compiled("share", carry_share_scale)
        with d.backend.placement(d.device):
            return fn(np.float32(blend), target, previous)

    def kept(self, dreamed, frame):
        return dreamed, dreamed, self.amount(dreamed, frame)

    def fetch(self, dreamed, kept, added, carried):
        to_numpy = self.dreamer.backend.to_numpy
        return (to_numpy(kept), float(to_numpy(added)),
                float(carried if isinstance(carried, float) else to_numpy(carried)))


class Chain:
    """A clip's chain of frames, one frame at a time: `dream(k, frame, move, new_shot=...)`
    dreams frame k (RGB uint8 (H, W, 3)) from the previous dream carried along `move`
    (flow.Motion from the previous input frame to this one), or in full where `new_shot`.
    Returns the frames finished now as (k, out, stats): on the host the frame just dreamed; with
    the chain on the device the one before it, fetched once this one is queued (`flush` hands
    on the last). out: what the writer gets (uint8 (H, W, 3), or float32 for a 16-bit output);
    stats: "cut" (a shot starts here), "amount" (mean |dream - input| on 0..255), "carried"
    (the share of the previous dream carried) and "seconds".

    Frame k is dreamed with seed `base_seed + k`; `keep` passes on a frame stored by an earlier
    run exactly as saved, so a resumed chain makes the frames an uninterrupted one would."""

    def __init__(self, cfg: Config, sched: dict, dreamer: Dreamer, weights_at, base_seed: int):
        self.cfg, self.sched, self.dreamer, self.weights_at, self.base_seed = cfg, sched, dreamer, weights_at, base_seed
        self.as_uint8 = not full_float(cfg)
        self.values = DeviceValues(dreamer) if dreamer.chain_on_device and self.as_uint8 else HostValues(cfg)
        self.prev_in = self.prev_dream = None  # input frame t-1 (uint8) and its dream exactly as saved
        self.prev_added = None  # the amount prev_dream added to prev_in, once known
        self.target = 0.0  # amount added to the shot's first frame
        self.pending = None  # the frame dreamed last, handed on once the next one is queued (or at once on the host)

    def starts_shot(self, cut: bool) -> bool:
        """Whether the next frame starts a shot (dreamed in full): the chain's first frame, a cut,
        or every frame with video.no_flow. The one rule for a render's loop and VideoDreamer."""
        return not self.started or cut or self.cfg.video.no_flow

    @property
    def started(self) -> bool:
        """Whether a frame went through: the next frame may start from its dream."""
        return self.prev_dream is not None

    def limit(self):
        """The per-pixel limit of the change carried into the next frame (flow.limit_carried):
        video.carry_limit times the amount the shot's first frame added, the amplitude a fresh
        dream gives (a float, or a scalar tensor on a device chain); 0: none."""
        k = self.cfg.video.carry_limit
        return k * self.target if k > 0 else 0.0

    def keep(self, frame: np.ndarray, stored: np.ndarray, new_shot: bool) -> None:
        """Frame `frame`'s dream `stored` (uint8, as an earlier run saved it) carried on as if just dreamed."""
        self.prev_dream = stored
        if new_shot:
            self.target = self.values.amount(stored, frame)
        self.prev_in, self.prev_added = frame, None  # (its amount: when a next frame needs it)

    def dream(self, k: int, frame: np.ndarray, move, *, new_shot: bool, cut: bool = False, mask=None,
              clock: Clock | None = None) -> list:
        """Dream frame k (see the class docstring); `mask`: (H, W) float32 in [0, 1] or None."""
        clock = clock or Clock()
        cfg, sched, values = self.cfg, self.sched, self.values
        t = time.perf_counter()
        carried, work = 0.0, None
        skip = 0 if new_shot else cfg.video.next_skip  # a later frame's touch-up (touch_up)
        step = sched["step"].at(k)
        if new_shot:
            # 1) a new shot (or independent frames): dream the input in full
            start, iterations = frame, cfg.dream.iterations  # uint8: goes to the device as it is
        else:
            # 2) carry the previous dream along the flow, then dream on from there; carry
            #    less once the dream has grown past the shot's first frame (carry_share)
            previous = values.amount(self.prev_dream, self.prev_in) if self.prev_added is None else self.prev_added
            carried = values.share(touch_blend(cfg.video.blend) if skip else cfg.video.blend, self.target, previous)
            with clock("flow"):  # on the dream's device where it runs on a GPU
                start = carry_over(self.dreamer, self.prev_dream, self.prev_in, frame, move, blend=carried,
                                   carry=cfg.video.carry, mask=mask, limit=self.limit())
            iterations = round(sched["iterations"].at(k))
            if skip:  # 3) a touch-up: fewer, longer steps, the full ones where the picture is new
                iterations, step, work = touch_up(iterations, step, move)
        with clock("dream"):  # on a device chain: the time to queue it
            dreamed = self.dreamer.dream(start, iterations=iterations, step=step,
                                         octaves=round(sched["octaves"].at(k)), seed=self.base_seed + k,
                                         weights=self.weights_at(k), mask=mask, as_uint8=self.as_uint8,
                                         to_host=not values.on_device, skip_top=skip, work=work)
        dreamed, kept, added = values.kept(dreamed, frame)  # as saved, what the chain carries on, what it added
        if new_shot:
            self.target = added  # the amount a full dream of this shot adds: the chain's set point
        done = self.flush()  # the previous frame, now that this one is queued behind it
        self.pending = (k, dreamed, kept, added, carried, cut or self.prev_in is None, t)
        if not values.on_device:
            done += self.flush()
        self.prev_in, self.prev_dream, self.prev_added = frame, kept, added
        return done

    def flush(self) -> list:
        """The frame still pending (on a device chain), fetched: [] or [(k, out, stats)]."""
        if self.pending is None:
            return []
        (k, dreamed, kept, added, carried, first, t), self.pending = self.pending, None
        out, added, carried = self.values.fetch(dreamed, kept, added, carried)
        return [(k, out, {"cut": first, "amount": added, "carried": carried, "seconds": time.perf_counter() - t})]


def dream_clip(cfg: Config, sched: dict, dreamer: Dreamer, weights_at, inputs, store, writer, clock, progress,
               base_seed: int, done_until: int, cuts: list[int], masks=None) -> int:
    """The frame loop of a clip, shared by a render in one piece and a segment: for each
    ((k, frame, cut), move) of `inputs` (prepare.video_inputs), the first starting a fresh
    chain, dream frame k with seed `base_seed + k` and hand it to `writer` (stages.Writer).
    Frames before `done_until` were stored by an earlier run: read back from `store` (a Work or
    a SegmentFrames) and carried on exactly as saved. Appends the cuts met to `cuts`; returns
    the frames handled; progress.frame(k, stats) after each. `masks`: masks.Masks (frame k
    dreams where masks.at(k) says), or None.

    Frame 0 of a shot is dreamed in full; later frames start from the previous dream carried
    along the optical flow (`carry_over`) and take the `iterations` schedule's steps."""
    chain = Chain(cfg, sched, dreamer, weights_at, base_seed)
    written = 0

    def hand_on(done):  # finished frames to the writer and the progress, on the host
        nonlocal written
        for k, out, stats in done:
            writer.put(k, out)
            written += 1
            progress.frame(k, stats)

    try:
        for (k, frame, cut), move in inputs:  # frame: (H, W, 3) uint8 RGB
            if cut:
                cuts.append(k)
                progress.info(f"scene cut at frame {k}")
            new_shot = chain.starts_shot(cut)
            if k < done_until:  # 0) done by an earlier run: pass the stored frame on
                stored = store.read(k, frame.shape)
                writer.put(k, stored_for_sink(store, k, stored, cfg.output.bit_depth), store=False)
                chain.keep(frame, stored, new_shot)
                written += 1
                continue
            mask = None if masks is None else masks.at(k)  # (H, W) float32 in [0, 1]
            hand_on(chain.dream(k, frame, move, new_shot=new_shot, cut=cut, mask=mask, clock=clock))
        hand_on(chain.flush())
    except BaseException:
        try:
            hand_on(chain.flush())  # a frame already dreamed is stored, for a resume
        except Exception:
            pass  # the failure being raised says more
        raise
    return written


__all__ = ["Chain", "dream_clip", "carry_over", "carry_share", "touch_blend", "touch_up", "full_float", "palette",
           "HostValues", "DeviceValues"]
