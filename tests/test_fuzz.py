"""Every hand-written parser under arbitrary input (Hypothesis): schedules, layer specs, audio:
specs, the follower's numbers, colours and the zoom's centre, presets (TOML files and records) and
the settings through config's one validation place (build_config, job_config). Each input either
parses or raises the project's typed error with a one-line message; never another exception.

Inputs are drawn two ways: any text at all, and text built from the pieces the notation is made
of (digits, colons, parentheses, commas, signs, "inf", "nan", layer-like names), which reaches
the parsers' inner branches far more often than random characters do.
"""

import json
import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dreamvid.config import presets, schedule
from dreamvid.config import settings as config
from dreamvid.core.errors import ConfigError, DreamvidError
from dreamvid.engine import objectives
from dreamvid.jobs import pipeline
from dreamvid.motion import zoom

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

PIECES = ["0", "1", "12", "-3", "1.5", "1e3", "1e400", "-0", "+2", "inf", "-inf", "nan", "NaN", "١", "²", "_",
          ":", "::", "(", ")", "((", "))", ",", ", ", " ", "\t", "\n", ";", ".", "-", "--", "e", "mixed4c",
          "conv2", "a:b", "C:/x.wav", "audio:", "AUDIO:", "rms", "onsets", "#", "#fff", "0x1", "1_000", "\0",
          "\u00a0", "\u2028", "'", '"', "é"]
notation = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)
texts = st.one_of(st.text(max_size=40), notation)
# what a TOML file, a JSON record or the Python API may hand a setting
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=-10**400, max_value=10**400),
                    st.floats(allow_nan=True, allow_infinity=True), texts)
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=5), scalars, max_size=2))


def one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert msg and len(msg.splitlines()) == 1 and "Traceback" not in msg, repr(msg)
    return msg


def parses_or_config_error(fn, *args, types=(ConfigError,), **kw):
    """fn(*args, **kw)'s result, or None where it raised one of `types` with a one-line message."""
    try:
        return fn(*args, **kw)
    except types as e:
        one_line(e)
        return None



# ----------------------------------------------------------------------------- schedules


@FUZZ
@given(texts, st.sampled_from([float, str]), st.sampled_from(["linear", "smooth"]))
@example("0:(1), 0:(2)", float, "linear")
@example("0:(1e400)", float, "smooth")
@example("5:(1),\n7:(2)", float, "linear")
def test_a_schedule_parses_or_says_one_line(text, kind, interpolation):
    s = parses_or_config_error(schedule.Schedule.parse, text, name="zoom", kind=kind, interpolation=interpolation)
    if s is None:
        return
    assert s.frames == sorted(set(s.frames)) and all(f >= 0 for f in s.frames)
    for f in {0, s.frames[-1], s.frames[-1] + 1, (s.frames[0] + s.frames[-1]) / 2}:
        if kind is float:
            assert math.isfinite(s.at(f))
        else:
            w = s.weights_at(f)
            assert abs(sum(w.values()) - 1.0) < 1e-9
    assert schedule.Schedule.parse(str(s), kind=kind, interpolation=interpolation) == s  # reads back


@FUZZ
@given(scalars, st.sampled_from([float, str]), st.one_of(st.none(), st.integers(), st.booleans()))
def test_a_schedule_from_any_value_parses_or_says_one_line(value, kind, fade):
    parses_or_config_error(schedule.Schedule.parse, value, kind=kind, fade=fade)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10**12), st.floats(-1e300, 1e300)), min_size=1, max_size=6,
                unique_by=lambda kv: kv[0]))
def test_smooth_schedules_of_huge_numbers_stay_finite(keys):
    text = ", ".join(f"{f}:({v!r})" for f, v in keys)
    s = parses_or_config_error(schedule.Schedule.parse, text, interpolation="smooth")
    if s is not None:
        for f in s.frames + [(a + b) / 2 for a, b in zip(s.frames, s.frames[1:])]:
            x = s.at(f)
            assert math.isfinite(x) and min(s.values) <= x <= max(s.values)


