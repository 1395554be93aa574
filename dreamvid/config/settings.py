"""Settings as plain data: one dataclass per stage, defaults with their reasons, validation in one
place, and preset loading. No TensorFlow or OpenCV here.

Precedence (highest first): command line, preset file, the defaults below. The CLI builds a flat
dict of the values the user gave, merges it over a preset's, and calls `build_config`, which
rejects unknown keys and out-of-range values with the key, the allowed range and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field, fields
from typing import Any

from dreamvid.config.schedule import LINEAR, Schedule, is_audio, parse_spec
from dreamvid.core.errors import ConfigError


@dataclass
class DreamSettings:
    """The DeepDream loop: one float image in, one out."""

    model: str = "googlenet"  # the classic DeepDream network; falls back to vgg16-hed offline
    weights: str | None = None  # a weights file fetched elsewhere (googlenet .pb/.zip, Keras .h5, a PyTorch state dict)
    trust_pickle: bool = False  # a --model .pt that is a pickled module runs its code when loaded: only if trusted
    layers: str = ""  # objective spec, e.g. "mixed4c" or "mixed3b:1.0,mixed4c:0.5"; "" = the model's default
    reduce: str = "square"  # "square": mean of squared activations (TF tutorial, lucid); "mean": the seed blog's reduce_mean
    octaves: int = 4  # the original notebook's octave_n
    octave_scale: float = 1.4  # the original notebook's value
    iterations: int = 10  # ascent steps per octave, the original notebook's iter_n
    step: float = 1.5  # pixels (on 0..255) per step after normalisation, the original notebook's value
    grad_norm: str = "std"  # "std": divide by the gradient's std; "max": by its max |g| (the seed blog); "mean": by mean |g| (the notebook)
    jitter: int = 32  # max random shift in pixels per step, so the network's stride grid does not print on the image
    tile_size: int | None = None  # dream larger frames in tiles so memory stays bounded; None: 512 on a CPU, 1280 on a GPU (720p in one piece)
    seed: int | None = None  # fixes jitter and tile offsets: same seed, same machine, same result
    backend: str = "auto"  # "tensorflow", "jax", "torch" (Keras 3); "auto": one that sees a GPU (JAX first), else TensorFlow
    device: str = "auto"  # "auto" uses a GPU when the backend sees one
    precision: str = "auto"  # "auto": bfloat16/float16 where the hardware runs it fast (hardware.py), else float32
    xla: str = "auto"  # TensorFlow: XLA-compile the ascent loop; "auto" = on for videos and zooms on AVX2 CPUs with a VGG-sized network (hardware.py)
    keep_colors: bool = False  # after each frame's dream, the input's colours back: the dream changes light and shape, not the palette (colors.keep_colors)
    # Where to dream (masks.py): a greyscale image for every frame, or a folder/video of one per
    # frame; white dreams in full, black not at all. None: everywhere, with no mask ops in the loop.
    mask: str | None = None
    mask_invert: bool = False  # dream where the mask is black instead
    mask_feather: float = 0.0  # soften the mask's edge over about this many frame pixels (Gaussian); 0 = as drawn
    # "Look like this image" (objectives.GuideTerm, Google's notebook): a guide term at each of the
    # objective's layers, weighted by guide_weight and added to the layers' own terms
    guide: str | None = None
    guide_weight: float = 1.0  # 1: the pull towards the guide as strong as the layer term's push; 0 = the guide takes no part


@dataclass
class VideoSettings:
    """Temporal coherence for clips (flow-guided initialisation of each frame)."""

    flow: str = "dis"  # "dis" (OpenCV DIS, fast and accurate) or "farneback"
    flow_preset: str = "medium"  # DIS preset: the one that detects occlusions reliably in our tests
    blend: float = 0.9  # share of the previous frame's warped dream carried into the next
    carry: str = "detail"  # "detail": carry what the dream added; "dream": carry the dreamed frame itself
    # The carried change soft-limited per pixel at this multiple of the mean amount a fresh dream
    # of the shot's first frame adds (flow.limit_carried): where the dream is strongest it is fed
    # back every frame and would run into saturated blobs. 3 holds each shot's extreme and
    # saturated shares within 3x of its first frame's on real footage (DESIGN.md); 0 = no limit.
    carry_limit: float = 3.0
    iterations_next: int = 5  # ascent steps per octave after the first frame (it starts from a dream already)
    # A later frame of a shot starts from the carried dream, whose fine detail is already there: its
    # touch-up skips this many of the finest octaves, dreams the rest and upsamples what they add
    # onto the carried frame. 1 roughly halves a later frame's work (the finest octave is half
    # of all of them) with the look held (README, Speed: strength, flicker, tails, revealed
    # regions, measured by the bench's --recipes); 0 dreams every octave (the recipe before).
    next_skip: int = 1
    cut_threshold: float = 27.0  # content-change score above which a frame starts a new shot (PySceneDetect's default)
    # frames a shot started by a cut lasts at least: a cut sooner after the last is no cut, so a
    # single white flash frame resets the chain once, not twice (PySceneDetect's min_scene_len)
    min_shot_frames: int = 15
    no_flow: bool = False  # dream every frame independently (for comparison)
    # The dream over the clip: schedules that replace a number frame by frame, as the zoom's
    # below (None = the number: dream.step, dream.octaves, iterations_next). The CLI routes a
    # schedule given to --step, --octaves or --iterations-next here; a shot's first frame keeps
    # dream.iterations.
    step: str | None = None
    octaves: str | None = None
    iterations: str | None = None
    # Shots and segments (plan.py): a render in segments, one after the other here or as Ray
    # tasks. 0 keeps a shot in one piece; 240 (what `--chunk-frames` alone gives) is 8 s at
    # 30 fps, long enough that the warm-up and overlap cost little (16 frames in 240, 7%).
    chunk_frames: int = 0
    warmup_frames: int = 8  # frames dreamed before a later segment's first kept frame, then thrown away: the chain's detail settles within a few frames
    overlap_frames: int = 8  # frames two consecutive segments share, cross-faded (a quarter second: a dissolve the eye does not catch)
    # Where the segments run, not what they make (so a resume may change them): a Ray cluster
    # ("auto" or an address; None renders here) and the CPUs each task takes where it has no GPU.
    ray: str | None = None
    ray_cpus: int = 2


# A touch-up's steps (video.next_skip > 0) are this much longer than the settings' step: the
# octaves it dreams travel a fifth further, standing in for the finest one it leaves out, so a
# shot's strength and its newly revealed regions keep up with the full recipe's while the flicker
# stays below it (measured: bench --recipes, README Speed; 1.0 left revealed regions at 0.77 of
# the frame's detail, 1.25 raised the flicker past the full recipe's).
TOUCH_STEP = 1.2


@dataclass
class ZoomSettings:
    """The infinite zoom: each frame is the previous dream transformed a little and dreamed again.
    Values are schedules in Deforum notation ("0:(1.02), 120:(1.05)") or plain numbers, or a
    sound to follow, "audio:FILE[:MIN:MAX[:MODE]]" (audio.py; AUDIO_SCHEDULES below)."""

    frames: int = 120  # length in frames (or `seconds` * fps)
    seconds: float | None = None
    zoom: str = "1.02"  # scale per frame: 2% a frame doubles the scale in ~35 frames
    rotate: str = "0"  # degrees per frame, counter-clockwise
    pan_x: str = "0"  # pixels per frame the content moves right
    pan_y: str = "0"  # pixels per frame the content moves down
    center: str | None = None  # "X,Y" in pixels; default the frame centre
    blend: str = "1.0"  # share of the transformed previous dream kept (1 = pure feedback)
    color_match: float = 0.5  # pull each frame's colour statistics towards the first frame's (0 = off)
    init: str = "image"  # what frame 0 is: "image", "noise", or a colour "#rrggbb" (--from)
    interpolation: str = LINEAR  # schedule interpolation: "linear" or "smooth"
    # The dream over time: schedules that replace a number for the zoom's frames (None = the
    # number: dream.step, dream.octaves, video.iterations_next). The CLI routes a schedule given
    # to --step, --octaves or --iterations-next here; frame 0 keeps dream.iterations.
    step: str | None = None
    octaves: str | None = None
    iterations: str | None = None


@dataclass
class OutputSettings:
    fps: float | None = None  # frames per second: the input's for videos; 25 for zooms and image sequences
    crf: int = 18  # H.264/H.265 quality (lower is better; 18 is visually lossless for most footage; 0 = lossless)
    # Video files for editors and the web. codec: "h264" plays everywhere; "h265" is about half the
    # size at the same quality; "prores" (422 HQ) and "prores4444" are what editors cut and grade
    # without a second generation of loss (.mov/.mkv only); "vp9" is WebM's, with Opus sound. None:
    # the container's own (media.formats.CONTAINER_CODECS: VP9 in .webm, else H.264). Which combinations
    # this ffmpeg can write is checked against ffmpeg itself before dreaming (formats.check_output_path).
    codec: str | None = None
    pix_fmt: str | None = None  # ffmpeg's name; None = the codec's own (media.formats.CODECS: yuv420p, yuv422p10le...; yuv444p at crf 0)
    # 16 keeps the float dream past 8 bits: 16-bit PNG/TIFF frames, or 16-bit input to a
    # pixel format of more than 8 bits (ProRes, yuv420p10le...); work-folder frames become 16-bit
    bit_depth: int = 8
    frame_format: str = "png"  # frame folders (an output ending in '/'): "png" or "tiff" (what some editors import)
    audio: bool = True  # mux the input's audio for the rendered range
    width: int | None = None  # resize the input keeping aspect (even sizes for video)
    start: float = 0.0  # seconds into the input
    duration: float | None = None  # seconds to render
    max_frames: int | None = None
    keep_frames: bool = False  # keep the work folder (lossless frames) after a successful render
    restart: bool = False  # discard a previous, unfinished render's work folder


@dataclass
class Config:
    dream: DreamSettings = field(default_factory=DreamSettings)
    video: VideoSettings = field(default_factory=VideoSettings)
    zoom: ZoomSettings = field(default_factory=ZoomSettings)
    output: OutputSettings = field(default_factory=OutputSettings)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)


@dataclass
class LiveSettings:
    """Dreaming live (`dreamvid live`): how long, how fast, what the show may switch between.
    Not part of a render's Config: a live run makes no resumable output and no record."""

    seconds: float | None = None  # run this long; None: until quit, Ctrl-C, SIGTERM or the source's end
    frames: int | None = None  # or end after this many frames dreamed; None: no such end
    # a file source: "source" plays it at its own rate, as a camera would (the newest frame
    # dreamed, the rest dropped); "dream" hands every frame in turn at the pace the dream takes
    # them (nothing dropped: a rehearsal frame by frame, the same frames on any machine)
    pace: str = "source"
    # a target rate out: the governor lowers the steps (then the octaves) per frame to hold it,
    # within the bounds below, and raises them again where there is room; None: no governor, the
    # sinks' steady rate is the source's
    fps: float | None = None
    loop: bool = False  # a file source starts again at its end (to rehearse a show)
    min_steps: int = 1  # the governor's lowest steps per octave (1: the dream still moves)
    max_steps: int | None = None  # its highest; None: iterations_next
    min_octaves: int = 1  # its fewest octaves (the user's octaves are its most)
    fullscreen: bool = False  # the window sink fills the screen (a projector)
    looks: str = ""  # the looks keys switch between besides the first: presets or layer specs, ";" between
    snapshots: str = "."  # where the snapshot key writes its PNGs
    osc: str | None = None  # "[HOST:]PORT": take the commands as OSC messages (live.osc); HOST 127.0.0.1 unless named
    # the settings that follow the source's own sound live ("audio:source[:MIN:MAX[:MODE]]"),
    # by the chain's schedule name (step, octaves, iterations): set by live_config, not given
    sounds: dict = field(default_factory=dict)


