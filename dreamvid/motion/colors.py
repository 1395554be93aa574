"""The palette after the dream (`--keep-colors`): the dream's light and shapes, the input's colours.

Frames are RGB (H, W, 3), uint8 or float32 in [0, 255]; no TensorFlow, no file I/O.

In YCbCr (BT.601 full range, JPEG's and OpenCV's YCrCb), R, G and B each take the luma Y with
weight 1 and the chroma Cb, Cr with weights that cancel for a grey shift, so adding the same
number to R, G and B changes Y by that number and leaves Cb and Cr as they were. Keeping the
dream's luma and the input's chroma is therefore `input + (Y(dream) - Y(input))` on every
channel: one luma per image and an add, with no colour-space round trip (as in Gatys et al.
2016, "Preserving color in neural artistic style transfer", luminance-only transfer). Where
that leaves [0, 255] the result is clipped, which is the only place the chroma can move.
"""

from __future__ import annotations

import cv2
import numpy as np

from dreamvid.core.errors import InputError

__all__ = ["luma", "keep_colors"]

_LUMA = np.array([[0.299, 0.587, 0.114]], np.float32)  # BT.601 weights of R, G, B


def luma(image: np.ndarray) -> np.ndarray:
    """Y of an RGB image (H, W, 3), uint8 or float in [0, 255] -> (H, W) float32 in [0, 255]."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"luma takes an RGB image of shape (H, W, 3), got shape {image.shape}")
    return cv2.transform(np.ascontiguousarray(image, dtype=np.float32), _LUMA)


def keep_colors(dreamed: np.ndarray, original: np.ndarray) -> np.ndarray:
    """The dream's luma with the original's chroma: (H, W, 3) float32 in [0, 255].

    dreamed: the dream of `original`, same shape; both RGB, uint8 or float in [0, 255].
    """
    dreamed, original = np.asarray(dreamed), np.asarray(original)
    if dreamed.shape != original.shape:
        raise InputError(f"keep_colors: the dream is {dreamed.shape} but its input {original.shape}; "
                         f"pass the input frame the dream started from")
    out = original.astype(np.float32)  # a copy: the caller's frame stays as it was
    shift = luma(dreamed)
    shift -= luma(out)
    out += shift[..., None]
    np.clip(out, 0.0, 255.0, out=out)
    return out
