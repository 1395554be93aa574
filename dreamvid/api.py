"""The Python API: dreamvid's jobs as functions, settings as keyword arguments.

    import dreamvid

    img = dreamvid.dream("photo.jpg", preset="preview", seed=1)           # RGB uint8 (H, W, 3)
    res = dreamvid.render_video("clip.mp4", "dream.mp4", iterations_next=5, progress=print)
    res = dreamvid.render_zoom("photo.jpg", "zoom.mp4", frames=120, zoom="0:(1.02), 60:(1.05)")
    vd = dreamvid.VideoDreamer(preset="preview")                          # a chain, frame by frame
    out = vd.dream(frame)                                                 # RGB uint8 in, RGB uint8 out

Settings are named as the command line's long options are (`iterations_next=5` is
`--iterations-next 5`, `preset="classic"`, `layers="mixed4c"`, `no_audio=True`), and validated
in the one place the command line's are (config.presets.job_config): a bad one raises
`dreamvid.ConfigError` with the same one-line message, never SystemExit. Every error is a
`dreamvid.DreamvidError` whose message names the fix; nothing here prints or exits.

Progress: `progress=callback` gets an `Update` for the start, each frame and each notice;
returning False from it, or setting the `cancel` event (threading.Event), stops the render at the
next frame's end with `dreamvid.Cancelled`: the finished frames stay in the work folder, and the
same call again resumes, as on the command line.

Notebooks: a RenderResult shows as the playable output with its frames, time and settings;
`show(image or path)` shows a still, a video or a contact sheet inline; a job given no
`progress` shows a progress bar by itself in a notebook (tqdm.auto) and stays silent elsewhere.

Networks: each call loads its network once and keeps it, so ten stills in a notebook load it
once (`load_model` returns it to pass as `model=` too). The backend (TensorFlow, JAX, PyTorch)
is chosen at the first load, before Keras is imported, from `backend=` or KERAS_BACKEND.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dreamvid.config.presets import job_config, live_config, load_preset
from dreamvid.config.settings import DEFAULTS, LIVE_KEYS, SCHEDULED_KEYS, Config
from dreamvid.core import notebook
from dreamvid.core.errors import Cancelled, ConfigError, InputError
from dreamvid.core.progress import Progress, RenderResult
from dreamvid.engine.models import DreamModel, cached_model
from dreamvid.jobs.gallery import render_gallery as render_tiles
from dreamvid.jobs.pipeline import dream_image, still_input
from dreamvid.jobs.pipeline import render_image as _image_job
from dreamvid.jobs.pipeline import render_sheet as _sheet_job
from dreamvid.jobs.pipeline import render_video as _video_job
from dreamvid.jobs.pipeline import render_zoom as _zoom_job
from dreamvid.live.osc import OscControl, check_osc
from dreamvid.live.show import Commands, LiveResult, Status, run_live
from dreamvid.media.sources import read_image
from dreamvid.render.videodreamer import VideoDreamer

__all__ = ["dream", "render_image", "render_video", "render_zoom", "render_gallery", "render_sheet", "render_live",
           "load_model", "VideoDreamer", "Update", "settings", "show", "Commands", "LiveResult", "Status"]


@dataclass
class Update:
    """What a job reports to the `progress` callback.

    kind: "start" (total: frames to make, None where a video does not say; done: frames an
        earlier run finished), "frame" (index: the frame just written; stats: "cut", "amount",
        "seconds"), or "info" (message: a one-line notice: device, scene cuts, resume).
    """

    kind: str
    index: int | None = None
    total: int | None = None
    done: int = 0
    stats: dict = field(default_factory=dict)
    message: str = ""


def settings(job: str = "video", *, preset: str | None = None, **options) -> Config:
    """The validated settings (config.Config) a job would run with: `preset`'s values overridden
    by `options`, named as the long options are. ConfigError for a bad one."""
    return job_config(job, options, preset)


# ----------------------------------------------------------------------------- networks


def load_model(model=DEFAULTS["model"], *, weights: str | None = None, precision: str = DEFAULTS["precision"],
               device: str = DEFAULTS["device"], backend: str = DEFAULTS["backend"],
               trust_pickle: bool = DEFAULTS["trust_pickle"]) -> DreamModel:
    """The network `model` names (googlenet, vgg16-hed, a Keras application, torchvision:NAME,
    timm:NAME, or a .keras/.pb/.onnx/TorchScript path), or a torch.nn.Module you built (exported
    to ONNX, its input taken as ImageNet-normalised RGB), loaded once per process and kept
    (models.cached_model, the one cache every job loads through): later calls with the same
    arguments (the same module object: exported at its first use, so weights changed later are
    not seen) return it. Pass it as `model=` to any call, or let each call load (and keep) its
    own; every call's `model=` also takes the module itself. googlenet
    without its weights and no network falls back to vgg16-hed, as on the command line."""
    if isinstance(model, DreamModel):
        return model
    return cached_model(model, weights=weights, precision=precision, device=device, backend=backend,
                        trust_pickle=trust_pickle)


# ----------------------------------------------------------------------------- progress


@contextmanager
def _reporting(callback: Callable[[Update], Any] | None, cancel: threading.Event | None, unit: str = "frame"):
    """The Progress a job reports to (`_progress`); given no callback in a notebook, a progress bar
    (core.notebook.NotebookBar, closed at the job's end however it ends); elsewhere nothing."""
    bar = notebook.NotebookBar(unit) if callback is None and notebook.in_notebook() else None
    try:
        yield _progress(callback, cancel, bar)
    finally:
        if bar is not None:
            bar.close()


def _progress(callback: Callable[[Update], Any] | None, cancel: threading.Event | None, bar=None) -> Progress:
    """A Progress that hands each event to `callback` as an Update (and to `bar`: start, frame) and
    raises Cancelled once the callback returns False or `cancel` is set (checked at each frame's
    end, after it is stored, and at the jobs' other safe points: the network loaded, the encoder
    about to close)."""

    def check(answer) -> None:
        if answer is False or (cancel is not None and cancel.is_set()):
            raise Cancelled("the render was cancelled; its finished frames are kept, and the same call "
                            "again resumes after them")

    def send(update: Update) -> Any:
        if bar is not None and update.kind == "start":
            bar.start(update.total, update.done)
        elif bar is not None and update.kind == "frame":
            bar.frame(update.index, update.stats)
        return callback(update) if callback is not None else None

    return Progress(start=lambda total, done: check(send(Update("start", total=total, done=done))),
                    frame=lambda k, stats: check(send(Update("frame", index=k, stats=dict(stats)))),
                    info=lambda message: send(Update("info", message=message)),
                    check=lambda: check(None))


# ----------------------------------------------------------------------------- jobs


def dream(image, *, model=None, progress: Callable[[Update], Any] | None = None,
          cancel: threading.Event | None = None, preset: str | None = None, **options) -> np.ndarray:
    """One still dreamed: `image` a path, or an RGB uint8 array (H, W, 3) (float arrays are
    taken on 0..255); returns the dream as RGB uint8 (H, W, 3), at `width` if given. Settings as
    keyword arguments (`layers`, `octaves`, `iterations`, `step`, `seed`, `mask`, `guide`, ...)."""
    cfg = job_config("image", options, preset)
    if isinstance(image, (str, os.PathLike)):
        img = read_image(os.fspath(image))
    else:
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.size == 0:
            raise InputError(f"an image must be an RGB array of shape (H, W, 3), got shape {img.shape}; "
                             f"convert it first (a greyscale image: np.stack([g] * 3, axis=-1))")
        if img.dtype != np.uint8:
            img = np.clip(np.rint(img.astype(np.float32)), 0, 255).astype(np.uint8)
    with _reporting(progress, cancel, "octave") as report:
        out, _ = dream_image(cfg, still_input(cfg, img), report, model)
    return out


def render_image(input, output, *, model=None, progress: Callable[[Update], Any] | None = None,
                 cancel: threading.Event | None = None, preset: str | None = None, gradient: str | None = None,
                 strip: str | None = None,
                 strip_every: int = 5, **options) -> RenderResult:
    """A still dreamed into a file, as `dreamvid image INPUT -o OUTPUT` (.png, .jpg), with its
    record; `gradient`, `strip`: the seed blog's views too (the layer's gradient; the image every
    `strip_every` steps). Returns RenderResult."""
    cfg = job_config("image", options, preset)
    with _reporting(progress, cancel, "octave") as report:
        return _image_job(cfg, os.fspath(input), os.fspath(output), report, model,
                          gradient_path=gradient, strip_path=strip, strip_every=strip_every)


def render_video(input, output, *, model=None, progress: Callable[[Update], Any] | None = None,
                 cancel: threading.Event | None = None, preset: str | None = None, **options) -> RenderResult:
    """The main job, as `dreamvid video INPUT -o OUTPUT`: every frame of a clip dreamed, each
    started from the previous dream carried along the optical flow, into `output` (.mp4, .mov,
    .mkv, .gif, or a folder/ of frames) with the input's sound and exact frame rate. Resumable:
    after Ctrl-C, a crash or `cancel`, the same call continues after the frames kept.
    Returns RenderResult (path, frames, seconds, fps, cuts, record: the settings' record)."""
    cfg = job_config("video", options, preset)
    with _reporting(progress, cancel) as report:
        return _video_job(cfg, os.fspath(input), os.fspath(output), report, model)


def render_zoom(image, output, *, model=None, progress: Callable[[Update], Any] | None = None,
                cancel: threading.Event | None = None, preset: str | None = None, **options) -> RenderResult:
    """The infinite zoom, as `dreamvid zoom IMAGE -o OUTPUT`: each frame the previous dream
    zoomed (`zoom`), rotated (`rotate`), shifted (`pan="X,Y"`) and dreamed again; `frames` or
    `seconds` long at `fps`. `image` None with `from_="noise"` or a colour ("#204060").
    Resumable as render_video. Returns RenderResult."""
    cfg = job_config("zoom", options, preset)
    path = None if image is None else os.fspath(image)
    with _reporting(progress, cancel) as report:
        return _zoom_job(cfg, path, os.fspath(output), report, model)


def render_gallery(image, output, *, progress: Callable[[Update], Any] | None = None,
                   cancel: threading.Event | None = None, preset: str | None = None,
                   layers: str | None = None, channels: str | None = None, count: int = 12, presets: bool = False,
                   tile_width: int = 256, columns: int | None = None, model=None, **options) -> RenderResult:
    """`image` dreamed small once per dreamable layer of the network (or per name in `layers`,
    `count` channels of the layer `channels`, or each named preset with `presets=True`), laid out
    with each name under its tile into `output` (.png, .jpg), as `dreamvid gallery`. Tiles are
    kept beside it, so a second call dreams only what is missing. RenderResult.frames: tiles."""
    with _reporting(progress, cancel, "tile") as report:
        return render_tiles(os.fspath(image), os.fspath(output), report, values=options, preset=preset,
                            layers=layers, channels=channels, count=count, presets=presets, tile_width=tile_width,
                            columns=columns, model=model)


def show(item, *, title: str = "") -> notebook.Shown:
    """`item` shown inline in a notebook: an RGB uint8 array (H, W, 3) or a list of them side by
    side, a path to a still, a GIF, a video (MP4, WebM: played) or a frame folder, or a
    RenderResult. Returns an object the notebook displays as a cell's last expression (or through
    IPython.display.display); its `html` is the markup. No IPython needed. InputError in one line
    for anything else."""
    return notebook.show(item, title)


def render_sheet(input, output, *, count: int = 12, columns: int = 4, width: int = 1280) -> RenderResult:
    """A contact sheet of a render's frames (`count` spread from first to last, numbered) into
    `output` (.png, .jpg), as `dreamvid sheet`."""
    return _sheet_job(os.fspath(input), os.fspath(output), count=count, columns=columns, width=width)


def render_live(source, outputs, *, model=None, progress: Callable[[Status], Any] | None = None,
                cancel: threading.Event | None = None, commands: Commands | None = None,
                on_frame: Callable | None = None, preset: str | None = None, **options) -> LiveResult:
    """Dream live, as `dreamvid live SOURCE -o SINK ...`: `source` "camera:N", a stream URL
    (udp://, srt://, rtsp://, ...), a device, or a file played at its own rate (`loop=True`);
    `outputs` a list of sinks ("window", "virtualcam", a stream URL, a recording's path). Every
    setting, preset and schedule a video takes, and the live ones (config.LiveSettings:
    `seconds`, `fps` (the governor's target), `loop`, `min_steps`, `max_steps`, `min_octaves`,
    `fullscreen`, `looks`, `snapshots`, `osc`: "[HOST:]PORT" to take the commands as OSC messages,
    live.osc). Ends after `seconds`, at the source's end, on a "quit" command or once `cancel` is
    set, every sink closed. `progress(Status)` about twice a second; `commands` (a live.Commands)
    takes the controls; `on_frame(input, dream, stats)` after each dream (stats: the chain's, and
    the source's frame `index`, `latency`, `step`).
    `step`, `octaves`, `iterations_next` written "audio:source:MIN:MAX[:MODE]" follow the
    source's own sound as it plays. Returns LiveResult (`summary()` says it in one line)."""
    cfg, live = live_config(dict(options), preset)
    if live.osc is not None:
        check_osc(live.osc)  # the address and python-osc, before the network loads
    dream_options = {k: v for k, v in options.items() if k not in LIVE_KEYS}
    for key, name in SCHEDULED_KEYS.items():  # followed live by run_live: each look starts at the spec's MIN
        if name in live.sounds:
            lo = live.sounds[name].lo
            dream_options[key] = lo if key == "step" else max(1, round(lo))
    shared = model if isinstance(model, DreamModel) else load_model(
        model if model is not None else cfg.dream.model, weights=cfg.dream.weights, precision=cfg.dream.precision,
        device=cfg.dream.device, backend=cfg.dream.backend, trust_pickle=cfg.dream.trust_pickle)
    looks: list[tuple[str, dict]] = [(preset or cfg.dream.layers or "the settings", {"preset": preset})]
    for item in filter(None, (x.strip() for x in live.looks.split(";"))):
        try:
            load_preset(item)
            looks.append((item, {"preset": item}))
        except ConfigError:
            looks.append((item, {"preset": preset, "layers": item}))

    def make_look(over: dict, fps):
        over = dict(over)
        look_preset = over.pop("preset", None)
        values = {**dream_options, **over}
        look_cfg = job_config("live", values, look_preset)
        net = shared if look_cfg.dream.model == cfg.dream.model else None
        return VideoDreamer(model=net, fps=fps, preset=look_preset, **values)

    commands = commands or Commands()
    osc = OscControl(live.osc, commands) if live.osc is not None else None  # its messages queue until the show starts
    try:
        return run_live(cfg, live, os.fspath(source), [os.fspath(o) for o in outputs], make_look, looks,
                        progress=progress, cancel=cancel, commands=commands, on_frame=on_frame)
    finally:
        if osc is not None:
            osc.close()
