"""The gallery: which tiles, the sheet's layout and labels, resume, the record, the command.

The network is a three-layer random conv net (c1, c2 stride 2, c3) loaded through load_model;
the image is 64x48; tiles are 48 px wide, dreamed with 1 octave of 2 steps.
"""

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_asserts import one_line_error

from dreamvid.config.presets import list_presets, load_preset
from dreamvid.core.errors import ConfigError, LayerError
from dreamvid.engine.dreamer import Dreamer
from dreamvid.jobs import gallery, pipeline
from dreamvid.media.sheets import caption_height
from dreamvid.media.sources import read_image

TILE = 48
FAST = {"octaves": 1, "iterations": 2, "seed": 3}
_BACKGROUND = (24, 24, 24)


@pytest.fixture(scope="module")
def net_file(tiny3_keras_file):
    return tiny3_keras_file


@pytest.fixture(scope="module")
def net(net_file):
    from dreamvid.engine.models import load_model

    return load_model(net_file)


@pytest.fixture
def photo(tmp_path, texture):
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), texture(48, 64).astype(np.uint8))
    return str(path)


@pytest.fixture
def dream_calls(monkeypatch):
    """Counts Dreamer.dream calls (one per tile dreamed)."""
    calls = []
    real = Dreamer.dream

    def counted(self, image, **kw):
        calls.append(self.objective.spec())
        return real(self, image, **kw)

    monkeypatch.setattr(Dreamer, "dream", counted)
    return calls


def tile_height():
    return round(48 * TILE / 64)  # 36


