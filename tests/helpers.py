"""Helpers the tests share, as plain functions: they are called where a fixture cannot reach (a
module's constants, module-scoped fixtures, other helpers). conftest.py hands `texture` to tests
as a fixture too.

- test images: `texture` (noise octaves, float), `smooth_texture` (blurred noise, float or uint8),
  `tinted_texture` (grey noise octaves times a colour, uint8), and `pan`, a window moving over one;
- clips: `write_clip` writes frames with the package's own sinks (lossless by default), and
  `pan_frames` makes a small panning clip's frames;
- the command line: `run` calls its main() in this process.

dreamvid is imported inside the functions, as in conftest.py: importing this module imports none
of the package.
"""

from fractions import Fraction

import numpy as np

# ----------------------------------------------------------------------------- images


def texture(h, w, seed=0):
    """Smooth coloured noise at a few scales, float32 in [0, 255]: something with edges to dream on."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for scale in (2, 6, 16):
        small = rng.random((max(1, h // scale), max(1, w // scale), 3)).astype(np.float32)
        img += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img -= img.min()
    return (img / img.max() * 200 + 25).astype(np.float32)


def smooth_texture(h, w, sigma=2.0, seed=0, levels=None):
    """Smooth random RGB texture: uniform noise blurred by a Gaussian of `sigma` px, stretched to
    float32 in [0, 1]; with levels=(low, high), uint8 in [low, high]."""
    import cv2

    r = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
    r = cv2.GaussianBlur(r, (0, 0), sigma)
    r = (r - r.min()) / (r.max() - r.min())
    if levels is None:
        return r
    low, high = levels
    return (low + (high - low) * r).astype(np.uint8)


def tinted_texture(h, w, seed=1, tint=(1.0, 0.8, 0.6), weighted=True):
    """(h, w, 3) uint8: smooth grey noise (cells 32, 16 and 8 px, each octave times the square root
    of its cell where `weighted`, else all alike), times an RGB tint, around 128."""
    import cv2

    rng = np.random.default_rng(seed)
    g = np.zeros((h, w), np.float32)
    for cell in (32, 16, 8):
        n = rng.standard_normal((h // cell + 2, w // cell + 2)).astype(np.float32)
        up = cv2.resize(n, ((w // cell + 2) * cell, (h // cell + 2) * cell), interpolation=cv2.INTER_CUBIC)[:h, :w]
        g += (up * np.float32(cell ** 0.5)) if weighted else up
    g = (g - g.mean()) / g.std()
    return np.clip(128 + 50 * g[..., None] * np.asarray(tint, np.float32), 0, 255).astype(np.uint8)


def pan(tex, n, w, step=2):
    """n frames of `tex` seen through a window `w` px wide that moves `step` px right per frame."""
    return [np.ascontiguousarray(tex[:, step * i:step * i + w]) for i in range(n)]


# ----------------------------------------------------------------------------- clips


def pan_frames(n, seed=0, size=(64, 48)):
    """n frames (h, w, 3) uint8 RGB of size = (w, h): a window panning 2 px right per frame over
    coloured noise."""
    import cv2

    w, h = size
    rng = np.random.default_rng(seed)
    wide = cv2.resize(rng.integers(0, 255, (12, 20, 3), dtype=np.uint8), (w + 2 * n, h),
                      interpolation=cv2.INTER_CUBIC)
    return pan(wide, n, w)


def write_clip(path, frames, fps=Fraction(25), crf=0, audio=None, **options):
    """`frames` written to `path` (a video, or a folder ending in '/') with the package's sinks,
    at the first frame's size, lossless by default (crf 0; `options`: open_sink's others, such
    as pix_fmt); returns `path` as given."""
    from dreamvid.media.sinks import open_sink

    size = (frames[0].shape[1], frames[0].shape[0])
    with open_sink(str(path), fps=fps, size=size, audio=audio, crf=crf, **options) as sink:
        for f in frames:
            sink.write(f)
    return path


# ----------------------------------------------------------------------------- the command line


def run(capsys, *argv):
    """The command line's main() in this process on `argv` (each made a str): (exit code, what it
    wrote to stderr)."""
    from dreamvid.cli import main

    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err
