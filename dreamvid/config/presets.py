"""A job's settings put together: a named preset or a record read back (TOML, JSON), then the
options given (job_config, live_config: one validation through settings.build_config); the
presets' folder, installed as package data."""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Any

from dreamvid.config.schedule import is_audio, parse_spec
from dreamvid.config.settings import (
    LIVE_KEYS,
    LIVE_SOUND,
    SCHEDULED_KEYS,
    SECTIONS,
    Config,
    LiveSettings,
    build_config,
    coerce,
)
from dreamvid.core.errors import ConfigError


def _preset_dir():
    """The named presets: the installed package's data (dreamvid/presets in the wheel, built from
    the top-level presets/ folder), read through importlib.resources; in a checkout run without
    installing, that folder itself."""
    inside = resources.files("dreamvid") / "presets"
    return inside if inside.is_dir() else Path(__file__).resolve().parents[2] / "presets"


PRESET_DIR = _preset_dir()


def live_config(given: dict[str, Any], preset: str | None = None) -> tuple[Config, LiveSettings]:
    """The settings of a live run: the dream's as a video's (job_config("live"): every setting,
    preset and schedule a video takes), and the live ones (LiveSettings), checked here."""
    given = {k: v for k, v in given.items() if v is not None}
    live, values = LiveSettings(), {}
    for key in LIVE_KEYS:
        if key in given:
            values[key] = given.pop(key)
    for f in fields(LiveSettings):
        if f.name in values:  # (seconds, fps: the bounds a zoom's and an output's have)
            setattr(live, f.name, coerce(f.name, values[f.name], f, "live: "))
    if live.max_steps is not None and live.max_steps < live.min_steps:
        raise ConfigError(f"max_steps ({live.max_steps}) is below min_steps ({live.min_steps}); raise --max-steps")
    for key, name in SCHEDULED_KEYS.items():  # the source's own sound: followed live, the chain starts at MIN
        if is_audio(given.get(key)):
            spec = parse_spec(given[key], key)
            if spec.path == LIVE_SOUND:
                live.sounds[name] = spec
                given[key] = spec.lo if key == "step" else max(1, round(spec.lo))
    return job_config("live", given, preset), live


RAY_CHUNK_FRAMES = 240
JOBS = ("image", "video", "zoom", "gallery", "live")
# long options whose setting has another name: --zoom-blend, --from, --no-audio (a flag: False)
ALIASES = {"zoom_blend": "zoom.blend", "from_": "init", "from": "init"}


def job_config(job: str, given: dict[str, Any], preset: str | None = None) -> Config:
    """The settings of one job ("image", "video", "zoom", "gallery"): the preset's values (a
    name, a .toml path or an output's .json record), overridden by `given`, the options named as
    the command line's long options are (`iterations_next`, `layers`, `pan="2,0"`, `zoom_blend`,
    `no_audio=True`), validated here. The command line and the Python API both come here, so
    both say the same one-line ConfigError.

    Where the job changes a dream number frame by frame (video, zoom), a schedule or an audio:
    spec given to --step, --octaves or --iterations-next goes to that job's schedules; --ray
    implies segments of RAY_CHUNK_FRAMES."""
    if job not in JOBS:
        raise ConfigError(f"job must be one of {', '.join(JOBS)}, got {job!r}")
    values: dict[str, Any] = dict(load_preset(preset)[0]) if preset else {}
    given = {ALIASES.get(k, k): v for k, v in given.items() if v is not None}  # None: not given
    if given.pop("no_audio", False):
        given["audio"] = False
    if "pan" in given:
        pan = str(given.pop("pan")).split(",")
        if len(pan) != 2:
            raise ConfigError(f"--pan must be X,Y in pixels per frame, e.g. --pan 2,0; got {','.join(pan)}")
        given["pan_x"], given["pan_y"] = pan[0].strip(), pan[1].strip()
    # a plain option overrides the preset's qualified key for the same setting
    for key in given:
        for section in SECTIONS:
            values.pop(f"{section}.{key}", None)
    job = "video" if job == "live" else job  # a live dream is a video's chain, frame by frame
    if job in ("zoom", "video"):  # a schedule for a dream number goes to the job's schedules
        for key, name in SCHEDULED_KEYS.items():
            target = f"{job}.{name}"
            if key in given and ("(" in str(given[key]) or is_audio(given[key])):  # keyframes, or a sound's
                given[target] = given.pop(key)
                values.pop(target, None)
    if job == "zoom" and "iterations_next" in given:
        given["video.iterations_next"] = given.pop("iterations_next")
    values.update(given)
    if job == "video" and values.get("ray", values.get("video.ray")) \
            and not values.get("chunk_frames", values.get("video.chunk_frames")):
        values["chunk_frames"] = RAY_CHUNK_FRAMES  # a cluster needs long shots split to share them out
    return build_config(values)




def load_preset(name_or_path: str) -> tuple[dict[str, Any], str]:
    """Read a preset (a name in presets/, a path to a .toml file, or the `<output>.json` record
    written beside every output) into flat qualified keys.

    Returns (values, description). Tables `[dream]`, `[video]`, `[zoom]`, `[output]` map to the
    sections; top-level keys other than `description` are taken as plain keys. A record's
    "settings" object has the same sections.
    """
    path = Path(name_or_path)
    if path.suffix.lower() == ".json":
        return _load_record(path)
    if not (path.suffix == ".toml" or os.sep in name_or_path):
        path = PRESET_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            names = list_presets()
            hint = difflib.get_close_matches(name_or_path, names, n=1)
            raise ConfigError(
                f"unknown preset '{name_or_path}'" + (f"; did you mean '{hint[0]}'?" if hint else "")
                + f" (presets: {', '.join(names)}; or pass a path to a .toml file)")
    if not path.is_file():
        raise ConfigError(f"preset file '{path}' does not exist; check the path or use a preset name from "
                          f"'dreamvid presets'")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"preset file '{path}' is not valid TOML ({exc}); fix the file") from None
    description = str(data.pop("description", ""))
    return _flatten(data, path), description


def _load_record(path: Path) -> tuple[dict[str, Any], str]:
    """The settings of an output's record (`out.mp4.json`) as a preset."""
    if not path.is_file():
        raise ConfigError(f"record '{path}' does not exist; pass the .json file written beside an output")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        settings = data["settings"]
        if not isinstance(settings, dict):
            raise TypeError
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        raise ConfigError(f"'{path}' is not a dreamvid record (no \"settings\" object); pass the .json "
                          f"file written beside an output, or a .toml preset") from None
    return _flatten(settings, path), f"the settings of {data.get('output') or path}"


def _flatten(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """{"dream": {"octaves": 4}, "seed": 1} -> {"dream.octaves": 4, "seed": 1}, validated."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in SECTIONS:
                raise ConfigError(f"{path}: unknown table [{key}]; tables are {', '.join(f'[{s}]' for s in SECTIONS)}")
            for sub, v in value.items():
                flat[f"{key}.{sub}"] = v
        else:
            flat[key] = value
    build_config(flat, source=str(path))  # validate now, so the message names the file
    return flat


def list_presets() -> list[str]:
    return sorted(p.name[: -len(".toml")] for p in PRESET_DIR.iterdir() if p.name.endswith(".toml"))


def preset_descriptions() -> list[tuple[str, str]]:
    return [(name, load_preset(name)[1]) for name in list_presets()]
