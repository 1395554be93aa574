"""A smoke test on a real network: vgg16-hed's bundled pretrained weights (offline)."""

import numpy as np

from dreamvid.config.settings import DreamSettings
from dreamvid.core.frames import resize
from dreamvid.engine.dreamer import Dreamer
from dreamvid.engine.models import load_model
from dreamvid.engine.objectives import parse
from dreamvid.media.sources import read_image


def test_vgg16_hed_dreams_a_photo():
    model = load_model("vgg16-hed")
    assert [layer.name for layer in model.layers()][:2] == ["block1_conv1", "block1_conv2"]
    photo = read_image("samples/coffee.jpg").astype(np.float32)
    photo = resize(photo, (64, 96))
    dreamer = Dreamer(model, parse("block3_conv3"), DreamSettings(octaves=2, iterations=5, seed=0))
    before = dreamer.objective_value(photo)
    after = dreamer.objective_value(dreamer.dream(photo))
    assert after > 1.5 * before, (before, after)
