"""The objective's gradient ascent at one image size, compiled once per size and kind: the
network bound to the backend, the loss and its gradient (tile by tile: bounded memory), the
jitter table, the normalised steps. `Dreamer` (dreamer.py) adds the octaves and the device
policy a video's chain reads. Written once on `keras.ops`: no framework imports."""


from __future__ import annotations

import numpy as np

from dreamvid.config.settings import DreamSettings
from dreamvid.core.errors import ConfigError
from dreamvid.core.frames import resize
from dreamvid.engine import backends, hardware
from dreamvid.engine.objectives import Objective

# Added to the gradient's max |g| before dividing by it: only guards 0/0. Tiny, so that gradients
# of any scale are normalised (an untrained network's deep layers give std ~1e-11, and 1e-8
# there would swallow the step).
MIN_OCTAVE_SIDE = 32  # smaller octaves than this carry no useful detail and upset deep layers
XLA_MODES = ("auto", "on", "off")
DEFAULT_TILE = {"cpu": 512, "gpu": 1280}  # tile_size None: bounded memory on a CPU; 720p in one piece on a GPU
GRAD_EPS = 1e-30

# A guide image is seen at most this many pixels on its longer side: its features are matched with
# every frame position (a (frame positions x guide positions) product per step), and the
# notebook's guides were 224-px crops.
GUIDE_MAX_SIDE = 512

# A jitter table holds at least this many steps, rounded up to a power of two, so 10 steps on a
# shot's first frame and 5 on the next share one compiled loop where the count is passed in.
MIN_STEPS_TABLE = 16

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


class Ascent:
    """The objective's gradient ascent at one size (module docstring): `ascend` and the views
    of the seed blog read through it (`objective_value`, `gradient_image`)."""

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

    @property
    def min_side(self) -> int:
        """The shortest side dreamed: smaller images are dreamed enlarged, smaller octaves dropped."""
        return self._min_side

    @property
    def seed(self) -> int:
        """The base seed: settings.seed, or the one drawn at random when it was None."""
        return self._seed

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

    def _steps(self, iterations: int | None) -> int:
        return self.settings.iterations if iterations is None else int(iterations)

    def _loop_args(self, shifts, bound, step, weights) -> list:
        """The arguments of a `_loop` call after the image: jitter table(s), loop bound, step size
        (settings.step if None) and objective weights, as tensors."""
        from keras import ops

        step = np.float32(self.settings.step if step is None else step)
        return [ops.convert_to_tensor(shifts), *bound, ops.convert_to_tensor(step),
                ops.convert_to_tensor(self._weights(weights))]

    def _enlarged(self, h: int, w: int) -> tuple[int, int]:
        k = self._min_side / min(h, w)
        return max(self._min_side, round(h * k)), max(self._min_side, round(w * k))

    def objective_value(self, image: np.ndarray, weights=None) -> float:
        """The objective on a whole image (untiled): what the dream raises."""
        return float(self._call(self._objective, np.asarray(image, np.float32), self._weights(weights)))

    def gradient_image(self, image: np.ndarray) -> np.ndarray:
        """The seed blog's view: the objective's gradient, scaled by its max |g|, as an RGB image
        (uint8, mid-grey = 0) to look at what a layer responds to."""
        g = self._call(self._gradient, np.asarray(image, np.float32), self._weights(None))
        g = g / (np.abs(g).max() + GRAD_EPS)  # [-1, 1]
        return np.clip(127.5 + 127.5 * g, 0, 255).astype(np.uint8)
