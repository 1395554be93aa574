"""The gallery: one image dreamed at many layers (or channels, or presets), side by side on a
labelled sheet, so a look is picked by seeing it rather than by reading layer names.

    dreamvid gallery IMAGE -o gallery.jpg                       # every dreamable layer
    dreamvid gallery IMAGE -o g.jpg --layers block3_conv3,block4_conv3
    dreamvid gallery IMAGE -o g.jpg --channels block4_conv3 --count 12
    dreamvid gallery IMAGE -o g.jpg --presets                   # each named preset

Each tile is a small, fast dream: the image `tile_width` pixels wide (256), with the preview
preset's octaves, steps and step size (PREVIEW_KEYS) unless --preset or flags say otherwise;
the preset gallery dreams each preset as it is, only smaller (their numbers are part of their
look). Every tile is dreamed with the same seed, so tiles differ by what they maximise alone.

Resume. Tiles are kept in the work folder beside the output (`workfolder.work_folder`) as
`tiles/<label>-<key>.png`, the key a hash of everything that shapes the tile (its settings
with the seed, and the input's fingerprint), so a re-run after Ctrl-C dreams only the tiles
not there yet, and a tile whose settings changed is simply dreamed again. `state.json` keeps
the seed the first run drew. The sheet is written atomically; the work folder is removed after
it (unless --keep-frames). Beside the sheet, `<sheet>.json` records the base settings (readable
back with --preset) and each tile's objective and network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from dreamvid.config.presets import list_presets, load_preset
from dreamvid.config.settings import SECTIONS, Config, build_config
from dreamvid.core.errors import ConfigError, ResumeError
from dreamvid.core.files import atomic_write, check_image_output, encode_image, make_folder, write_image
from dreamvid.core.frames import amount, to_uint8
from dreamvid.core.progress import Progress, RenderResult
from dreamvid.engine.models import DreamModel, cached_model
from dreamvid.engine.objectives import parse
from dreamvid.media.sheets import labelled_sheet, pick_frames
from dreamvid.media.sources import read_image
from dreamvid.render.chain import palette
from dreamvid.render.prepare import make_dreamer
from dreamvid.render.workfolder import (
    RECORD_VERSION,
    fingerprint,
    frame_settings,
    job_sections,
    locks_output,
    record_path,
    work_folder,
)
from dreamvid.version import VERSION

__all__ = ["Tile", "plan_tiles", "render_gallery", "tile_stem", "PREVIEW_KEYS", "DEFAULT_TILE_WIDTH"]

DEFAULT_TILE_WIDTH = 256  # wide enough to see a layer's texture, small enough for ~1-2 s a tile on a CPU
# What a tile takes from the preview preset: the numbers that make its dream fast. Its model,
# layers and width are not taken: the gallery is of the user's network, at the tile width.
PREVIEW_KEYS = ("dream.octaves", "dream.iterations", "dream.step")
STATE_VERSION = 1


@dataclass
class Tile:
    label: str  # what the sheet writes under it: a layer, LAYER:CHANNEL, or a preset's name
    cfg: Config  # the settings it is dreamed with (width = the tile width; seed set by the job)
    preset: str | None = None  # the preset it shows (--presets)


def _merge(values: dict, given: dict) -> dict:
    """`given` over `values`, a plain key also replacing its qualified form (as the CLI does)."""
    out = dict(values)
    for key in given:
        for section in SECTIONS:
            out.pop(f"{section}.{key}", None)
    out.update(given)
    return out


def _base_values(values: dict | None, preset: str | None, tile_width: int) -> dict:
    """A layer gallery's settings as flat keys: the flags given, over --preset or the preview's
    PREVIEW_KEYS, at the tile width."""
    if preset:
        start = load_preset(preset)[0]
    else:
        preview = load_preset("preview")[0]
        start = {k: preview[k] for k in PREVIEW_KEYS if k in preview}
    return _merge(_merge(start, dict(values or {})), {"output.width": int(tile_width)})


def plan_tiles(model, *, values: dict | None = None, preset: str | None = None, layers: str | None = None,
               channels: str | None = None, count: int = 12, presets: bool = False,
               tile_width: int = DEFAULT_TILE_WIDTH) -> list[Tile]:
    """The tiles to dream, in sheet order, each with its Config; nothing is dreamed or loaded
    here except `model.layers()` for the default list and --channels.

    model: the DreamModel of the layer and channel galleries (None with `presets`).
    values: the settings the user gave (flat keys, as the CLI collects them), over `preset` (or
    the preview's PREVIEW_KEYS), over the defaults. layers: "a,b,c", one tile each (each item
    a --layers spec of one term); channels: a layer, `count` tiles of its channels spread evenly
    from the first to the last; presets: one tile per named preset (values still override).
    """
    given = dict(values or {})
    chosen = [flag for flag, on in (("--layers", layers), ("--channels", channels), ("--presets", presets)) if on]
    if len(chosen) > 1:
        raise ConfigError(f"{' and '.join(chosen)} pick different galleries; give one of them")
    if presets and preset:
        raise ConfigError("--presets shows every named preset; leave out --preset, or drop --presets "
                          "for a layer gallery in that preset's look")
    if not 16 <= int(tile_width) <= 4096:
        raise ConfigError(f"--tile-width must be between 16 and 4096 pixels, got {tile_width}")
    if presets:
        size = {"output.width": int(tile_width)}
        return [Tile(name, build_config(_merge(_merge(load_preset(name)[0], given), size), source=f"preset {name}"),
                     preset=name) for name in list_presets()]
    base = _base_values(given, preset, tile_width)
    reduce = build_config(base).dream.reduce
    if channels:
        name = channels.strip()
        model.check_layer(name)
        n = {info.name: info.channels for info in model.layers()}[model.resolve(name)]
        if count < 1:
            raise ConfigError(f"--count must be >= 1, got {count}")
        specs = [f"{name}:{c}" for c in pick_frames(n, count)]
    elif layers:
        specs = [s.strip() for s in layers.split(",") if s.strip()]
        if not specs:
            raise ConfigError("--layers is empty; name layers like --layers block3_conv3,block4_conv3 "
                              "(list them with 'dreamvid layers')")
    else:
        specs = [info.name for info in model.layers()]
    for spec in specs:  # every tile's objective checked before the first is dreamed
        if "(" in spec:
            raise ConfigError(f"--layers '{spec}' is a schedule; a gallery takes plain layers, one a tile")
        parse(spec, reduce).validate(model)
    return [Tile(spec, build_config(_merge(base, {"dream.layers": spec}))) for spec in specs]



def tile_stem(label: str) -> str:
    """The start of a tile's file name in a gallery's work folder ('NAME-KEY.png'): its label
    with anything but letters, digits, '_', '.' and '-' as '-', at most 60 characters."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label)[:60]


