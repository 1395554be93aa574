"""Temporal coherence of a rendered video, measured against its input.

All flows are computed on the INPUT frames (the dream's patterns would fool the flow) and point
from frame t+1 to frame t (backward flow), so frame t is warped onto frame t+1; pixels the
forward-backward test marks occluded (``flow.occlusion_mask``, hard 0/1) are left out.

- ``warping_error``: Lai et al. 2018, "Learning Blind Video Temporal Consistency": mean squared
  RGB difference (RGB in [0, 1]) between output t+1 and output t warped onto t+1. It includes
  the input's own warping error (lighting changes, flow errors), so compare renders of the same
  input, and the input itself as the floor.
- ``detail_flicker``: the same error on the dream's added detail d_t = output_t - input_t alone,
  which cancels the input's share: 0 when the detail sticks to the scene. The headline number
  for flow-guided versus independent renders; ``relative=True`` divides by the detail's energy,
  so renders that add more or less detail compare fairly (0 = detail moves with the scene,
  about 2 = independent zero-mean detail in every frame).
- ``added_amount``: mean |output - input| on the 0..255 scale: how much the dream added.
- ``detail_tail``: the runaway of a carried dream, per frame and per shot: the share of pixels
  the dream changed to an extreme (mean |output - input| over the channels above 100/255), the
  share of saturated colour (a channel >= 250 and another <= 30: the magenta and green blobs a
  runaway feedback grows) and the mean change. A steady chain keeps each shot's last quarter
  near its first frame, which is dreamed afresh; a runaway grows the tails 8-24x while the mean
  stays put (so ``added_amount`` alone does not see it).

``measure_videos`` streams files and gives all of them per output (``Measures``).

Command line: ``python -m dreamvid.measure.metrics INPUT OUTPUT [OUTPUT2 ...] [--max-frames N]``: a line
of the measures per output, then a line of its tail per shot.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from dreamvid.config.settings import VideoSettings
from dreamvid.core.errors import DreamvidError, InputError
from dreamvid.media.sources import list_sequence, read_image
from dreamvid.motion.flow import DEFAULT_CUT_THRESHOLD, compute_flow, occlusion_mask, warp
from dreamvid.render.plan import CutTest, scan_cuts

MIN_SHOT_FRAMES = VideoSettings.min_shot_frames  # the renderer's default: cuts found as it finds them

__all__ = ["warping_error", "added_amount", "detail_flicker", "detail_tail", "shot_tails", "Tail", "ShotTail",
           "Measures", "measure_videos", "main"]

EXTREME_CHANGE = 100.0  # mean |output - input| over the channels (0..255) past which a pixel's change is extreme
SATURATED_HIGH, SATURATED_LOW = 250, 30  # a channel at least this high and another at most this low: saturated
RATIO_FLOOR = 1e-4  # a share below 0.01% counts as 0.01% in a growth ratio (a frame with no extreme pixel)


# --- per-pair terms -------------------------------------------------------------------------


def _pair_flow(in0: np.ndarray, in1: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Flow (H, W, 2) float32 from input frame t+1 to frame t (backward), and the hard
    (H, W) float32 0/1 mask of frame t+1's pixels that were visible in frame t."""
    flow_bw = compute_flow(in0, in1, method)  # (H, W, 2) t+1 -> t
    flow_fw = compute_flow(in1, in0, method)  # (H, W, 2) t -> t+1
    return flow_bw, occlusion_mask(flow_bw, flow_fw, soften=0.0)


