"""The web page (`dreamvid ui`): open a clip or a still, pick a look by eye, preview it, render
it with progress, cancel and resume, play and download the result. A thin layer over the Python
API (api.py), served by Gradio (the `ui` extra): its job queue runs one dream at a time, its
video and image components play and show the results, its uploads are size-limited.

Everything the page makes lives in one work folder (`--folder`, default ./dreamvid-ui):
  uploads/   what the browser sent (Gradio's upload folder, GRADIO_TEMP_DIR)
  inputs/    each opened input's first frame (the still the previews and the gallery dream)
  renders/   the renders, each named by its input and a hash of its settings, with its record
             and its work folder: the same settings again resume a cancelled render there
  previews/  the previews (a frame, a two-second excerpt) and the H.264 copies that play in the
             page where the render is ProRes, H.265 or 16-bit
  gallery/   the layer galleries, tiles kept (a second look at the same image is instant)

Security: loopback (127.0.0.1) unless `listen` is given, and then only with a password
(`check_listen`); every /file= request is answered only for a file inside the work folder
(`FileGuard`, before Gradio's own rules); analytics, telemetry, run history, the MCP server and
web fonts off (nothing is fetched from outside); every bad file or setting is answered in the
page in one line ("error: ..."), an upload checked for its type before any work.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import queue
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field

from dreamvid import api
from dreamvid.config import Config, build_config, job_config, list_presets, load_preset
from dreamvid.errors import Cancelled, ConfigError, DreamvidError, InputError
from dreamvid.ffmpeg import ffmpeg_exe
from dreamvid.files import write_image
from dreamvid.sources import IMAGE_EXTENSIONS, open_source
from dreamvid.workfolder import fingerprint, record_path, work_folder

__all__ = [
    "DEFAULT_FOLDER",
    "DEFAULT_PORT",
    "MAX_UPLOAD_MB",
    "VIDEO_EXTENSIONS",
    "FileGuard",
    "build",
    "check_listen",
    "describe",
    "serve",
]

DEFAULT_FOLDER = "dreamvid-ui"
DEFAULT_PORT = 7860  # Gradio's own default, what its users expect
LOOPBACK = "127.0.0.1"
AUTH_ENV = "DREAMVID_UI_AUTH"  # USER:PASSWORD, kept off the command line (and out of `ps`)
MAX_UPLOAD_MB = 2048  # a few minutes of 4K footage; Gradio refuses larger uploads before they land
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".gif")
EXCERPT_SECONDS = 2.0
TICK = 0.25  # seconds between the page's progress redraws while a job runs
GALLERY_TILE_WIDTH = 160  # small: a tile in about a second or two on a CPU
NO_PRESET = "(none)"
# what the page writes; served by Gradio from here (the uploads folder is not among them: an
# upload is served back only as an attachment, never inline)
SERVED = ("inputs", "renders", "previews", "gallery")
# output choices: (label, extension, the API's output options); what a browser cannot play (ProRes,
# H.265, 16 bits) gets an H.264 copy to play in the page (`playable`)
FORMATS = (("MP4 (H.264)", ".mp4", {"codec": "h264"}),
           ("MOV (ProRes 422 HQ)", ".mov", {"codec": "prores"}),
           ("MOV (ProRes 4444, 16-bit frames)", ".mov", {"codec": "prores4444", "bit_depth": 16}),
           ("MKV (H.265)", ".mkv", {"codec": "h265"}))


# ----------------------------------------------------------------------------- checks


def check_listen(listen: str | None, auth: str | None) -> tuple[str, tuple[str, str] | None]:
    """(address to bind, (user, password) or None). Loopback unless `listen` names an address;
    any other address only with a password (`auth` or $DREAMVID_UI_AUTH, as USER:PASSWORD).
    ConfigError otherwise, naming the fix."""
    auth = auth if auth is not None else os.environ.get(AUTH_ENV) or None
    pair = None
    if auth is not None:
        user, sep, password = auth.partition(":")
        if not sep or not user or not password:
            raise ConfigError(f"--auth must be USER:PASSWORD (or set {AUTH_ENV}=USER:PASSWORD), "
                              f"both non-empty; got {'no colon' if not sep else 'an empty part'}")
        pair = (user, password)
    host = (listen or LOOPBACK).strip()
    if host not in (LOOPBACK, "localhost", "::1") and pair is None:
        raise ConfigError(f"--listen {host} would serve the page to other machines without a password; "
                          f"give --auth USER:PASSWORD (or set {AUTH_ENV}), or leave --listen out to serve "
                          f"this machine only")
    return host, pair


@dataclass
class Opened:
    """An input opened in the page: its path, kind ("clip" or "still"), the first frame's PNG
    (in inputs/), and a line about it."""

    path: str
    kind: str
    first: str
    line: str
    fps: float = 25.0
    frames: int | None = None


def describe(path: str, folder: str, max_mb: float = MAX_UPLOAD_MB) -> tuple[Opened, object]:
    """Check `path` is a clip or a still dreamvid opens (its name, its size, then its content,
    before any work), save its first frame into `folder`/inputs; returns (Opened, the first
    frame as RGB uint8). InputError in one line otherwise."""
    path = os.fspath(path)
    name = os.path.basename(path)
    ext = os.path.splitext(name)[1].lower()
    if ext not in VIDEO_EXTENSIONS + IMAGE_EXTENSIONS:
        raise InputError(f"'{name}' is not a clip or a still ({ext or 'no extension'}); open a video "
                         f"({', '.join(VIDEO_EXTENSIONS)}) or an image ({', '.join(IMAGE_EXTENSIONS)})")
    if not os.path.isfile(path):
        raise InputError(f"cannot read '{path}': no such file on this machine; check the path")
    size_mb = os.path.getsize(path) / 2**20
    if size_mb > max_mb:
        raise InputError(f"'{name}' is {size_mb:.0f} MB, over this page's limit of {max_mb:.0f} MB; "
                         f"trim it first, or start the page with a larger --max-upload")
    with open_source(path) as source:  # ffmpeg or the image reader: a file that only claims to be a video stops here
        info = source.info
        frame = next(iter(source), None)
    if frame is None:
        raise InputError(f"'{name}' has no frames to dream; open another file")
    still = ext in IMAGE_EXTENSIONS
    os.makedirs(os.path.join(folder, "inputs"), exist_ok=True)
    first = os.path.join(folder, "inputs", f"{_stem(path)}-{_key({'input': fingerprint(path)})}.png")
    write_image(first, frame)
    if still:
        line = f"**{name}**: a still, {info.width}x{info.height}; Render makes an infinite zoom of it"
    else:
        length = f"{info.duration:.1f} s" if info.duration else "length unknown"
        count = f", about {info.n_frames} frames" if info.n_frames else ""
        sound = "with sound" if info.has_audio else "no sound"
        line = f"**{name}**: {info.width}x{info.height}, {length}{count} at {float(info.fps):.3f} fps, {sound}"
    return Opened(path=os.path.abspath(path), kind="still" if still else "clip", first=first, line=line,
                  fps=float(info.fps), frames=info.n_frames), frame


def _stem(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", os.path.splitext(os.path.basename(path))[0])[:40] or "input"


def _key(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:12]


class FileGuard:
    """ASGI middleware: a request for a file (`/file=...`, `/proxy=...`) is answered only when
    the file is inside `root`; anything else (another path, a link out of it, a URL to fetch)
    gets 403 before Gradio sees it."""

    def __init__(self, app, root: str):
        self.app = app
        self.root = os.path.realpath(root)

    def allows(self, target: str) -> bool:
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", target) and not re.match(r"^[A-Za-z]:[\\/]", target):
            return False  # a URL (http:, file:, ...): nothing is fetched for a request
        real = os.path.realpath(target)
        return os.path.commonpath([real, self.root]) == self.root

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = scope.get("path", "")
            for marker in ("/file=", "/proxy="):
                at = path.find(marker)
                if at >= 0 and not self.allows(path[at + len(marker):]):
                    body = b"File not allowed: only files in dreamvid's work folder are served."
                    await send({"type": "http.response.start", "status": 403,
                                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)


# ----------------------------------------------------------------------------- settings


@dataclass
class Look:
    """The page's settings, as the API takes them."""

    preset: str | None = "preview"
    record: str | None = None  # an output's record loaded back: its settings under the page's
    model: str = ""
    layers: str = ""
    step: float = 1.5
    octaves: int = 4
    iterations: int = 10
    iterations_next: int = 5
    blend: float = 0.9
    carry_limit: float = 3.0
    zoom: str = "1.02"
    width: int | None = None
    seed: int | None = 0
    keep_colors: bool = False
    mask: str | None = None
    guide: str | None = None
    guide_weight: float = 1.0
    frames: int | None = None  # a clip: at most this many frames; a still: the zoom's length
    fmt: str = FORMATS[0][0]
    extra: dict = field(default_factory=dict)

    def options(self, job: str) -> dict:
        """Keyword arguments for the API's `job` ("image", "video", "zoom")."""
        kw = {"step": self.step, "octaves": self.octaves, "iterations": self.iterations, "seed": self.seed,
                  "width": self.width, "keep_colors": self.keep_colors or None, "mask": self.mask, "guide": self.guide,
                  "model": self.model or None, "layers": self.layers or None}
        if self.guide:
            kw["guide_weight"] = self.guide_weight
        if job in ("video", "zoom"):
            kw["iterations_next"] = self.iterations_next
            kw.update(next(o for label, _e, o in FORMATS if label == self.fmt))
        if job == "video":
            kw["blend"] = self.blend
            kw["carry_limit"] = self.carry_limit
            kw["max_frames"] = self.frames
        if job == "zoom":
            kw["zoom"] = self.zoom
            kw["frames"] = self.frames or 120
        return {k: v for k, v in kw.items() if v is not None}

    def ext(self) -> str:
        return next(e for label, e, _ in FORMATS if label == self.fmt)

    def preset_arg(self) -> str | None:
        return self.record or (None if self.preset in (None, "", NO_PRESET) else self.preset)