class _Tiles:
    """The gallery's work folder: finished tiles by key, and the seed. Nothing is created on
    disk until the first tile is stored."""

    def __init__(self, output_path: str, restart: bool, progress):
        self.path = work_folder(output_path)
        self.dir = os.path.join(self.path, "tiles")
        self.state_path = os.path.join(self.path, "state.json")
        if restart and os.path.exists(self.path):
            shutil.rmtree(self.path)
            progress.info(f"--restart: discarded the earlier gallery's work folder '{self.path}'")
        self.state = None
        if os.path.exists(self.path):
            fix = "; run again with --restart to discard it, or change the output name"
            try:
                with open(self.state_path, encoding="utf-8") as f:
                    self.state = json.load(f)
            except (OSError, ValueError) as e:
                raise ResumeError(f"the work folder '{self.path}' has no readable state.json ({e}){fix}") from None
            if not isinstance(self.state, dict) or self.state.get("job") != "gallery":
                job = self.state.get("job") if isinstance(self.state, dict) else None
                raise ResumeError(f"the work folder '{self.path}' holds a {job} render, not a gallery{fix}")
        if self.state is None:
            self.state = {"dreamvid_state": STATE_VERSION, "job": "gallery",
                          "base_seed": int(np.random.SeedSequence().entropy % 2**31)}
        self.base_seed = int(self.state["base_seed"])

    def tile_path(self, tile: Tile, finger: dict | None) -> str:
        shape = {"settings": frame_settings(tile.cfg, "image"), "input": finger}
        key = hashlib.sha256(json.dumps(shape, sort_keys=True).encode("utf-8")).hexdigest()[:16]
        return os.path.join(self.dir, f"{tile_stem(tile.label)}-{key}.png")

    def store(self, path: str, image: np.ndarray) -> None:
        if not os.path.isdir(self.dir):
            make_folder(self.dir)
            atomic_write(self.state_path, json.dumps(self.state, indent=1).encode("utf-8"))
        atomic_write(path, encode_image(image, ".png", path))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@locks_output()  # one gallery per sheet: a second is refused (workfolder.lock_output)
