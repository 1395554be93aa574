"""Command line: arguments -> Config (command line over preset over defaults), progress bars,
one-line messages and exit codes. The only module that prints or exits; no stage logic here.

Exit codes: 0 done, 2 bad input or settings (one line, no traceback unless DREAMVID_DEBUG=1),
1 an unexpected failure; stopped by a signal, 128 + its number (the shells' convention): 130
Ctrl-C (SIGINT), 143 SIGTERM (job schedulers, `timeout`, `docker stop`), 129 SIGHUP (a closed
terminal).

Stopping is a flag, not an exception: the three signals only set `Stop.event` (the API's
`cancel=`), which the job honours at its next safe point (after the network loads, between
octaves of a still, between frames and tiles, before the encoder closes), through the same path a
cancelled API call takes: the finished frames kept, ffmpeg closed, nothing under the output's
name unless it is whole, one line saying how to resume. An exception raised from a signal handler
would be lost wherever the signal lands in a `finally`, a `__del__` or a garbage-collection
callback; a flag is never lost, and a second signal during the clean-up only sets it again. The
handlers are in place before anything slow is imported (this module imports only the settings at
its top; `dreamvid`'s own names load lazily), so a stop in the first second is honoured too.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import fields

from dreamvid.config import (
    LIVE_HELP,
    RAY_CHUNK_FRAMES,
    SECTIONS,
    UI_AUTH_ENV,
    UI_FOLDER,
    UI_LOOPBACK,
    UI_MAX_UPLOAD_MB,
    UI_PORT,
    Config,
    LiveSettings,
    build_config,
    job_config,
    live_config,
    load_preset,
    preset_descriptions,
)
from dreamvid.errors import Cancelled, DreamvidError
from dreamvid.version import VERSION

log = logging.getLogger("dreamvid")
DEBUG = os.environ.get("DREAMVID_DEBUG", "") not in ("", "0")

_DEFAULTS = {f.name: f.default for cls in SECTIONS.values() for f in fields(cls)}


def _d(key: str) -> str:
    value = _DEFAULTS[key]
    return "" if value in (None, "") else f" (default: {value})"


def _add(group, *flags, key: str, help: str, **kw):
    group.add_argument(*flags, dest=key, default=argparse.SUPPRESS, help=help + _d(key), **kw)


def _dream_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("dream")
    _add(g, "--model", key="model", metavar="NAME|PATH",
         help="network: googlenet, vgg16-hed (offline), vgg16, inception_v3, ..., or a .keras/.pb path")
    _add(g, "--weights", key="weights", metavar="FILE", help="weights fetched elsewhere (googlenet: inception5h.zip); 'random' for untrained Keras nets")
    _add(g, "--layers", key="layers", metavar="SPEC",
         help="layers to maximise: 'mixed4c', 'mixed3b:1.0,mixed4c:0.5', or LAYER:CHANNEL; default: the model's own choice")
    _add(g, "--reduce", key="reduce", choices=("square", "mean"), help="objective per layer: mean of squares, or plain mean (the seed blog)")
    _add(g, "--octaves", key="octaves", metavar="N", help="number of scales the dream runs at (video, zoom: also a schedule)")
    _add(g, "--octave-scale", key="octave_scale", metavar="X", help="size ratio between octaves")
    _add(g, "--iterations", key="iterations", metavar="N", help="gradient-ascent steps per octave (first frame)")
    _add(g, "--step", key="step", metavar="X", help="step size per iteration, in 0..255 pixel units (video, zoom: also a schedule, "
              "or audio:FILE:MIN:MAX[:MODE] to follow a sound)")
    _add(g, "--grad-norm", key="grad_norm", choices=("std", "max", "mean"), help="gradient normalisation")
    _add(g, "--jitter", key="jitter", metavar="PX", help="max random shift per step")
    g.add_argument("--keep-colors", dest="keep_colors", action="store_const", const=True, default=argparse.SUPPRESS,
                   help="keep the input's colours: the dream changes light and shape, not the palette")
    _add(g, "--tile-size", key="tile_size", metavar="PX", help="dream larger images in tiles of this size")
    _add(g, "--seed", key="seed", metavar="N", help="fix the random jitter for reproducible runs")
    _backend_options(g)
    _add(g, "--precision", key="precision", choices=("auto", "float32", "bfloat16", "float16"),
         help="network arithmetic (auto: bfloat16 or float16 where the GPU or CPU runs it fast, else float32)")
    _add(g, "--xla", key="xla", choices=("auto", "on", "off"),
         help="TensorFlow: XLA-compile the ascent loop (auto: on for videos and zooms on CPUs without AVX-512, "
              "for networks up to 40 layers deep; JAX always compiles with XLA)")
    _add(g, "--width", key="width", metavar="PX", help="resize the input to this width, keeping aspect")
    p.add_argument("--preset", default=None, metavar="NAME|PATH", help="start from a named look (see 'dreamvid presets'); flags override it")


def _mask_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("mask (where to dream)")
    _add(g, "--mask", key="mask", metavar="FILE",
         help="greyscale image (every frame) or folder/video of one per frame: white dreams, black stays the input")
    g.add_argument("--mask-invert", dest="mask_invert", action="store_const", const=True, default=argparse.SUPPRESS,
                   help="dream where the mask is black instead")
    _add(g, "--mask-feather", key="mask_feather", metavar="PX", help="soften the mask's edge over about PX pixels")


def _guide_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("guide (look like an image)")
    _add(g, "--guide", key="guide", metavar="IMAGE",
         help="make the dream look like this image: at the objective's layers, match its features")
    _add(g, "--guide-weight", key="guide_weight", metavar="X", help="weight of the guide's term beside the layers'")


def _backend_options(g) -> None:
    _add(g, "--backend", key="backend", choices=("auto", "tensorflow", "jax", "torch"),
         help="framework that runs the network (auto: one that sees a GPU, JAX first, else TensorFlow; "
              "KERAS_BACKEND is honoured)")
    _add(g, "--device", key="device", choices=("auto", "cpu", "gpu"), help="where the gradient loop runs")


_CHUNK_FRAMES = RAY_CHUNK_FRAMES  # --chunk-frames alone, and with --ray: 8 s at 30 fps


def _video_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("video")
    _add(g, "--flow", key="flow", choices=("dis", "farneback"), help="optical flow method")
    _add(g, "--flow-preset", key="flow_preset", choices=("ultrafast", "fast", "medium"), help="DIS flow preset")
    _add(g, "--blend", key="blend", metavar="X", help="share of the previous dream carried into the next frame (0..1)")
    _add(g, "--carry", key="carry", choices=("detail", "dream"), help="carry the dream's added detail, or the dreamed frame")
    _add(g, "--carry-limit", key="carry_limit", metavar="X",
         help="limit each pixel's carried change to X times a fresh dream's mean amount, so the dream "
              "cannot run away into saturated blobs (0 = no limit)")
    _add(g, "--iterations-next", key="iterations_next", metavar="N", help="steps per octave for frames after the first of a shot (also a schedule)")
    _add(g, "--interpolation", key="interpolation", choices=("linear", "smooth"), help="schedules: between keyframes")
    _add(g, "--cut-threshold", key="cut_threshold", metavar="X", help="content change that starts a new shot")
    _add(g, "--min-shot-frames", key="min_shot_frames", metavar="N",
         help="frames a shot lasts at least: a cut sooner after the last is ignored (a flash frame cuts once)")
    p.add_argument("--no-flow", dest="no_flow", action="store_const", const=True, default=argparse.SUPPRESS,
                   help="dream every frame independently (for comparison)")
    g = p.add_argument_group("segments and clusters (README: Rendering on a cluster)")
    _add(g, "--chunk-frames", key="chunk_frames", metavar="N", nargs="?", const=_CHUNK_FRAMES,
         help=f"render in segments: shots split at cuts, longer ones into N-frame segments (alone: {_CHUNK_FRAMES})")
    _add(g, "--warmup-frames", key="warmup_frames", metavar="N", help="frames dreamed and thrown away before a later segment")
    _add(g, "--overlap-frames", key="overlap_frames", metavar="N", help="frames consecutive segments share, cross-faded")
    _add(g, "--ray", key="ray", metavar="auto|ADDRESS",
         help="each segment a Ray task on a cluster (auto: RAY_ADDRESS, a cluster on this machine, or a new one); "
              f"the output's folder must be on storage every node sees; implies --chunk-frames {_CHUNK_FRAMES}")
    _add(g, "--ray-cpus", key="ray_cpus", metavar="N", help="CPUs per Ray task where the cluster has no GPU")


def _output_options(p: argparse.ArgumentParser, video: bool) -> None:
    g = p.add_argument_group("output")
    _add(g, "--fps", key="fps", metavar="X", help="frame rate (video: the input's; image sequences and zooms: 25)")
    _add(g, "--crf", key="crf", metavar="N", help="H.264/H.265 quality, lower is better; 0 = lossless")
    _add(g, "--codec", key="codec", choices=("h264", "h265", "prores", "prores4444"),
         help="video codec; prores and prores4444 (for editors) write .mov or .mkv")
    _add(g, "--pix-fmt", key="pix_fmt", metavar="FMT", help="ffmpeg pixel format, e.g. yuv422p10le; default: the codec's")
    _add(g, "--bit-depth", key="bit_depth", choices=("8", "16"),
         help="16 keeps the dream's float precision: 16-bit PNG/TIFF frames, or a 10-bit codec's input")
    _add(g, "--frame-format", key="frame_format", choices=("png", "tiff"), help="files in a frame folder (an output ending in '/')")
    if video:
        _add(g, "--start", key="start", metavar="SEC", help="start this many seconds into the input")
        _add(g, "--duration", key="duration", metavar="SEC", help="render this many seconds")
        _add(g, "--max-frames", key="max_frames", metavar="N", help="render at most N frames")
        g.add_argument("--no-audio", dest="audio", action="store_const", const=False, default=argparse.SUPPRESS,
                       help="leave the input's sound out")
    g.add_argument("--keep-frames", dest="keep_frames", action="store_const", const=True, default=argparse.SUPPRESS,
                   help="keep the work folder of lossless frames")
    g.add_argument("--restart", dest="restart", action="store_const", const=True, default=argparse.SUPPRESS,
                   help="discard an unfinished earlier render of this output and start over")


def _zoom_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("zoom (numbers, Deforum schedules like \"0:(1.02), 120:(1.05)\", "
                             "or a sound: \"audio:FILE:MIN:MAX[:MODE]\", see 'dreamvid keys')")
    _add(g, "--frames", key="frames", metavar="N", help="number of frames")
    _add(g, "--seconds", key="seconds", metavar="SEC", help="length in seconds (overrides --frames)")
    _add(g, "--zoom", key="zoom", metavar="SCHED", help="scale per frame")
    _add(g, "--rotate", key="rotate", metavar="SCHED", help="degrees per frame, counter-clockwise")
    _add(g, "--pan", key="pan", metavar="X,Y", help="pixels per frame the content moves (schedules: --pan-x/--pan-y)")
    _add(g, "--pan-x", key="pan_x", metavar="SCHED", help="pixels per frame to the right")
    _add(g, "--pan-y", key="pan_y", metavar="SCHED", help="pixels per frame down")
    _add(g, "--center", key="center", metavar="X,Y", help="zoom centre in pixels; default the middle")
    _add(g, "--zoom-blend", key="zoom.blend", metavar="SCHED", help="share of the previous dream kept each frame")
    _add(g, "--color-match", key="color_match", metavar="X", help="pull colours towards the first frame's (0..1)")
    _add(g, "--from", key="init", metavar="image|noise|#RRGGBB", help="start frame: the image, noise, or a colour")
    _add(g, "--interpolation", key="interpolation", choices=("linear", "smooth"), help="between keyframes")


_DEFAULTS.update({"pan": None, "zoom.blend": "1.0"})


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors read like every other error: one line starting 'error:', exit 2
    (the subcommands' parsers are of this class too: add_subparsers uses the parent's class)."""

    def error(self, message: str):
        hint = f"; see '{self.prog} --help'"
        if "unrecognized arguments: -" in message or "required: INPUT" in message or "required: IMAGE" in message:
            hint += "; if a file name starts with '-', write it as ./-name or put it after --"
        self.exit(2, f"error: {message}{hint}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dreamvid", description="DeepDream images, flicker-free dream videos and infinite zooms.",
        epilog="Errors exit with code 2 and one line; set DREAMVID_DEBUG=1 for a traceback.")
    parser.add_argument("--version", action="version", version=f"dreamvid {VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("image", help="dream a still image", description="Dream a still image.")
    p.add_argument("input", metavar="INPUT", help="an image file")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="output image (.png, .jpg)")
    _dream_options(p)
    _mask_options(p)
    _guide_options(p)
    g = p.add_argument_group("views (the seed blog's)")
    g.add_argument("--gradient", metavar="FILE", help="also save the layer's normalised gradient as an image")
    g.add_argument("--strip", metavar="FILE", help="also save a strip of intermediate results")
    g.add_argument("--strip-every", type=int, default=5, metavar="K", help="steps between strip images (default: 5)")

    p = sub.add_parser("video", help="dream a video clip or image sequence",
                       description="Dream a clip: flow-guided, so the dream moves with the scene.")
    p.add_argument("input", metavar="INPUT", help="a video file, a folder of images, or a glob pattern")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help=".mp4/.mov/.mkv, .gif, or a folder/ of PNG or TIFF frames")
    _dream_options(p)
    _mask_options(p)
    _guide_options(p)
    _video_options(p)
    _output_options(p, video=True)

    p = sub.add_parser("zoom", help="infinite-zoom animation from a still", description="Infinite zoom: transform, dream, repeat.")
    p.add_argument("input", metavar="IMAGE", nargs="?", help="start image (omit with --from noise or a colour)")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help=".mp4, .gif, or a folder/ of PNGs")
    _dream_options(p)
    _mask_options(p)
    _guide_options(p)
    _zoom_options(p)
    g = p.add_argument_group("zoom dream")
    _add(g, "--iterations-next", key="iterations_next", metavar="N", help="steps per octave after the first frame (a number or a schedule)")
    _output_options(p, video=False)

    p = sub.add_parser("live", help="dream a camera or a stream as it happens, out to a window, a stream or a file",
                       description="Dream live: the newest frame of SOURCE is always dreamed next (the rest dropped and "
                       "counted, so latency never grows), flow-coherent, shown on every sink at once. "
                       "Keys in the window and lines on standard input: next, prev (look), stronger, weaker, "
                       "more, less (carry), reset, pause, snapshot, quit.")
    p.add_argument("input", metavar="SOURCE",
                   help="camera:N, a stream URL ffmpeg reads (udp://, srt://, rtsp://, rtmp://, HLS), /dev/videoN, or a "
                        "file played at its own frame rate")
    p.add_argument("-o", "--output", action="append", required=True, metavar="SINK",
                   help="window, virtualcam, a stream URL (udp://, srt://, rtmp://), or a recording (.mp4, .mkv, "
                        "folder/); repeat for several")
    _dream_options(p)
    _mask_options(p)
    _guide_options(p)
    _video_options(p)
    g = p.add_argument_group("live")
    _live = {f.name: f.default for f in fields(LiveSettings)}

    def live_opt(*flags, key, help, **kw):
        default = _live[key]
        g.add_argument(*flags, dest=key, default=argparse.SUPPRESS,
                       help=help + ("" if default in (None, "", False) else f" (default: {default})"), **kw)

    live_opt("--seconds", key="seconds", metavar="SEC", help="run this long (default: until q, Ctrl-C or the source's end)")
    live_opt("--frames", key="frames", metavar="N", help="or end after N frames dreamed")
    live_opt("--pace", key="pace", choices=("source", "dream"),
             help="a file source: at its own rate, the newest frame dreamed (source), or every frame in turn at "
                  "the dream's pace (dream: a rehearsal, nothing dropped)")
    live_opt("--fps", key="fps", metavar="X", help="target frames/s out: a governor adapts steps, then octaves, to hold it")
    live_opt("--min-steps", key="min_steps", metavar="N", help="the governor's fewest steps per octave")
    live_opt("--max-steps", key="max_steps", metavar="N", help="its most (default: --iterations-next)")
    live_opt("--min-octaves", key="min_octaves", metavar="N", help="its fewest octaves (the most: --octaves)")
    g.add_argument("--loop", dest="loop", action="store_const", const=True, default=argparse.SUPPRESS,
                   help="a file source starts again at its end (rehearse a show)")
    g.add_argument("--fullscreen", dest="fullscreen", action="store_const", const=True, default=argparse.SUPPRESS,
                   help="the window fills the screen (a projector)")
    g.add_argument("--look", dest="looks", action="append", default=argparse.SUPPRESS, metavar="PRESET|LAYERS",
                   help="a look the keys n/p switch to (a preset or a layer spec), compiled before the first frame; repeat")
    live_opt("--snapshots", key="snapshots", metavar="FOLDER", help="where the snapshot key writes PNGs")
    _add(g, "--crf", key="crf", metavar="N", help="the recording's H.264/H.265 quality")
    _add(g, "--codec", key="codec", choices=("h264", "h265", "prores", "prores4444"), help="the recording's codec")
    g.add_argument("--no-stdin", dest="no_stdin", action="store_true", help="do not read commands from standard input")

    p = sub.add_parser("layers", help="list a network's dreamable layers", description="List dreamable layers.")
    p.add_argument("--model", default="googlenet", metavar="NAME|PATH", help="network (default: googlenet)")
    p.add_argument("--weights", default=None, metavar="FILE", help="weights file")
    _backend_options(p)

    sub.add_parser("presets", help="list the named presets", description="List presets with their descriptions.")

    p = sub.add_parser("sheet", help="a contact sheet of a render's frames",
                       description="A contact sheet: frames spread evenly from first to last, numbered, in a grid.")
    p.add_argument("input", metavar="INPUT", help="a video, a folder of images, or a glob pattern")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="the sheet (.png, .jpg)")
    p.add_argument("--count", type=int, default=12, metavar="N", help="frames to show (default: 12)")
    p.add_argument("--columns", type=int, default=4, metavar="N", help="frames per row (default: 4)")
    p.add_argument("--sheet-width", type=int, default=1280, metavar="PX", help="width of the sheet (default: 1280)")

    p = sub.add_parser("keys", help="a schedule that follows a sound track, one keyframe a frame",
                       description="Keyframes from music: the loudness or the hits of a sound track, one value a "
                       "frame, as a Deforum schedule that --step, --zoom and the other schedules read. A render takes "
                       "the same directly as --step \"audio:FILE:MIN:MAX[:MODE]\".")
    p.add_argument("input", metavar="AUDIO_OR_VIDEO", help="an audio file, or a video with sound")
    p.add_argument("-o", "--output", required=True, metavar="KEYS.txt", help="the schedule text")
    p.add_argument("--fps", required=True, metavar="X", help="the render's frame rate (29.97 or 30000/1001 for NTSC)")
    p.add_argument("--mode", choices=("rms", "onsets"), default="rms", help="rms: loudness; onsets: percussive hits (default: rms)")
    p.add_argument("--attack", default="0.05", metavar="SEC", help="seconds to rise towards a louder value (default: 0.05)")
    p.add_argument("--release", default="0.3", metavar="SEC", help="seconds to fall back after it (default: 0.3)")
    p.add_argument("--min", dest="lo", default="0", metavar="X", help="the value in silence (default: 0)")
    p.add_argument("--max", dest="hi", default="1", metavar="X", help="the value at the loudest frame or hardest hit (default: 1)")
    p.add_argument("--frames", type=int, default=None, metavar="N", help="this many frames (default: the sound's length)")
    p.add_argument("--plot", default=None, metavar="PNG", help="also draw the values against frame numbers")

    # "resolve": the gallery's --layers (a list, one tile each) and --width (the tile's) replace the dream options'
    p = sub.add_parser("gallery", help="an image dreamed at each layer (or preset), on one labelled sheet",
                       description="A gallery: the image dreamed small and fast at each dreamable layer of the network "
                       "(or the layers, channels or presets asked for), laid out with each name under its tile.",
                       conflict_handler="resolve")
    p.add_argument("input", metavar="IMAGE", help="an image file")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="the sheet (.png, .jpg)")
    _dream_options(p)
    g = p.add_argument_group("gallery (default: one tile per dreamable layer, at the preview preset's octaves and steps)")
    g.add_argument("--layers", dest="tile_layers", metavar="A,B,C", help="these layers (or LAYER:CHANNEL), one tile each")
    g.add_argument("--channels", metavar="LAYER", help="one tile per channel of LAYER, --count of them spread over its channels")
    g.add_argument("--count", type=int, default=12, metavar="N", help="channels to show with --channels (default: 12)")
    g.add_argument("--presets", action="store_true", help="one tile per named preset, each dreamed as the preset says")
    g.add_argument("--tile-width", "--width", dest="tile_width", type=int, default=256, metavar="PX",
                   help="width of each tile (default: 256)")
    g.add_argument("--columns", type=int, default=None, metavar="N", help="tiles per row (default: a near-square grid)")
    g.add_argument("--keep-frames", dest="keep_frames", action="store_const", const=True, default=argparse.SUPPRESS,
                   help="keep the work folder of finished tiles")
    g.add_argument("--restart", dest="restart", action="store_const", const=True, default=argparse.SUPPRESS,
                   help="discard the tiles of an earlier, unfinished run and dream them again")

    p = sub.add_parser("ui", help="a web page to open, preview, steer and render dreams (pip install 'dreamvid[ui]')",
                       description="A local web page: open a clip or a still, pick a look, preview it, render with "
                       "progress, cancel and resume, play and download the result. It serves this machine only "
                       f"({UI_LOOPBACK}) unless --listen names an address, and then only with a password.")
    p.add_argument("--port", type=int, default=UI_PORT, metavar="N", help=f"port (default: {UI_PORT})")
    p.add_argument("--listen", default=None, metavar="ADDRESS",
                   help="serve other machines on this address (0.0.0.0: all); needs --auth")
    p.add_argument("--auth", default=None, metavar="USER:PASSWORD",
                   help=f"the page's login (better: set {UI_AUTH_ENV}=USER:PASSWORD, which `ps` does not show)")
    p.add_argument("--folder", default=UI_FOLDER, metavar="DIR",
                   help=f"the work folder: uploads, renders, previews; the only files served (default: ./{UI_FOLDER})")
    p.add_argument("--allow-folder", dest="allow_folders", action="append", default=None, metavar="DIR",
                   help="with --listen: a folder whose files a path typed into the page may name (repeat for "
                        "several); without it only uploads are opened (on the loopback: any path)")
    p.add_argument("--max-upload", dest="max_upload", type=float, default=UI_MAX_UPLOAD_MB, metavar="MB",
                   help=f"largest upload accepted (default: {UI_MAX_UPLOAD_MB})")
    return parser


