"""The DeepDream loop: one float RGB image in, one out. No video, no flow.

    dreamer = Dreamer(model, objective, DreamSettings())
    out = dreamer.dream(image)          # image: float32 (H, W, 3) in [0, 255]

Per octave, the whole ascent loop (jitter, tiled gradients, normalisation, update, clipping)
runs inside one compiled TensorFlow function whose signature has no fixed sizes, so frames of
any size, and any number of frames, reuse a single trace (`Dreamer.trace_count` counts them).
"""

from __future__ import annotations

import os
from typing import Callable

import cv2
import numpy as np

from dreamvid.config import DreamSettings
from dreamvid.errors import ConfigError
from dreamvid.objectives import Objective

# Added to the gradient's max |g| before dividing by it: only guards 0/0. Tiny, so that gradients
# of any scale are normalised (an untrained network's deep layers give std ~1e-11, and 1e-8
# there would swallow the step).
GRAD_EPS = 1e-30
MIN_OCTAVE_SIDE = 32  # smaller octaves than this carry no useful detail and upset deep layers
# settings.xla "on" compiles the one-tile gradient (forward + backward of the network) with XLA,
# once per tile size, then reuses it for every frame. "auto" turns it on for CPUs and networks of
# at most XLA_AUTO_MAX_DEPTH layers up to the dreamed ones, measured with the bench on 2 cores:
# vgg16-hed to block4_conv3 (14 layers) compiles in ~1-2 s per size and steps ~1.2-1.3x faster;
# InceptionV3 to mixed5 (165 layers) takes ~6 s per size for ~1.09x, which a clip repays only
# after ~170 frames, so it stays off, as does googlenet to mixed4c (82 layers: frozen graphs
# are rebuilt in Keras and counted alike; up to mixed3b, 39, it is on, not measured). The
# pipeline keeps it off for a single still, which would pay the compile for one use. GPUs keep
# TensorFlow's own kernels (not measured here).
# The whole ascent loop cannot be XLA-compiled: its tile slices have sizes known only at run
# time, which XLA rejects (StridedSliceGrad).
XLA_MODES = ("auto", "on", "off")
XLA_AUTO_MAX_DEPTH = 40


def device_label(device: str) -> str:
    """'GPU (NVIDIA H100 ...)' or 'CPU (N threads)' for the one-line device log."""
    import tensorflow as tf

    if device.upper().startswith("/GPU"):
        gpus = tf.config.list_physical_devices("GPU")
        details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
        return f"GPU ({details.get('device_name', 'GPU 0')})"
    return f"CPU ({os.cpu_count()} cores)"