# `dreamvid ui`: the page's server
UI_LOOPBACK = "127.0.0.1"  # served to this machine only, unless --listen names another address
UI_AUTH_ENV = "DREAMVID_UI_AUTH"  # USER:PASSWORD, kept off the command line (and out of `ps`)
UI_MAX_UPLOAD_MB = 2048  # a few minutes of 4K footage; Gradio refuses larger uploads before they land
UI_FOLDER = "dreamvid-ui"  # the work folder: uploads, renders, previews; the only files served
UI_PORT = 7860  # Gradio's own default, what its users expect

LIVE_KEYS = frozenset(f.name for f in fields(LiveSettings) if f.name != "sounds")
LIVE_SOUND = "source"  # "audio:source:...": the live source's own sound track, followed as it plays
SCHEDULED_KEYS = {"step": "step", "octaves": "octaves", "iterations_next": "iterations"}  # setting -> its job's schedule

SECTIONS = {"dream": DreamSettings, "video": VideoSettings, "zoom": ZoomSettings, "output": OutputSettings}


def _defaults() -> dict[str, Any]:
    """Each setting's default by "section.name" ("video.blend", "zoom.blend"), and by its name
    alone where the name is one setting's or its sections agree (a name two sections give other
    defaults, such as blend, only by its section)."""
    seen: dict[str, set] = {}
    out: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            if f.default is not dataclasses.MISSING:
                seen.setdefault(f.name, set()).add(repr(f.default))
                out[f"{section}.{f.name}"] = f.default
    for cls in SECTIONS.values():
        for f in fields(cls):
            if len(seen.get(f.name, ())) == 1:
                out.setdefault(f.name, f.default)
    return out