def _masked_mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(sum over unmasked pixels of the squared difference, summed over channels; channel-pixel count)."""
    d2 = np.sum((a - b) ** 2, axis=2)  # (H, W)
    return float(np.sum(d2 * mask)), float(np.sum(mask)) * a.shape[2]


class Measures:
    """The measures of one output, accumulated frame by frame (`add_frame`) and over consecutive
    frame pairs (`add_pair`): warping_error, detail_flicker and added_amount as the functions
    below; `tails`, each frame's Tail, and `cuts`, the frames that start a shot, for `shots`."""

    def __init__(self) -> None:
        self.werr_sum = 0.0  # sum over pairs of the per-pair masked MSE, RGB in [0, 1]
        self.flick_sum = 0.0  # same for the detail
        self.energy_sum = 0.0  # sum over pairs of the masked mean d_{t+1}², detail in [0, 1]
        self.pairs = 0  # pairs with at least one unoccluded pixel
        self.added_sum = 0.0  # sum over frames of mean |output - input|, 0..255
        self.frames = 0
        self.tails: list[Tail] = []
        self.cuts: list[int] = []

    def add_frame(self, inp: np.ndarray, out: np.ndarray) -> None:
        tail = Tail.of(inp, out)
        self.added_sum += tail.mean
        self.tails.append(tail)
        self.frames += 1

    def add_pair(self, in0, in1, out0, out1, flow_bw, mask) -> None:
        i0, i1 = in0.astype(np.float32) / 255.0, in1.astype(np.float32) / 255.0  # (H, W, 3) in [0, 1]
        o0, o1 = out0.astype(np.float32) / 255.0, out1.astype(np.float32) / 255.0
        # output t warped onto t+1
        se, n = _masked_mse(o1, warp(o0, flow_bw), mask)
        if n == 0:  # everything occluded (e.g. an undetected cut): the pair says nothing
            return
        d0, d1 = o0 - i0, o1 - i1  # added detail, signed
        sf, _ = _masked_mse(d1, warp(d0, flow_bw), mask)
        energy, _ = _masked_mse(d1, np.zeros_like(d1), mask)
        self.werr_sum += se / n
        self.flick_sum += sf / n
        self.energy_sum += energy / n
        self.pairs += 1

    def warping_error(self) -> float:
        return self.werr_sum / self.pairs if self.pairs else float("nan")

    def detail_flicker(self, relative: bool = False) -> float:
        if not self.pairs:
            return float("nan")
        if relative:
            return self.flick_sum / self.energy_sum if self.energy_sum > 0 else 0.0
        return self.flick_sum / self.pairs

    def added_amount(self) -> float:
        return self.added_sum / self.frames if self.frames else float("nan")

    def shots(self) -> list[ShotTail]:
        """The ShotTail of each shot (detail_tail)."""
        return shot_tails(self.tails, self.cuts)


def _check_pairs(inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray], need: int) -> None:
    if len(inputs) != len(outputs):
        raise InputError(f"{len(inputs)} input frames but {len(outputs)} output frames; pass the same frames of both")
    if len(inputs) < need:
        raise InputError(f"temporal measures need at least {need} frames, got {len(inputs)}")
    for t, (i, o) in enumerate(zip(inputs, outputs)):
        if np.shape(i) != np.shape(o) or np.ndim(i) != 3 or np.shape(i)[2] != 3:
            raise InputError(
                f"frame {t}: input {np.shape(i)} and output {np.shape(o)} must both be RGB (H, W, 3) of one size; "
                "resize the input to the output's size"
            )


def _run(inputs, outputs, method: str, pairs: bool) -> Measures:
    acc = Measures()
    for t in range(len(inputs)):
        acc.add_frame(inputs[t], outputs[t])
        if pairs and t > 0:
            flow_bw, mask = _pair_flow(inputs[t - 1], inputs[t], method)
            acc.add_pair(inputs[t - 1], inputs[t], outputs[t - 1], outputs[t], flow_bw, mask)
    return acc


# --- public measures ------------------------------------------------------------------------


def warping_error(inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray], method: str = "dis") -> float:
    """Lai et al. 2018 warping error: lower is more coherent.

    For each t: flow from input frame t+1 to input frame t, output t warped onto t+1, squared RGB
    difference (RGB in [0, 1]) averaged over the pixels and channels not occluded; then averaged
    over t. inputs, outputs: equal-length sequences (>= 2) of RGB (H, W, 3) frames, uint8 or float
    [0, 255], input t the same size as output t. NaN if every pair is fully occluded.
    """
    _check_pairs(inputs, outputs, 2)
    return _run(inputs, outputs, method, True).warping_error()


