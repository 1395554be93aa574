"""Contact sheets: a render's frames at a glance, for people who would rather look than read.

    sheet, shown = contact_sheet("zoom.mp4", count=8, columns=4)   # (H, W, 3) uint8 RGB, frame indices
    dreamvid sheet zoom.mp4 -o zoom-sheet.png --count 8
    sheet = labelled_sheet(images, ["block3_conv3", ...], columns=6)  # a name under each image (the gallery's)

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

from dreamvid.core.errors import ConfigError, InputError
from dreamvid.media.sources import open_source

__all__ = ["pick_frames", "contact_sheet", "labelled_sheet", "caption_height"]

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


# ----------------------------------------------------------------------------- labelled sheets

_FONT = cv2.FONT_HERSHEY_SIMPLEX
# Text scale per pixel of cell width: 256-px tiles get scale 0.64 (letters about 14 px tall),
# big enough to read at a glance and small enough that most layer names fit on one line.
_SCALE_PER_PX = 1 / 400
# Below this scale (letters about 9 px tall) Hershey letters blur into each other: a name that
# would need a smaller scale on one line is broken in two at an '_' or ':' instead.
_MIN_SCALE = 0.4


def _text_width(text: str, scale: float) -> int:
    return cv2.getTextSize(text, _FONT, scale, _thickness(scale))[0][0]


def _thickness(scale: float) -> int:
    return 1 if scale < 0.9 else 2  # thicker strokes only once letters are large enough to keep their holes


def _split(text: str) -> list[str]:
    """`text` in two lines at the '_' or ':' nearest its middle (kept at the first line's end);
    in the middle when it has neither."""
    cuts = [i + 1 for i, ch in enumerate(text[:-1]) if ch in "_:"]
    cut = min(cuts, key=lambda i: abs(i - len(text) / 2)) if cuts else len(text) // 2
    return [text[:cut], text[cut:]]


def _caption_layout(labels: list[str], width: int) -> tuple[float, list[list[str]], int, int]:
    """(scale, the lines of each label, line height, strip height) for labels under cells
    `width` pixels wide: one scale for all (so the sheet reads evenly), the largest at which
    every line fits, at most `width * _SCALE_PER_PX`."""
    room = max(8, width - 2 * max(2, width // 64))  # a margin each side
    top = max(_MIN_SCALE, width * _SCALE_PER_PX)  # small cells: as large as still fits, not smaller

    def fit(lines_of):
        widest = max((_text_width(ln, 1.0) for lines in lines_of for ln in lines), default=1)
        return min(top, room / max(widest, 1) * 0.97)  # 0.97: getTextSize is a little optimistic at small scales

    lines_of = [[t] if t else [] for t in labels]
    scale = fit(lines_of)
    if scale < _MIN_SCALE:  # break the names that are too long on one line, then fit again
        lines_of = [_split(t) if t and room / max(_text_width(t, 1.0), 1) < _MIN_SCALE else ls
                    for t, ls in zip(labels, lines_of)]
        scale = fit(lines_of)
    (_, th), base = cv2.getTextSize("Ag", _FONT, scale, _thickness(scale))
    line_h = th + base + max(2, round(th * 0.3))
    n = max((len(ls) for ls in lines_of), default=0)
    strip = n * line_h + 2 * max(2, round(th * 0.4)) if n else 0
    return scale, lines_of, line_h, strip


def caption_height(labels: list[str], width: int) -> int:
    """Height in pixels of the label strip `labelled_sheet` puts under cells `width` wide."""
    return _caption_layout(labels, width)[3]


def labelled_sheet(images: list[np.ndarray], labels: list[str], *, columns: int | None = None) -> np.ndarray:
    """Images of one size, (h, w, 3) uint8 RGB, in a grid row by row, each with its label
    centred in a strip below it, the text sized to the cell. columns: None for a near-square
    grid (ceil(sqrt(n)) columns). Returns the sheet, (H, W, 3) uint8 RGB:
    W = cols * w + (cols + 1) * gap, H = rows * (h + caption_height) + (rows + 1) * gap."""
    if not images:
        raise InputError("nothing to lay out: no images")
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    h, w = images[0].shape[:2]
    if any(im.shape != images[0].shape for im in images):
        raise ValueError("labelled_sheet needs images of one size")
    cols = min(len(images), columns or math.ceil(math.sqrt(len(images))))
    if cols < 1:
        raise ConfigError(f"--columns must be >= 1, got {columns}")
    rows = math.ceil(len(images) / cols)
    scale, lines_of, line_h, strip = _caption_layout(labels, w)
    thick = _thickness(scale)
    sheet = np.empty((rows * (h + strip) + _GAP * (rows + 1), cols * w + _GAP * (cols + 1), 3), np.uint8)
    sheet[:] = _BACKGROUND
    for n, (image, lines) in enumerate(zip(images, lines_of)):
        r, c = divmod(n, cols)
        y, x = _GAP + r * (h + strip + _GAP), _GAP + c * (w + _GAP)
        sheet[y:y + h, x:x + w] = image
        base_y = y + h + (strip - len(lines) * line_h) // 2
        for k, line in enumerate(lines):
            (tw, th), _ = cv2.getTextSize(line, _FONT, scale, thick)
            org = (x + (w - tw) // 2, base_y + k * line_h + th + (line_h - th) // 2 - 1)
            cv2.putText(sheet, line, org, _FONT, scale, (235, 235, 235), thick, cv2.LINE_AA)
    return sheet