def look_of(cfg: Config) -> dict:
    """The page's controls' values for a config (a preset's or a record's)."""
    d, v, z, o = cfg.dream, cfg.video, cfg.zoom, cfg.output
    return {"model": d.model, "layers": d.layers, "step": d.step, "octaves": d.octaves, "iterations": d.iterations,
                "iterations_next": v.iterations_next, "blend": v.blend, "carry_limit": v.carry_limit, "zoom": str(z.zoom), "width": o.width or 0, "seed": d.seed or 0,
                "keep_colors": d.keep_colors, "guide_weight": d.guide_weight}


def preset_look(name: str | None) -> dict:
    return look_of(job_config("video", {}, None if name in (None, "", NO_PRESET) else name))


def record_look(path: str) -> dict:
    """A record (`out.mp4.json`) read back: ConfigError unless it is one."""
    values, _ = load_preset(path)
    return look_of(build_config(values))


# ----------------------------------------------------------------------------- jobs


class Jobs:
    """The one job that runs (the queue lets one through at a time): its cancel event."""

    def __init__(self):
        self.cancel: threading.Event | None = None

    def stop(self) -> bool:
        if self.cancel is None:
            return False
        self.cancel.set()
        return True

    def run(self, call):
        """Run `call(progress, cancel)` in a thread; yields ("update", Update) as they come,
        ("tick", None) every TICK seconds (the page redraws then), then ("done", result) or ("error", exception)."""
        events: queue.Queue = queue.Queue()
        cancel = self.cancel = threading.Event()

        def work():
            try:
                events.put(("done", call(events.put_nowait, cancel)))
            except BaseException as exc:  # noqa: BLE001  (handed to the page, in one line)
                events.put(("error", exc))

        thread = threading.Thread(target=work, name="dreamvid-ui-job", daemon=True)
        thread.start()
        try:
            due = time.monotonic() + TICK
            while True:
                try:
                    item = events.get(timeout=max(due - time.monotonic(), 0.0))
                except queue.Empty:
                    item = None
                if item is not None and not isinstance(item, api.Update):
                    yield item
                    return
                if item is not None:
                    yield "update", item
                if time.monotonic() >= due:  # every TICK, however fast the updates come
                    due = time.monotonic() + TICK
                    yield "tick", None
        finally:
            cancel.set()  # the page went away (or the job ended): a render still running stops at its frame's end
            thread.join()
            if self.cancel is cancel:  # not a later job's
                self.cancel = None