def added_amount(inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    """Mean |output - input| per pixel and channel on the 0..255 scale, averaged over frames:
    how much the dream changed the video (0 = untouched)."""
    _check_pairs(inputs, outputs, 1)
    return _run(inputs, outputs, "dis", False).added_amount()


def detail_flicker(
    inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray], method: str = "dis", relative: bool = False
) -> float:
    """Flicker of the dream's added detail d_t = output_t - input_t: lower is more coherent.

    For each t: d_t warped onto t+1 with the input flow (t+1 -> t), squared difference to d_{t+1}
    (RGB in [0, 1]) averaged over the non-occluded pixels and channels; then averaged over t.
    Unlike ``warping_error`` it does not count the input's own changes. relative=True divides
    by the mean detail energy mean(d_{t+1}²) over the same pixels: 0 = the detail moves with the
    scene, about 2 = independent zero-mean detail each frame; 0.0 when nothing was added.
    """
    _check_pairs(inputs, outputs, 2)
    return _run(inputs, outputs, method, True).detail_flicker(relative)


# --- the tail of the detail: runaway feedback -----------------------------------------------


@dataclass(frozen=True)
class Tail:
    """One frame's tail (or the mean over frames): `extreme`, the share of pixels whose mean
    |output - input| over the channels exceeds EXTREME_CHANGE; `saturated`, the share of output
    pixels with a channel >= SATURATED_HIGH and another <= SATURATED_LOW; `mean`, the mean
    |output - input| on 0..255. Shares in [0, 1]."""

    extreme: float
    saturated: float
    mean: float

    @staticmethod
    def of(inp: np.ndarray, out: np.ndarray) -> Tail:
        """The tail of RGB (H, W, 3) `out` against its input `inp` (uint8 or float on 0..255)."""
        i, o = np.asarray(inp, np.float32), np.asarray(out, np.float32)
        change = np.abs(o - i).mean(axis=2)  # (H, W) 0..255
        sat = (o.max(axis=2) >= SATURATED_HIGH) & (o.min(axis=2) <= SATURATED_LOW)  # (H, W) bool
        return Tail(float(np.mean(change > EXTREME_CHANGE)), float(np.mean(sat)), float(change.mean()))

    @staticmethod
    def mean_of(tails: Sequence[Tail]) -> Tail:
        return Tail(*(float(np.mean([getattr(t, f) for t in tails])) for f in ("extreme", "saturated", "mean")))


@dataclass(frozen=True)
class ShotTail:
    """A shot's frames [start, end) of a render: `first`, its first frame's Tail (dreamed afresh,
    the chain's reference); `last`, the mean Tail over its last quarter (at least one frame)."""

    start: int
    end: int
    first: Tail
    last: Tail

    def growth(self) -> tuple[float, float]:
        """(extreme, saturated): last quarter over first frame, shares floored at RATIO_FLOOR.
        Near 1 for a steady chain; the runaway's magenta blobs reach 8-24."""
        return tuple(max(getattr(self.last, f), RATIO_FLOOR) / max(getattr(self.first, f), RATIO_FLOOR)
                     for f in ("extreme", "saturated"))

    def describe(self) -> str:
        """'frames 0-29: extreme 0.14% -> 0.10% (0.7x), saturated ...': one line for a report."""
        ge, gs = self.growth()
        return (f"frames {self.start}-{self.end - 1}: extreme {100 * self.first.extreme:.2f}% -> "
                f"{100 * self.last.extreme:.2f}% ({ge:.1f}x), saturated {100 * self.first.saturated:.2f}% -> "
                f"{100 * self.last.saturated:.2f}% ({gs:.1f}x), "
                f"mean change {self.first.mean:.1f} -> {self.last.mean:.1f}"
                f" (first frame -> last quarter)")

    def fades(self) -> bool:
        """Whether the dream fades along the shot: the last quarter's mean change below the first frame's."""
        return self.last.mean < self.first.mean


