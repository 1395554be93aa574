"""Masks: where the dream may act. One greyscale image for every frame, or a folder, glob or
video of them, one per frame. White dreams at full strength, black not at all, grey in between.

    masks = open_masks("mask.png", size=(w, h), count=n)   # checked here, before any dream
    m = masks.at(k)                                        # (h, w) float32 in [0, 1]

Each mask is read as grey (the luma of a colour image), scaled to the frame size like the input
(the `--width` resize), optionally inverted and feathered (a Gaussian blur, so the edge stays
soft). A mask whose aspect ratio differs from the frames' by more than about 1% is refused
rather than stretched: a stretched mask would cover the wrong part of the scene. No dreaming
here; the Dreamer and flow.carry_over take the arrays this returns.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from dreamvid.config.settings import DEFAULTS
from dreamvid.core.errors import InputError
from dreamvid.media.sources import IMAGE_EXTENSIONS, open_source, read_image

__all__ = ["Masks", "open_masks", "prepare", "ASPECT_TOLERANCE"]

# A mask's aspect ratio may differ from the frames' by this share, plus one pixel of the frame's
# shorter side: frames are rounded to even sizes, which moves a small frame's ratio a little.
ASPECT_TOLERANCE = 0.01


def _check_aspect(path: str, mw: int, mh: int, w: int, h: int) -> None:
    ratio = (mw / mh) / (w / h)
    if abs(ratio - 1.0) > ASPECT_TOLERANCE + 1.0 / min(w, h):
        raise InputError(f"the mask '{path}' is {mw}x{mh} (aspect {mw / mh:.3f}) but the frames are {w}x{h} "
                         f"(aspect {w / h:.3f}); crop or pad the mask to the input's shape")


def prepare(rgb: np.ndarray, size: tuple[int, int], *, invert: bool = False, feather: float = 0.0) -> np.ndarray:
    """One mask image (H, W, 3) uint8 RGB (or (H, W) grey) -> (h, w) float32 in [0, 1] for a frame of
    size = (w, h): grey, scaled (area average down, linear up: no overshoot past 0..1), inverted,
    feathered. feather: the blur's reach in frame pixels (a Gaussian of sigma feather / 2, so the
    edge ramps over about `feather` pixels each side)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    w, h = size
    m = grey.astype(np.float32) * np.float32(1.0 / 255.0)
    if m.shape != (h, w):
        down = w * h < m.shape[0] * m.shape[1]
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA if down else cv2.INTER_LINEAR)
    if invert:
        m = 1.0 - m
    if feather > 0:
        m = cv2.GaussianBlur(m, (0, 0), sigmaX=feather / 2.0, borderType=cv2.BORDER_REPLICATE)
    return np.clip(m, 0.0, 1.0)


class Masks:
    """The mask of each frame, in order. `at(k)` for k rising (a resume skips ahead): the masks of
    a sequence are read one at a time, never all held at once."""

    def __init__(self, path: str, size: tuple[int, int], frames, count: int | None, *, invert: bool,
                 feather: float, single: np.ndarray | None = None, source=None):
        self.path = path
        self.size = size
        self.count = count  # masks in the sequence; None for one image for every frame
        self._frames = frames  # iterator of RGB uint8 masks, or None for a single image
        self._invert, self._feather = invert, feather
        self._single = single
        self._source = source  # the decoder behind `frames`, closed by close()
        self._k, self._current = -1, None

    def at(self, k: int) -> np.ndarray:
        """The mask of frame k: (h, w) float32 in [0, 1]."""
        if self._single is not None:
            return self._single
        if k < self._k:
            raise ValueError(f"masks are read in order: frame {k} after frame {self._k}")
        while self._k < k:
            rgb = next(self._frames, None)
            if rgb is None:
                raise InputError(f"the mask '{self.path}' ran out at frame {self._k + 1}; give one mask per frame "
                                 f"of the input, or one image for every frame")
            self._k += 1
            if self._k == k:
                self._current = prepare(rgb, self.size, invert=self._invert, feather=self._feather)
        return self._current

    def close(self) -> None:
        if self._source is not None:
            self._source.close()


def open_masks(path: str, size: tuple[int, int], count: int | None, *, invert: bool = False, feather: float = 0.0,
               start: float = DEFAULTS["start"], duration: float | None = None, max_frames: int | None = None,
               fps=None) -> Masks:
    """Open `path` as masks for frames of size = (w, h).

    An image file is one mask for every frame. A folder, glob or video is one mask per frame,
    taken over the same range as the input (start, duration, max_frames, fps as open_source's), and
    must hold `count` of them (the input's frames; None when unknown, then checked as they are
    read). InputError, naming the fix, when the mask cannot be read, has another aspect ratio or
    another number of frames: all before anything is dreamed.
    """
    path = os.fspath(path)
    w, h = size
    if path.lower().endswith(IMAGE_EXTENSIONS) and not any(c in path for c in "*?["):
        img = read_image(path)
        _check_aspect(path, img.shape[1], img.shape[0], w, h)
        return Masks(path, size, None, None, invert=invert, feather=feather,
                     single=prepare(img, size, invert=invert, feather=feather))
    source = open_source(path, start=start, duration=duration, max_frames=max_frames, fps=fps)
    info = source.info
    _check_aspect(path, info.width, info.height, w, h)
    if count is not None and info.n_frames is not None and info.n_frames != count:
        source.close()
        raise InputError(f"the mask '{path}' has {info.n_frames} frames but the input has {count}; "
                         f"give one mask per frame, or one image for every frame")
    frames = iter(source)
    return Masks(path, size, frames, info.n_frames, invert=invert, feather=feather, source=source)