def status(text: str) -> str:
    """The status line's HTML: a progress bar as it is, a line of text escaped."""
    return text if text.startswith('<div class="dv-progress">') else f'<div class="dv-line">{html.escape(text)}</div>'


def one_line(exc: BaseException) -> str:
    if isinstance(exc, DreamvidError):
        return f"error: {exc}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"error: unexpected {type(exc).__name__}: {text} (run with DREAMVID_DEBUG=1 for the traceback)"


class Pace:
    """Frames done, frames/s after the first frame (it loads and compiles) and the ETA."""

    def __init__(self):
        self.total = None
        self.done = 0
        self.at: list[float] = []
        self.t0 = time.perf_counter()

    def update(self, u) -> None:
        if u.kind == "start":
            self.total, self.done = u.total, u.done
        elif u.kind == "frame":
            self.done += 1
            self.at.append(time.perf_counter())

    def rate(self) -> float | None:
        return (len(self.at) - 1) / (self.at[-1] - self.at[0]) if len(self.at) >= 2 and self.at[-1] > self.at[0] else None

    def bar(self, what: str = "frame", note: str = "", ended: bool = False) -> str:
        """The bar and its line; `ended`: no ETA (the note says how it ended)."""
        total, done, rate = self.total, self.done, self.rate()
        bar = f'<progress max="{total}" value="{done}"></progress>' if total else "<progress></progress>"
        text = f"{what} {done}" + (f" of {total}" if total else "")
        if rate:
            text += f" · {rate:.2f} {what}s/s"
            if total and not ended:
                text += f" · ETA {max(total - done, 0) / rate:.0f} s"
        elif done == 0:
            text += f" · loading the network and compiling ({time.perf_counter() - self.t0:.0f} s)"
        return f'<div class="dv-progress">{bar} <span>{html.escape(text + note)}</span></div>'


