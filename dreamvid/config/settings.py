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


def setting(default, rule=None, help: str = "", *, schedule: bool = False):
    """One setting declared once: its default (the field's), its bounds (min, max; None: open) or
    its choices (a tuple of words, a frozenset of numbers), its help line (the command line's and
    the README's settings table's) and whether it takes a schedule (a value frame by frame, or a
    sound to follow). The reason for a default is the comment beside it. RULES, HELP and
    AUDIO_SCHEDULES below are read from these."""
    return field(default=default, metadata={"rule": rule, "help": help, "schedule": schedule})


@dataclass
class DreamSettings:
    """The DeepDream loop: one float image in, one out."""

    # the classic DeepDream network; falls back to vgg16-hed offline
    model: str = setting("googlenet", help="network: googlenet, vgg16-hed (offline), vgg16, inception_v3, ..., "
                         "torchvision:NAME, timm:NAME, or a .keras/.pb/.onnx/TorchScript .pt path")
    weights: str | None = setting(None, help="weights fetched elsewhere (googlenet: inception5h.zip; torchvision:/timm: "
                                  "a state dict); 'random' for untrained Keras, torchvision and timm nets")
    # a pickled module runs its code when it is loaded
    trust_pickle: bool = setting(False, help="a --model .pt that is a whole pickled module may be loaded (it runs the "
                                 "file's code): only for files you trust")
    layers: str = setting("", help="layers to maximise: 'mixed4c', 'mixed3b:1.0,mixed4c:0.5', or LAYER:CHANNEL; "
                          "default: the model's own choice")
    # "square": mean of squared activations (TF tutorial, lucid); "mean": the seed blog's reduce_mean
    reduce: str = setting("square", ("square", "mean"),
                          "objective per layer: mean of squares, or plain mean (the seed blog)")
    # 4, 1.4, 10 and 1.5: the original notebook's octave_n, octave_scale, iter_n and step_size
    octaves: int = setting(4, (1, 12), "number of scales the dream runs at (video, zoom: also a schedule)")
    octave_scale: float = setting(1.4, (1.05, 4.0), "size ratio between octaves")
    iterations: int = setting(10, (0, 1000), "gradient-ascent steps per octave (first frame)")
    step: float = setting(1.5, (1e-4, 100.0), "step size per iteration, in 0..255 pixel units, after normalisation "
                          "(video, zoom: also a schedule, or audio:FILE:MIN:MAX[:MODE] to follow a sound)")
    # "std": by the gradient's std; "max": by its max |g| (the seed blog); "mean": by mean |g| (the notebook)
    grad_norm: str = setting("std", ("std", "max", "mean"), "gradient normalisation")
    # so the network's stride grid does not print on the image
    jitter: int = setting(32, (0, 4096), "max random shift per step, in pixels")
    # memory stays bounded; None: 512 on a CPU, 1280 on a GPU (720p in one piece)
    tile_size: int | None = setting(None, (64, 8192), "dream larger images in tiles of this size")
    # fixes jitter and tile offsets: same seed, same machine, same result
    seed: int | None = setting(None, (0, 2**31 - 1), "fix the random jitter for reproducible runs")
    backend: str = setting("auto", ("auto", "tensorflow", "jax", "torch"), "framework that runs the network (auto: "
                           "one that sees a GPU, JAX first, else TensorFlow; KERAS_BACKEND is honoured)")
    device: str = setting("auto", ("auto", "cpu", "gpu"), "where the gradient loop runs")
    # the rules: engine/hardware.py
    precision: str = setting("auto", ("auto", "float32", "bfloat16", "float16"), "network arithmetic (auto: bfloat16 "
                             "or float16 where the GPU or CPU runs it fast, else float32)")
    xla: str = setting("auto", ("auto", "on", "off"), "TensorFlow: XLA-compile the ascent loop (auto: on for videos "
                       "and zooms on CPUs without AVX-512, for networks up to 40 layers deep; JAX always compiles "
                       "with XLA)")
    # after each frame's dream, the input's colours back (motion.colors.keep_colors)
    keep_colors: bool = setting(False, help="keep the input's colours: the dream changes light and shape, not the "
                                "palette")
    # Where to dream (media/masks.py); None: everywhere, with no mask ops in the loop.
    mask: str | None = setting(None, help="greyscale image (every frame) or folder/video of one per frame: white "
                               "dreams, black stays the input")
    mask_invert: bool = setting(False, help="dream where the mask is black instead")
    # a Gaussian over about this many frame pixels; 0 = as drawn
    mask_feather: float = setting(0.0, (0.0, 1000.0), "soften the mask's edge over about PX pixels")
    # "Look like this image" (objectives.GuideTerm, Google's notebook): a guide term at each of the
    # objective's layers, weighted by guide_weight and added to the layers' own terms
    guide: str | None = setting(None, help="make the dream look like this image: at the objective's layers, match "
                                "its features")
    # 1: the pull towards the guide as strong as the layer term's push; 0 = the guide takes no part
    guide_weight: float = setting(1.0, (-100.0, 100.0), "weight of the guide's term beside the layers'")