@FUZZ
@given(texts)
@example("audio::1:2")
@example("audio:x:1:nan")
@example("audio:x:2:1:rms")
def test_an_audio_spec_parses_or_says_one_line(text):
    spec = parses_or_config_error(schedule.parse_spec, "audio:" + text, "zoom")
    if spec is not None:
        assert spec.path and spec.lo <= spec.hi and spec.mode in schedule.MODES


def test_an_audio_spec_message_shows_its_example():
    with pytest.raises(ConfigError) as e:
        schedule.parse_spec("audio:song.mp3:1", "zoom")
    assert 'like "audio:song.mp3:1.0:3.0"' in str(e.value)


@FUZZ
@given(values, values)
def test_the_follower_and_the_range_take_any_value_or_say_one_line(a, b):
    parses_or_config_error(schedule.check_follower, a, b)
    parses_or_config_error(schedule.check_range, a, b)


# ----------------------------------------------------------------------------- layer specs


@FUZZ
@given(texts, st.sampled_from(["square", "mean", "max", ""]))
@example("conv2:²", "square")
@example("conv2:--5", "square")
@example("conv2:١٢:0.5", "square")
def test_a_layer_spec_parses_or_says_one_line(text, reduce):
    obj = parses_or_config_error(objectives.parse, text, reduce)
    if obj is not None:
        assert obj.layers and all(t for t in obj.layers)
        again = objectives.parse(obj.spec(), reduce)  # the spec it writes reads back
        assert again.spec() == obj.spec()


# ----------------------------------------------------------------------------- colours, centre


@FUZZ
@given(st.one_of(texts, st.lists(scalars, max_size=4), scalars))
@example("0000-1")
@example(" 0x1ff")
def test_a_colour_parses_or_says_one_line(color):
    rgb = parses_or_config_error(zoom.solid_image, 4, 4, color)
    if rgb is not None:
        assert rgb.shape == (4, 4, 3) and rgb.min() >= 0 and rgb.max() <= 255


@FUZZ
@given(st.one_of(texts, scalars))
@example("inf,2")
@example("1,2,3")
def test_a_zoom_centre_parses_or_says_one_line(text):
    got = parses_or_config_error(pipeline._parse_center, text)
    if got is not None:
        assert len(got) == 2 and all(math.isfinite(v) for v in got)


# ----------------------------------------------------------------------------- settings

KEYS = sorted({f.name for cls in config.SECTIONS.values() for f in config.dataclasses.fields(cls)}
              | {f"{s}.{f.name}" for s, cls in config.SECTIONS.items() for f in config.dataclasses.fields(cls)})
OPTION_KEYS = KEYS + ["pan", "no_audio", "zoom_blend", "from", "iterations_next"]
keys = st.one_of(st.sampled_from(OPTION_KEYS), st.text(max_size=12))


@FUZZ
@given(st.dictionaries(keys, values, max_size=4))
@example({"crf": 10**400})
@example({"step": 10**400})
@example({"zoom": "0:(1.02), 0:(1)"})
@example({"layers": "0:(conv2), 5:()"})
@example({"ray": " "})
@example({"dream.layers": None})
@example({"octaves": None})
def test_settings_build_or_say_one_line(given_values):
    check_types(parses_or_config_error(config.build_config, given_values))


def check_types(cfg):
    """Every setting of a Config built holds its field's type: what the jobs read is never a
    null, a list or a text where a number belongs."""
    if cfg is None:
        return
    for section in config.SECTIONS:
        for f in config.dataclasses.fields(getattr(cfg, section)):
            value, kind = getattr(getattr(cfg, section), f.name), str(f.type)
            if value is None:
                assert "None" in kind, f"{section}.{f.name} is None"
                continue
            want = bool if "bool" in kind else int if "int" in kind else float if "float" in kind else str
            assert type(value) is want, f"{section}.{f.name} = {value!r}"


