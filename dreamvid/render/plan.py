"""The chunk plan: a clip as shots and segments, the unit of work a runner hands out.

A plan depends only on the clip and the settings, never on how many workers render it, so the
same command makes the same frames on one machine or on a cluster:

- the clip splits at its scene cuts (flow.cut_score of consecutive input frames above
  video.cut_threshold) into shots; a segment never crosses a cut, so every shot starts from a
  fresh chain exactly as a plain render's does;
- a shot longer than video.chunk_frames splits into near-equal segments of at most that many
  frames (0 = shots are never split);
- a segment after the first of its shot starts video.warmup_frames earlier from the raw input:
  those frames are dreamed so the chain has grown its detail by the first frame kept, then
  thrown away (a fresh chain's first frame is a full dream, brighter in detail than a chain's);
- consecutive segments of a shot overlap by video.overlap_frames: both render those frames and
  the output cross-fades from the earlier to the later with smoothstep weights (`weights`), so
  the seam is a short dissolve rather than a jump.

No dreaming, no file I/O: `cuts` takes the input frames, `make_plan` their count and cuts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dreamvid.config.settings import DEFAULTS
from dreamvid.motion.flow import cut_score

__all__ = ["Segment", "Plan", "make_plan", "scan_cuts", "weights", "PLAN_VERSION"]

PLAN_VERSION = 1


@dataclass(frozen=True)
class Segment:
    """One unit of work. Frame indices are the clip's (0 = the first frame rendered).

    start: the first frame dreamed (a fresh chain starts here); keep: the first frame that goes
    into the output (start..keep-1 are the warm-up, thrown away); end: one past the last frame.
    fade: frames keep..keep+fade-1 are shared with the previous segment and cross-faded.
    """

    index: int
    shot: int
    start: int
    keep: int
    end: int
    fade: int = 0

    @property
    def frames(self) -> int:
        """Frames this segment dreams (warm-up included)."""
        return self.end - self.start


@dataclass(frozen=True)
class Plan:
    frames: int  # frames in the clip (and the output)
    cuts: tuple[int, ...]  # frame indices where a new shot starts (0 not included)
    segments: tuple[Segment, ...]
    chunk_frames: int
    warmup_frames: int
    overlap_frames: int

    def to_dict(self) -> dict:
        """Plain data for the work folder's state and the output's record."""
        return {"version": PLAN_VERSION, "frames": self.frames, "cuts": list(self.cuts),
                "chunk_frames": self.chunk_frames, "warmup_frames": self.warmup_frames,
                "overlap_frames": self.overlap_frames,
                "segments": [[s.start, s.keep, s.end] for s in self.segments]}

    def sources(self, k: int) -> list[tuple[Segment, float]]:
        """The segments that hold output frame k and each one's weight (they sum to 1)."""
        out = []
        for i, s in enumerate(self.segments):
            if s.keep <= k < s.end:
                nxt = self.segments[i + 1] if i + 1 < len(self.segments) else None
                w = 1.0
                if s.fade and k < s.keep + s.fade:  # this segment fades in
                    w = float(weights(s.fade)[k - s.keep])
                elif nxt is not None and nxt.fade and k >= nxt.keep:  # the next one takes over
                    w = 1.0 - float(weights(nxt.fade)[k - nxt.keep])
                out.append((s, w))
        return out


def weights(n: int) -> np.ndarray:
    """The later segment's share over an overlap of n frames: smoothstep, strictly between 0
    and 1 (the earlier segment's last frame and the later one's first both still count), so
    the dissolve starts and ends with zero slope."""
    x = np.arange(1, n + 1, dtype=np.float64) / (n + 1)
    return x * x * (3.0 - 2.0 * x)


class CutTest:
    """The scene-cut test over a clip's input frames, called in frame order: frame k starts a new
    shot when flow.cut_score against frame k-1 is above `threshold`, unless the last cut is fewer
    than `min_shot` frames back, so a single white flash frame cuts once (into the flash), not
    twice (and out of it). The clip's first shot may be shorter."""

    def __init__(self, threshold: float, min_shot: int = 1):
        self.threshold, self.min_shot = threshold, max(1, int(min_shot))
        self.last: int | None = None  # the last cut's frame

    def __call__(self, k: int, prev: np.ndarray | None, frame: np.ndarray) -> bool:
        if prev is None or (self.last is not None and k - self.last < self.min_shot):
            return False
        if cut_score(prev, frame) > self.threshold:
            self.last = k
            return True
        return False


def scan_cuts(frames: Iterable[np.ndarray], threshold: float, min_shot: int = 1) -> tuple[int, list[int]]:
    """(frame count, cut indices) of a clip's input frames: the same test as the frame loop's
    (CutTest: flow.cut_score of each frame against the one before, above `threshold`, at least
    `min_shot` frames after the last cut)."""
    test = CutTest(threshold, min_shot)
    prev, n, cuts = None, 0, []
    for frame in frames:
        if test(n, prev, frame):
            cuts.append(n)
        prev, n = frame, n + 1
    return n, cuts


def make_plan(n: int, cuts: Iterable[int], chunk_frames: int = DEFAULTS["chunk_frames"], warmup_frames: int = 0,
              overlap_frames: int = 0) -> Plan:
    """The plan of a clip of `n` frames with new shots at `cuts` (see the module docstring).
    chunk_frames 0: one segment per shot."""
    cuts = sorted({int(c) for c in cuts if 0 < int(c) < n})
    bounds = [0, *cuts, n]
    segments: list[Segment] = []
    for shot, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        length = b - a
        m = 1 if chunk_frames <= 0 or length <= chunk_frames else -(-length // chunk_frames)
        # near-equal cores: the first `length % m` get one frame more
        edges = [a + j * (length // m) + min(j, length % m) for j in range(m + 1)]
        for j in range(m):
            core = edges[j]
            # the overlap reaches back into the previous core, never past the shot's start
            fade = min(overlap_frames, core - edges[j - 1] - 1) if j else 0
            keep = core - fade
            start = max(a, keep - warmup_frames) if j else a
            segments.append(Segment(index=len(segments), shot=shot, start=start, keep=keep,
                                    end=edges[j + 1], fade=fade))
    return Plan(frames=n, cuts=tuple(cuts), segments=tuple(segments), chunk_frames=chunk_frames,
                warmup_frames=warmup_frames, overlap_frames=overlap_frames)