@dataclass
class VideoSettings:
    """Temporal coherence for clips (flow-guided initialisation of each frame)."""

    # OpenCV's DIS: fast and accurate; its "medium" preset detects occlusions reliably in our tests
    flow: str = setting("dis", ("dis", "farneback"), "optical flow method")
    flow_preset: str = setting("medium", ("ultrafast", "fast", "medium"), "DIS flow preset")
    blend: float = setting(0.9, (0.0, 1.0), "share of the previous dream carried into the next frame (0..1)")
    carry: str = setting("detail", ("detail", "dream"), "carry the dream's added detail, or the dreamed frame")
    # (flow.limit_carried): where the dream is strongest it is fed back every frame and would run
    # into saturated blobs. 3 holds each shot's extreme and saturated shares within 3x of its first
    # frame's on real footage (DESIGN.md)
    carry_limit: float = setting(3.0, (0.0, 1000.0), "limit each pixel's carried change to X times a fresh dream's "
                                 "mean amount, so the dream cannot run away into saturated blobs (0 = no limit)")
    # fewer than the first frame's: a later frame starts from a dream already
    iterations_next: int = setting(5, (0, 1000), "steps per octave after the first frame (of a shot, or of a "
                                   "zoom; a number or a schedule)")
    # A later frame starts from the carried dream, whose fine detail is already there: the
    # touch-up (TOUCH_* below) more than doubles the frames/s with the look held (README, Speed:
    # strength, flicker, tails, revealed regions, measured by the bench's --recipes)
    next_skip: int = setting(1, (0, 11), "frames after the first of a shot get a touch-up: their N finest octaves "
                             "left out (the others' detail upsampled onto the carried dream), fewer and longer steps, "
                             "more where the picture is new (0: every octave at the given steps, the recipe before)")
    # PySceneDetect's default content-change threshold
    cut_threshold: float = setting(27.0, (0.0, 255.0), "content change that starts a new shot")
    # so a single white flash frame resets the chain once, not twice (PySceneDetect's min_scene_len)
    min_shot_frames: int = setting(15, (1, 100_000), "frames a shot lasts at least: a cut sooner after the last is "
                                   "ignored (a flash frame cuts once)")
    no_flow: bool = setting(False, help="dream every frame independently (for comparison)")
    # The dream over the clip: schedules that replace a number frame by frame, as the zoom's below
    # (None = the number); a shot's first frame keeps dream.iterations.
    step: str | None = setting(None, help="the step over the clip (--step with a schedule or a sound)", schedule=True)
    octaves: str | None = setting(None, help="the octaves over the clip (--octaves with a schedule or a sound)",
                                  schedule=True)
    iterations: str | None = setting(None, help="later frames' steps over the clip (--iterations-next with a "
                                     "schedule or a sound)", schedule=True)
    # Shots and segments (plan.py): 0 keeps a shot in one piece; 240 (what `--chunk-frames` alone
    # gives) is 8 s at 30 fps, long enough that the warm-up and overlap cost little (16 in 240, 7%).
    chunk_frames: int = setting(0, (0, 1_000_000), "render in segments: shots split at cuts, longer ones into "
                                "N-frame segments")
    # the chain's detail settles within a few frames
    warmup_frames: int = setting(8, (0, 10_000), "frames dreamed and thrown away before a later segment")
    # a quarter second: a dissolve the eye does not catch
    overlap_frames: int = setting(8, (0, 10_000), "frames consecutive segments share, cross-faded")
    # Where the segments run, not what they make (so a resume may change them)
    ray: str | None = setting(None, help="each segment a Ray task on a cluster (auto: RAY_ADDRESS, a cluster on "
                              "this machine, or a new one); the output's folder must be on storage every node sees")
    ray_cpus: int = setting(2, (1, 1024), "CPUs per Ray task where the cluster has no GPU")