def video_stream(path: str) -> tuple[str, str]:
    """(codec, pixel format) of a video file's first video stream, as ffmpeg names them."""
    p = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60, check=False)
    found = re.search(r"Stream #\S+: Video: (\w+)[^,]*, (\w+)", p.stderr.decode("utf-8", "replace"))
    return (found.group(1), found.group(2)) if found else ("", "")


def playable(path: str, folder: str) -> str:
    """What the page plays for a render: the render itself when a browser plays it (H.264,
    8-bit 4:2:0, in an MP4), else an H.264 copy in `folder`/previews (ProRes, H.265, 16 bits),
    made once and kept. InputError in one line if the copy fails."""
    if path.lower().endswith(".mp4") and video_stream(path) == ("h264", "yuv420p"):
        return path
    out = os.path.join(folder, "previews", f"{os.path.basename(path)}.h264.mp4")
    if os.path.isfile(out) and os.path.getmtime(out) >= os.path.getmtime(path):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-i", path, "-map", "0:v:0",
           "-map", "0:a?", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "20", "-c:a", "aac",
           "-movflags", "+faststart", out + ".part.mp4"]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=3600,
                       check=False)
    if p.returncode != 0:
        raise InputError(f"the H.264 copy of '{os.path.basename(path)}' for the page failed "
                         f"({p.stderr.decode('utf-8', 'replace').strip()[:160]}); the render itself is fine, download it")
    os.replace(out + ".part.mp4", out)  # whole or not at all: a copy cut short is never played
    return out


# ----------------------------------------------------------------------------- the page


CSS = """
.dv-progress {display: flex; gap: .8em; align-items: center; font-variant-numeric: tabular-nums}
.dv-progress progress {width: 16em; height: 1em}
#dv-status {min-height: 2em}
#dv-input img, #dv-dream img {width: 100%; height: 100%; object-fit: contain}
"""


