"""The DeepDream loop: one float RGB image in, one out. No video, no flow.

    dreamer = Dreamer(model, objective, DreamSettings())
    out = dreamer.dream(image)          # image: float32 (H, W, 3) in [0, 255]

Written once on `keras.ops`, so the same loop runs on TensorFlow, JAX and PyTorch; what Keras
leaves to the framework (the gradient with respect to the image, compiling, devices) comes from
`dreamvid.backends`. Per octave, the whole ascent loop (jitter, tiled gradients, normalisation,
update, clipping) is one compiled call: a graph per octave size on TensorFlow (XLA where it
pays), a `jax.jit` per octave size on JAX, on PyTorch eager steps that never leave the device.
Frames of one size reuse the same compiled loop: nothing is traced again across frames
(`Dreamer.trace_count` counts traces).

Random choices (jitter shifts, the tile grid's offset) come from the project's own seeded NumPy
generator and enter the loop as a table, so a seed makes the same dream on every backend.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from dreamvid import backends, hardware
from dreamvid.config import DreamSettings
from dreamvid.errors import ConfigError
from dreamvid.frames import resize, to_uint8
from dreamvid.objectives import Objective

# Added to the gradient's max |g| before dividing by it: only guards 0/0. Tiny, so that gradients
# of any scale are normalised (an untrained network's deep layers give std ~1e-11, and 1e-8
# there would swallow the step).
GRAD_EPS = 1e-30
# A guide image is seen at most this many pixels on its longer side: its features are matched with
# every frame position (a (frame positions x guide positions) product per step), and the
# notebook's guides were 224-px crops.
GUIDE_MAX_SIDE = 512
MIN_OCTAVE_SIDE = 32  # smaller octaves than this carry no useful detail and upset deep layers
XLA_MODES = ("auto", "on", "off")
# A jitter table holds at least this many steps, rounded up to a power of two, so 10 steps on a
# shot's first frame and 5 on the next share one compiled loop where the count is passed in.
MIN_STEPS_TABLE = 16
# With static_steps, the step counts compiled into the loop per kind of loop at most: a shot's first
# frame and the rest; an iterations schedule's further counts share one loop with the count passed in
STATIC_STEP_COUNTS = 2
DEFAULT_TILE = {"cpu": 512, "gpu": 1280}  # tile_size None: bounded memory on a CPU; 720p in one piece on a GPU


def octave_sizes(height: int, width: int, octaves: int, scale: float,
                 min_side: int = MIN_OCTAVE_SIDE) -> list[tuple[int, int]]:
    """(H, W) of each octave, smallest first, ending at the full size; octaves whose shorter side
    would fall below `min_side` are dropped."""
    sizes = []
    for k in range(octaves - 1, -1, -1):
        h, w = round(height / scale**k), round(width / scale**k)
        if k == 0 or min(h, w) >= min_side:
            sizes.append((h, w))
    return sizes


def _resize(x, size: tuple[int, int]):
    """A tensor (H, W, 3) resized on the device to size (H', W'): antialiased bilinear down (an
    area average, like cv2's INTER_AREA), bicubic up (as `resize`)."""
    from keras import ops

    h, w = size
    if tuple(x.shape[:2]) == (h, w):
        return x
    down = h * w < x.shape[0] * x.shape[1]
    return ops.image.resize(x, (h, w), interpolation="bilinear" if down else "bicubic", antialias=down)


def tile_grid(h: int, w: int, tile: int) -> tuple[int, int, int, int] | None:
    """(rows, columns, tile height, tile width) of equal tiles of at most `tile` pixels a side
    covering (h, w), none a sliver; None when the image fits in one tile."""
    if h <= tile and w <= tile:
        return None
    ny, nx = -(-h // tile), -(-w // tile)
    return ny, nx, -(-h // ny), -(-w // nx)


def _roll(x, dy, dx):
    """x (H, W, C) rolled by (dy, dx) pixels, wrapping round: out[i, j] = x[i - dy, j - dx].
    A gather with index arithmetic, so the shift may be a tensor on every backend."""
    from keras import ops

    h, w = x.shape[0], x.shape[1]
    iy = ops.mod(ops.arange(h, dtype="int32") - dy, h)
    ix = ops.mod(ops.arange(w, dtype="int32") - dx, w)
    return ops.take(ops.take(x, iy, axis=0), ix, axis=1)


def _spread(g, norm: str, mask=None, area=None):
    """The size of a step's gradient g (H, W, C) that `norm` divides by: "std" its standard
    deviation, "mean" its mean |g|; over the whole image, or with mask (H, W, 1) over the masked
    area (`area`: the mask's sum times C), weighted by the mask (g is 0 where the mask is)."""
    from keras import ops

    if mask is None:
        return ops.std(g) if norm == "std" else ops.mean(ops.abs(g))
    if norm == "std":
        mean = ops.sum(g) / area  # sum(m * g) = sum(g): g is already masked
        return ops.sqrt(ops.sum(mask * ops.square(g - mean)) / area)
    return ops.sum(ops.abs(g)) / area


def _wrap_pad(x, h2: int, w2: int):
    """x (H, W, C) extended to (h2, w2) by repeating its first rows and columns (h2 >= H, w2 >= W):
    the image is rolled anyway, so equal tiles may run over the edge and wrap round."""
    from keras import ops

    h, w = x.shape[0], x.shape[1]
    if h2 > h:
        x = ops.concatenate([x, x[: h2 - h]], axis=0)
    if w2 > w:
        x = ops.concatenate([x, x[:, : w2 - w]], axis=1)
    return x


def is_tensor(x) -> bool:
    """A backend tensor (on the dream's device), not a NumPy array or a Python number."""
    return not isinstance(x, (np.ndarray, np.generic, int, float)) and hasattr(x, "shape")


def over_octaves(image, mask, sizes, ascend, as_uint8: bool, progress=None):
    """The octave loop (keras.ops, traceable): image (H, W, 3) uint8 or float32 on [0, 255], mask
    None or (H, W, 1); for each size in `sizes` (smallest first) the input at that size plus the
    detail the smaller octaves added goes through ascend(k, image, mask at that size), and only
    what the ascent added is kept. Returns the input plus the detail (cut by the mask), clipped to
    [0, 255], rounded to uint8 (half to even, as to_uint8 on the host) with `as_uint8`."""
    from keras import ops

    full = ops.cast(image, "float32")
    detail = ops.zeros((*sizes[0], 3), "float32")
    for k, size in enumerate(sizes):
        base = _resize(full, size)  # 1) the input at this octave's size
        detail = _resize(detail, size)  # 2) upscale the detail the smaller octaves added
        m = None if mask is None else _resize(mask, size)  # area average down: stays in [0, 1]
        detail = ascend(k, base + detail, m) - base  # 3) ascend, 4) keep only what it added
        if progress:
            progress(k + 1, len(sizes))
    if mask is not None:
        detail = detail * mask  # upscaled detail spreads a pixel or two past the mask's edge: cut it there
    out = ops.clip(full + detail, 0.0, 255.0)
    return ops.cast(ops.round(out), "uint8") if as_uint8 else out


class Dreamer:
    """Gradient ascent of `objective` on images, over octaves.

    Contract: `dream(image)` takes float32 (H, W, 3) RGB in [0, 255] and returns the same shape
    and range. Settings are read once here; per-call overrides (`iterations`, `step`, `weights`,
    `seed`) never recompile the loop.
    """

    def __init__(self, model, objective: Objective, settings: DreamSettings, guide: np.ndarray | None = None):
        """guide: float32 (H, W, 3) in [0, 255], the image the objective's guide terms match
        (needed when it has any; its features are computed here, once per layer)."""
        objective.validate(model)
        self.model = model
        self.objective = objective
        self.settings = settings
        self.backend = backends.current()
        self.backend.setup()
        gpu = self.backend.gpu_name() if settings.device != "cpu" else None
        if settings.device == "gpu" and gpu is None:
            raise ConfigError(f"--device gpu, but {self.backend.NAME} sees no GPU; install a GPU build "
                              f"(pip install 'dreamvid[jax-cuda]', or PyTorch's CUDA wheel) or use --device cpu")
        self.device = "gpu" if gpu else "cpu"
        self.device_label = backends.describe(gpu)
        if settings.xla not in XLA_MODES:
            raise ConfigError(f"xla must be one of {', '.join(XLA_MODES)}, got {settings.xla!r}")
        self.xla = hardware.use_xla(settings.xla, self.backend.NAME, self.device, model.precision,
                                    lambda: model.depth(objective.layers))
        self.trace_count = 0
        self._layers = objective.layers
        self._tile = int(settings.tile_size or DEFAULT_TILE[self.device])
        self._norm = settings.grad_norm
        seed = settings.seed if settings.seed is not None else np.random.SeedSequence().entropy % 2**31
        self._seed = int(seed)
        self._rng = np.random.default_rng(self._seed)
        net_state, apply = self.backend.bind(model.network(objective.layers))
        self._apply = lambda state, x: apply(state[0], x)
        self._preprocess = model.preprocess
        # smaller octaves carry no useful detail, and the network must see a non-empty layer
        self._min_side = max(MIN_OCTAVE_SIDE, model.min_side(objective.layers))
        # the compiled calls take (network state, guide features): () without guide terms, so
        # the loop then has no guide inputs or ops at all
        self._state = (net_state, self._guide_features(net_state, guide))
        self._grad = self.backend.grad(self._loss, xla=self.xla)
        self._loops = {}  # see _loop: the compiled ascent of an octave or a frame, per kind
        self._gradient = self.backend.compile(self._image_gradient)
        self._objective = self.backend.compile(self._loss)
        self._helpers = {}  # see compiled: the chain's small device functions, compiled once each
        # where carry_over makes a video frame's start: on a GPU, there (the host's OpenCV work
        # would sit between two dreams); on a CPU the host's OpenCV is as fast, and exact
        self.carry_on_device = self.device == "gpu"
        # all octaves of a frame in one compiled call (per frame size): on a GPU the resizes
        # between octaves are then no eager ops each waiting on the host; elsewhere octave by
        # octave, so a long first frame reports progress after each
        self.fuse_octaves = self.device == "gpu"
        # a video's chain of frames kept on the device (chain.dream_clip): the next frame queued
        # before the last one comes back, so the device never waits for the host's part
        self.chain_on_device = self.carry_on_device
        # the number of steps compiled into the loop (one compile per count, typically two: a
        # shot's first frame and the rest) rather than passed in: XLA runs a GPU while loop of
        # unknown length by reading its condition back to the host after every step, so the
        # device idles while the host launches the next step, and the call cannot return before
        # the loop ends; on a CPU the loop runs on the host anyway, and one compile serves all
        self.static_steps = self.device == "gpu"

    @property
    def min_side(self) -> int:
        """The shortest side dreamed: smaller images are dreamed enlarged, smaller octaves dropped."""
        return self._min_side

    @property
    def seed(self) -> int:
        """The base seed: settings.seed, or the one drawn at random when it was None."""
        return self._seed

    # --- the compiled parts (keras.ops only) -----------------------------------------------------

    def _activations(self, state, patch) -> dict:
        """patch (h, w, 3) RGB 0..255 -> {layer: (1, h', w', C)} for the objective's layers."""
        acts = self._apply(state, self._preprocess(patch[None]))
        acts = list(acts) if isinstance(acts, (list, tuple)) else [acts]  # (1, h', w', C) per layer
        return dict(zip(self._layers, acts))

    def _loss(self, state, patch, weights):
        """patch (h, w, 3) RGB 0..255 -> the scalar objective (summed in float32)."""
        return self.objective(self._activations(state, patch), weights, state[1])

    def _guide_features(self, net_state, guide) -> tuple:
        """One (N, C) float32 tensor per guide term: the guide image's activation vectors at the
        term's layer, computed once, on the device (the guide at most GUIDE_MAX_SIDE a side)."""
        from keras import ops

        terms = self.objective.guide_terms
        if not terms:
            return ()
        if guide is None:
            raise ConfigError("the objective has guide terms but no guide image was given; pass --guide IMAGE")
        guide = np.asarray(guide, np.float32)
        h, w = guide.shape[:2]
        k = min(1.0, GUIDE_MAX_SIDE / max(h, w))
        if k < 1.0:
            guide = resize(guide, (max(1, round(h * k)), max(1, round(w * k))))
        if min(guide.shape[:2]) < self._min_side:  # the network must see a non-empty layer
            guide = resize(guide, self._enlarged(*guide.shape[:2]))
        with self.backend.placement(self.device):
            acts = self._activations((net_state, ()), ops.convert_to_tensor(guide))
            return tuple(ops.reshape(ops.cast(acts[t.layer], "float32"), (-1, acts[t.layer].shape[-1])) for t in terms)

    def _tile_loss(self, state, image, weights, y0, x0, th, tw, h2, w2):
        """The objective of the (th, tw) tile at (y0, x0) of the image wrapped out to (h2, w2)."""
        from keras import ops

        return self._loss(state, ops.slice(_wrap_pad(image, h2, w2), (y0, x0, 0), (th, tw, 3)), weights)

    def _image_gradient(self, state, image, weights):
        """d objective / d image, tile by tile (tiles are summed: each tile's objective is its
        own); (H, W, 3) -> (H, W, 3). The tiles run one after another, so memory stays bounded."""
        from keras import ops

        grid = tile_grid(image.shape[0], image.shape[1], self._tile)
        if grid is None:
            return self._grad(state, image, weights)
        ny, nx, th, tw = grid
        tile_grad = self.backend.grad(self._tile_loss, xla=self.xla)

        def add_tile(t, acc):
            y0, x0 = (t // nx) * th, (t % nx) * tw
            return acc + tile_grad(state, image, weights, y0, x0, th, tw, ny * th, nx * tw)

        return ops.fori_loop(0, ny * nx, add_tile, ops.zeros_like(image))

    def _loop(self, steps: int, masked: bool, sizes: tuple | None = None, as_uint8: bool = False):
        """(the compiled call, its loop-bound arguments) of `steps` ascent steps on one octave
        (sizes None: ascend) or on a whole frame's octaves (`_frame_loop`), masked or not (a loop
        of its own, so the unmasked loop carries no mask ops at all). The call takes (state,
        image, shifts, *bound, step, weights[, mask]): `bound` is [] where static_steps compiles
        the count in (the first STATIC_STEP_COUNTS counts of each kind), else [the count as a
        traced scalar], so another count never recompiles."""
        kind = (sizes, masked, as_uint8)
        fixed = steps if self.static_steps else None
        if fixed is not None and (*kind, fixed) not in self._loops and \
                sum(k[:3] == kind and k[3] is not None for k in self._loops) >= STATIC_STEP_COUNTS:
            fixed = None  # a schedule's further counts: one loop with the count passed in serves them all
        key = (*kind, fixed)
        fn = self._loops.get(key)
        if fn is None:
            def run(state, image, shifts, *rest):
                n, step, weights, *mask = (fixed, *rest) if fixed is not None else rest
                mask = mask[0] if mask else None
                if sizes is None:
                    return self._ascend_steps(state, image, shifts, n, step, weights, mask)
                return self._frame_loop(state, image, shifts, n, step, weights, mask, sizes=sizes, as_uint8=as_uint8)
            fn = self._loops[key] = self.backend.compile(run)
        return fn, ([] if fixed is not None else [self.backend.loop_count(steps)])

    def _ascend_steps(self, state, image, shifts, steps, step, weights, mask):
        """`steps` steps of normalised gradient ascent on one octave; shifts (>= steps, 2) int32
        is the jitter table (dy, dx) of each step; mask None or (H, W, 1) in [0, 1] scales each
        step. `steps` a Python int (compiled in) or a traced scalar."""
        from keras import ops

        self.trace_count += 1  # a Python side effect: runs only when the loop is traced
        # the share of the image's values the mask lets dream (tiny guard: an all-black mask
        # gives 0/eps = 0, no step at all)
        area = None if mask is None else ops.sum(mask) * image.shape[2] + 1e-6

        def one_step(i, img):
            # 1) roll by the step's random shift (jitter): the network's stride grid and the
            #    tile seams move from step to step
            shift = ops.take(shifts, i, axis=0)
            rolled = _roll(img, shift[0], shift[1])
            # 2) gradient of the objective, tile by tile, rolled back into place
            g = _roll(self._image_gradient(state, rolled, weights), -shift[0], -shift[1])
            # 3) normalise so `step` means pixels on the 0..255 scale whatever the layer: by the
            #    max first (no squares: those of ~1e-20 underflow), then by the chosen measure
            #    (with a mask, over the masked area only: the dream inside is as strong as
            #    without a mask whatever the gradient outside)
            if mask is not None:  # decided when tracing: the unmasked loop has no mask ops
                g = g * mask
            g = g / (ops.max(ops.abs(g)) + GRAD_EPS)
            if self._norm != "max":
                g = g / (_spread(g, self._norm, mask, area) + 1e-8)
            # 4) ascend and keep values in range
            return ops.clip(img + step * g, 0.0, 255.0)

        return ops.fori_loop(0, steps, one_step, image)

    # --- public API -----------------------------------------------------------------------------

    def _weights(self, weights) -> np.ndarray:
        w = self.objective.weights if weights is None else weights
        if len(w) != len(self.objective.terms):
            raise ValueError(f"{len(self.objective.terms)} objective weights expected, got {len(w)}")
        return np.asarray(w, np.float32)

    def reseed(self, seed: int) -> None:
        """Restart the jitter sequence: frame k of a render dreams with seed (base + k), so a
        resumed render repeats the frames an uninterrupted one would make."""
        self._rng = np.random.default_rng(int(seed))

    def _shifts(self, h: int, w: int, steps: int) -> np.ndarray:
        """The jitter table of one octave: (capacity, 2) int32, `steps` random rows then zeros.
        Tiled images also move the tile grid by up to a tile, so seams never stay in place."""
        reach = int(self.settings.jitter) + (self._tile if tile_grid(h, w, self._tile) else 0)
        capacity = max(MIN_STEPS_TABLE, 1 << max(0, steps - 1).bit_length())
        table = np.zeros((capacity, 2), np.int32)
        table[:steps] = self._rng.integers(-reach, reach + 1, size=(steps, 2))
        return table

    def _call(self, fn, *args):
        from keras import ops

        with self.backend.placement(self.device):
            return self.backend.to_numpy(fn(self._state, *[ops.convert_to_tensor(a) for a in args]))

    def ascend(self, image, iterations: int | None = None, step: float | None = None, weights=None, mask=None):
        """Gradient ascent at the image's own size (one octave). A NumPy image in, a NumPy image
        out; a backend tensor in (what `dream` passes), a tensor out, left on the device.
        mask: None, or (H, W, 1) float32 in [0, 1] (NumPy or tensor) scaling each step there."""
        from keras import ops

        on_host = isinstance(image, np.ndarray)
        steps = self._steps(iterations)
        shifts = self._shifts(image.shape[0], image.shape[1], steps)
        with self.backend.placement(self.device):
            fn, bound = self._loop(steps, mask is not None)
            masks = []
            if mask is not None:
                mask = np.asarray(mask, np.float32).reshape(*image.shape[:2], 1) if isinstance(mask, np.ndarray) else mask
                masks = [ops.convert_to_tensor(mask)]
            out = fn(self._state, ops.convert_to_tensor(np.asarray(image, np.float32) if on_host else image),
                     *self._loop_args(shifts, bound, step, weights), *masks)
            return self.backend.to_numpy(out) if on_host else out

    def _steps(self, iterations: int | None) -> int:
        return self.settings.iterations if iterations is None else int(iterations)

    def _loop_args(self, shifts, bound, step, weights) -> list:
        """The arguments of a `_loop` call after the image: jitter table(s), loop bound, step size
        (settings.step if None) and objective weights, as tensors."""
        from keras import ops

        step = np.float32(self.settings.step if step is None else step)
        return [ops.convert_to_tensor(shifts), *bound, ops.convert_to_tensor(step),
                ops.convert_to_tensor(self._weights(weights))]

    def compiled(self, key, fn):
        """fn compiled for this Dreamer's backend, once per key (the Dreamer lives as long as the
        render, its segments and the bench's warm-up included, so each compiles once)."""
        if key not in self._helpers:
            self._helpers[key] = self.backend.compile(fn)
        return self._helpers[key]

    def _enlarged(self, h: int, w: int) -> tuple[int, int]:
        k = self._min_side / min(h, w)
        return max(self._min_side, round(h * k)), max(self._min_side, round(w * k))

    def octave_sizes(self, h: int, w: int, octaves: int | None = None, octave_scale: float | None = None):
        """The (H, W) of each octave `dream` ascends for an (h, w) image, smallest first."""
        if min(h, w) < self._min_side:
            h, w = self._enlarged(h, w)
        s = self.settings
        return octave_sizes(h, w, octaves or s.octaves, octave_scale or s.octave_scale, self._min_side)

    def dream(self, image: np.ndarray, *, iterations: int | None = None, step: float | None = None,
              octaves: int | None = None, octave_scale: float | None = None, weights=None,
              seed: int | None = None, progress: Callable[[int, int], None] | None = None,
              mask: np.ndarray | None = None, as_uint8: bool = False, to_host: bool = True) -> np.ndarray:
        """DeepDream over octaves. image: (H, W, 3) on [0, 255], float32 or uint8 (NumPy), or the
        backend tensor `carry_over` made on the device -> float32 (H, W, 3) in [0, 255]; with
        as_uint8, rounded (half to even, as to_uint8) to uint8 on the device: a quarter of the
        bytes to bring back. A uint8 image goes to the device as it is, a quarter of the bytes too.
        With to_host False the result stays a backend tensor on the device (nothing waits for it).

        mask: None, or float32 (H, W) or (H, W, 1) in [0, 1]: where to dream (1 in full, 0 not
        at all). It goes to the device once, is resized per octave like the image, scales each
        step (normalised over the masked area), and the final detail is multiplied by it too, so
        where it is 0 the image comes back as it went in.

        The octaves stay on the device: the frame goes there once and comes back once (on a GPU,
        per-octave copies and NumPy resizes of a 720p frame cost as much as the dream itself).
        `progress(done, total)` is called after each octave (once, at the end, where
        `fuse_octaves` puts the frame's octaves in one compiled call). An image smaller than the network
        can see (Dreamer.min_side) is dreamed enlarged to that size, then brought back.
        """
        from keras import ops

        on_device = is_tensor(image)  # a tensor from carry_over
        if not on_device:
            image = np.asarray(image)
            image = image if image.dtype == np.uint8 else image.astype(np.float32, copy=False)
        if len(image.shape) != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be (H, W, 3), got {tuple(image.shape)}")
        if seed is not None:
            self.reseed(seed)
        h, w = image.shape[:2]
        if min(h, w) < self._min_side:  # smaller than the network can see: dream it enlarged
            image = np.asarray(self.backend.to_numpy(image) if on_device else image, np.float32)
            bh, bw = self._enlarged(h, w)
            big = cv2.resize(image, (bw, bh), interpolation=cv2.INTER_CUBIC)
            big_mask = None if mask is None else cv2.resize(np.asarray(mask, np.float32).reshape(h, w), (bw, bh),
                                                            interpolation=cv2.INTER_LINEAR)
            out = self.dream(big, iterations=iterations, step=step, octaves=octaves, octave_scale=octave_scale,
                             weights=weights, progress=progress, mask=big_mask)
            out = np.clip(cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA), 0.0, 255.0)
            out = to_uint8(out) if as_uint8 else out
            return out if to_host else ops.convert_to_tensor(out)
        sizes = tuple(self.octave_sizes(h, w, octaves, octave_scale))
        with self.backend.placement(self.device):
            full = image if on_device else ops.convert_to_tensor(image)
            full_mask = None
            if mask is not None:
                mask = np.asarray(mask, np.float32)
                if mask.size != h * w:
                    raise ValueError(f"mask must be (H, W) or (H, W, 1) like the image {image.shape}, got {mask.shape}")
                full_mask = ops.convert_to_tensor(np.clip(mask.reshape(h, w, 1), 0.0, 1.0))
            if self.fuse_octaves:  # the whole frame in one compiled call
                steps = self._steps(iterations)
                shifts = np.stack([self._shifts(*size, steps) for size in sizes])  # as ascend would draw them
                fn, bound = self._loop(steps, full_mask is not None, sizes, as_uint8)
                # (cast first: a uint8 frame and a float32 start from carry_over share one compile)
                out = fn(self._state, ops.cast(full, "float32"), *self._loop_args(shifts, bound, step, weights),
                         *([] if full_mask is None else [full_mask]))
                if progress:
                    progress(len(sizes), len(sizes))
            else:  # octave by octave: a compiled call each, progress after each
                def ascend(k, image, m):
                    return self.ascend(image, iterations, step, weights, m)
                out = over_octaves(full, full_mask, sizes, ascend, as_uint8, progress)
            return self.backend.to_numpy(out) if to_host else out

    def _frame_loop(self, state, image, shifts, steps, step, weights, mask=None, *, sizes, as_uint8):
        """`dream` of one frame in one compiled call: every octave's ascent (shifts: one jitter
        table per octave, stacked), the resizes between them and the final rounding."""
        from keras import ops

        def ascend(k, img, m):
            return self._ascend_steps(state, img, ops.take(shifts, k, axis=0), steps, step, weights, m)
        return over_octaves(image, mask, sizes, ascend, as_uint8)

    def objective_value(self, image: np.ndarray, weights=None) -> float:
        """The objective on a whole image (untiled): what the dream raises."""
        return float(self._call(self._objective, np.asarray(image, np.float32), self._weights(weights)))

    def gradient_image(self, image: np.ndarray) -> np.ndarray:
        """The seed blog's view: the objective's gradient, scaled by its max |g|, as an RGB image
        (uint8, mid-grey = 0) to look at what a layer responds to."""
        g = self._call(self._gradient, np.asarray(image, np.float32), self._weights(None))
        g = g / (np.abs(g).max() + GRAD_EPS)  # [-1, 1]
        return np.clip(127.5 + 127.5 * g, 0, 255).astype(np.uint8)

    def steps_strip(self, image: np.ndarray, every: int, count: int) -> list[np.ndarray]:
        """The seed blog's strip: the image after every `every` steps, `count` times (one octave)."""
        out, img = [], np.asarray(image, np.float32)
        for _ in range(count):
            img = self.ascend(img, iterations=every)
            out.append(img)
        return out



__all__ = ["Dreamer", "octave_sizes", "tile_grid", "is_tensor", "over_octaves"]
