"""Contact sheets: a render's frames at a glance, for people who would rather look than read.

    sheet, shown = contact_sheet("zoom.mp4", count=8, columns=4)   # (H, W, 3) uint8 RGB, frame indices
    python render.py sheet zoom.mp4 -o zoom-sheet.png --count 8

Frames are taken evenly from the first to the last (the last frame always shows: it is where a
long zoom washes out or a video's dream runs away, if anywhere), scaled to one cell size and
laid out row by row on a dark background, each with its frame number (1-based, as players count)
in the corner. Any source `sources.open_source` reads works: a video, an image folder or glob.
No TensorFlow here.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from dreamvid.errors import ConfigError, InputError

__all__ = ["pick_frames", "contact_sheet"]

_GAP = 4  # pixels between cells and around the edge
_BACKGROUND = (24, 24, 24)


def pick_frames(total: int, count: int) -> list[int]:
    """`count` frame indices spread evenly over 0..total-1, first and last included, no repeats."""
    if total < 1:
        raise InputError("the input has no frames to show")
    if count < 1:
        raise ConfigError(f"--count must be >= 1, got {count}")
    if count >= total:
        return list(range(total))
    if count == 1:
        return [total - 1]
    return sorted({round(i * (total - 1) / (count - 1)) for i in range(count)})


def _label(cell: np.ndarray, text: str) -> None:
    """Frame number in the top-left corner, white on a dark box, scaled to the cell."""
    scale = max(0.35, cell.shape[1] / 640)
    thick = max(1, round(scale * 1.5))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(2, round(4 * scale))
    cv2.rectangle(cell, (0, 0), (tw + 2 * pad, th + base + 2 * pad), (0, 0, 0), -1)
    cv2.putText(cell, text, (pad, th + pad), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)


def contact_sheet(path: str, *, count: int = 12, columns: int = 4, width: int = 1280,
                  labels: bool = True) -> tuple[np.ndarray, list[int]]:
    """(sheet, shown): the contact sheet of `path` as (H, W, 3) uint8 RGB, `width` pixels wide
    (give or take the rounding of the cells), and the 0-based indices of the frames on it."""
    from dreamvid.sources import open_source

    if columns < 1:
        raise ConfigError(f"--columns must be >= 1, got {columns}")
    if width < 16 * columns:
        raise ConfigError(f"--width must be at least 16 px per column, got {width} for {columns} columns")
    with open_source(path) as source:
        total = source.info.n_frames or sum(1 for _ in source)  # a count, or one decoding pass
        picked = pick_frames(total, count)
        wanted, frames, last, seen = set(picked), {}, None, 0
        for k, frame in enumerate(source):  # keeps only the picked frames
            if k in wanted:
                frames[k] = frame
            last, seen = frame, k + 1
    if last is None:
        raise InputError(f"'{path}' has no frames to show")
    if seen < total:  # the header promised more than decoded: end on the real last frame
        picked = [k for k in picked if k < seen - 1] + [seen - 1]
        frames[seen - 1] = last
    h, w = last.shape[:2]
    cols = min(columns, len(picked))
    rows = math.ceil(len(picked) / cols)
    cell_w = (width - _GAP * (cols + 1)) // cols
    cell_h = max(1, round(h * cell_w / w))
    sheet = np.empty((rows * cell_h + _GAP * (rows + 1), cols * cell_w + _GAP * (cols + 1), 3), np.uint8)
    sheet[:] = _BACKGROUND
    for n, k in enumerate(picked):
        r, c = divmod(n, cols)
        cell = cv2.resize(frames[k], (cell_w, cell_h), interpolation=cv2.INTER_AREA if cell_w < w else cv2.INTER_CUBIC)
        if labels:
            _label(cell, str(k + 1))
        y, x = _GAP + r * (cell_h + _GAP), _GAP + c * (cell_w + _GAP)
        sheet[y:y + cell_h, x:x + cell_w] = cell
    return sheet, picked
