"""The chain of a clip's frames: frame 0 of a shot dreamed in full, each later frame started from
the previous frame's dream carried along the optical flow, dreamed on, and handed to the writer.
`render_video` and a segment of a render in segments (segments.py) run the same loop,
`dream_clip`; `pipeline` feeds it the decoded frames and their motion, the writer stores and
encodes behind it.

Where the chain lives. On a CPU each dream comes back to the host, is rounded and measured there,
and the next frame's start is made from it with OpenCV (flow.carry_over). On a GPU
(`Dreamer.chain_on_device`) the chain stays on the device: the previous dream, the amount it
added and the share of it to carry (carry.carry_share_scale) are device values, the next frame's
start is made there (Dreamer.carry_over), and frame k comes back to the host only once frame k+1
is queued behind it. So the device never idles while the host fetches, stores and reports a
frame and uploads the next frame and its flow (what is left of a frame's host work once the
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

from dreamvid.config import Config


def full_float(cfg: Config) -> bool:
    """Whether a frame's dream is needed on the host in float: to change its colours or to save
    it at 16 bits. Else it comes back rounded to uint8 (on a GPU, a quarter of the bytes)."""
    return cfg.dream.keep_colors or cfg.output.bit_depth == 16


def palette(cfg: Config, dreamed: np.ndarray, original: np.ndarray) -> np.ndarray:
    """The dreamed frame as it is saved, before rounding: with `original`'s colours back when
    dream.keep_colors (colors.keep_colors: the dream's luma, the original's chroma)."""
    if not cfg.dream.keep_colors:
        return dreamed
    from dreamvid.colors import keep_colors

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


class _HostChain:
    """The chain's values on the host: NumPy frames, amounts and shares as floats."""

    on_device = False  # each frame handed on as soon as it is dreamed

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def amount(self, a, b) -> float:
        from dreamvid.dream import amount

        return amount(a, b)

    def share(self, blend: float, target: float, previous: float) -> float:
        return carry_share(blend, target, previous)

    def kept(self, dreamed, frame):
        """(the dream as saved, the frame the chain carries on (uint8), the amount it added)"""
        from dreamvid.dream import to_uint8

        dreamed = palette(self.cfg, dreamed, frame)
        out = to_uint8(dreamed)
        return dreamed, out, self.amount(out, frame)

    def fetch(self, dreamed, kept, added, carried):
        """(what the writer gets, the amount added, the share carried), on the host"""
        return (dreamed if self.cfg.output.bit_depth == 16 else kept), added, carried


class _DeviceChain:
    """The chain's values on the dream's device (module docstring): frames as backend tensors,
    amounts and shares as scalar tensors, read back only in `fetch`."""

    on_device = True  # each frame handed on once the next is queued

    def __init__(self, dreamer):
        self.dreamer = dreamer

    def amount(self, a, b):
        return self.dreamer.amount_on_device(a, b)

    def share(self, blend: float, target, previous):
        return self.dreamer.share_on_device(blend, target, previous)

    def kept(self, dreamed, frame):
        return dreamed, dreamed, self.amount(dreamed, frame)

    def fetch(self, dreamed, kept, added, carried):
        to_numpy = self.dreamer.backend.to_numpy
        return to_numpy(kept), float(to_numpy(added)), float(carried if isinstance(carried, float) else to_numpy(carried))