def shot_tails(tails: Sequence[Tail], cuts: Sequence[int]) -> list[ShotTail]:
    """Per-frame `tails` grouped into shots that start at frame 0 and at each of `cuts`."""
    starts = sorted({0, *(c for c in cuts if 0 < c < len(tails))})
    out = []
    for a, b in zip(starts, starts[1:] + [len(tails)]):
        q = max(1, (b - a) // 4)
        out.append(ShotTail(a, b, tails[a], Tail.mean_of(tails[b - q:b])))
    return out


def detail_tail(inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray], cuts: Sequence[int] | None = None,
                threshold: float = DEFAULT_CUT_THRESHOLD,
                min_shot: int = MIN_SHOT_FRAMES) -> tuple[list[Tail], list[ShotTail]]:
    """(the Tail of each frame, the ShotTail of each shot) of a render: how far the carried dream
    runs away within a shot. `cuts`: the frames that start a shot (a render's record has them);
    None: found on the inputs as the renderer finds them (plan.scan_cuts: flow.cut_score above
    `threshold`, at least `min_shot` frames after the last cut)."""
    _check_pairs(inputs, outputs, 1)
    tails = [Tail.of(i, o) for i, o in zip(inputs, outputs)]
    if cuts is None:
        cuts = scan_cuts(inputs, threshold, min_shot)[1]
    return tails, shot_tails(tails, cuts)


REVEAL_LAG = 5  # frames after a reveal at which its detail is compared with the frame's
REVEAL_MIN_SHARE = 0.002  # a reveal smaller than this share of the frame says nothing


def reveal_catch_up(inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray], cuts: Sequence[int] = (),
                    lag: int = REVEAL_LAG, method: str = "dis") -> float:
    """How far newly revealed regions catch up: for each frame t whose occlusion mask (the input
    pair t-1 -> t, as the renderer computes it) reveals pixels, those pixels are followed along
    the input's flow to frame t + `lag` (the mask warped frame to frame, kept where it stays above
    one half), and their mean detail |output - input| there is divided by that frame's mean detail.
    Returns the mean of those ratios over the clip (1 = the revealed pixels carry as much detail as
    the frame; NaN where nothing was revealed), leaving out any reveal a cut interrupts."""
    _check_pairs(inputs, outputs, lag + 2)
    starts = sorted({0, *cuts})
    shot = np.zeros(len(inputs), int)
    for s in starts:
        shot[s:] = s
    flows: dict[int, np.ndarray] = {}  # t -> (flow t -> t-1, visible mask of t)

    def pair(t: int):
        if t not in flows:
            flows[t] = _pair_flow(inputs[t - 1], inputs[t], method)
        return flows[t]

    ratios = []
    for t in range(1, len(inputs) - lag):
        if shot[t] != shot[t - 1] or shot[t + lag] != shot[t]:
            continue  # a cut at t or before t + lag: no reveal to follow
        revealed = 1.0 - pair(t)[1]  # (H, W) 1 where frame t shows what frame t-1 did not
        if revealed.mean() < REVEAL_MIN_SHARE:
            continue
        for j in range(t + 1, t + lag + 1):  # carried along the flow into frame j
            revealed = (warp(revealed.astype(np.float32), pair(j)[0]) > 0.5).astype(np.float32)
        if revealed.mean() < REVEAL_MIN_SHARE / 2:
            continue
        detail = np.abs(outputs[t + lag].astype(np.float32) - inputs[t + lag].astype(np.float32)).mean(axis=2)
        ratios.append(float((detail * revealed).sum() / revealed.sum()) / max(float(detail.mean()), 1e-6))
    return float(np.mean(ratios)) if ratios else float("nan")


# --- command line ---------------------------------------------------------------------------


def _read_video(path: str) -> Iterator[np.ndarray]:
    """Yields the frames of a video file, or of a folder of frames in natural order (a render to
    'folder/'), as RGB uint8 (H, W, 3)."""
    import imageio_ffmpeg  # lazily: the measures above need no ffmpeg

    if os.path.isdir(path):  # read as the renderer reads a folder input
        for name in list_sequence(path):
            yield read_image(name)
        return
    if not os.path.isfile(path):
        raise InputError(f"video not found: {path}; check the path")
    try:
        reader = imageio_ffmpeg.read_frames(path)  # starts the ffmpeg subprocess
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as e:
        raise InputError(f"cannot read video {path}: {str(e).splitlines()[0] if str(e) else e!r}; "
                         "check that it is a video ffmpeg can decode") from None
    w, h = meta["size"]
    try:
        for raw in reader:
            yield np.frombuffer(raw, np.uint8).reshape(h, w, 3)
    finally:
        reader.close()  # always stop ffmpeg, also when the caller stops early