# A later frame's touch-up (video.next_skip > 0: its finest octaves left out) also takes fewer,
# longer steps, more of them where the picture is new, and keeps more of the carried dream:
# - TOUCH_STEPS: the share of iterations_next it takes (rounded, at least 1): 5 -> 3;
# - TOUCH_STEP: its steps this much longer than the settings' step;
# - TOUCH_WORK: how much of each step a pixel takes where the carried dream lies (1 where the
#   occlusion mask says the picture is new: the revealed regions catch up at the full rate);
# - TOUCH_LETGO: it keeps blend ** TOUCH_LETGO of the carried dream (0.9 -> 0.99: it lets go of
#   about a tenth of what a full dream does; 0 and 1 stay): it adds less each frame, so it keeps
#   more (carry_share still holds the amount near the shot's first frame's, carry_limit its tails).
# Measured together (bench --recipes, README Speed): 2.3-2.8x the frames/s of every octave at
# the same steps, strength within 9%, flicker lower, revealed regions caught up as well or better;
# each part alone fell short (3 steps held the strength only with longer steps, which flickered;
# the work map lost strength without the longer carry; a step 1.2 or 1.3x lost strength, 1.45x
# flickered; letting go of 0.3 or 0.2 of it kept less strength in the sample's second shot).
TOUCH_STEPS = 0.6
TOUCH_STEP = 1.4
TOUCH_WORK = 0.5
TOUCH_LETGO = 0.1


@dataclass
class ZoomSettings:
    """The infinite zoom: each frame is the previous dream transformed a little and dreamed again.
    Values are schedules in Deforum notation ("0:(1.02), 120:(1.05)") or plain numbers, or a
    sound to follow, "audio:FILE[:MIN:MAX[:MODE]]" (audio.py; AUDIO_SCHEDULES below)."""

    frames: int = setting(120, (1, 1_000_000), "number of frames")
    seconds: float | None = setting(None, (0.01, 86_400.0), "length in seconds (overrides --frames)")
    # 2% a frame doubles the scale in about 35 frames
    zoom: str = setting("1.02", help="scale per frame", schedule=True)
    rotate: str = setting("0", help="degrees per frame, counter-clockwise", schedule=True)
    pan_x: str = setting("0", help="pixels per frame to the right", schedule=True)
    pan_y: str = setting("0", help="pixels per frame down", schedule=True)
    center: str | None = setting(None, help="zoom centre in pixels; default the middle")
    # 1 = pure feedback
    blend: str = setting("1.0", help="share of the previous dream kept each frame", schedule=True)
    color_match: float = setting(0.5, (0.0, 1.0), "pull colours towards the first frame's (0..1; 0 = off)")
    init: str = setting("image", help="start frame: the image, noise, or a colour #rrggbb")
    interpolation: str = setting(LINEAR, ("linear", "smooth"), "schedules: between keyframes")
    # The dream over time (None = the number); frame 0 keeps dream.iterations.
    step: str | None = setting(None, help="the step over the zoom (--step with a schedule or a sound)", schedule=True)
    octaves: str | None = setting(None, help="the octaves over the zoom (--octaves with a schedule or a sound)",
                                  schedule=True)
    iterations: str | None = setting(None, help="later frames' steps over the zoom (--iterations-next with a "
                                     "schedule or a sound)", schedule=True)