def test_one_tile_per_dreamable_layer_on_a_sheet_of_the_expected_size(net, photo, tmp_path, dream_calls):
    out = tmp_path / "g.png"
    names = [info.name for info in net.layers()]
    result = gallery.render_gallery(photo, str(out), values=FAST, tile_width=TILE, columns=2, model=net)
    assert result.frames == len(names) == len(dream_calls)
    sheet = read_image(str(out))
    rows, strip = -(-len(names) // 2), caption_height(names, TILE)
    assert sheet.shape == (rows * (tile_height() + strip) + 4 * (rows + 1), 2 * TILE + 3 * 4, 3)
    record = json.loads(Path(pipeline.record_path(str(out))).read_text())
    assert record["job"] == "gallery" and [t["label"] for t in record["tiles"]] == names
    assert all(t["seed"] == 3 for t in record["tiles"]) and record["settings"]["dream"]["seed"] == 3
    assert not os.path.exists(pipeline.work_folder(str(out)))  # removed once the sheet is written


def test_chosen_layers_and_channels_and_the_labels_under_each_tile(net, photo, tmp_path, dream_calls):
    out = tmp_path / "layers.png"
    assert gallery.render_gallery(photo, str(out), values=FAST, layers="c1,c3", tile_width=TILE, model=net).frames == 2
    assert dream_calls == ["c1", "c3"]
    out = tmp_path / "channels.png"
    result = gallery.render_gallery(photo, str(out), values=FAST, channels="c2", count=4, tile_width=TILE,
                                    columns=4, model=net)
    assert result.frames == 4 and dream_calls[2:] == ["c2:0", "c2:5", "c2:10", "c2:15"]
    sheet = read_image(str(out))
    h = tile_height()
    for c in range(4):  # each tile's strip holds text: pixels other than the background
        x = 4 + c * (TILE + 4)
        strip = sheet[4 + h:, x:x + TILE]
        assert (np.abs(strip.astype(int) - _BACKGROUND).max(axis=2) > 60).sum() > 10, c
        tile = sheet[4:4 + h, x:x + TILE]
        assert np.abs(tile.astype(int) - _BACKGROUND).max() > 30  # and the dream above it


def test_a_rerun_skips_the_finished_tiles(net, photo, tmp_path, dream_calls):
    out = str(tmp_path / "r.png")

    def stop_after(n):
        def frame(index, _stats):
            if index == n - 1:
                raise KeyboardInterrupt
        return frame

    values = {"octaves": 1, "iterations": 2}  # no seed: the one drawn is kept in the work folder
    with pytest.raises(KeyboardInterrupt):
        gallery.render_gallery(photo, out, pipeline.Progress(frame=stop_after(2)), values=values,
                               layers="c1,c2,c3", tile_width=TILE, model=net)
    assert len(dream_calls) == 2 and not os.path.exists(out)
    seed = json.loads(Path(os.path.join(pipeline.work_folder(out), "state.json")).read_text())["base_seed"]
    started = []
    result = gallery.render_gallery(photo, out,
                                    pipeline.Progress(start=lambda total, done: started.append((total, done))),
                                    values=values, layers="c1,c2,c3", tile_width=TILE, model=net)
    assert dream_calls == ["c1", "c2", "c3"] and started == [(3, 2)] and result.resumed_from == 2
    # the resumed sheet is the one an uninterrupted run with that seed makes
    whole = str(tmp_path / "whole.png")
    gallery.render_gallery(photo, whole, values={**values, "seed": seed}, layers="c1,c2,c3", tile_width=TILE, model=net)
    assert np.array_equal(read_image(out), read_image(whole))


def test_kept_tiles_serve_a_longer_list_and_restart_dreams_all_again(net, photo, tmp_path, dream_calls):
    out = str(tmp_path / "k.png")
    keep = {**FAST, "keep_frames": True}
    gallery.render_gallery(photo, out, values=keep, layers="c1", tile_width=TILE, model=net)
    gallery.render_gallery(photo, out, values=keep, layers="c1,c3", tile_width=TILE, model=net)
    assert dream_calls == ["c1", "c3"]  # c1 was kept
    gallery.render_gallery(photo, out, values={**FAST, "restart": True}, layers="c1,c3", tile_width=TILE, model=net)
    assert dream_calls[2:] == ["c1", "c3"]


def test_the_presets_gallery_takes_each_preset_as_it_is_at_the_tile_width():
    tiles = gallery.plan_tiles(None, presets=True, tile_width=128, values={"seed": 4})
    assert [t.label for t in tiles] == [t.preset for t in tiles] == list_presets()
    for tile in tiles:
        preset = load_preset(tile.preset)[0]
        assert tile.cfg.output.width == 128 and tile.cfg.dream.seed == 4
        assert tile.cfg.dream.octaves == preset.get("dream.octaves", 4)


def test_the_layer_gallery_dreams_at_the_preview_presets_numbers_unless_told(net):
    preview = load_preset("preview")[0]
    (tile,) = gallery.plan_tiles(net, layers="c2")
    assert (tile.cfg.dream.octaves, tile.cfg.dream.iterations, tile.cfg.dream.step) == (
        preview["dream.octaves"], preview["dream.iterations"], preview["dream.step"])
    assert tile.cfg.dream.model == "googlenet"  # the network is the user's, not the preview's
    (tile,) = gallery.plan_tiles(net, layers="c2", values={"iterations": 9}, preset="deep")
    assert tile.cfg.dream.iterations == 9 and tile.cfg.dream.octaves == load_preset("deep")[0]["dream.octaves"]


def test_bad_requests_are_refused_before_dreaming(net, dream_calls):
    with pytest.raises(LayerError, match="no layer 'c9'"):
        gallery.plan_tiles(net, layers="c1,c9")
    with pytest.raises(ConfigError, match="--layers and --presets"):
        gallery.plan_tiles(net, layers="c1", presets=True)
    with pytest.raises(ConfigError, match="--count"):
        gallery.plan_tiles(net, channels="c1", count=0)
    assert dream_calls == []


def test_gallery_command(capsys, net_file, photo, tmp_path):
    from dreamvid.cli import main

    out = tmp_path / "sheet.jpg"
    code = main(["gallery", photo, "-o", str(out), "--model", net_file, "--layers", "c1,c2", "--width", "32",
                 "--octaves", "1", "--iterations", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "2 tiles" in err and read_image(str(out)).shape[1] == 2 * 32 + 3 * 4
    before = sorted(os.listdir(tmp_path))
    one_line_error(main(["gallery", photo, "-o", str(tmp_path / "g.png"), "--model", net_file, "--layers", "c1,nope"]),
                   capsys.readouterr().err, "nope")
    one_line_error(main(["gallery", photo, "-o", str(tmp_path / "g.gif"), "--model", net_file]),
                   capsys.readouterr().err, ".gif")
    assert sorted(os.listdir(tmp_path)) == before  # nothing written by the refusals