def build(folder: str, *, max_mb: float = MAX_UPLOAD_MB):
    """The page, as a gr.Blocks, writing into `folder` (made here). Gradio must be imported
    after GRADIO_TEMP_DIR is set (serve does both)."""
    import gradio as gr  # the optional `ui` extra: only `dreamvid ui` needs it

    folder = os.path.abspath(folder)
    jobs = Jobs()
    presets = [NO_PRESET] + list_presets()
    start = preset_look("preview")

    def look(preset, record, model, layers, step, octaves, iterations, iterations_next, blend, carry_limit, zoom, width, seed,
             keep_colors, mask, guide, guide_weight, frames, fmt) -> Look:
        def count(x):  # a Number box: blank or 0 is "not given"
            return None if x in (None, "") or int(x) == 0 else int(x)

        return Look(preset=preset, record=record, model=(model or "").strip(), layers=(layers or "").strip(),
                    step=float(step), octaves=int(octaves), iterations=int(iterations),
                    iterations_next=int(iterations_next), blend=float(blend),
                    carry_limit=float(carry_limit), zoom=str(zoom).strip() or "1.02",
                    width=count(width), seed=int(seed or 0),
                    keep_colors=bool(keep_colors), mask=_image_upload(mask, "mask"), guide=_image_upload(guide, "guide"),
                    guide_weight=float(guide_weight), frames=count(frames), fmt=fmt)

    def skip_all(n):
        return tuple(gr.skip() for _ in range(n))

    # -- open

    def open_input(upload, typed):
        path = upload or (typed or "").strip()
        if not path:
            return None, "", None, None, status("error: choose a clip or a still to upload, or type a path on this machine")
        try:
            opened, _ = describe(path, folder, max_mb)
        except DreamvidError as exc:
            return None, "", None, None, status(one_line(exc))
        return opened, opened.line, opened.first, None, status("opened; pick a look, then Preview or Render")

    # -- previews and renders

    def preview_frame(opened, *controls):
        if opened is None:
            yield status("error: open a clip or a still first"), gr.skip()
            return
        try:
            lk = look(*controls)
        except DreamvidError as exc:
            yield status(one_line(exc)), gr.skip()
            return
        yield status("dreaming the first frame ..."), gr.skip()
        t0 = time.perf_counter()
        for kind, item in jobs.run(lambda progress, cancel: api.dream(opened.first, preset=lk.preset_arg(),
                                                                     **lk.options("image"))):
            if kind == "done":
                yield status(f"the first frame dreamed in {time.perf_counter() - t0:.1f} s"), item
            elif kind == "error":
                yield status(one_line(item)), gr.skip()

    def render_job(opened, excerpt: bool, *controls):
        """A render (or a two-second excerpt): yields (status, latest frame, video, files)."""
        if opened is None:
            yield status("error: open a clip or a still first"), *skip_all(3)
            return
        try:
            lk = look(*controls)
            job = "zoom" if opened.kind == "still" else "video"
            options = lk.options(job)
            if excerpt:
                if job == "video":
                    options.pop("max_frames", None)
                    options["duration"] = EXCERPT_SECONDS
                else:
                    options["frames"] = int(EXCERPT_SECONDS * 25)
            preset = lk.preset_arg()
            api.settings(job, preset=preset, **options)  # checked now: a bad setting answered before any work
        except DreamvidError as exc:
            yield status(one_line(exc)), *skip_all(3)
            return
        where = "previews" if excerpt else "renders"
        name = f"{_stem(opened.path)}-{'excerpt-' if excerpt else ''}{_key([job, preset, options, fingerprint(opened.path)])}{lk.ext()}"
        output = os.path.join(folder, where, name)
        os.makedirs(os.path.dirname(output), exist_ok=True)
        if os.path.isfile(output) and os.path.isfile(record_path(output)):
            play, files, trouble = finished(output)
            yield status(trouble or f"already rendered with these settings: {name}"), gr.skip(), play, files
            return
        frames_dir = os.path.join(work_folder(output), "frames")
        pace = Pace()
        render = api.render_zoom if job == "zoom" else api.render_video
        shown = -1
        latest, note = None, ""
        for kind, item in jobs.run(lambda progress, cancel: render(opened.path, output, preset=preset, progress=progress,
                                                                   cancel=cancel, **options)):
            if kind == "update":
                pace.update(item)
                if item.kind == "frame":
                    latest = item.index
                elif item.kind == "info":
                    note = f" · {item.message}"
                continue
            if kind == "done":
                # the running notes (the backend, where a resume's frames are) give way to how it ended
                note = f" · done in {item.seconds:.1f} s" + (f", resumed at frame {item.resumed_from}" if item.resumed_from else "")
                play, files, trouble = finished(output)
                yield status(trouble or pace.bar(note=note, ended=True)), gr.skip(), play, files
                return
            if kind == "error":
                if isinstance(item, Cancelled):
                    yield (status(f"cancelled: {pace.done} frames are kept in the work folder; Render again "
                                  f"(same settings) resumes after them"), gr.skip(), gr.skip(), gr.skip())
                else:
                    yield status(one_line(item)), *skip_all(3)
                return
            frame = os.path.join(frames_dir, f"{latest:06d}.png") if latest is not None else None
            show = frame if latest is not None and latest != shown and os.path.isfile(frame) else gr.skip()
            if latest is not None:
                shown = latest
            yield status(pace.bar(note=note)), show, gr.skip(), gr.skip()

    def finished(output: str):
        """(what the page plays, what it offers to download, a line if it cannot play it)."""
        try:
            return playable(output, folder), [output, record_path(output)], ""
        except DreamvidError as exc:  # the render is fine: offered for download, the page plays nothing
            return None, [output, record_path(output)], one_line(exc)

    def render(opened, *controls):
        yield from render_job(opened, False, *controls)

    def excerpt(opened, *controls):
        yield from render_job(opened, True, *controls)

    def cancel():
        return status("cancelling at the end of this frame ..." if jobs.stop() else "nothing is running")

    # -- the look

    def pick_preset(name):
        try:
            values = preset_look(name)
        except DreamvidError as exc:
            return (status(one_line(exc)), gr.skip(), *skip_all(len(LOOK_KEYS)))
        return (status(f"preset {name}" if name != NO_PRESET else "the defaults"), None,
                *[values[k] for k in LOOK_KEYS])

    def load_record(path):
        if not path:
            return (gr.skip(), gr.skip(), gr.skip(), *skip_all(len(LOOK_KEYS)))
        try:
            values = record_look(path)
        except DreamvidError as exc:
            return (status(one_line(exc)), None, gr.skip(), *skip_all(len(LOOK_KEYS)))
        return (status(f"the settings of {os.path.basename(path)}: Render repeats it"), path, NO_PRESET,
                *[values[k] for k in LOOK_KEYS])

    def gallery(opened, *controls):
        if opened is None:
            yield status("error: open a clip or a still first"), gr.skip(), gr.skip()
            return
        try:
            lk = look(*controls)
            options = {k: v for k, v in lk.options("image").items() if k not in ("layers", "width")}
            preset = lk.preset_arg()
            api.settings("image", preset=preset, **options)
        except DreamvidError as exc:
            yield status(one_line(exc)), gr.skip(), gr.skip()
            return
        output = os.path.join(folder, "gallery", f"{_stem(opened.path)}-{_key([preset, options, fingerprint(opened.first)])}.jpg")
        os.makedirs(os.path.dirname(output), exist_ok=True)
        if os.path.isfile(output) and os.path.isfile(record_path(output)):  # made before: shown at once, nothing loaded
            yield show_tiles(output, "kept from before")
            return
        pace = Pace()
        for kind, item in jobs.run(lambda progress, cancel: api.render_gallery(
                opened.first, output, progress=lambda u: progress(u) if not cancel.is_set() else False, preset=preset,
                tile_width=GALLERY_TILE_WIDTH, keep_frames=True, **options)):
            if kind == "update":
                pace.update(item)
            elif kind == "tick":
                yield status(pace.bar("tile")), gr.skip(), gr.skip()
            elif kind == "done":
                yield show_tiles(output, f"made in {item.seconds:.1f} s")
                return
            else:
                yield status(one_line(item) if not isinstance(item, Cancelled) else "cancelled; the tiles made are kept"), gr.skip(), gr.skip()
                return

    def show_tiles(output, how):
        tiles = gallery_tiles(output)
        return (status(f"{len(tiles)} layers ({how}); click a tile to dream with its layer"),
                [(p, label) for label, p in tiles], [label for label, _ in tiles])

    def pick_tile(labels, evt):
        if not labels or evt.index is None or evt.index >= len(labels):
            return gr.skip(), gr.skip()
        return labels[evt.index], status(f"layer {labels[evt.index]}: Preview to see it on the frame")

    pick_tile.__annotations__["evt"] = gr.SelectData  # the class itself: how Gradio knows to pass the click

    with gr.Blocks(title="dreamvid", analytics_enabled=False) as page:
        opened = gr.State(None)
        record = gr.State(None)
        labels = gr.State([])
        gr.Markdown("## dreamvid: open a clip or a still, pick a look, preview, render")
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Clip or still", type="filepath", elem_id="dv-upload")
                with gr.Row():
                    typed = gr.Textbox(label="or a path on this machine", placeholder="/path/to/clip.mp4",
                                       elem_id="dv-path", scale=4)
                    open_btn = gr.Button("Open", elem_id="dv-open", scale=1)
                info = gr.Markdown("", elem_id="dv-info")
            with gr.Column(scale=2), gr.Row():
                first = gr.Image(label="Input (first frame)", interactive=False, elem_id="dv-input", height=300)
                dreamed = gr.Image(label="Dream", interactive=False, elem_id="dv-dream", height=300)
        status_box = gr.HTML(status("open a clip or a still to begin"), elem_id="dv-status")
        with gr.Row():
            preview_btn = gr.Button("Preview frame", elem_id="dv-preview")
            excerpt_btn = gr.Button(f"Preview {EXCERPT_SECONDS:g} s", elem_id="dv-excerpt")
            render_btn = gr.Button("Render", variant="primary", elem_id="dv-render")
            cancel_btn = gr.Button("Cancel", variant="stop", elem_id="dv-cancel")
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Row():
                    preset = gr.Dropdown(presets, value="preview", label="Preset", elem_id="dv-preset")
                    model = gr.Textbox(start["model"], label="Network", elem_id="dv-model")
                    layers = gr.Textbox(start["layers"], label="Layers (blank: the network's own)", elem_id="dv-layers")
                with gr.Row():
                    step = gr.Slider(0.1, 10, value=start["step"], step=0.1, label="Strength (step)", elem_id="dv-step")
                    octaves = gr.Slider(1, 8, value=start["octaves"], step=1, label="Octaves", elem_id="dv-octaves")
                with gr.Row():
                    iterations = gr.Slider(0, 50, value=start["iterations"], step=1, label="Steps (first frame)",
                                           elem_id="dv-iterations")
                    iterations_next = gr.Slider(0, 50, value=start["iterations_next"], step=1, label="Steps (later frames)",
                                                elem_id="dv-iterations-next")
                with gr.Row():
                    blend = gr.Slider(0, 1, value=start["blend"], step=0.05, label="Carry (share of the last dream kept)",
                                      elem_id="dv-blend")
                    carry_limit = gr.Slider(0, 10, value=start["carry_limit"], step=0.5,
                                            label="Carry limit (x the first frame's dream; 0: none)",
                                            elem_id="dv-carry-limit")
                with gr.Row():
                    zoom = gr.Textbox(start["zoom"], label="Zoom per frame (a still's zoom)", elem_id="dv-zoom")
                    width = gr.Number(start["width"] or 0, label="Width (px; 0: the input's)", precision=0, elem_id="dv-width")
                    seed = gr.Number(start["seed"] or 0, label="Seed (the same seed, the same dream)", precision=0,
                                     elem_id="dv-seed")
                    frames = gr.Number(0, label="Frames (0: all; a zoom: 120)", precision=0, elem_id="dv-frames")
                with gr.Row():
                    keep_colors = gr.Checkbox(start["keep_colors"], label="Keep the input's colours", elem_id="dv-keep-colors")
                    fmt = gr.Radio([f[0] for f in FORMATS], value=FORMATS[0][0], label="Output", elem_id="dv-format")
                with gr.Accordion("Mask and guide", open=False):
                    with gr.Row():
                        mask = gr.File(label="Mask (white dreams, black stays)", type="filepath", elem_id="dv-mask")
                        guide = gr.File(label="Guide (look like this image)", type="filepath", elem_id="dv-guide")
                    guide_weight = gr.Slider(0, 5, value=start["guide_weight"], step=0.1, label="Guide weight",
                                             elem_id="dv-guide-weight")
                rec = gr.File(label="Load a record (.json beside a render) to repeat it", type="filepath",
                              elem_id="dv-record")
            with gr.Column(scale=1):
                video = gr.Video(label="Result", interactive=False, elem_id="dv-video")
                files = gr.File(label="Download (the render and its record)", file_count="multiple",
                                interactive=False, elem_id="dv-files")
                gallery_btn = gr.Button("Layer gallery of this frame", elem_id="dv-gallery-btn")
                tiles = gr.Gallery(label="Layers: click one to dream with it", columns=4, height=360,
                                   allow_preview=False, elem_id="dv-gallery")

        controls = [preset, record, model, layers, step, octaves, iterations, iterations_next, blend, carry_limit, zoom, width, seed,
                    keep_colors, mask, guide, guide_weight, frames, fmt]
        look_parts = [model, layers, step, octaves, iterations, iterations_next, blend, carry_limit, zoom, width, seed,
                      keep_colors, guide_weight]
        dream = {"concurrency_limit": 1, "concurrency_id": "dream"}  # one dream at a time: one GPU, one network
        opened_out = [opened, info, first, dreamed, status_box]
        upload.upload(open_input, [upload, typed], opened_out, **dream)
        open_btn.click(open_input, [upload, typed], opened_out, **dream)
        typed.submit(open_input, [upload, typed], opened_out, **dream)
        preview_btn.click(preview_frame, [opened, *controls], [status_box, dreamed], **dream)
        excerpt_btn.click(excerpt, [opened, *controls], [status_box, dreamed, video, files], **dream)
        render_btn.click(render, [opened, *controls], [status_box, dreamed, video, files], **dream)
        # off the queue: answered at once while a dream holds the queue's one place (it sets the
        # running job's cancel event; the job stops at its frame's end and says what is kept)
        cancel_btn.click(cancel, None, status_box, queue=False)
        preset.input(pick_preset, preset, [status_box, record, *look_parts])
        rec.upload(load_record, rec, [status_box, record, preset, *look_parts])
        gallery_btn.click(gallery, [opened, *controls], [status_box, tiles, labels], **dream)
        tiles.select(pick_tile, labels, [layers, status_box])
    return page


