"""The commands behind the command line, as a table (COMMANDS: name -> function(args, stop) ->
exit code): each a thin call of the Python API with a progress bar, its notices and a last line.
Imported by `dreamvid.cli.main` once the stop signals are caught (it brings OpenCV and SciPy)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time

from dreamvid import api
from dreamvid.cli.parser import GALLERY_ARGS, NOT_SETTINGS, config_from_args, settings_given
from dreamvid.config.presets import live_config, load_preset, preset_descriptions
from dreamvid.config.settings import SECTIONS, build_config
from dreamvid.core.errors import DreamvidError
from dreamvid.live.osc import check_osc
from dreamvid.live.show import HELP
from dreamvid.render.workfolder import record_path

log = logging.getLogger("dreamvid")
DEBUG = os.environ.get("DREAMVID_DEBUG", "") not in ("", "0")


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


def _start_backend(backend: str, device: str, network: str | None = None) -> str:
    """Choose the Keras backend before anything imports Keras (backends.configure, only the chosen
    framework imported), and import it with file descriptor 2 pointed at /dev/null: the
    frameworks' C++ start-up lines (CUDA stubs, absl notices) bypass Python logging.
    DREAMVID_DEBUG=1 shows them. `network`: the --model value (a PyTorch network takes PyTorch
    under `auto`, and keeps it importable on another backend)."""
    from dreamvid.engine import backends  # the platform's probes (no framework yet)

    name = backends.configure(backend, device, exclusive=True, network=network)
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


def presets(args: argparse.Namespace, stop) -> int:
    for name, description in preset_descriptions():
        print(f"{name:14s} {description}")
    return 0


def sheet(args: argparse.Namespace, stop) -> int:
    result = api.render_sheet(args.input, args.output, count=args.count, columns=args.columns, width=args.sheet_width)
    print(f"dreamvid: wrote {result.path}: {result.frames} frames", file=sys.stderr)
    return 0


# what each network's input is made from the RGB image (DreamModel.preprocess_mode), for `layers`
_INPUTS = {"caffe": "BGR minus ImageNet's means", "tf": "RGB scaled to [-1, 1]",
           "torch": "RGB in [0, 1] minus ImageNet's mean, over its std", "mean117": "RGB minus 117"}


def layers(args: argparse.Namespace, stop) -> int:
    _start_backend(getattr(args, "backend", "auto"), getattr(args, "device", "auto"), args.model)
    stop.check()
    model = api.load_model(args.model, weights=args.weights, trust_pickle=args.trust_pickle)
    mode = model.preprocess_mode
    given = f"RGB in [0, 1] minus {mode[0]}, over {mode[1]}" if isinstance(mode, tuple) else _INPUTS.get(mode)
    print(f"# {model.name}: dreamable layers in network order (default: {model.default_layer})"
          + (f"; input: {given}" if given else ""))
    print(f"{'layer':40s} {'channels':>8s} {'stride':>6s}")
    for info in model.layers():
        print(f"{info.name:40s} {info.channels:8d} {info.stride:6d}")
    return 0


def render(args: argparse.Namespace, stop) -> int:
    """`image`, `video`, `zoom`: the settings checked before the framework starts, a bar, one last line."""
    cfg = config_from_args(args)  # checked before the framework starts
    _start_backend(cfg.dream.backend, cfg.dream.device, cfg.dream.model)
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


def ui_page(args: argparse.Namespace, stop) -> int:
    from dreamvid.ui import page as ui  # imported once the stop signals are caught (Gradio: the ui extra)

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


def live(args: argparse.Namespace, stop) -> int:
    """`dreamvid live`: the status line live on stderr, commands from stdin, the stop signals end it
    cleanly (sinks closed, the recording playable), the summary at the end."""
    given = {k: v for k, v in settings_given(args).items() if k != "no_stdin"}
    if "looks" in given:
        given["looks"] = ";".join(given["looks"])
    cfg, show = live_config(given, args.preset)  # checked before the framework starts
    if show.osc is not None:
        check_osc(show.osc)  # the address, and python-osc installed
    _start_backend(cfg.dream.backend, cfg.dream.device, cfg.dream.model)
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
        _info(f"live: {args.input} -> {', '.join(args.output)}; {HELP}")
        result = api.render_live(args.input, args.output, preset=args.preset, progress=status, cancel=stop.event,
                                 commands=commands, **given)
    finally:
        if tty:
            print(file=sys.stderr)
    _info("live: " + result.summary())
    for path in result.outputs:
        _info(f"wrote {path}")
    return 0  # a show's end, whatever ended it: the recording is whole


def keys(args: argparse.Namespace, stop) -> int:
    from dreamvid.media import audio  # imported once the stop signals are caught (SciPy)

    result = audio.write_keys(args.input, args.output, fps=args.fps, mode=args.mode, attack=args.attack,
                              release=args.release, lo=args.lo, hi=args.hi, frames=args.frames, plot_path=args.plot)
    print(f"dreamvid: wrote {args.output}: {result.frames} keyframes at {result.fps} fps, "
          f"{result.lo:g}..{result.hi:g}" + (f"; plot in {args.plot}" if args.plot else ""), file=sys.stderr)
    return 0


def gallery(args: argparse.Namespace, stop) -> int:
    given = {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS | GALLERY_ARGS}
    # the backend before the network loads: the flags', over --preset's (one framework for every tile)
    values = load_preset(args.preset)[0] if args.preset and not args.presets else {}
    for key in given:
        for section in SECTIONS:
            values.pop(f"{section}.{key}", None)
    dream = build_config({**values, **given}).dream
    _start_backend(dream.backend, dream.device, dream.model)
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


# name -> the function that runs it: (args, stop) -> exit code
COMMANDS = {"image": render, "video": render, "zoom": render, "live": live, "layers": layers, "presets": presets,
            "sheet": sheet, "keys": keys, "gallery": gallery, "ui": ui_page}
