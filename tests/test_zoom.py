"""Behaviour of the infinite-zoom transform and its measurements.

The texture is dreamvid.motion.zoom.noise_image: octaves of bicubic-upscaled Gaussian noise from 1/64 of
the frame down to 2 px, so it has edges at every scale, which the log-polar estimate needs.
"""

import numpy as np
import pytest

from dreamvid.core.errors import ConfigError
from dreamvid.motion.zoom import (
    ColorStats,
    color_stats,
    contrast_saturation,
    estimate_pan,
    estimate_zoom,
    match_color,
    noise_image,
    solid_image,
    transform,
)


@pytest.fixture(scope="module")
def texture():
    """(256, 256, 3) float32 multi-scale coloured noise."""
    return noise_image(256, 256, seed=1)


def blob_image(x, y, size=101):
    """(size, size, 3) float32: black with one bright Gaussian dot centred at pixel (x, y)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dot = 255.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0**2))
    return np.repeat(dot[..., None], 3, axis=2).astype(np.float32)


def centroid(image):
    """(x, y) brightness-weighted centre of an image."""
    w = image[..., 0].astype(np.float64)
    yy, xx = np.mgrid[0 : w.shape[0], 0 : w.shape[1]]
    return (xx * w).sum() / w.sum(), (yy * w).sum() / w.sum()


# ---- transform -----------------------------------------------------------------------------


def test_identity_is_exact(texture):
    out = transform(texture, zoom=1.0, rotate=0.0, pan=(0, 0))
    assert out.dtype == np.float32 and out.shape == texture.shape
    np.testing.assert_array_equal(out, texture)
    assert out is not texture
    as_uint8 = texture.astype(np.uint8)
    np.testing.assert_array_equal(transform(as_uint8), as_uint8)


def test_same_shape_and_dtype_and_range(texture):
    for image in (texture, texture.astype(np.uint8), texture[:200, :256]):
        out = transform(image, zoom=1.07, rotate=3, pan=(2.5, -1))
        assert out.shape == image.shape and out.dtype == image.dtype
        assert out.min() >= 0 and out.max() <= 255


@pytest.mark.parametrize("zoom, rotate", [(1.05, 0.0), (1.0, 2.0), (1.05, 2.0), (0.95, -3.0), (1.02, 0.5)])
def test_estimate_zoom_recovers_the_requested_zoom_and_rotation(texture, zoom, rotate):
    scale, angle = estimate_zoom(texture, transform(texture, zoom=zoom, rotate=rotate))
    assert scale == pytest.approx(zoom, rel=0.01)
    assert angle == pytest.approx(rotate, abs=0.2)


def test_estimate_zoom_ignores_a_pan(texture):
    scale, angle = estimate_zoom(texture, transform(texture, zoom=1.05, rotate=2.0, pan=(7, -4)))
    assert scale == pytest.approx(1.05, rel=0.01)
    assert angle == pytest.approx(2.0, abs=0.2)


def test_estimate_zoom_of_identical_frames_is_identity(texture):
    scale, angle = estimate_zoom(texture, texture)
    assert scale == pytest.approx(1.0, abs=1e-6) and angle == pytest.approx(0.0, abs=1e-6)


def test_zoom_enlarges_about_the_centre():
    c = 50  # centre of a 101x101 image
    out = transform(blob_image(c + 20, c), zoom=1.5)
    x, y = centroid(out)
    assert x == pytest.approx(c + 30, abs=0.2) and y == pytest.approx(c, abs=0.2)


def test_zoom_about_a_given_centre_keeps_that_point_fixed():
    out = transform(blob_image(30, 40), zoom=1.3, center=(30, 40))
    x, y = centroid(out)
    assert x == pytest.approx(30, abs=0.2) and y == pytest.approx(40, abs=0.2)


def test_positive_rotation_is_counter_clockwise_on_screen():
    c = 50
    x, y = centroid(transform(blob_image(c + 20, c), rotate=90))  # right of centre -> above it (y down)
    assert x == pytest.approx(c, abs=0.2) and y == pytest.approx(c - 20, abs=0.2)


def test_integer_pan_moves_content_exactly(texture):
    out = transform(texture, pan=(4, 7))  # content moves 4 right, 7 down
    np.testing.assert_allclose(out[7:, 4:], texture[:-7, :-4], atol=1e-3)


def test_estimate_pan_recovers_a_subpixel_pan(texture):
    dx, dy = estimate_pan(texture, transform(texture, pan=(5.5, -3.25)))
    assert dx == pytest.approx(5.5, abs=0.1) and dy == pytest.approx(-3.25, abs=0.1)


def test_zooming_out_reflects_instead_of_bringing_black_edges(texture):
    bright = texture * 0.5 + 100.0  # values in [100, 227.5]
    out = transform(bright, zoom=0.7, pan=(30, 0))
    assert out.min() > 90.0
    for edge in (out[0], out[-1], out[:, 0], out[:, -1]):
        assert edge.mean() > 100.0


@pytest.mark.parametrize("bad", [0, -1.05, float("nan"), float("inf"), "fast"])
def test_bad_zoom_raises_config_error(texture, bad):
    with pytest.raises(ConfigError, match="zoom"):
        transform(texture, zoom=bad)


def test_bad_pan_and_bad_image():
    image = solid_image(8, 8)
    with pytest.raises(ConfigError, match="pan"):
        transform(image, pan=5)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        transform(np.zeros((8, 8), np.float32), zoom=1.1)


# ---- colour --------------------------------------------------------------------------------


def drifted(image):
    """The kind of drift a long zoom produces: darker, flatter, with a warm cast."""
    return np.clip(image * 0.7 + np.float32([50, 25, 10]), 0, 255).astype(np.float32)


def test_match_color_brings_drifted_stats_back(texture):
    reference = color_stats(texture)
    drift = drifted(texture)
    before = color_stats(drift)
    after = color_stats(match_color(drift, reference))
    # L*a*b* units: a just-noticeable difference is about 1
    assert np.abs(after.mean - reference.mean).max() < 1.0 < np.abs(before.mean - reference.mean).max()
    np.testing.assert_allclose(after.std, reference.std, rtol=0.05)
    assert np.abs(before.std - reference.std).max() > 3 * np.abs(after.std - reference.std).max()


def test_match_color_strength_blends(texture):
    reference = color_stats(texture)
    drift = drifted(texture)
    np.testing.assert_array_equal(match_color(drift, reference, strength=0.0), drift)
    gap = lambda image: np.abs(color_stats(image).mean - reference.mean).sum()  # noqa: E731
    half, full = match_color(drift, reference, strength=0.5), match_color(drift, reference, strength=1.0)
    assert gap(full) < gap(half) < gap(drift)
    with pytest.raises(ConfigError, match="0..1"):
        match_color(drift, reference, strength=1.5)


def test_match_color_keeps_dtype_and_a_flat_reference_cannot_erase_the_image(texture):
    out = match_color(texture.astype(np.uint8), color_stats(texture))
    assert out.dtype == np.uint8 and out.shape == texture.shape
    flat = color_stats(solid_image(16, 16))  # std 0: the gain is clamped, the picture survives
    assert isinstance(flat, ColorStats)
    assert contrast_saturation(match_color(texture, flat))[0] > 1.0


def test_contrast_saturation_fall_as_an_image_washes_out(texture):
    grey = solid_image(256, 256, "#808080")
    assert contrast_saturation(grey) == pytest.approx((0.0, 0.0), abs=1e-6)
    values = [contrast_saturation(texture * (1 - t) + grey * t) for t in (0.0, 0.3, 0.6, 0.9)]
    contrasts, saturations = zip(*values)
    assert list(contrasts) == sorted(contrasts, reverse=True)
    assert list(saturations) == sorted(saturations, reverse=True)
    assert min(saturations) >= 0.0 and max(saturations) <= 1.0


# ---- starting frames -----------------------------------------------------------------------


def test_noise_image_shape_range_and_seed():
    a = noise_image(120, 80, seed=7)
    assert a.shape == (80, 120, 3) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 255
    np.testing.assert_array_equal(a, noise_image(120, 80, seed=7))
    assert not np.array_equal(a, noise_image(120, 80, seed=8))
    assert a.std() > 20  # textured, not flat
    # smooth-ish: neighbouring pixels are strongly correlated, unlike white noise
    g = a[..., 1]
    r = np.corrcoef(g[:, :-1].ravel(), g[:, 1:].ravel())[0, 1]
    assert r > 0.5
    # coloured: the channels are not copies of each other
    assert np.corrcoef(a[..., 0].ravel(), a[..., 2].ravel())[0, 1] < 0.9


@pytest.mark.parametrize(
    "color, rgb",
    [("#808080", (128, 128, 128)), ("#f80", (255, 136, 0)), ("white", (255, 255, 255)), ((10, 20, 30), (10, 20, 30))],
)
def test_solid_image(color, rgb):
    image = solid_image(5, 3, color)
    assert image.shape == (3, 5, 3) and image.dtype == np.float32
    assert (image == np.float32(rgb)).all()


@pytest.mark.parametrize("color", ["#12345", "purple-ish", (1, 2), (0, 0, 300)])
def test_bad_colour_raises_config_error(color):
    with pytest.raises(ConfigError, match="#808080"):
        solid_image(4, 4, color)


@pytest.mark.parametrize("size", [(0, 10), (10, -1), (1.5, 10)])
def test_bad_size_raises_config_error(size):
    with pytest.raises(ConfigError, match="pixels"):
        noise_image(*size, seed=0)