LOOK_KEYS = ("model", "layers", "step", "octaves", "iterations", "iterations_next", "blend", "carry_limit", "zoom", "width", "seed",
             "keep_colors", "guide_weight")


def _image_upload(path: str | None, what: str) -> str | None:
    """A mask's or a guide's upload, checked to be an image before any work."""
    if not path:
        return None
    if not str(path).lower().endswith(IMAGE_EXTENSIONS):
        raise InputError(f"the {what} '{os.path.basename(path)}' is not an image; upload a PNG or JPEG "
                         f"({', '.join(IMAGE_EXTENSIONS)})")
    return os.fspath(path)


def gallery_tiles(output: str) -> list[tuple[str, str]]:
    """(layer, tile PNG) of a gallery kept in its work folder, in the sheet's order."""
    with open(record_path(output), encoding="utf-8") as f:
        labels = [t["label"] for t in json.load(f)["tiles"]]
    tiles_dir = os.path.join(work_folder(output), "tiles")
    found = {}
    for name in sorted(os.listdir(tiles_dir)) if os.path.isdir(tiles_dir) else []:
        label = name.rsplit("-", 1)[0]
        found[label] = os.path.join(tiles_dir, name)
    return [(label, found[re.sub(r"[^A-Za-z0-9_.-]+", "-", label)[:60]]) for label in labels
            if re.sub(r"[^A-Za-z0-9_.-]+", "-", label)[:60] in found]


