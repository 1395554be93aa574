"""The DeepDream loop: one float RGB image in, one out. No video, no flow.

    dreamer = Dreamer(model, objective, DreamSettings())
    out = dreamer.dream(image)          # image: float32 (H, W, 3) in [0, 255]

Written once on `keras.ops`, so the same loop runs on TensorFlow, JAX and PyTorch; what Keras
leaves to the framework (the gradient with respect to the image, compiling, devices) comes from
`dreamvid.engine.backends`. Per octave, the whole ascent loop (jitter, tiled gradients, normalisation,
update, clipping) is one compiled call: a graph per octave size on TensorFlow (XLA where it
pays), a `jax.jit` per octave size on JAX, on PyTorch eager steps that never leave the device.
Frames of one size reuse the same compiled loop: nothing is traced again across frames
(`Dreamer.trace_count` counts traces).

Random choices (jitter shifts, the tile grid's offset) come from the project's own seeded NumPy
generator and enter the loop as a table, so a seed makes the same dream on every backend.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from dreamvid.config.settings import DreamSettings
from dreamvid.core.frames import to_uint8
from dreamvid.engine.ascent import MIN_OCTAVE_SIDE, Ascent
from dreamvid.engine.objectives import Objective

# With static_steps, the step counts compiled into the loop per kind of loop at most: a shot's first
# frame and the rest; an iterations schedule's further counts share one loop with the count passed in
STATIC_STEP_COUNTS = 2


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


def is_tensor(x) -> bool:
    """A backend tensor (on the dream's device), not a NumPy array or a Python number."""
    return not isinstance(x, (np.ndarray, np.generic, int, float)) and hasattr(x, "shape")


def over_octaves(image, mask, sizes, ascend, as_uint8: bool, progress=None, dreamed: int | None = None,
                 cut=None):
    """The octave loop (keras.ops, traceable): image (H, W, 3) uint8 or float32 on [0, 255], mask
    None or (H, W, 1), the map that scales each step; for each size in `sizes` (smallest first)
    the input at that size plus the detail the smaller octaves added goes through
    ascend(k, image, mask at that size), and only what the ascent added is kept. `dreamed`: only
    the first so many sizes are ascended (None: all); the detail is carried up through the
    others as it is, upsampled (a touch-up at a lower resolution, Dreamer.dream's `skip_top`).
    Returns the input plus the detail times `cut` (None, or (H, W, 1): a dream mask's, which
    may be the same map as `mask`), clipped to [0, 255], rounded to uint8 (half to even, as
    to_uint8 on the host) with `as_uint8`."""
    from keras import ops

    dreamed = len(sizes) if dreamed is None else dreamed
    full = ops.cast(image, "float32")
    detail = ops.zeros((*sizes[0], 3), "float32")
    for k, size in enumerate(sizes):
        detail = _resize(detail, size)  # 2) upscale the detail the smaller octaves added
        if k >= dreamed:  # an octave the touch-up leaves out: the detail only carried up to its size
            continue
        base = _resize(full, size)  # 1) the input at this octave's size
        m = None if mask is None else _resize(mask, size)  # area average down: stays in [0, 1]
        detail = ascend(k, base + detail, m) - base  # 3) ascend, 4) keep only what it added
        if progress:
            progress(k + 1, len(sizes))
    if cut is not None:
        detail = detail * cut  # upscaled detail spreads a pixel or two past the mask's edge: cut it there
    out = ops.clip(full + detail, 0.0, 255.0)
    return ops.cast(ops.round(out), "uint8") if as_uint8 else out


class Dreamer(Ascent):
    """Gradient ascent of `objective` on images, over octaves (the ascent at one size: Ascent).

    Contract: `dream(image)` takes float32 (H, W, 3) RGB in [0, 255] and returns the same shape
    and range. Settings are read once here; per-call overrides (`iterations`, `step`, `weights`,
    `seed`) never recompile the loop.
    """

    def __init__(self, model, objective: Objective, settings: DreamSettings, guide: np.ndarray | None = None):
        """guide: as Ascent's. Then the device policy a video's chain reads (chain.py): where a
        frame's start is made, whether a frame's octaves run as one call, how steps compile."""
        super().__init__(model, objective, settings, guide)
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

    # --- the compiled parts (keras.ops only) -----------------------------------------------------


    def _loop(self, steps: int, masked: bool, sizes: tuple | None = None, as_uint8: bool = False, cut: bool = False):
        """(the compiled call, its loop-bound arguments) of `steps` ascent steps on one octave
        (sizes None: ascend) or on a whole frame's octaves (`_frame_loop`; sizes: (the octave sizes,
        how many are ascended)), masked or not (a loop of its own, so the unmasked loop carries
        no mask ops at all), and for a frame, its detail cut by a map or not (`cut`). The call
        takes (state, image, shifts, *bound, step, weights[, mask][, cut]): `bound` is [] where static_steps compiles
        the count in (the first STATIC_STEP_COUNTS counts of each kind), else [the count as a
        traced scalar], so another count never recompiles."""
        kind = (sizes, masked, cut, as_uint8)
        fixed = steps if self.static_steps else None
        if fixed is not None and (*kind, fixed) not in self._loops and \
                sum(k[:-1] == kind and k[-1] is not None for k in self._loops) >= STATIC_STEP_COUNTS:
            fixed = None  # a schedule's further counts: one loop with the count passed in serves them all
        key = (*kind, fixed)
        fn = self._loops.get(key)
        if fn is None:
            def run(state, image, shifts, *rest):
                n, step, weights, *maps = (fixed, *rest) if fixed is not None else rest
                mask = maps[0] if masked else None
                if sizes is None:
                    return self._ascend_steps(state, image, shifts, n, step, weights, mask)
                return self._frame_loop(state, image, shifts, n, step, weights, mask, sizes=sizes, as_uint8=as_uint8,
                                        cut=maps[-1] if cut else None)
            fn = self._loops[key] = self.backend.compile(run)
        return fn, ([] if fixed is not None else [self.backend.loop_count(steps)])


    # --- public API -----------------------------------------------------------------------------


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
                mask = (np.asarray(mask, np.float32).reshape(*image.shape[:2], 1) if isinstance(mask, np.ndarray)
                        else mask)
                masks = [ops.convert_to_tensor(mask)]
            out = fn(self._state, ops.convert_to_tensor(np.asarray(image, np.float32) if on_host else image),
                     *self._loop_args(shifts, bound, step, weights), *masks)
            return self.backend.to_numpy(out) if on_host else out


    def compiled(self, key, fn):
        """fn compiled for this Dreamer's backend, once per key (the Dreamer lives as long as the
        render, its segments and the bench's warm-up included, so each compiles once)."""
        if key not in self._helpers:
            self._helpers[key] = self.backend.compile(fn)
        return self._helpers[key]


    def octave_sizes(self, h: int, w: int, octaves: int | None = None, octave_scale: float | None = None):
        """The (H, W) of each octave `dream` ascends for an (h, w) image, smallest first."""
        if min(h, w) < self._min_side:
            h, w = self._enlarged(h, w)
        s = self.settings
        return octave_sizes(h, w, octaves or s.octaves, octave_scale or s.octave_scale, self._min_side)

    def dream(self, image: np.ndarray, *, iterations: int | None = None, step: float | None = None,
              octaves: int | None = None, octave_scale: float | None = None, weights=None,
              seed: int | None = None, progress: Callable[[int, int], None] | None = None,
              mask: np.ndarray | None = None, as_uint8: bool = False, to_host: bool = True,
              skip_top: int = 0, work: np.ndarray | None = None) -> np.ndarray:
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

        skip_top: the finest octaves left out (a later frame's touch-up, chain.py): the ascent
        stops that many octaves below the full size and its detail is upsampled onto the image,
        whose own fine detail (the carried dream's) stays; at least one octave is always dreamed.

        work: None, or float32 (H, W) in [0, 1]: how much of each step a pixel takes, as the mask
        scales it (times the mask where both are given), but nothing is cut by it: a touch-up's
        full work where the picture is new and less where the carried dream is (chain.py).
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
            big_work = None if work is None else cv2.resize(np.asarray(work, np.float32).reshape(h, w), (bw, bh),
                                                            interpolation=cv2.INTER_LINEAR)
            out = self.dream(big, iterations=iterations, step=step, octaves=octaves, octave_scale=octave_scale,
                             weights=weights, progress=progress, mask=big_mask, skip_top=skip_top, work=big_work)
            out = np.clip(cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA), 0.0, 255.0)
            out = to_uint8(out) if as_uint8 else out
            return out if to_host else ops.convert_to_tensor(out)
        sizes = tuple(self.octave_sizes(h, w, octaves, octave_scale))
        dreamed = len(sizes) - min(max(0, int(skip_top)), len(sizes) - 1)  # the octaves ascended
        with self.backend.placement(self.device):
            full = image if on_device else ops.convert_to_tensor(image)
            cut, steer = self._maps(mask, work, h, w, image.shape)
            full_mask = None if steer is None else ops.convert_to_tensor(steer)
            full_cut = full_mask if cut is steer else None if cut is None else ops.convert_to_tensor(cut)
            if self.fuse_octaves:  # the whole frame in one compiled call
                steps = self._steps(iterations)
                shifts = np.stack([self._shifts(*size, steps) for size in sizes[:dreamed]])  # as ascend would draw them
                fn, bound = self._loop(steps, full_mask is not None, (sizes, dreamed), as_uint8, full_cut is not None)
                # (cast first: a uint8 frame and a float32 start from carry_over share one compile)
                maps = [m for m in (full_mask, full_cut) if m is not None]
                out = fn(self._state, ops.cast(full, "float32"), *self._loop_args(shifts, bound, step, weights), *maps)
                if progress:
                    progress(len(sizes), len(sizes))
            else:  # octave by octave: a compiled call each, progress after each
                def ascend(k, image, m):
                    return self.ascend(image, iterations, step, weights, m)
                out = over_octaves(full, full_mask, sizes, ascend, as_uint8, progress, dreamed, cut=full_cut)
            return self.backend.to_numpy(out) if to_host else out

    @staticmethod
    def _maps(mask, work, h: int, w: int, shape) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(the map the detail is cut by, the map that scales the steps), each (H, W, 1) float32
        in [0, 1] or None, from `dream`'s mask and work map."""
        maps = []
        for name, m in (("mask", mask), ("work", work)):
            if m is not None:
                m = np.asarray(m, np.float32)
                if m.size != h * w:
                    raise ValueError(f"{name} must be (H, W) or (H, W, 1) like the image {shape}, got {m.shape}")
                m = np.clip(m.reshape(h, w, 1), 0.0, 1.0)
            maps.append(m)
        cut, work = maps
        return cut, (cut if work is None else work if cut is None else cut * work)

    def _frame_loop(self, state, image, shifts, steps, step, weights, mask=None, *, sizes, as_uint8, cut=None):
        """`dream` of one frame in one compiled call: every ascended octave's ascent (shifts: one
        jitter table per octave, stacked), the resizes between them and the final rounding.
        sizes: (the octave sizes, how many of them are ascended); cut: over_octaves'."""
        from keras import ops

        def ascend(k, img, m):
            return self._ascend_steps(state, img, ops.take(shifts, k, axis=0), steps, step, weights, m)
        octave_sizes, dreamed = sizes
        return over_octaves(image, mask, octave_sizes, ascend, as_uint8, dreamed=dreamed, cut=cut)


    def steps_strip(self, image: np.ndarray, every: int, count: int) -> list[np.ndarray]:
        """The seed blog's strip: the image after every `every` steps, `count` times (one octave)."""
        out, img = [], np.asarray(image, np.float32)
        for _ in range(count):
            img = self.ascend(img, iterations=every)
            out.append(img)
        return out


__all__ = ["Dreamer", "octave_sizes", "is_tensor", "over_octaves"]
