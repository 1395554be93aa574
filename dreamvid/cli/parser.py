"""The command line's words: every command's options, made from the settings' own declarations
(`settings.config`: defaults, choices, bounds), and what the user gave read back as the API's
keyword settings. No defaults of its own: argparse keeps none (SUPPRESS), so a preset and the
settings' defaults fill in what was not given."""

from __future__ import annotations

import argparse
from dataclasses import fields

from dreamvid.cli.options import (
    OPTIONS,
    add,
    backend_options,
    choices_of,
    dream_options,
    look_options,
    output_options,
    switch,
    video_options,
    zoom_options,
)
from dreamvid.config.presets import job_config
from dreamvid.config.schedule import MODES
from dreamvid.config.settings import (
    UI_AUTH_ENV,
    UI_FOLDER,
    UI_LOOPBACK,
    UI_MAX_UPLOAD_MB,
    UI_PORT,
    Config,
    LiveSettings,
    help_of,
)
from dreamvid.version import VERSION


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
        prog="dreamvid",
        description="DeepDream images, flicker-free dream videos and infinite zooms.",
        epilog="Errors exit with code 2 and one line; set DREAMVID_DEBUG=1 for a traceback.",
    )
    parser.add_argument("--version", action="version", version=f"dreamvid {VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("image", help="dream a still image", description="Dream a still image.")
    p.add_argument("input", metavar="INPUT", help="an image file")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="output image (.png, .jpg)")
    look_options(p)
    g = p.add_argument_group("views (the seed blog's)")
    g.add_argument("--gradient", metavar="FILE", help="also save the layer's normalised gradient as an image")
    g.add_argument("--strip", metavar="FILE", help="also save a strip of intermediate results")
    g.add_argument("--strip-every", type=int, default=5, metavar="K", help="steps between strip images (default: 5)")

    p = sub.add_parser(
        "video",
        help="dream a video clip or image sequence",
        description="Dream a clip: flow-guided, so the dream moves with the scene.",
    )
    p.add_argument("input", metavar="INPUT", help="a video file, a folder of images, or a glob pattern")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help=".mp4/.mov/.mkv, .gif, or a folder/ of PNG or TIFF frames")
    look_options(p)
    video_options(p)
    output_options(p, video=True)

    p = sub.add_parser(
        "zoom", help="infinite-zoom animation from a still", description="Infinite zoom: transform, dream, repeat."
    )
    p.add_argument("input", metavar="IMAGE", nargs="?", help="start image (omit with --from noise or a colour)")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help=".mp4/.mov/.mkv/.webm, .gif, or a folder/ of PNGs")
    look_options(p)
    zoom_options(p)
    g = p.add_argument_group("zoom dream")
    add(g, "--iterations-next", key="iterations_next", metavar="N")
    output_options(p, video=False)

    p = sub.add_parser(
        "live",
        help="dream a camera or a stream as it happens, out to a window, a stream or a file",
        description="Dream live: the newest frame of SOURCE is always dreamed next (the rest dropped and "
        "counted, so latency never grows), flow-coherent, shown on every sink at once. "
        "Keys in the window and lines on standard input: next, prev (look), stronger, weaker, "
        "more, less (carry), reset, pause, snapshot, quit.",
    )
    p.add_argument(
        "input",
        metavar="SOURCE",
        help="camera:N, a stream URL ffmpeg reads (udp://, srt://, rtsp://, rtmp://, HLS), /dev/videoN, or a "
        "file played at its own frame rate",
    )
    p.add_argument(
        "-o",
        "--output",
        action="append",
        required=True,
        metavar="SINK",
        help="window, virtualcam, a stream URL (udp://, srt://, rtmp://), or a recording (.mp4, .mkv, "
        "folder/); repeat for several",
    )
    look_options(p)
    video_options(p)
    g = p.add_argument_group("live")
    _live = {f.name: f.default for f in fields(LiveSettings)}

    def live_opt(*flags, key, **kw):
        default = _live[key]
        OPTIONS.setdefault(f"live.{key}", flags[0])
        g.add_argument(*flags, dest=key, default=argparse.SUPPRESS, **kw,
                       help=help_of(f"live.{key}") + ("" if default in (None, "", False) else f" (default: {default})"))

    live_opt("--seconds", key="seconds", metavar="SEC")
    live_opt("--frames", key="frames", metavar="N")
    live_opt("--pace", key="pace", choices=choices_of("pace"))
    live_opt("--fps", key="fps", metavar="X")
    live_opt("--min-steps", key="min_steps", metavar="N")
    live_opt("--max-steps", key="max_steps", metavar="N")
    live_opt("--min-octaves", key="min_octaves", metavar="N")
    switch(g, "--loop", "loop")
    switch(g, "--fullscreen", "fullscreen")
    OPTIONS.setdefault("live.looks", "--look")
    g.add_argument(
        "--look",
        dest="looks",
        action="append",
        default=argparse.SUPPRESS,
        metavar="PRESET|LAYERS",
        help=help_of("live.looks"),
    )
    live_opt("--snapshots", key="snapshots", metavar="FOLDER")
    live_opt("--osc", key="osc", metavar="[HOST:]PORT")
    add(g, "--crf", key="crf", metavar="N", help="the recording's H.264/H.265 quality")
    add(g, "--codec", key="codec", choices=choices_of("codec"),
        help="the recording's codec (default: h264, vp9 for .webm)")
    g.add_argument("--no-stdin", dest="no_stdin", action="store_true", help="do not read commands from standard input")

    p = sub.add_parser("layers", help="list a network's dreamable layers", description="List dreamable layers.")
    p.add_argument("--model", default="googlenet", metavar="NAME|PATH",
                   help="network: a name, torchvision:NAME, timm:NAME, or a .keras/.pb/.onnx/.pt path "
                        "(default: googlenet)")
    p.add_argument("--weights", default=None, metavar="FILE", help="weights file")
    p.add_argument("--trust-pickle", action="store_true",
                   help="load a .pt that is a whole pickled module (runs its code)")
    backend_options(p)

    sub.add_parser("presets", help="list the named presets", description="List presets with their descriptions.")

    p = sub.add_parser(
        "sheet",
        help="a contact sheet of a render's frames",
        description="A contact sheet: frames spread evenly from first to last, numbered, in a grid.",
    )
    p.add_argument("input", metavar="INPUT", help="a video, a folder of images, or a glob pattern")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="the sheet (.png, .jpg)")
    p.add_argument("--count", type=int, default=12, metavar="N", help="frames to show (default: 12)")
    p.add_argument("--columns", type=int, default=4, metavar="N", help="frames per row (default: 4)")
    p.add_argument("--sheet-width", type=int, default=1280, metavar="PX", help="width of the sheet (default: 1280)")

    p = sub.add_parser(
        "keys",
        help="a schedule that follows a sound track, one keyframe a frame",
        description="Keyframes from music: the loudness or the hits of a sound track, one value a "
        "frame, as a Deforum schedule that --step, --zoom and the other schedules read. A render takes "
        'the same directly as --step "audio:FILE:MIN:MAX[:MODE]".',
    )
    p.add_argument("input", metavar="AUDIO_OR_VIDEO", help="an audio file, or a video with sound")
    p.add_argument("-o", "--output", required=True, metavar="KEYS.txt", help="the schedule text")
    p.add_argument("--fps", required=True, metavar="X", help="the render's frame rate (29.97 or 30000/1001 for NTSC)")
    p.add_argument(
        "--mode", choices=MODES, default=MODES[0], help="rms: loudness; onsets: percussive hits (default: rms)"
    )
    p.add_argument(
        "--attack", default="0.05", metavar="SEC", help="seconds to rise towards a louder value (default: 0.05)"
    )
    p.add_argument("--release", default="0.3", metavar="SEC", help="seconds to fall back after it (default: 0.3)")
    p.add_argument("--min", dest="lo", default="0", metavar="X", help="the value in silence (default: 0)")
    p.add_argument(
        "--max", dest="hi", default="1", metavar="X", help="the value at the loudest frame or hardest hit (default: 1)"
    )
    p.add_argument(
        "--frames", type=int, default=None, metavar="N", help="this many frames (default: the sound's length)"
    )
    p.add_argument("--plot", default=None, metavar="PNG", help="also draw the values against frame numbers")

    # "resolve": the gallery's --layers (a list, one tile each) and --width (the tile's) replace the dream options'
    p = sub.add_parser(
        "gallery",
        help="an image dreamed at each layer (or preset), on one labelled sheet",
        description="A gallery: the image dreamed small and fast at each dreamable layer of the network "
        "(or the layers, channels or presets asked for), laid out with each name under its tile.",
        conflict_handler="resolve",
    )
    p.add_argument("input", metavar="IMAGE", help="an image file")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="the sheet (.png, .jpg)")
    dream_options(p)
    g = p.add_argument_group(
        "gallery (default: one tile per dreamable layer, at the preview preset's octaves and steps)"
    )
    g.add_argument(
        "--layers", dest="tile_layers", metavar="A,B,C", help="these layers (or LAYER:CHANNEL), one tile each"
    )
    g.add_argument(
        "--channels", metavar="LAYER", help="one tile per channel of LAYER, --count of them spread over its channels"
    )
    g.add_argument("--count", type=int, default=12, metavar="N", help="channels to show with --channels (default: 12)")
    g.add_argument("--presets", action="store_true", help="one tile per named preset, each dreamed as the preset says")
    g.add_argument("--tile-width", "--width", dest="tile_width", type=int, default=256, metavar="PX",
                   help="width of each tile (default: 256)")
    g.add_argument("--columns", type=int, default=None, metavar="N", help="tiles per row (default: a near-square grid)")
    switch(g, "--keep-frames", "keep_frames", "keep the work folder of finished tiles")
    switch(g, "--restart", "restart", "discard the tiles of an earlier, unfinished run and dream them again")

    p = sub.add_parser(
        "ui",
        help="a web page to open, preview, steer and render dreams (pip install 'dreamvid[ui]')",
        description="A local web page: open a clip or a still, pick a look, preview it, render with "
        "progress, cancel and resume, play and download the result. It serves this machine only "
        f"({UI_LOOPBACK}) unless --listen names an address, and then only with a password.",
    )
    p.add_argument("--port", type=int, default=UI_PORT, metavar="N", help=f"port (default: {UI_PORT})")
    p.add_argument("--listen", default=None, metavar="ADDRESS",
                   help="serve other machines on this address (0.0.0.0: all); needs --auth")
    p.add_argument("--auth", default=None, metavar="USER:PASSWORD",
                   help=f"the page's login (better: set {UI_AUTH_ENV}=USER:PASSWORD, which `ps` does not show)")
    p.add_argument("--folder", default=UI_FOLDER, metavar="DIR",
                   help=f"the work folder: uploads, renders, previews; the only files served (default: ./{UI_FOLDER})")
    p.add_argument(
        "--allow-folder",
        dest="allow_folders",
        action="append",
        default=None,
        metavar="DIR",
        help="with --listen: a folder whose files a path typed into the page may name (repeat for "
        "several); without it only uploads are opened (on the loopback: any path)",
    )
    p.add_argument("--max-upload", dest="max_upload", type=float, default=UI_MAX_UPLOAD_MB, metavar="MB",
                   help=f"largest upload accepted (default: {UI_MAX_UPLOAD_MB})")
    return parser


_NOT_SETTINGS = {"command", "input", "output", "preset", "gradient", "strip", "strip_every"}
_GALLERY_ARGS = {"tile_layers", "channels", "count", "presets", "tile_width", "columns"}


NOT_SETTINGS, GALLERY_ARGS = _NOT_SETTINGS, _GALLERY_ARGS  # (the commands read them)


def settings_given(args: argparse.Namespace) -> dict:
    """The settings the user gave on the command line (argparse keeps no defaults), by name."""
    return {k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS}


def config_from_args(args: argparse.Namespace) -> Config:
    """Preset values, overridden by the flags the user gave: config.presets.job_config, as the API does."""
    return job_config(args.command, settings_given(args), args.preset)
