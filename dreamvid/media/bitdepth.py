"""16-bit frames: what 8-bit output throws away, kept. No TensorFlow here.

The dream computes each frame in float32 on 0..255; 8-bit output rounds it to 256 levels, and
smooth gradients (skies, the dream's soft glows) band when an editor grades them. 16-bit output
(PNG or TIFF frames, or the input of a 10-bit video codec) keeps 65536 levels.

A float value x on 0..255 is stored as round(x * 257): 255 * 257 = 65535, so every 8-bit level
v lands exactly on v * 257, and a stored frame read back by `sources.read_image` (which rounds
16 bits to the nearest 8-bit level) is the very frame `dream.to_uint8` makes of the float. So a
resumed render, which carries the stored frames, continues the same chain of frames.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from dreamvid.core.errors import InputError, OutputError

__all__ = ["to_uint16", "to_float", "read_frame", "encode", "SCALE"]

SCALE = 257.0  # 0..255 -> 0..65535, 8-bit levels exactly on 16-bit ones


def to_uint16(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) float on 0..255 (or uint8, or uint16 as is) -> uint16 on 0..65535."""
    if frame.dtype == np.uint16:
        return frame
    if frame.dtype == np.uint8:
        return frame.astype(np.uint16) * np.uint16(257)
    return np.rint(np.clip(frame, 0.0, 255.0) * np.float32(SCALE)).astype(np.uint16)


def to_float(frame: np.ndarray) -> np.ndarray:
    """uint16 (or uint8) (H, W, 3) -> float32 on 0..255, the inverse of `to_uint16`."""
    if frame.dtype == np.uint8:
        return frame.astype(np.float32)
    return frame.astype(np.float32) / np.float32(SCALE)


def read_frame(path: str) -> np.ndarray:
    """A 16-bit (or 8-bit) RGB PNG/TIFF written by `encode` -> float32 (H, W, 3) on 0..255."""
    img = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"cannot read the stored frame '{path}' as RGB; run again with --restart")
    return to_float(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def encode(frame: np.ndarray, ext: str = ".png") -> bytes:
    """(H, W, 3) RGB float on 0..255 (or uint16) -> 16-bit PNG or TIFF bytes (`ext`)."""
    ok, buf = cv2.imencode(ext, cv2.cvtColor(to_uint16(frame), cv2.COLOR_RGB2BGR))
    if not ok:
        raise OutputError(f"OpenCV could not encode a 16-bit {ext[1:].upper()} frame; "
                          f"reinstall opencv-python-headless")
    return buf.tobytes()