# the stages' own parameters take their defaults from here (`crf: int = DEFAULTS["crf"]`), so each is
# declared once, in its section's dataclass above (tests/test_config.py walks the source for copies)
DEFAULTS: dict[str, Any] = _defaults()

# Allowed values: (min, max) for numbers (None = unbounded), a tuple of choices for strings.
RULES: dict[str, Any] = {
    "reduce": ("square", "mean"),
    "octaves": (1, 12),
    "octave_scale": (1.05, 4.0),
    "iterations": (0, 1000),
    "step": (1e-4, 100.0),
    "grad_norm": ("std", "max", "mean"),
    "jitter": (0, 4096),
    "tile_size": (64, 8192),
    "seed": (0, 2**31 - 1),
    "backend": ("auto", "tensorflow", "jax", "torch"),
    "device": ("auto", "cpu", "gpu"),
    "precision": ("auto", "float32", "bfloat16", "float16"),
    "xla": ("auto", "on", "off"),
    "mask_feather": (0.0, 1000.0),
    "guide_weight": (-100.0, 100.0),
    "flow": ("dis", "farneback"),
    "flow_preset": ("ultrafast", "fast", "medium"),
    "blend": (0.0, 1.0),
    "carry": ("detail", "dream"),
    "carry_limit": (0.0, 1000.0),
    "iterations_next": (0, 1000),
    "next_skip": (0, 11),
    "cut_threshold": (0.0, 255.0),
    "min_shot_frames": (1, 100_000),
    "chunk_frames": (0, 1_000_000),
    "warmup_frames": (0, 10_000),
    "overlap_frames": (0, 10_000),
    "ray_cpus": (1, 1024),
    "frames": (1, 1_000_000),
    "seconds": (0.01, 86_400.0),
    "color_match": (0.0, 1.0),
    "interpolation": ("linear", "smooth"),
    "fps": (0.1, 1000.0),
    "crf": (0, 51),
    "codec": ("h264", "h265", "prores", "prores4444", "vp9"),
    "bit_depth": frozenset({8, 16}),  # a set: these values only, not a range
    "frame_format": ("png", "tiff"),
    "width": (16, 16384),
    "start": (0.0, None),
    "duration": (0.01, None),
    "max_frames": (1, None),
    "min_steps": (0, 1000),
    "max_steps": (0, 1000),
    "min_octaves": (1, 12),
    "pace": ("source", "dream"),
}
# Text settings without a rule (model, layers, schedules, pix_fmt) are checked by their own stage.