_NOT_SETTINGS = {"command", "input", "output", "preset", "gradient", "strip", "strip_every"}
_GALLERY_ARGS = {"tile_layers", "channels", "count", "presets", "tile_width", "columns"}


def settings_given(args: argparse.Namespace) -> dict:
    """The settings the user gave on the command line (argparse keeps no defaults), by name."""
    return {k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS}


def config_from_args(args: argparse.Namespace) -> Config:
    """Preset values, overridden by the flags the user gave: config.job_config, as the API does."""
    return job_config(args.command, settings_given(args), args.preset)


class _Bar:
    """tqdm progress bar for frames (frames/s and ETA), closed on any exit; keeps the time each
    frame was done, for the rate after the first (`steady`)."""

    def __init__(self, unit: str = "frame"):
        self.unit = unit
        self.bar = None
        self.done_at: list[float] = []

    def steady(self) -> str:
        """", N frames/s after the first" once three frames are done (the first frame loads and
        compiles, so the overall s/frame says little of a long clip's pace), else ""."""
        t = self.done_at
        if len(t) < 3 or t[-1] <= t[0]:
            return ""
        return f"; {(len(t) - 1) / (t[-1] - t[0]):.1f} {self.unit}s/s after the first"

    def start(self, total, done):
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=done, unit=self.unit, dynamic_ncols=True, file=sys.stderr,
                        disable=None)  # disable=None: no bar when stderr is not a terminal

    def frame(self, index, stats):
        self.done_at.append(time.perf_counter())
        if self.bar is not None:
            self.bar.update(1)

    def update(self, u) -> None:
        """The API's progress callback: the bar for the start and each frame, notices printed."""
        if u.kind == "start":
            self.start(u.total, u.done)
        elif u.kind == "frame":
            self.frame(u.index, u.stats)
        else:
            _info(u.message)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _start_backend(backend: str, device: str) -> str:
    """Choose the Keras backend before anything imports Keras (backends.configure, only the chosen
    framework imported), and import it with file descriptor 2 pointed at /dev/null: the
    frameworks' C++ start-up lines (CUDA stubs, absl notices) bypass Python logging.
    DREAMVID_DEBUG=1 shows them."""
    from dreamvid import backends  # imported once the stop signals are caught (the platform's probes)

    name = backends.configure(backend, device, exclusive=True)
    if DEBUG:
        return name
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401  (imports the framework)

        backends.current().gpu_name()  # the framework's device probe prints too
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return name