@FUZZ
@given(st.sampled_from(presets.JOBS + ("still",)), st.dictionaries(st.sampled_from(OPTION_KEYS), values, max_size=4))
@example("zoom", {"pan": "1,2,3"})
@example("zoom", {"step": "0:(1e400)"})
@example("video", {"octaves": "audio:"})
def test_a_job_config_builds_or_says_one_line(job, options):
    check_types(parses_or_config_error(presets.job_config, job, options))


@FUZZ
@given(st.one_of(st.text(max_size=200), st.lists(
    st.sampled_from(["[dream]\n", "[video]\n", "[zoom]\n", "[output]\n", "[nope]\n", "octaves = 3\n", "step = 'x'\n",
                     "zoom = '0:(1), 9:(2)'\n", "crf = 1e400\n", "seed = -1\n", "layers = ''\n", "[[dream]]\n",
                     "description = 1\n", "a.b = 1\n", "jitter = true\n", "= 1\n", "blend = nan\n"]),
    max_size=6).map("".join)))
def test_a_preset_file_loads_or_says_one_line(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("preset") / "p.toml"
    path.write_text(text, encoding="utf-8")
    parses_or_config_error(presets.load_preset, str(path))


@FUZZ
@given(st.one_of(st.text(max_size=80), st.dictionaries(st.sampled_from(["settings", "output", "x"]), values,
                                                         max_size=3).map(json.dumps),
                 st.dictionaries(st.sampled_from(list(config.SECTIONS) + ["seed", "x"]),
                                 st.one_of(scalars, st.dictionaries(st.sampled_from(KEYS[:20]), scalars, max_size=3)),
                                 max_size=3).map(lambda s: json.dumps({"settings": s}))))
def test_a_record_read_as_a_preset_loads_or_says_one_line(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("record") / "o.mp4.json"
    path.write_text(text, encoding="utf-8")
    parses_or_config_error(presets.load_preset, str(path))


@FUZZ
@given(texts)
def test_a_preset_name_is_found_or_says_one_line(name):
    parses_or_config_error(presets.load_preset, name, types=(DreamvidError,))


# ----------------------------------------------------------------------------- mask and guide options

paths = st.one_of(texts, st.lists(st.sampled_from(["m.png", "m", "*.png", "[", "?", "/", "..", "x.mp4", "\0", "%d",
                                                   "frames/", "frames/*.png", "m.png.", "~"]), max_size=4).map("".join))


@pytest.fixture(scope="module")
def mask_folder(tmp_path_factory):
    """A folder with a mask image, a folder of two masks and a file that is not an image."""
    import cv2
    import numpy as np

    d = tmp_path_factory.mktemp("masks")
    cv2.imwrite(str(d / "m.png"), np.full((6, 8), 255, np.uint8))
    (d / "frames").mkdir()
    for i in range(2):
        cv2.imwrite(str(d / "frames" / f"{i:03d}.png"), np.zeros((6, 8), np.uint8))
    (d / "x.mp4").write_bytes(b"not a video")
    return d


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(paths, st.one_of(st.floats(allow_nan=True), st.integers(-5, 5)))
@example("m.png", 2.0)
@example("frames/*.png", 0.0)
@example("x.mp4", 0.0)
@example("m\0.png", 0.0)
def test_a_mask_or_guide_opens_or_says_one_line(mask_folder, monkeypatch, path, feather):
    from dreamvid.media.masks import open_masks
    from dreamvid.media.sources import read_image

    monkeypatch.chdir(mask_folder)
    cfg = parses_or_config_error(presets.job_config, "video", {"mask": path, "mask_feather": feather, "guide": path})
    if cfg is None:
        return
    masks = parses_or_config_error(open_masks, cfg.dream.mask, (16, 12), None, feather=cfg.dream.mask_feather,
                                   types=(DreamvidError,))
    if masks is not None:
        try:
            assert masks.at(0).shape[:2] == (12, 16)
        finally:
            masks.close()
    parses_or_config_error(read_image, cfg.dream.guide, types=(DreamvidError,))