def render_gallery(image_path: str, output_path: str, progress=None, *, values: dict | None = None,
                   preset: str | None = None, layers: str | None = None, channels: str | None = None,
                   count: int = 12, presets: bool = False, tile_width: int = DEFAULT_TILE_WIDTH,
                   columns: int | None = None, model=None):
    """Dream `image_path` once per tile (see plan_tiles) and write the labelled sheet to
    `output_path` (.png, .jpg or .jpeg) atomically, with its record beside it.

    progress.start(tiles, tiles already done) once, progress.frame(i, stats) per tile dreamed.
    model: a DreamModel (or a name/path) for every tile instead of loading each tile's
    cfg.dream.model. Returns a pipeline.RenderResult whose `frames` counts the tiles.
    """
    progress = progress or Progress()
    quiet = dataclasses.replace(progress, info=lambda _msg: None)  # one device line for the gallery, not one a tile
    t0 = time.perf_counter()
    image_path, output_path = os.fspath(image_path), os.fspath(output_path)
    check_image_output(output_path, image_path)
    # the layer gallery's settings (the presets gallery's tiles each have their own): its network,
    # and the work folder's switches (--restart, --keep-frames) for either
    base = build_config(dict(values or {}) if presets else _base_values(values, preset, tile_width))
    img = read_image(image_path)  # (H, W, 3) uint8

    def network(cfg: Config):  # each network loads once, whatever the number of tiles (models.cached_model)
        if isinstance(model, DreamModel):
            return model
        d = cfg.dream
        return cached_model(model if model is not None else d.model, weights=d.weights, precision=d.precision,
                            device=d.device, backend=d.backend, trust_pickle=d.trust_pickle)

    tiles = plan_tiles(None if presets else network(base), values=values, preset=preset, layers=layers,
                       channels=channels, count=count, presets=presets, tile_width=tile_width)
    w = int(tile_width)
    h = max(1, round(img.shape[0] * w / img.shape[1]))
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if w < img.shape[1] else cv2.INTER_CUBIC)
    store = _Tiles(output_path, base.output.restart, progress)
    finger = fingerprint(image_path)
    for tile in tiles:  # one seed for all: tiles differ by their objective alone
        if tile.cfg.dream.seed is None:
            tile.cfg.dream.seed = store.base_seed
    paths = [store.tile_path(tile, finger) for tile in tiles]
    done = sum(os.path.isfile(p) for p in paths)
    if done:
        progress.info(f"{done} of {len(tiles)} tiles are done already (in '{store.path}')")
    progress.start(len(tiles), done)
    images, recorded = [], []
    # Each tile gets its own Dreamer (its own objective), so each traces its own loop (~1-2 s of
    # CPU). One Dreamer over every layer would trace once but run the whole network for every
    # tile, so a shallow tile would cost as much as the deepest (vgg16-hed, 256 px, 8 steps:
    # ~1 s of CPU for block1_pool, ~6.5 s for block5_pool). On the TensorFlow backend, TensorFlow
    # warns about the retracing a few tiles in; the warning is about exactly this, so it is kept
    # out of the output (only a logger's level: TensorFlow is not imported here).
    tf_log = logging.getLogger("tensorflow")
    tf_level = tf_log.level
    tf_log.setLevel(logging.ERROR)
    try:
        _dream_tiles(tiles, paths, network, img, store, progress, quiet, images, recorded, done)
    finally:
        tf_log.setLevel(tf_level)
    sheet = labelled_sheet(images, [tile.label for tile in tiles], columns=columns)
    write_image(output_path, sheet)
    result = RenderResult(path=output_path, frames=len(tiles), seconds=time.perf_counter() - t0,
                          fps=Fraction(0), resumed_from=done)
    _write_gallery_record(output_path, base, tiles, recorded, image_path, finger, tiles[0].cfg.dream.seed, result)
    if not base.output.keep_frames:
        store.remove()
    return result