def _info(message: str) -> None:
    print(f"dreamvid: {message}", file=sys.stderr)


def _run(args: argparse.Namespace, stop: Stop) -> int:
    from dreamvid import api  # imported once the stop signals are caught (OpenCV, SciPy: the slow part of a start)

    if args.command == "presets":
        for name, description in preset_descriptions():
            print(f"{name:14s} {description}")
        return 0
    if args.command == "sheet":
        result = api.render_sheet(args.input, args.output, count=args.count, columns=args.columns,
                                  width=args.sheet_width)
        print(f"dreamvid: wrote {result.path}: {result.frames} frames", file=sys.stderr)
        return 0
    if args.command == "layers":
        _start_backend(getattr(args, "backend", "auto"), getattr(args, "device", "auto"))
        stop.check()
        model = api.load_model(args.model, weights=args.weights)
        print(f"# {model.name}: dreamable layers in network order (default: {model.default_layer})")
        print(f"{'layer':40s} {'channels':>8s} {'stride':>6s}")
        for info in model.layers():
            print(f"{info.name:40s} {info.channels:8d} {info.stride:6d}")
        return 0

    if args.command == "gallery":
        return _gallery(args, stop)
    if args.command == "keys":
        return _keys(args)
    if args.command == "ui":
        return _ui(args, stop)
    if args.command == "live":
        return _live(args, stop)
    cfg = config_from_args(args)  # checked before the framework starts
    _start_backend(cfg.dream.backend, cfg.dream.device)
    stop.check()  # a stop while the framework loaded: nothing started yet
    bar = _Bar("octave" if args.command == "image" else "frame")
    given = dict(settings_given(args), preset=args.preset, progress=bar.update, cancel=stop.event)
    t0 = time.perf_counter()
    try:
        if args.command == "image":
            result = api.render_image(args.input, args.output, gradient=args.gradient, strip=args.strip,
                                      strip_every=args.strip_every, **given)
        elif args.command == "video":
            result = api.render_video(args.input, args.output, **given)
        else:
            result = api.render_zoom(args.input, args.output, **given)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    per = seconds / max(result.frames, 1)
    print(f"dreamvid: wrote {result.path}: {result.frames} frame{'s' * (result.frames != 1)} in {seconds:.1f} s "
          f"({per:.2f} s/frame{bar.steady() if args.command != 'image' else ''}); "
          f"settings in {os.path.basename(result.record)}", file=sys.stderr)
    return 0