@dataclass
class OutputSettings:
    """What is written: the container, codec and frames, the input's range and size."""

    fps: float | None = setting(None, (0.1, 1000.0), "frame rate (video: the input's; image sequences and zooms: 25)")
    # 18 is visually lossless for most footage
    crf: int = setting(18, (0, 51), "H.264/H.265/VP9 quality, lower is better; 0 = lossless")
    # "h264" plays everywhere; "h265" is about half the size at the same quality; "prores" (422 HQ)
    # and "prores4444" are what editors cut and grade without a second generation of loss; "vp9" is
    # WebM's. None: the container's own (media.formats.CONTAINER_CODECS). Which combinations this
    # ffmpeg can write is checked against ffmpeg itself before dreaming (formats.check_output_path).
    codec: str | None = setting(None, ("h264", "h265", "prores", "prores4444", "vp9"), "video codec (default: h264, "
                                "vp9 for .webm); prores and prores4444 (for editors) write .mov or .mkv, vp9 (with "
                                "Opus sound) .webm, .mkv or .mp4")
    # None: the codec's own (media.formats.CODECS: yuv420p, yuv422p10le...; yuv444p at crf 0)
    pix_fmt: str | None = setting(None, help="ffmpeg pixel format, e.g. yuv422p10le; default: the codec's")
    # work-folder frames become 16-bit too
    bit_depth: int = setting(8, frozenset({8, 16}), "16 keeps the dream's float precision: 16-bit PNG/TIFF frames, "
                             "or a 10-bit codec's input")
    # tiff: what some editors import
    frame_format: str = setting("png", ("png", "tiff"), "files in a frame folder (an output ending in '/')")
    audio: bool = setting(True, help="the input's sound for the rendered range (--no-audio leaves it out)")
    # even sizes for video
    width: int | None = setting(None, (16, 16384), "resize the input to this width, keeping aspect")
    start: float = setting(0.0, (0.0, None), "start this many seconds into the input")
    duration: float | None = setting(None, (0.01, None), "render this many seconds")
    max_frames: int | None = setting(None, (1, None), "render at most N frames")
    keep_frames: bool = setting(False, help="keep the work folder of lossless frames")
    restart: bool = setting(False, help="discard an unfinished earlier render of this output and start over")


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

    seconds: float | None = setting(None, (0.01, 86_400.0), "run this long (default: until q, Ctrl-C or the "
                                    "source's end)")
    frames: int | None = setting(None, (1, 1_000_000), "or end after N frames dreamed")
    # "source": as a camera would (the newest frame dreamed, the rest dropped); "dream": a rehearsal
    # frame by frame, the same frames on any machine
    pace: str = setting("source", ("source", "dream"), "a file source: at its own rate, the newest frame dreamed "
                        "(source), or every frame in turn at the dream's pace (dream: a rehearsal, nothing dropped)")
    # the governor lowers the steps (then the octaves) per frame to hold it, within the bounds
    # below, and raises them again where there is room; None: the sinks' steady rate is the source's
    fps: float | None = setting(None, (0.1, 1000.0), "target frames/s out: a governor adapts steps, then octaves, "
                                "to hold it")
    loop: bool = setting(False, help="a file source starts again at its end (rehearse a show)")
    # 1: the dream still moves
    min_steps: int = setting(1, (0, 1000), "the governor's fewest steps per octave")
    max_steps: int | None = setting(None, (0, 1000), "its most (default: --iterations-next)")
    min_octaves: int = setting(1, (1, 12), "its fewest octaves (the most: --octaves)")
    fullscreen: bool = setting(False, help="the window fills the screen (a projector)")
    looks: str = setting("", help="a look the keys n/p switch to (a preset or a layer spec), compiled before the "
                         "first frame; repeat --look (or ';' between looks)")
    snapshots: str = setting(".", help="where the snapshot key writes PNGs")
    osc: str | None = setting(None, help="take the commands as OSC messages on this UDP port (/dreamvid/strength "
                              "1.5, /dreamvid/carry 0.8, /dreamvid/look NAME, /dreamvid/reset, ...; README: Dream "
                              "live), on 127.0.0.1 unless HOST is named; pip install 'dreamvid[osc]'")
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

def _declared(what: str) -> dict[str, Any]:
    """Each setting's declared `what` (its `setting()` metadata: "rule", "help") by name, over
    every section and the live settings; a name that several sections declare must agree."""
    out: dict[str, Any] = {}
    for cls in (*SECTIONS.values(), LiveSettings):
        for f in fields(cls):
            value = f.metadata.get(what)
            if value in (None, ""):
                continue
            if what == "rule" and out.get(f.name, value) != value:
                raise AssertionError(f"{f.name}: two sections declare different rules")
            out.setdefault(f.name, value)
    return out


# Allowed values, from each setting's declaration: (min, max) for numbers (None = unbounded), a
# tuple of choices for strings, a frozenset of the only numbers allowed. Text settings without a
# rule (model, layers, schedules, pix_fmt) are checked by their own stage.
RULES: dict[str, Any] = _declared("rule")

# The schedules that may follow a sound ("audio:FILE[:MIN:MAX[:MODE]]", schedule.parse_spec): the
# numbers a video or a zoom changes frame by frame (`schedule=True`). The spec's form is checked
# here; the file when the render reads it (before any frame is written).
AUDIO_SCHEDULES = frozenset(f"{section}.{f.name}" for section, cls in SECTIONS.items() for f in fields(cls)
                            if f.metadata.get("schedule"))


def help_of(key: str) -> str:
    """A setting's help line, by its name or "section.name" (`zoom.blend`, `live.fps`; a name
    alone is its first section's): the command line's and the README's settings table's."""
    section, _, name = key.rpartition(".")
    every = {**SECTIONS, "live": LiveSettings}
    classes = [every[section]] if section else list(every.values())
    for cls in classes:
        for f in fields(cls):
            if f.name == name and f.metadata.get("help"):
                return f.metadata["help"]
    raise KeyError(key)


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