def dream_clip(cfg: Config, sched: dict, dreamer, weights_at, inputs, store, writer, clock, progress,
               base_seed: int, done_until: int, cuts: list[int], masks=None) -> int:
    """The frame loop of a clip, shared by a render in one piece and a segment: for each
    ((k, frame, cut), move) of `inputs` (pipeline._video_inputs), the first starting a fresh
    chain, dream frame k with seed `base_seed + k` and hand it to `writer` (stages.Writer).
    Frames before `done_until` were stored by an earlier run: read back from `store` (a Work or
    a SegmentFrames) and carried on exactly as saved. Appends the cuts met to `cuts`; returns
    the frames handled; progress.frame(k, stats) after each. `masks`: masks.Masks (frame k
    dreams where masks.at(k) says), or None.

    Frame 0 of a shot is dreamed in full; later frames start from the previous dream carried
    along the optical flow (Dreamer.carry_over) and take the `iterations` schedule's steps."""
    from dreamvid.depth import read_frame

    v = cfg.video
    as_uint8 = not full_float(cfg)
    chain = _DeviceChain(dreamer) if dreamer.chain_on_device and as_uint8 else _HostChain(cfg)
    written = 0
    prev_in = prev_dream = None  # input frame t-1 (uint8) and its dream exactly as saved
    prev_added = None  # the amount prev_dream added to prev_in, once known
    target = 0.0  # amount added to the shot's first frame
    pending = None  # the frame dreamed last, handed on once the next one is queued (or at once on the host)

    def hand_on():  # the pending frame to the writer and the progress, on the host
        nonlocal written, pending
        if pending is None:
            return
        (k, dreamed, kept, added, carried, first, t), pending = pending, None
        out, added, carried = chain.fetch(dreamed, kept, added, carried)
        writer.put(k, out)
        written += 1
        progress.frame(k, {"cut": first, "amount": added, "carried": carried, "seconds": time.perf_counter() - t})

    try:
        for (k, frame, cut), move in inputs:  # frame: (H, W, 3) uint8 RGB
            if cut:
                cuts.append(k)
                progress.info(f"scene cut at frame {k}")
            new_shot = prev_dream is None or cut or v.no_flow
            if k < done_until:  # 0) done by an earlier run: pass the stored frame on
                prev_dream = store.read(k, frame.shape)
                writer.put(k, read_frame(store.frame_path(k)) if cfg.output.bit_depth == 16 else prev_dream,
                           store=False)  # 16 bits: the stored frame at its full depth
                if new_shot:
                    target = chain.amount(prev_dream, frame)
                prev_in, prev_added, written = frame, None, written + 1  # (its amount: when a next frame needs it)
                continue
            t = time.perf_counter()
            carried = 0.0
            mask = None if masks is None else masks.at(k)  # (H, W) float32 in [0, 1]
            if new_shot:
                # 1) a new shot (or independent frames): dream the input in full
                start, iterations = frame, cfg.dream.iterations  # uint8: goes to the device as it is
            else:
                # 2) carry the previous dream along the flow, then dream on from there; carry
                #    less once the dream has grown past the shot's first frame (carry_share)
                previous = chain.amount(prev_dream, prev_in) if prev_added is None else prev_added
                carried = chain.share(v.blend, target, previous)
                with clock("flow"):  # on the dream's device where it runs on a GPU (Dreamer.carry_over)
                    start = dreamer.carry_over(prev_dream, prev_in, frame, move, blend=carried, carry=v.carry, mask=mask)
                iterations = round(sched["iterations"].at(k))
            with clock("dream"):  # on a device chain: the time to queue it
                dreamed = dreamer.dream(start, iterations=iterations, step=sched["step"].at(k),
                                        octaves=round(sched["octaves"].at(k)), seed=base_seed + k,
                                        weights=weights_at(k), mask=mask, as_uint8=as_uint8,
                                        to_host=not chain.on_device)
            dreamed, kept, added = chain.kept(dreamed, frame)  # as saved, what the chain carries on, what it added
            if new_shot:
                target = added  # the amount a full dream of this shot adds: the chain's set point
            hand_on()  # the previous frame, now that this one is queued behind it
            pending = (k, dreamed, kept, added, carried, cut or prev_in is None, t)
            if not chain.on_device:
                hand_on()
            prev_in, prev_dream, prev_added = frame, kept, added
        hand_on()
    except BaseException:
        try:
            hand_on()  # a frame already dreamed is stored, for a resume
        except Exception:
            pass  # the failure being raised says more
        raise
    return written


__all__ = ["dream_clip", "carry_share", "full_float", "palette"]