def _ui(args: argparse.Namespace, stop: Stop) -> int:
    from dreamvid import ui  # imported once the stop signals are caught (Gradio: the ui extra)

    ui.check_listen(args.listen, args.auth)  # refused before anything starts
    _start_backend("auto", "auto")
    stop.check()
    page, url = ui.serve(port=args.port, listen=args.listen, auth=args.auth, folder=args.folder, max_mb=args.max_upload,
                         allow_folders=args.allow_folders)
    _info(f"the page is at {url} (work folder: {os.path.abspath(args.folder)}); Ctrl-C stops it")
    try:
        while not stop.event.wait(0.5):  # until Ctrl-C, SIGTERM or SIGHUP
            pass
    finally:
        page.close()
    stop.check()
    return 0


def _live(args: argparse.Namespace, stop: Stop) -> int:
    """`dreamvid live`: the status line live on stderr, commands from stdin, the stop signals end it
    cleanly (sinks closed, the recording playable), the summary at the end."""
    from dreamvid import api  # imported once the stop signals are caught (OpenCV, SciPy)

    given = {k: v for k, v in settings_given(args).items() if k != "no_stdin"}
    if "looks" in given:
        given["looks"] = ";".join(given["looks"])
    cfg, _ = live_config(given, args.preset)  # checked before the framework starts
    _start_backend(cfg.dream.backend, cfg.dream.device)
    stop.check()
    commands = api.Commands()

    def read_stdin():
        try:
            for line in sys.stdin:
                try:
                    commands.put(line.rstrip("\n") or " ")
                except DreamvidError as exc:
                    _info(str(exc))
        except (OSError, ValueError):
            return  # no readable standard input (closed, or captured): the keys and signals remain

    reading = args.no_stdin or sys.stdin is None or sys.stdin.closed
    tty = sys.stderr.isatty()
    shown = [0.0]

    def status(s) -> None:
        nonlocal reading
        if not reading:  # commands are read once the show has started (the looks loaded and compiled)
            reading = True
            threading.Thread(target=read_stdin, name="live commands", daemon=True).start()
        if s.message:
            if tty:
                print("\r\x1b[K", end="", file=sys.stderr)  # the status line cleared for the notice
            _info(s.message)
        if tty:
            print("\r" + s.line()[:160], end="", file=sys.stderr, flush=True)
        elif s.seconds - shown[0] >= 5.0:  # a log: a line every 5 s
            shown[0] = s.seconds
            _info(s.line())

    try:
        _info(f"live: {args.input} -> {', '.join(args.output)}; {LIVE_HELP}")
        result = api.render_live(args.input, args.output, preset=args.preset, progress=status, cancel=stop.event,
                                 commands=commands, **given)
    finally:
        if tty:
            print(file=sys.stderr)
    _info("live: " + result.summary())
    for path in result.outputs:
        _info(f"wrote {path}")
    return 0  # a show's end, whatever ended it: the recording is whole