# The schedules that may follow a sound ("audio:FILE[:MIN:MAX[:MODE]]", schedule.parse_spec): the numbers a
# video or a zoom changes frame by frame. The spec's form is checked here; the file when the
# render reads it (before any frame is written).
AUDIO_SCHEDULES = frozenset({"video.step", "video.octaves", "video.iterations", "zoom.zoom", "zoom.rotate",
                             "zoom.pan_x", "zoom.pan_y", "zoom.blend", "zoom.step", "zoom.octaves",
                             "zoom.iterations"})


def _check_audio(section: str, name: str, value: Any, where: str) -> None:
    """ConfigError for a malformed "audio:" spec, or one given to a setting that cannot follow a sound."""
    if not is_audio(value):
        return
    if f"{section}.{name}" not in AUDIO_SCHEDULES:
        raise ConfigError(
            f"{where}{name} cannot follow a sound ('{value}'); 'audio:' drives only the schedules of a video or "
            f"a zoom: --step, --octaves, --iterations-next, and a zoom's --zoom, --rotate, --pan-x, --pan-y, "
            f"--zoom-blend")
    parse_spec(value, f"{where}{name}")


def _key_owner() -> dict[str, tuple[str, dataclasses.Field]]:
    owner: dict[str, tuple[str, dataclasses.Field]] = {}
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            owner.setdefault(f.name, (section, f))
    return owner


