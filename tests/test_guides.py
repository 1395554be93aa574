"""Guide images (--guide): the guide term (Google's notebook: each frame vector matched with its
best guide vector) rises over the dream, and pulls the dream's activations towards the guide's."""

import json

import cv2
import numpy as np
import pytest
from cli_asserts import one_line_error
from dream_asserts import assert_gradient_ascent

from dreamvid.cli import main
from dreamvid.config.settings import DreamSettings
from dreamvid.core.errors import ConfigError
from dreamvid.engine.dreamer import Dreamer
from dreamvid.engine.objectives import GuideTerm, Term, guide, layer


def settings(**kw):
    base = dict(octaves=2, iterations=10, step=3.0, jitter=4, seed=0, tile_size=512)
    base.update(kw)
    return DreamSettings(**base)


def stripes(h=64, w=64):
    """A guide unlike the textures: red vertical stripes over blue diagonals."""
    yy, xx = np.mgrid[:h, :w]
    g = np.zeros((h, w, 3), np.float32)
    g[..., 0] = 127 + 127 * np.sin(xx / 2.0)
    g[..., 2] = 127 + 127 * np.cos((xx + yy) / 3.0)
    return g


def vectors(tiny_keras, tiny_model, image):
    """(positions, C) activation vectors of conv2."""
    return np.asarray(tiny_keras(tiny_model.preprocess(image[None].astype(np.float32))))[0].reshape(-1, 16)


def best_cosine(a, b):
    """Mean over a's vectors of the cosine with the best-matching vector of b: how much a looks like b."""
    a = a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-6)
    b = b / (np.linalg.norm(b, axis=1, keepdims=True) + 1e-6)
    return float((a @ b.T).max(axis=1).mean())


def term_and_gradient(term, x, *args):
    """(value, d value / d x) of an objective term at the activations x, on the running backend."""
    import keras

    from dreamvid.engine import backends

    def fn(state, a):
        return term(a, *[keras.ops.convert_to_tensor(t) for t in args])

    t = keras.ops.convert_to_tensor(x)
    value = float(keras.ops.convert_to_numpy(fn((), t)))
    return value, np.asarray(keras.ops.convert_to_numpy(backends.current().grad(fn)((), t)))


def test_guide_term_is_the_best_match_and_pulls_as_hard_as_the_layer():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(1, 3, 4, 5)).astype(np.float32), rng.normal(size=(7, 5)).astype(np.float32)
    value, g = term_and_gradient(GuideTerm("l"), x, y)
    flat = x.reshape(-1, 5)
    xd = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    yd = y / np.linalg.norm(y, axis=1, keepdims=True)
    cos = xd @ yd.T
    best = yd[cos.argmax(axis=1)]  # each position's best match, by direction
    assert value == pytest.approx(cos.max(axis=1).mean(), rel=1e-5)  # the mean best cosine
    g = g.reshape(-1, 5)
    # the pull turns each vector towards its match: no part along x, a positive part towards y*
    np.testing.assert_allclose((g * xd).sum(axis=1), 0.0, atol=1e-6)
    towards = best - (best * xd).sum(axis=1, keepdims=True) * xd
    assert ((g * towards).sum(axis=1) > 0).all()
    # ... as long as the square layer term's push along x there: weight 1 balances the two
    _, gl = term_and_gradient(Term("l"), x)
    np.testing.assert_allclose(np.linalg.norm(g, axis=1), np.linalg.norm(gl.reshape(-1, 5), axis=1), rtol=1e-4)


def test_guide_term_is_finite_at_dead_positions():
    x = np.zeros((1, 2, 2, 4), np.float32)
    x[0, 0, 0] = [1.0, 2.0, 0.0, 0.0]  # one live position, three all-zero (a ReLU layer's dead ones)
    value, g = term_and_gradient(GuideTerm("l"), x, np.eye(4, dtype=np.float32))
    assert np.isfinite(value) and np.isfinite(g).all()
    g = g.reshape(-1, 4)
    assert np.abs(g[1:]).max() < 1e-6 * np.linalg.norm(g[0])  # the dead ones are not pulled


def test_guide_objective_rises_over_the_dream(tiny_model, texture):
    d = Dreamer(tiny_model, guide("conv2"), settings(octaves=1), guide=stripes())
    assert_gradient_ascent(d, texture(64, 64))


def test_guided_dream_looks_more_like_the_guide(tiny_keras, tiny_model, texture):
    img, g = texture(64, 64), stripes()
    guided = Dreamer(tiny_model, layer("conv2") + guide("conv2"), settings(), guide=g).dream(img, seed=1)
    harder = Dreamer(tiny_model, layer("conv2") + 2.0 * guide("conv2"), settings(), guide=g).dream(img, seed=1)
    plain = Dreamer(tiny_model, layer("conv2"), settings()).dream(img, seed=1)
    judge = Dreamer(tiny_model, guide("conv2"), settings(), guide=g)
    # the guide term's value (the mean best cosine with the guide's vectors) rises with the guide,
    # above both the input's and the plain dream's, and further with a larger weight (the random
    # tiny network differs by backend: margins 0.015-0.036 at weight 1 on TensorFlow, JAX, PyTorch)
    assert judge.objective_value(guided) > max(judge.objective_value(plain), judge.objective_value(img)) + 0.01
    assert judge.objective_value(harder) > judge.objective_value(guided) + 0.005
    gv = vectors(tiny_keras, tiny_model, g)
    near_guided = best_cosine(vectors(tiny_keras, tiny_model, guided), gv)
    near_plain = best_cosine(vectors(tiny_keras, tiny_model, plain), gv)
    assert near_guided > near_plain + 0.01, (near_guided, near_plain)


def test_no_guide_means_no_guide_inputs(tiny_model):
    d = Dreamer(tiny_model, layer("conv2"), settings())
    assert d._state[1] == ()  # nothing extra enters the compiled loop
    with pytest.raises(ConfigError, match="--guide"):
        Dreamer(tiny_model, guide("conv2"), settings())
    assert (layer("conv2") + 0.5 * guide("conv2")).spec() == "conv2"  # the layers text leaves the guide out


def test_cli_guide_is_recorded_and_a_bad_guide_writes_nothing(capsys, tmp_path, texture, tiny_keras_file):
    photo, g = tmp_path / "photo.png", tmp_path / "guide.png"
    cv2.imwrite(str(photo), texture(48, 64).astype(np.uint8))
    cv2.imwrite(str(g), stripes().astype(np.uint8))
    args = ["--model", str(tiny_keras_file), "--layers", "conv2", "--octaves", "1", "--iterations", "3", "--seed", "1"]
    out = tmp_path / "out.png"
    assert main(["image", str(photo), "-o", str(out), *args, "--guide", str(g), "--guide-weight", "2"]) == 0
    dream = json.loads((tmp_path / "out.png.json").read_text())["settings"]["dream"]
    assert dream["guide"] == str(g) and dream["guide_weight"] == 2.0 and dream["layers"] == "conv2"
    capsys.readouterr()
    bad = tmp_path / "bad.png"
    code = main(["image", str(photo), "-o", str(bad), *args, "--guide", str(tmp_path / "nope.png")])
    one_line_error(code, capsys.readouterr().err, "nope.png")
    assert not bad.exists()
