"""Behaviour of dreamvid.motion.colors: the dream's luma, the input's chroma."""

import cv2
import numpy as np
import pytest

from dreamvid.core.errors import InputError
from dreamvid.motion.colors import keep_colors, luma


def ycrcb(image):
    """OpenCV's own YCrCb of a float RGB image in [0, 255]: (H, W, 3) float32 Y, Cr, Cb."""
    return cv2.cvtColor(np.asarray(image, np.float32) / 255.0, cv2.COLOR_RGB2YCrCb) * 255.0


def test_keep_colors_takes_the_dreams_luma_and_the_inputs_chroma():
    rng = np.random.default_rng(0)
    original = cv2.GaussianBlur(rng.uniform(60, 190, (40, 50, 3)).astype(np.float32), (0, 0), 2)
    # a "dream": brighter and darker streaks, and a colour cast the palette must not take
    streaks = 40 * np.sin(np.arange(50, dtype=np.float32) / 3)[None, :, None]
    dreamed = np.clip(original + streaks + np.array([25, -15, 5], np.float32), 0, 255)
    out = keep_colors(dreamed, original)
    assert out.dtype == np.float32 and out.shape == original.shape
    np.testing.assert_allclose(luma(out), luma(dreamed), atol=1e-3)  # the dream's light and shapes
    np.testing.assert_allclose(ycrcb(out)[..., 1:], ycrcb(original)[..., 1:], atol=0.05)  # the input's colours
    assert np.abs(ycrcb(dreamed)[..., 1:] - ycrcb(original)[..., 1:]).mean() > 5  # which the dream had changed
    np.testing.assert_allclose(luma(original.astype(np.uint8)), ycrcb(original.astype(np.uint8))[..., 0], atol=0.01)


def test_keep_colors_clips_and_leaves_its_inputs_alone():
    original = np.full((4, 4, 3), 250, np.uint8)
    dreamed = np.full((4, 4, 3), 255.0, np.float32)
    dreamed[0, 0] = 0.0
    out = keep_colors(dreamed, original)
    assert out.min() >= 0.0 and out.max() <= 255.0 and np.all(original == 250)
    with pytest.raises(InputError, match="input frame"):
        keep_colors(dreamed[:2], original)
    with pytest.raises(InputError, match="RGB"):
        luma(np.zeros((4, 4)))
