"""A clip's chain one frame at a time (`VideoDreamer`), for frames that come from anywhere: the API
re-exports it, a live show (live.show) steers it through its public surface. It runs the same
`chain.Chain` a render's frame loop runs, with the reader's cut test (`plan.CutTest`) and the
chain's own new-shot rule (`Chain.starts_shot`), so fed a clip's frames it makes the frames
`render_video` makes (tests/test_api.py)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from dreamvid.config.presets import job_config
from dreamvid.core.errors import InputError
from dreamvid.core.frames import output_size, resize
from dreamvid.core.progress import Progress
from dreamvid.motion import flow
from dreamvid.render.chain import Chain
from dreamvid.render.plan import CutTest
from dreamvid.render.prepare import make_dreamer, open_masks_for, video_schedules


class VideoDreamer:
    """A clip's chain one frame at a time, for frames that come from anywhere (a camera, a
    stream, a game): `dream(frame)` takes the next input frame, RGB uint8 (H, W, 3), and returns
    its dream, started from the previous dream carried along the optical flow between the two
    inputs (occlusions dreamed fresh), as a render's frames are. A cut (the scene changes, as
    the video job's cut test says) or `reset()` starts a fresh shot. Every frame must have the
    first frame's size (after `width`, when given).

    `fps`: the rate the frames come at (for schedules over frames, `audio:` ones included).
    Frame k is dreamed with seed `seed + k`. The network loads at construction and is kept.

    For a steady pace on a GPU, `push(frame)` queues a frame and returns the frames finished
    meanwhile (on a GPU the previous one, fetched once this one is queued), each as
    (index, dream, stats); `flush()` returns the last one. `dream(frame)` is the two in one."""

    def __init__(self, *, model=None, fps: float | Fraction = 25, preset: str | None = None, **options):
        self.cfg = job_config("video", options, preset)
        self.fps = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
        self.progress = Progress()
        self.dreamer, self.weights_at = make_dreamer(self.cfg, model, self.progress)
        self.sched = video_schedules(self.cfg, self.fps)
        self.base_seed = self.dreamer.seed
        self.frames = 0  # frames taken so far
        self.cuts: list[int] = []  # the frames where a new shot started (a cut or reset), after the first
        self._size = None  # (H, W) of every frame
        self._masks = None
        self._cuts = CutTest(self.cfg.video.cut_threshold, self.cfg.video.min_shot_frames)  # as a render's
        self._reset()

    def _reset(self) -> None:
        self.chain = Chain(self.cfg, self.sched, self.dreamer, self.weights_at, self.base_seed)
        self._prev = None  # the previous input frame, for the cut test and the flow

    def reset(self) -> None:
        """Start a fresh shot with the next frame (it is dreamed in full); a frame still queued
        is lost, so `flush()` first to keep it."""
        self._reset()

    def _frame(self, frame) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InputError(f"a frame must be RGB uint8 of shape (H, W, 3), got {frame.dtype} {frame.shape}")
        if self.cfg.output.width:
            frame = resize(frame, output_size(frame.shape[0], frame.shape[1], self.cfg.output.width))
        if self._size is None:
            self._size = frame.shape[:2]
            self._masks = open_masks_for(self.cfg, (frame.shape[1], frame.shape[0]), None)
        elif frame.shape[:2] != self._size:
            raise InputError(f"frame {self.frames} is {frame.shape[1]}x{frame.shape[0]}, the first was "
                             f"{self._size[1]}x{self._size[0]}; give every frame one size (or set width=)")
        return frame

    def push(self, frame, *, index: int | None = None) -> list:
        """Queue the next frame; returns the frames finished now as (index, dream, stats).
        `index`: the frame's number in its stream, for the schedules and the seed (a live
        source's, frames dropped in between); default: the next after the last."""
        frame = self._frame(frame)
        k, v = (self.frames if index is None else int(index)), self.cfg.video
        cut = not v.no_flow and self._cuts(k, self._prev, frame)  # the reader's cut test (prepare.video_inputs)
        new_shot = self.chain.starts_shot(cut)
        move = None if new_shot else flow.motion(self._prev, frame, v.flow, v.flow_preset)
        if new_shot and k > 0:
            self.cuts.append(k)
        mask = None if self._masks is None else self._masks.at(k)
        done = self.chain.dream(k, frame, move, new_shot=new_shot, cut=cut, mask=mask)
        self._prev, self.frames = frame, k + 1
        return done

    def flush(self) -> list:
        """The frame still queued, finished: [] or [(index, dream, stats)]."""
        return self.chain.flush()

    def dream(self, frame) -> np.ndarray:
        """The dream of `frame` (RGB uint8 (H, W, 3)), as RGB uint8 (float32 for bit_depth=16)."""
        done = self.push(frame) + self.flush()
        return done[-1][1]

    # -- what a live show changes between frames (live.show): the public surface it steers

    def schedule(self, name: str):
        """The schedule the chain reads for `name` ("step", "iterations", "octaves") at each frame."""
        return self.sched[name]

    def set_schedule(self, name: str, schedule) -> None:
        """Have the chain read `schedule` (anything with `.at(k)`) for `name` from the next frame on."""
        self.sched[name] = schedule

    @property
    def blend(self) -> float:
        """The share of the previous dream carried into the next frame (video.blend)."""
        return self.cfg.video.blend

    @blend.setter
    def blend(self, value: float) -> None:
        self.cfg.video.blend = float(min(1.0, max(0.0, value)))

    @property
    def carry_limit(self) -> float:
        """The per-pixel limit of the carried change, times a fresh dream's mean amount (video.carry_limit; 0: none)."""
        return self.cfg.video.carry_limit

    @carry_limit.setter
    def carry_limit(self, value: float) -> None:
        self.cfg.video.carry_limit = float(max(0.0, value))  # the chain reads it at each frame (Chain.limit)

    def close(self) -> None:
        if self._masks is not None:
            self._masks.close()
            self._masks = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["VideoDreamer"]