def coerce(key: str, value: Any, f: dataclasses.Field, where: str) -> Any:
    """Turn `value` into the field's type and check it against RULES; raise ConfigError naming the fix."""
    kind = str(f.type)  # annotations are strings here: "int", "float | None", "str", "bool"
    if value is None:
        if "None" not in kind:  # a record's null for a setting that must have a value
            raise ConfigError(f"{where}{key} cannot be empty (null); give a value or leave the setting out")
        return None
    rule = RULES.get(key)
    if "bool" in kind:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{where}{key} must be true or false, got {value!r}")
    if "int" in kind:
        try:
            num = float(value)
            if isinstance(value, bool) or not math.isfinite(num) or num != int(num):
                raise ValueError
            value = int(num)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an int past float's range
            raise ConfigError(f"{where}{key} must be a whole number, got {value!r}") from None
    elif "float" in kind:
        try:
            if isinstance(value, bool):
                raise ValueError
            value = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{where}{key} must be a number, got {value!r}") from None
        if not math.isfinite(value):
            raise ConfigError(f"{where}{key} must be a finite number, got {value!r}")
    else:
        value = str(value)
    if isinstance(rule, tuple) and rule and isinstance(rule[0], str):
        if value not in rule:
            raise ConfigError(f"{where}{key} must be one of {', '.join(rule)}; got {value!r}")
    elif isinstance(rule, frozenset):
        if value not in rule:
            raise ConfigError(f"{where}{key} must be one of {', '.join(map(str, sorted(rule)))}; got {value!r}")
    elif isinstance(rule, tuple) and not isinstance(value, str):
        lo, hi = rule
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
            raise ConfigError(f"{where}{key} must be {bounds}, got {value!r}")
    return value


def _check_segments(v: VideoSettings, where: str) -> None:
    """The segment settings together: a segment must be longer than what it shares with its
    neighbours, or the cross-fades would overlap each other."""
    if v.chunk_frames and v.chunk_frames < 2 * (v.overlap_frames + 1):
        raise ConfigError(f"{where}chunk_frames ({v.chunk_frames}) must be at least twice overlap_frames + 1 "
                          f"({2 * (v.overlap_frames + 1)}); raise --chunk-frames or lower --overlap-frames")
    if v.ray is not None and not str(v.ray).strip():
        raise ConfigError(f"{where}ray must be 'auto' or a cluster address like 10.0.0.5:6379")


def build_config(values: dict[str, Any], *, source: str = "") -> Config:
    """Build a validated Config from flat `key: value` pairs (CLI flags, preset entries).

    Keys may be plain (`octaves`) or qualified (`dream.octaves`, `video.blend`); a plain key that
    exists in several sections (`blend`, `start`) goes to the first section that has it unless
    qualified. Unknown keys are rejected with the closest known names.
    """
    where = f"{source}: " if source else ""
    cfg = Config()
    sections = {name: getattr(cfg, name) for name in SECTIONS}
    owner = _key_owner()
    for raw_key, value in values.items():
        key = raw_key.replace("-", "_")
        if "." in key:
            section, _, name = key.partition(".")
            cls = SECTIONS.get(section)
            flds = {f.name: f for f in fields(cls)} if cls else {}
            if name not in flds:
                known = [f"{s}.{f.name}" for s, c in SECTIONS.items() for f in fields(c)]
                hint = difflib.get_close_matches(key, known, n=3)
                raise ConfigError(f"{where}unknown setting '{raw_key}'" + (f"; did you mean {', '.join(hint)}?" if hint else ""))
            f = flds[name]
        else:
            if key not in owner:
                hint = difflib.get_close_matches(key, list(owner), n=3)
                raise ConfigError(f"{where}unknown setting '{raw_key}'" + (f"; did you mean {', '.join(hint)}?" if hint else "; run 'dreamvid --help' for the settings"))
            section, f = owner[key]
            name = key
        _check_audio(section, name, value, where)
        setattr(sections[section], name, coerce(name, value, f, where))
    _check_segments(cfg.video, where)
    _check_schedules(cfg, where)
    return cfg


def _check_schedules(cfg: Config, where: str) -> None:
    """Every schedule's notation read now (schedule.Schedule.parse), so a malformed one is
    answered here, with the preset's name, not at the render; the frames each value must keep
    within are checked where the render's length is known (prepare.check_schedules)."""
    for key in sorted(AUDIO_SCHEDULES):  # the schedules of numbers a frame changes (any of which may follow a sound)
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value is not None and not is_audio(value):  # a sound's spec: _check_audio
            _parse(Schedule.parse, value, where, name=name, kind=float)
    if "(" in (cfg.dream.layers or ""):  # a layer schedule ("0:(mixed4c), 150:(mixed5a)"); a plain spec: objectives.parse
        _parse(Schedule.parse, cfg.dream.layers, where, name="layers", kind=str)


def _parse(parse, value, where, **kw):
    try:
        parse(value, **kw)
    except ConfigError as e:
        raise ConfigError(f"{where}{e}") from None


# --ray alone: the segment length a cluster shares out (8 s at 30 fps), as --chunk-frames alone
