"""The temporal stage's carry on the dream's device (dreamvid.motion.carry, chain.carry_over): the
same start image as the host's OpenCV version, compiled once per frame size (a video rendered
with it: tests/test_pipeline.py)."""

import numpy as np
import pytest

from dreamvid.config.settings import DreamSettings
from dreamvid.core.errors import ConfigError, InputError
from dreamvid.engine.dreamer import Dreamer
from dreamvid.engine.objectives import layer
from dreamvid.motion import flow
from dreamvid.motion.carry import warp
from dreamvid.render.chain import carry_over


def scene(texture, h=48, w=64, dx=3, dy=2):
    """A textured scene panned by (dx, dy) between two frames, and a dream of the first one."""
    big = texture(h + 16, w + 16)
    prev, cur = big[8:8 + h, 8:8 + w], big[8 - dy:8 - dy + h, 8 - dx:8 - dx + w]
    ripple = 30 * np.sin(np.arange(w) / 2.0)[None, :, None] * np.cos(np.arange(h) / 3.0)[:, None, None]
    dream = np.clip(prev.astype(np.float32) + ripple, 0, 255).astype(np.uint8)
    return dream, prev.astype(np.uint8), cur.astype(np.uint8)


@pytest.fixture
def dreamer(tiny_model):
    d = Dreamer(tiny_model, layer("conv2"), DreamSettings(octaves=1, iterations=2, seed=0, xla="off"))
    d.carry_on_device = True  # a GPU's choice, here on the CPU
    return d


def test_device_warp_moves_pixels_where_the_flow_says(texture):
    from keras import ops

    img = texture(20, 30)
    flow_field = np.zeros((20, 30, 2), np.float32)
    flow_field[..., 0], flow_field[..., 1] = 2.0, -1.0  # out(x, y) = img(x + 2, y - 1)
    out = np.asarray(ops.convert_to_numpy(warp(ops.convert_to_tensor(img), ops.convert_to_tensor(flow_field))))
    np.testing.assert_allclose(out[1:, :-2], img[:-1, 2:], atol=1e-3)
    np.testing.assert_allclose(out[0, :-2], img[0, 2:], atol=1e-3)  # the border is replicated
    # a fractional flow interpolates, and agrees with the host's OpenCV warp
    flow_field += np.float32(0.37)
    out = np.asarray(ops.convert_to_numpy(warp(ops.convert_to_tensor(img), ops.convert_to_tensor(flow_field))))
    assert np.abs(out - flow.warp(img, flow_field)).max() < 1.0


@pytest.mark.parametrize("carry", ["detail", "dream"])
def test_device_carry_makes_the_hosts_start_image(dreamer, texture, carry):
    dream, prev, cur = scene(texture)
    move = flow.motion(prev, cur)
    user_mask = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (48, 1))
    for blend, mask in ((1.0, None), (0.6, user_mask)):
        host = flow.carry_over(dream, prev, cur, move, blend=blend, carry=carry, mask=mask)
        device = dreamer.backend.to_numpy(carry_over(dreamer, dream, prev, cur, move, blend=blend, carry=carry,
                                                     mask=mask))
        assert device.shape == host.shape and device.dtype == np.float32
        assert np.abs(device - host).max() < 1.0 and np.abs(device - host).mean() < 0.05
        assert np.abs(host - cur).mean() > 2.0  # something was carried: the comparison means something


def test_dream_starts_from_the_device_carry_and_it_compiles_once(dreamer, texture):
    dream, prev, cur = scene(texture)
    move = flow.motion(prev, cur)
    start = carry_over(dreamer, dream, prev, cur, move, blend=1.0)
    assert not isinstance(start, np.ndarray)  # stays on the device
    out = dreamer.dream(start, seed=1)
    host = dreamer.dream(dreamer.backend.to_numpy(start), seed=1)
    assert isinstance(out, np.ndarray) and out.shape == cur.shape
    np.testing.assert_allclose(out, host, atol=1e-3)  # the same dream from the tensor as from NumPy
    fn = dreamer._helpers[("carry", "detail")]
    for blend in (0.2, 0.9):  # new frames and blends: the compiled carry is reused
        carry_over(dreamer, dream, prev, cur, move, blend=blend)
    carries = [key for key in dreamer._helpers if key[0] == "carry"]
    assert dreamer._helpers[("carry", "detail")] is fn and carries == [("carry", "detail")]


def test_device_carry_checks_its_arguments_like_the_host(dreamer, texture):
    dream, prev, cur = scene(texture)
    move = flow.motion(prev, cur)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        carry_over(dreamer, dream, prev, cur, move, blend=1.5)
    with pytest.raises(ConfigError, match="detail"):
        carry_over(dreamer, dream, prev, cur, move, blend=0.5, carry="style")
    with pytest.raises(InputError, match="size"):
        carry_over(dreamer, dream[:-2], prev, cur, move, blend=0.5)

