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

Command line: ``python -m dreamvid.metrics INPUT OUTPUT [OUTPUT2 ...] [--max-frames N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Iterator, Sequence

import cv2
import numpy as np

from dreamvid.errors import DreamvidError, InputError
from dreamvid.flow import compute_flow, occlusion_mask, warp

__all__ = ["warping_error", "added_amount", "detail_flicker", "main"]


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


class _Coherence:
    """Accumulates the three measures for one output over consecutive frame pairs."""

    def __init__(self) -> None:
        self.werr_sum = 0.0  # sum over pairs of the per-pair masked MSE, RGB in [0, 1]
        self.flick_sum = 0.0  # same for the detail
        self.energy_sum = 0.0  # sum over pairs of the masked mean d_{t+1}², detail in [0, 1]
        self.pairs = 0  # pairs with at least one unoccluded pixel
        self.added_sum = 0.0  # sum over frames of mean |output - input|, 0..255
        self.frames = 0

    def add_frame(self, inp: np.ndarray, out: np.ndarray) -> None:
        self.added_sum += float(np.mean(np.abs(out.astype(np.float32) - inp.astype(np.float32))))
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


def _run(inputs, outputs, method: str, pairs: bool) -> _Coherence:
    acc = _Coherence()
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


# --- command line ---------------------------------------------------------------------------


def _read_video(path: str) -> Iterator[np.ndarray]:
    """Yields the frames of a video file as RGB uint8 (H, W, 3)."""
    import imageio_ffmpeg  # lazily: the measures above need no ffmpeg

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


def _measure_files(input_path: str, output_paths: Sequence[str], max_frames: int | None, method: str):
    """Streams the input and all outputs once; returns ([_Coherence per output], frames read).
    Flows are computed once per output size, on the input resized to that size."""
    readers = [_read_video(input_path)] + [_read_video(p) for p in output_paths]
    accs = [_Coherence() for _ in output_paths]
    prev_in: dict[tuple[int, int], np.ndarray] = {}  # per output size: input frame t-1 at that size
    prev_out: list[np.ndarray | None] = [None] * len(output_paths)
    n = 0
    try:
        for frames in zip(*readers):  # stops at the shortest video
            if max_frames is not None and n >= max_frames:
                break
            inp, outs = frames[0], frames[1:]
            sized: dict[tuple[int, int], np.ndarray] = {}
            flows: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
            for k, out in enumerate(outs):
                size = out.shape[:2]
                if size not in sized:
                    sized[size] = inp if inp.shape[:2] == size else cv2.resize(
                        inp, (size[1], size[0]), interpolation=cv2.INTER_AREA)
                    if size in prev_in:
                        flows[size] = _pair_flow(prev_in[size], sized[size], method)
                accs[k].add_frame(sized[size], out)
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
    """``python -m dreamvid.metrics INPUT OUTPUT [OUTPUT2 ...] [--max-frames N]``: one line per output."""
    parser = argparse.ArgumentParser(
        prog="python -m dreamvid.metrics",
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
        accs, n = _measure_files(args.input, args.outputs, args.max_frames, args.flow)
        if n < 2:
            raise InputError(f"read {n} frame(s); the measures need at least 2 frames in every video")
    except DreamvidError as e:
        parser.exit(2, f"error: {e}\n")
    for path, acc in zip(args.outputs, accs):
        print(
            f"{path}: warping_error={acc.warping_error():.6f} detail_flicker={acc.detail_flicker():.6f} "
            f"relative_flicker={acc.detail_flicker(relative=True):.3f} added={acc.added_amount():.2f} frames={n}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