def _dream_tiles(tiles, paths, network, img, store, progress, quiet, images, recorded, done) -> None:
    """Dream each tile not kept yet (appending every tile's image and record in order)."""
    h, w = img.shape[:2]
    told = False
    for i, (tile, path) in enumerate(zip(tiles, paths)):
        net = network(tile.cfg)
        progress.check()  # a safe point: the network loaded (the first tile's load takes seconds)
        if os.path.isfile(path):  # dreamed by an earlier run
            kept = read_image(path)
            if kept.shape != (h, w, 3):
                raise ResumeError(f"the kept tile '{path}' is {kept.shape[1]}x{kept.shape[0]}, not {w}x{h}; "
                                  f"run again with --restart")
            images.append(kept)
            recorded.append(_tile_record(tile, net, None))
            continue
        t = time.perf_counter()
        # one still per tile: XLA would compile for a single use, so "auto" is off (as for stills)
        still = dataclasses.replace(tile.cfg.dream, xla="off") if tile.cfg.dream.xla == "auto" else tile.cfg.dream
        dreamer, _ = make_dreamer(tile.cfg, net, quiet, still)
        if not told:
            progress.info(f"dreaming {len(tiles) - done} tiles of {w}x{h} with {net.name}; "
                          f"device: {dreamer.device_label}")
            told = True
        out = to_uint8(palette(tile.cfg, dreamer.dream(img.astype(np.float32), seed=tile.cfg.dream.seed), img))
        store.store(path, out)
        images.append(out)
        recorded.append(_tile_record(tile, net, dreamer))
        progress.frame(i, {"cut": False, "amount": amount(out, img), "seconds": time.perf_counter() - t})


def _tile_record(tile: Tile, net, dreamer) -> dict:
    """What reproduces one tile: its label, preset, network and objective (as --layers text)."""
    objective = dreamer.objective if dreamer is not None else parse(tile.cfg.dream.layers or net.default_layer,
                                                                     tile.cfg.dream.reduce)
    return {"label": tile.label, "preset": tile.preset, "network": net.name,
            "layers": objective.spec(net.resolve), "seed": tile.cfg.dream.seed}


def _write_gallery_record(output_path: str, base: Config, tiles: list[Tile], recorded: list[dict],
                          image_path: str, finger, seed: int, result) -> None:
    """`<sheet>.json`, the pipeline's record with the tiles added: "settings" are the base
    settings (a layer gallery's look; readable back with --preset), "tiles" what each tile
    maximised, with which network."""
    settings = job_sections(base, "image")
    settings["dream"]["seed"] = int(seed)
    settings["dream"]["layers"] = ""  # each tile has its own (see "tiles")
    for key in ("restart", "keep_frames"):
        settings["output"].pop(key)
    record = {
        "dreamvid_record": RECORD_VERSION,
        "job": "gallery",
        "dreamvid_version": VERSION,
        "output": os.path.abspath(result.path),
        "input": os.path.abspath(image_path),
        "input_fingerprint": finger,
        "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "frames": result.frames,
        "fps": None,
        "tiles": recorded,
        "settings": json.loads(json.dumps(settings)),
    }
    atomic_write(record_path(output_path), (json.dumps(record, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