def serve(*, port: int = DEFAULT_PORT, listen: str | None = None, auth: str | None = None,
          folder: str = DEFAULT_FOLDER, max_mb: float = MAX_UPLOAD_MB):
    """Start the page (returns (page, url) once it listens; `page.block_thread()` waits). The
    checks come first: a bad --listen/--auth raises ConfigError before anything starts."""
    host, pair = check_listen(listen, auth)
    if not 1 <= int(port) <= 65535:
        raise ConfigError(f"--port must be 1..65535, got {port}")
    if max_mb <= 0:
        raise ConfigError(f"--max-upload must be a positive number of MB, got {max_mb:g}")
    folder = os.path.abspath(folder)
    try:
        for sub in ("uploads", *SERVED):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot make the work folder '{folder}' ({exc.strerror}); pass --folder DIR on a writable disk") from None
    # before Gradio is imported: its upload folder inside ours, and nothing sent anywhere
    os.environ["GRADIO_TEMP_DIR"] = os.path.join(folder, "uploads")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["GRADIO_RUN_HISTORY"] = "False"
    os.environ["GRADIO_MCP_SERVER"] = "False"
    try:
        import gradio as gr  # the optional `ui` extra
        from starlette.middleware import Middleware
    except ImportError:
        raise ConfigError("the web page needs Gradio; install it with pip install 'dreamvid[ui]'") from None
    page = build(folder, max_mb=max_mb)
    page.queue(default_concurrency_limit=1)
    system = ["ui-sans-serif", "system-ui", "sans-serif"]  # no web fonts: nothing is fetched from outside
    theme = gr.themes.Default(font=system, font_mono=["ui-monospace", "monospace"])
    try:
        _, url, _ = page.launch(
            server_name=host, server_port=int(port), auth=pair, share=False, inbrowser=False, quiet=True,
            prevent_thread_lock=True, show_error=False, max_file_size=f"{max_mb:g}mb",
            allowed_paths=[os.path.join(folder, sub) for sub in SERVED], footer_links=[], run_history=False,
            enable_monitoring=False, mcp_server=False, ssr_mode=False, pwa=False, theme=theme, css=CSS,
            app_kwargs={"middleware": [Middleware(FileGuard, root=folder)]})
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({str(exc).splitlines()[0]}); pick another --port") from None
    return page, url
