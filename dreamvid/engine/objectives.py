"""Objectives: what the dream maximises, as weighted sums of terms over layer activations.

Terms compose like numbers (after lucid's objectives):

    objective = 1.0 * layer("mixed4c") + 0.5 * channel("mixed4d_3x3_bottleneck_pre_relu", 139)

An objective is a linear combination, so the dream stage can compile it once and take the
weights as a runtime input: a schedule that cross-fades from one layer to another changes the
weights, never the compiled graph. No loops and no image sizes here; the terms are keras.ops, so
every backend computes them.

Text form (`--layers`): comma-separated terms, each `LAYER`, `LAYER:CHANNEL` (an integer) or
`LAYER:WEIGHT` (a number with a decimal point), or `LAYER:CHANNEL:WEIGHT`.
Examples: `mixed4c`, `mixed3b:1.0,mixed4c:0.5`, `mixed4d_3x3_bottleneck_pre_relu:139`.

Guide terms (`guide(layer)`, `--guide IMAGE`): "look like the guide image" at a layer, after
Google's DeepDream notebook: each activation vector x of the frame is matched with the guide's
activation vector y* that it matches best, and the dream pulls x towards it. The notebook
maximises the best dot product x.y*, whose gradient mostly lengthens x, which the layer term
already does: a plain dream raises it nearly as much as a guided one. So the match here is of
directions (the best cosine), and the pull only turns x towards y*, as hard at weight 1 as the
layer term pushes x along itself (see GuideTerm). The guide's features are computed once per
guide and layer by the Dreamer and enter the compiled loop as tensors; they are not part of the
`--layers` text (the `guide` settings say them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dreamvid.config.settings import DEFAULTS
from dreamvid.core.errors import ConfigError

REDUCTIONS = ("square", "mean")
GUIDE_EPS = 1e-6  # guards the directions of zero vectors (a ReLU layer's dead positions)
GUIDE_MIN_SIN = 0.05  # the guide's pull scale stops growing once x is within ~3 degrees of its match


@dataclass(frozen=True)
class Term:
    """One layer (or one channel of it), reduced to a scalar.

    reduce="square": mean of the squared activations (the TensorFlow tutorial's and lucid's);
    reduce="mean": plain mean (the seed blog's `tf.reduce_mean(feature)`).
    """

    layer: str
    channel: int | None = None
    reduce: str = DEFAULTS["reduce"]

    def __call__(self, act):
        """act: (B, h, w, C) activations -> scalar."""
        from keras import ops

        a = act if self.channel is None else act[..., self.channel]
        a = ops.cast(a, "float32")  # summed in float32 whatever the network computes in
        return ops.mean(ops.square(a)) if self.reduce == "square" else ops.mean(a)

    def __str__(self) -> str:
        return self.layer if self.channel is None else f"{self.layer}:{self.channel}"


@dataclass(frozen=True)
class GuideTerm:
    """"Look like the guide" at `layer`. Its value is the mean over the frame's positions of the
    best cosine between the frame's activation vector x and the guide's vectors y (C channels):
    how much the frame looks like the guide, in [-1, 1]. Its gradient at each x is the unit
    vector from x's direction towards its best match y* (the notebook's argmax, by direction),
    of length 2|x| / (n C) for n positions: the length of a square layer term's gradient 2x / (n C)
    there. So at weight 1 the guide turns each vector as hard as the layer term lengthens it, and
    the pull does not fade as the dream grows the activations; it stops once x points at y*."""

    layer: str
    channel: None = None  # (a whole layer always: read by Objective.validate)

    def __call__(self, act, guide):
        """act: (B, h, w, C) activations, guide: (N, C) float32 guide features -> scalar."""
        from keras import ops

        c = act.shape[-1]
        x = ops.reshape(ops.cast(act, "float32"), (-1, c))  # (n, C) the frame's vectors
        norm = ops.sqrt(ops.sum(ops.square(x), axis=1) + GUIDE_EPS ** 2)  # (n,), never 0: a finite gradient
        y = guide / (ops.sqrt(ops.sum(ops.square(guide), axis=1, keepdims=True)) + GUIDE_EPS)
        cos = ops.max(ops.matmul(x / norm[:, None], ops.transpose(y)), axis=1)  # (n,) best
        # d cos / d x = (y* - cos x^) / |x|, of length sin / |x|: scaled by 2 |x|^2 / (C sin), held
        # constant, each position's pull has the layer term's length 2 |x| / C (sin floored where
        # x already points at y*, so the scale stays finite)
        sin = ops.sqrt(ops.maximum(1.0 - ops.square(cos), GUIDE_MIN_SIN ** 2))
        scale = ops.stop_gradient(2.0 * ops.square(norm) / (c * sin))
        pull = ops.mean(scale * cos)
        # the value is the mean best cosine, the gradient the scaled pull's
        return ops.stop_gradient(ops.mean(cos)) + pull - ops.stop_gradient(pull)

    def __str__(self) -> str:
        return f"guide@{self.layer}"


class Objective:
    """sum_i weights[i] * terms[i](activations of terms[i].layer) (a GuideTerm also reads its
    guide's features)."""

    def __init__(self, terms: list[Term], weights: list[float]):
        if len(terms) != len(weights):
            raise ValueError("one weight per term")
        self.terms = terms
        self.weights = weights

    @property
    def guide_terms(self) -> list[GuideTerm]:
        """The guide terms, in term order: the order of the guide features `__call__` takes."""
        return [t for t in self.terms if isinstance(t, GuideTerm)]

    @property
    def layers(self) -> list[str]:
        """Distinct layers the terms read, in first-use order."""
        return list(dict.fromkeys(t.layer for t in self.terms))

    def __add__(self, other: Objective) -> Objective:
        merged = dict(zip(self.terms, self.weights))
        for t, w in zip(other.terms, other.weights):
            merged[t] = merged.get(t, 0.0) + w
        return Objective(list(merged), list(merged.values()))

    __radd__ = __add__

    def __mul__(self, k: float) -> Objective:
        return Objective(list(self.terms), [w * float(k) for w in self.weights])

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return self * -1.0

    def __sub__(self, other: Objective) -> Objective:
        return self + (-other)

    def __call__(self, activations: dict, weights=None, guides=()):
        """activations: {layer name: (B, h, w, C) tensor} -> scalar; `weights` overrides self.weights
        (a tensor of shape (len(terms),), so the caller can change it without retracing); guides:
        one (N, C) feature tensor per guide term, in the order of `guide_terms`."""
        from keras import ops

        w = ops.convert_to_tensor(np.asarray(self.weights, np.float32)) if weights is None else weights
        features = iter(guides)
        values = ops.stack([t(activations[t.layer], next(features)) if isinstance(t, GuideTerm)
                            else t(activations[t.layer]) for t in self.terms])  # (T,)
        return ops.sum(w * values)

    def validate(self, model) -> None:
        """Raise LayerError naming the closest layers when a layer or channel does not exist."""
        for t in self.terms:
            model.check_layer(t.layer, t.channel)

    def spec(self, rename: Callable[[str], str] | None = None) -> str:
        """The `--layers` text that `parse` reads back into this objective; `rename` maps each
        layer name (e.g. a model's `resolve`, to write the layers a fallback network really has).
        A weight always shows a decimal point, so "L:2.0" is not read back as channel 2."""
        parts = []
        for t, w in zip(self.terms, self.weights):
            if isinstance(t, GuideTerm):
                continue  # said by the guide settings, not the layers text
            name = rename(t.layer) if rename else t.layer
            text = name if t.channel is None else f"{name}:{t.channel}"
            if w != 1.0:
                num = f"{w:g}"
                text += f":{num}" if any(c in num for c in ".en") else f":{num}.0"
            parts.append(text)
        return ",".join(parts)

    def __str__(self) -> str:
        return self.spec()


def layer(name: str, reduce: str = DEFAULTS["reduce"]) -> Objective:
    return Objective([Term(name, None, reduce)], [1.0])


def channel(name: str, index: int, reduce: str = DEFAULTS["reduce"]) -> Objective:
    return Objective([Term(name, int(index), reduce)], [1.0])


def guide(name: str) -> Objective:
    """Look like the guide image at layer `name` (GuideTerm); the Dreamer takes the image."""
    return Objective([GuideTerm(name)], [1.0])


_WHOLE = re.compile(r"-?[0-9]+")  # a channel: ASCII digits (str.isdigit also takes '²', which int() does not)


def parse(spec: str, reduce: str = DEFAULTS["reduce"]) -> Objective:
    """Parse the `--layers` text form (see the module docstring)."""
    if reduce not in REDUCTIONS:
        raise ConfigError(f"reduce must be one of {', '.join(REDUCTIONS)}, got {reduce!r}")
    if not spec or not spec.strip():
        raise ConfigError("--layers is empty; name a layer, e.g. --layers mixed4c (list them with 'dreamvid layers')")
    total = None
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, *rest = part.split(":")
        if not name or len(rest) > 2:
            raise ConfigError(f"cannot read layer term '{part}'; "
                              "write LAYER, LAYER:CHANNEL, LAYER:WEIGHT or LAYER:CHANNEL:WEIGHT")
        index, weight = None, 1.0
        for i, item in enumerate(rest):
            item = item.strip()
            is_int = _WHOLE.fullmatch(item) is not None
            if is_int and i == 0 and len(rest) <= 2 and not (len(rest) == 1 and "." in item):
                index = int(item)
                if index < 0:
                    raise ConfigError(f"channel in '{part}' must be >= 0, got {index}")
                continue
            try:
                weight = float(item)
            except (ValueError, OverflowError):
                raise ConfigError(f"cannot read '{item}' in layer term '{part}': "
                                  "a channel is a whole number, a weight a number like 0.5") from None
            if not math.isfinite(weight):
                raise ConfigError(f"weight in layer term '{part}' must be a finite number, got {item}")
        term = channel(name, index, reduce) if index is not None else layer(name, reduce)
        term = term * weight
        total = term if total is None else total + term
    if total is None:
        raise ConfigError("--layers names no layer; e.g. --layers mixed4c")
    return total