def measure_videos(input_path: str, output_paths: Sequence[str], max_frames: int | None = None,
                   method: str = "dis") -> tuple[list[Measures], int]:
    """The measures of rendered videos (files, or folders of PNG frames) against their input:
    ([Measures per output], frames read). Streams the input and all outputs once; flows and
    cuts (plan.CutTest with the renderer's defaults, as it finds them) are found once per output
    size, on the input resized to that size."""
    readers = [_read_video(input_path)] + [_read_video(p) for p in output_paths]
    accs = [Measures() for _ in output_paths]
    prev_in: dict[tuple[int, int], np.ndarray] = {}  # per output size: input frame t-1 at that size
    prev_out: list[np.ndarray | None] = [None] * len(output_paths)
    cuts: dict[tuple[int, int], CutTest] = {}  # per output size: the renderer's cut test on the input at that size
    n = 0
    try:
        for frames in zip(*readers):  # stops at the shortest video
            if max_frames is not None and n >= max_frames:
                break
            inp, outs = frames[0], frames[1:]
            sized: dict[tuple[int, int], np.ndarray] = {}
            flows: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
            cut: dict[tuple[int, int], bool] = {}
            for k, out in enumerate(outs):
                size = out.shape[:2]
                if size not in sized:
                    sized[size] = inp if inp.shape[:2] == size else cv2.resize(
                        inp, (size[1], size[0]), interpolation=cv2.INTER_AREA)
                    if size in prev_in:
                        flows[size] = _pair_flow(prev_in[size], sized[size], method)
                    cut[size] = cuts.setdefault(size, CutTest(DEFAULT_CUT_THRESHOLD, MIN_SHOT_FRAMES))(
                        n, prev_in.get(size), sized[size])
                accs[k].add_frame(sized[size], out)
                if cut[size]:
                    accs[k].cuts.append(n)
                if prev_out[k] is not None and size in flows and prev_out[k].shape == out.shape:
                    accs[k].add_pair(prev_in[size], sized[size], prev_out[k], out, *flows[size])
                prev_out[k] = out
            prev_in.update(sized)
            n += 1
    finally:
        for r in readers:
            r.close()
    return accs, n


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m dreamvid.measure.metrics INPUT OUTPUT [OUTPUT2 ...] [--max-frames N]``: one line per output."""
    parser = argparse.ArgumentParser(
        prog="python -m dreamvid.measure.metrics",
        description="Temporal coherence of rendered videos against their input: warping error "
                    "(Lai et al. 2018, RGB in [0, 1]), flicker of the added detail, and the amount added "
                    "(0..255). Lower errors are more coherent.",
    )
    parser.add_argument("input", help="the input video the outputs were rendered from")
    parser.add_argument("outputs", nargs="+", metavar="output", help="rendered videos to measure")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N", help="measure only the first N frames")
    parser.add_argument("--flow", choices=("dis", "farneback"), default="dis", help="optical flow method (default dis)")
    args = parser.parse_args(argv)
    if args.max_frames is not None and args.max_frames < 2:
        parser.error(f"--max-frames must be >= 2, got {args.max_frames}")
    try:
        accs, n = measure_videos(args.input, args.outputs, args.max_frames, args.flow)
        if n < 2:
            raise InputError(f"read {n} frame(s); the measures need at least 2 frames in every video")
    except DreamvidError as e:
        parser.exit(2, f"error: {e}\n")
    for path, acc in zip(args.outputs, accs):
        print(
            f"{path}: warping_error={acc.warping_error():.6f} detail_flicker={acc.detail_flicker():.6f} "
            f"relative_flicker={acc.detail_flicker(relative=True):.3f} added={acc.added_amount():.2f} frames={n}"
        )
        for shot in acc.shots():
            print(f"  {shot.describe()}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