def _keys(args: argparse.Namespace) -> int:
    from dreamvid import audio  # imported once the stop signals are caught (SciPy)

    result = audio.write_keys(args.input, args.output, fps=args.fps, mode=args.mode, attack=args.attack,
                              release=args.release, lo=args.lo, hi=args.hi, frames=args.frames, plot_path=args.plot)
    print(f"dreamvid: wrote {args.output}: {result.frames} keyframes at {result.fps} fps, "
          f"{result.lo:g}..{result.hi:g}" + (f"; plot in {args.plot}" if args.plot else ""), file=sys.stderr)
    return 0


def _gallery(args: argparse.Namespace, stop: Stop) -> int:
    from dreamvid import api  # imported once the stop signals are caught (OpenCV, SciPy)
    from dreamvid.workfolder import record_path  # (the same: OpenCV)

    given = {k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS | _GALLERY_ARGS}
    # the backend before the network loads: the flags', over --preset's (one framework for every tile)
    values = load_preset(args.preset)[0] if args.preset and not args.presets else {}
    for key in given:
        for section in SECTIONS:
            values.pop(f"{section}.{key}", None)
    dream = build_config({**values, **given}).dream
    _start_backend(dream.backend, dream.device)
    stop.check()
    bar = _Bar("tile")
    t0 = time.perf_counter()
    try:
        result = api.render_gallery(
            args.input, args.output, progress=bar.update, cancel=stop.event, preset=args.preset,
            layers=args.tile_layers, channels=args.channels, count=args.count, presets=args.presets,
            tile_width=args.tile_width, columns=args.columns, **given)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    print(f"dreamvid: wrote {result.path}: {result.frames} tiles in {seconds:.1f} s "
          f"({seconds / max(result.frames - result.resumed_from, 1):.2f} s/tile dreamed); "
          f"each tile's objective in {os.path.basename(record_path(result.path))}", file=sys.stderr)
    return 0