def select_device(device: str) -> str:
    """'auto' | 'cpu' | 'gpu' -> a TensorFlow device string; ConfigError when a GPU is asked for but absent."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise ConfigError("--device gpu, but TensorFlow sees no GPU; install the CUDA build (pip install 'dreamvid[gpu]') or use --device cpu")
    return "/GPU:0" if gpus and device != "cpu" else "/CPU:0"


def octave_sizes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """(H, W) of each octave, smallest first, ending at the full size; octaves whose shorter side
    would fall below MIN_OCTAVE_SIDE are dropped."""
    sizes = []
    for k in range(octaves - 1, -1, -1):
        h, w = round(height / scale**k), round(width / scale**k)
        if k == 0 or min(h, w) >= MIN_OCTAVE_SIDE:
            sizes.append((h, w))
    return sizes


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize float32 (H, W, 3) to size (H', W'): area averaging down, bicubic up."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    down = h * w < image.shape[0] * image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if down else cv2.INTER_CUBIC)


class Dreamer:
    """Gradient ascent of `objective` on images, over octaves.

    Contract: `dream(image)` takes float32 (H, W, 3) RGB in [0, 255] and returns the same shape
    and range. Settings are read once here; per-call overrides (`iterations`, `step`, `weights`,
    `seed`) never retrace the compiled loop.
    """

    def __init__(self, model, objective: Objective, settings: DreamSettings):
        import tensorflow as tf

        objective.validate(model)
        self.model = model
        self.objective = objective
        self.settings = settings
        self.device = select_device(settings.device)
        self.device_label = device_label(self.device)
        self.trace_count = 0
        self._extract = model.extractor(objective.layers)
        self._layers = objective.layers
        self._tile = int(settings.tile_size)
        self._norm = settings.grad_norm
        seed = settings.seed if settings.seed is not None else np.random.SeedSequence().entropy % 2**31
        self._seed = int(seed)
        with tf.device(self.device):
            self._rng = tf.random.Generator.from_seed(self._seed)
        n_terms = len(objective.terms)
        if settings.xla not in XLA_MODES:
            raise ConfigError(f"xla must be one of {', '.join(XLA_MODES)}, got {settings.xla!r}")
        self.xla = settings.xla == "on" or (settings.xla == "auto" and self.device.upper().startswith("/CPU")
                                            and (model.depth(objective.layers) or 10**9) <= XLA_AUTO_MAX_DEPTH)
        self._tile_grad = tf.function(self._tile_grad_graph, jit_compile=True) if self.xla else None
        self._ascend = tf.function(self._ascend_graph, input_signature=[
            tf.TensorSpec((None, None, 3), tf.float32),  # image (H, W, 3), 0..255
            tf.TensorSpec((), tf.int32),  # iterations
            tf.TensorSpec((), tf.float32),  # step
            tf.TensorSpec((n_terms,), tf.float32),  # objective weights
            tf.TensorSpec((), tf.int32),  # jitter
        ])
        self._gradient = tf.function(self._gradient_graph, input_signature=[
            tf.TensorSpec((None, None, 3), tf.float32), tf.TensorSpec((n_terms,), tf.float32)])

    @property
    def seed(self) -> int:
        """The base seed: settings.seed, or the one drawn at random when it was None."""
        return self._seed

    # --- compiled parts -------------------------------------------------------------------------

    def _loss(self, patch, weights):
        """patch (h, w, 3) -> scalar objective."""
        acts = self._extract(patch[None])  # list of (1, h', w', C), one per layer
        return self.objective(dict(zip(self._layers, acts)), weights)

    def _tile_grad_graph(self, patch, weights):
        """d objective / d patch for one tile (h, w, 3) -> (h, w, 3); XLA-compiled per tile size."""
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(patch)
            loss = self._loss(patch, weights)
        return tape.gradient(loss, patch)

    def _gradient_graph(self, image, weights):
        """d objective / d image over tiles of at most tile_size; (H, W, 3) -> (H, W, 3)."""
        import tensorflow as tf

        h, w = tf.shape(image)[0], tf.shape(image)[1]
        tile = tf.constant(self._tile)
        ny, nx = (h + tile - 1) // tile, (w + tile - 1) // tile  # tiles per side
        th, tw = (h + ny - 1) // ny, (w + nx - 1) // nx  # equal tiles, none a sliver
        grad = tf.zeros_like(image)
        for iy in tf.range(ny):
            for ix in tf.range(nx):
                y0, x0 = iy * th, ix * tw
                if self._tile_grad is not None:  # XLA: the tile's compiled gradient, padded into place
                    g = self._tile_grad(image[y0:y0 + th, x0:x0 + tw], weights)  # (th', tw', 3)
                    gh, gw = tf.shape(g)[0], tf.shape(g)[1]
                    grad += tf.pad(g, [[y0, h - y0 - gh], [x0, w - x0 - gw], [0, 0]])
                    continue
                with tf.GradientTape() as tape:
                    tape.watch(image)
                    loss = self._loss(image[y0:y0 + th, x0:x0 + tw], weights)
                grad += tape.gradient(loss, image)  # zero outside the tile
        return grad

    def _ascend_graph(self, image, iterations, step, weights, jitter):
        """`iterations` steps of normalised gradient ascent on one octave, all in the graph."""
        import tensorflow as tf

        self.trace_count += 1  # a Python side effect: runs only when TensorFlow traces
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        tiled = tf.logical_or(h > self._tile, w > self._tile)
        # a random grid offset for tiled images so seams never stay in place
        max_shift = jitter + tf.where(tiled, tf.constant(self._tile), 0)
        for _ in tf.range(iterations):
            # 1) roll by a random shift (jitter): the network's stride grid and tile seams move
            shift = self._rng.uniform((2,), -max_shift, max_shift + 1, dtype=tf.int32)
            rolled = tf.roll(image, shift, axis=(0, 1))
            # 2) gradient of the objective, tile by tile, rolled back into place
            g = tf.roll(self._gradient_graph(rolled, weights), -shift, axis=(0, 1))
            # 3) normalise so `step` means pixels on the 0..255 scale whatever the layer: by the
            #    max first (no squares: those of ~1e-20 underflow), then by the chosen measure
            g = g / (tf.reduce_max(tf.abs(g)) + GRAD_EPS)
            if self._norm == "std":
                g = g / (tf.math.reduce_std(g) + 1e-8)
            elif self._norm == "mean":
                g = g / (tf.reduce_mean(tf.abs(g)) + 1e-8)
            # 4) ascend and keep values in range
            image = tf.clip_by_value(image + step * g, 0.0, 255.0)
        return image

    # --- public API -----------------------------------------------------------------------------

    def _weights(self, weights):
        import tensorflow as tf

        w = self.objective.weights if weights is None else weights
        if len(w) != len(self.objective.terms):
            raise ValueError(f"{len(self.objective.terms)} objective weights expected, got {len(w)}")
        return tf.constant(np.asarray(w, np.float32))

    def reseed(self, seed: int) -> None:
        """Restart the jitter sequence: frame k of a render dreams with seed (base + k), so a
        resumed render repeats the frames an uninterrupted one would make."""
        self._rng.reset_from_seed(int(seed))

    def ascend(self, image: np.ndarray, iterations: int | None = None, step: float | None = None,
               weights=None) -> np.ndarray:
        """Gradient ascent at the image's own size (one octave)."""
        import tensorflow as tf

        s = self.settings
        with tf.device(self.device):
            out = self._ascend(tf.constant(np.asarray(image, np.float32)),
                               tf.constant(s.iterations if iterations is None else int(iterations), tf.int32),
                               tf.constant(s.step if step is None else float(step), tf.float32),
                               self._weights(weights), tf.constant(int(s.jitter), tf.int32))
        return out.numpy()

    def dream(self, image: np.ndarray, *, iterations: int | None = None, step: float | None = None,
              octaves: int | None = None, octave_scale: float | None = None, weights=None,
              seed: int | None = None, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """DeepDream over octaves. image: float32 (H, W, 3) in [0, 255] -> same.

        `progress(done, total)` is called after each octave.
        """
        image = np.asarray(image, np.float32)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be (H, W, 3), got {image.shape}")
        if seed is not None:
            self.reseed(seed)
        s = self.settings
        sizes = octave_sizes(image.shape[0], image.shape[1], octaves or s.octaves, octave_scale or s.octave_scale)
        detail = np.zeros((*sizes[0], 3), np.float32)
        for k, size in enumerate(sizes):
            base = resize(image, size)  # 1) the input at this octave's size
            detail = resize(detail, size)  # 2) upscale the detail the smaller octaves added
            dreamed = self.ascend(base + detail, iterations, step, weights)  # 3) ascend
            detail = dreamed - base  # 4) keep only what the dream added
            if progress:
                progress(k + 1, len(sizes))
        return np.clip(image + detail, 0.0, 255.0)

    def objective_value(self, image: np.ndarray, weights=None) -> float:
        """The objective on a whole image (untiled): what the dream raises."""
        import tensorflow as tf

        with tf.device(self.device):
            return float(self._loss(tf.constant(np.asarray(image, np.float32)), self._weights(weights)))

    def gradient_image(self, image: np.ndarray) -> np.ndarray:
        """The seed blog's view: the objective's gradient, scaled by its max |g|, as an RGB image
        (uint8, mid-grey = 0) to look at what a layer responds to."""
        import tensorflow as tf

        with tf.device(self.device):
            g = self._gradient(tf.constant(np.asarray(image, np.float32)), self._weights(None)).numpy()
        g = g / (np.abs(g).max() + GRAD_EPS)  # [-1, 1]
        return np.clip(127.5 + 127.5 * g, 0, 255).astype(np.uint8)

    def steps_strip(self, image: np.ndarray, every: int, count: int) -> list[np.ndarray]:
        """The seed blog's strip: the image after every `every` steps, `count` times (one octave)."""
        out, img = [], np.asarray(image, np.float32)
        for _ in range(count):
            img = self.ascend(img, iterations=every)
            out.append(img)
        return out


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def amount(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |a - b| per pixel channel on 0..255: how much a dream changed an image."""
    return float(np.mean(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))))


__all__ = ["Dreamer", "octave_sizes", "resize", "select_device", "to_uint8", "amount"]