class Stop:
    """SIGINT, SIGTERM and SIGHUP as a flag (module docstring): `event` (a threading.Event, what
    the API takes as `cancel=`) is set by the first of them, and `signum` says which. Installed
    only in the main thread (where Python runs handlers), leaving a signal someone set to be
    ignored (nohup, a background job's SIGINT) ignored; `restore()` puts the handlers back (main
    is called in-process too)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self.before: dict = {}

    def _handle(self, signum, _frame) -> None:
        if self.signum is None:
            self.signum = signum
        self.event.set()  # nothing raised: the job sees it at its next safe point

    def install(self) -> Stop:
        if threading.current_thread() is threading.main_thread():
            self.before = {s: signal.getsignal(s) for s in self.SIGNALS}
            for s, handler in self.before.items():
                if handler is not signal.SIG_IGN:
                    signal.signal(s, self._handle)
        return self

    def restore(self) -> None:
        for s, handler in self.before.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)

    def check(self) -> None:
        """A safe point of the command line's own: Cancelled once a stop signal came."""
        if self.event.is_set():
            raise Cancelled("stopped before the work began")

    def code(self) -> int:
        """The exit code of a stop: 128 + the signal's number (130 where no signal was seen)."""
        return 128 + int(self.signum or signal.SIGINT)

    def how(self) -> str:
        signum = self.signum or signal.SIGINT
        return "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"


def _say(line: str) -> None:
    """A last line on stderr, which a closed terminal (SIGHUP) may no longer take."""
    try:
        print(line, file=sys.stderr)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    stop = Stop().install()  # first: a stop from here on is a flag the command honours
    try:
        return _main(argv, stop)
    finally:
        stop.restore()


def _main(argv: list[str] | None, stop: Stop) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    # dreamvid's own notices at INFO; other libraries' only from WARNING (JAX, say, logs at INFO
    # that it found no TPU while it looks for a GPU)
    logging.basicConfig(format="dreamvid: %(message)s", level=logging.WARNING if not DEBUG else logging.DEBUG)
    log.setLevel(logging.INFO if not DEBUG else logging.DEBUG)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2, one line already printed)
        return exc.code if isinstance(exc.code, int) else 2
    resumable = args.command in ("video", "zoom", "gallery")
    try:
        code = _run(args, stop)
    except (Cancelled, KeyboardInterrupt):  # a stop honoured (KeyboardInterrupt: a SIGINT before main ran)
        kept = ": finished frames are kept; run the same command again to resume" if resumable else ""
        _say(f"{stop.how()}{kept}")
        return stop.code()
    except DreamvidError as exc:
        if DEBUG:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug or an environment failure: one line unless debugging
        if DEBUG:
            raise
        print(f"error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
              "(run with DREAMVID_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return 1
    if stop.event.is_set() and args.command != "live":  # the stop came after the last safe point: the work is whole
        _say(f"{stop.how()} after the work was complete")
        return stop.code()
    return code


if __name__ == "__main__":
    sys.exit(main())
