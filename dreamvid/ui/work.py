"""What the web page (ui.py) does without Gradio, in the order a request meets it: the checks on
what comes in (where it listens and with which password, an upload's name, size and content, a
request for a file), the page's settings as the API's keyword settings (`Look`, a preset's or a
record's values back into the controls), the one job that runs (`Jobs`: a thread, its cancel
event, its updates and a redraw tick; `Pace`: frames/s and ETA as the progress line) and what the
page plays of a render (`playable`: an H.264 copy of what a browser cannot play) and shows of a
gallery (`gallery_tiles`).
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
from dreamvid.config.presets import job_config, load_preset
from dreamvid.config.settings import DEFAULTS, UI_AUTH_ENV, UI_LOOPBACK, UI_MAX_UPLOAD_MB, Config, build_config
from dreamvid.core.errors import ConfigError, DreamvidError, InputError
from dreamvid.core.ffmpeg import ffmpeg_exe
from dreamvid.core.files import write_image
from dreamvid.jobs.gallery import tile_stem
from dreamvid.media.sources import IMAGE_EXTENSIONS, open_source
from dreamvid.render.workfolder import fingerprint, record_path, work_folder

__all__ = [
    "AUTH_ENV",
    "FORMATS",
    "LOOK_KEYS",
    "LOOPBACK",
    "MAX_UPLOAD_MB",
    "NO_PRESET",
    "TICK",
    "VIDEO_EXTENSIONS",
    "FileGuard",
    "Jobs",
    "Look",
    "Opened",
    "Pace",
    "check_listen",
    "typed_path",
    "describe",
    "gallery_tiles",
    "image_upload",
    "key_of",
    "look_of",
    "one_line",
    "playable",
    "preset_look",
    "record_look",
    "status",
    "stem",
    "video_stream",
]

LOOPBACK, AUTH_ENV, MAX_UPLOAD_MB = UI_LOOPBACK, UI_AUTH_ENV, UI_MAX_UPLOAD_MB
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".gif")
TICK = 0.25  # seconds between the page's progress redraws while a job runs
NO_PRESET = "(none)"
# output choices: (label, extension, the API's output options); what a browser cannot play (ProRes,
# H.265, 16 bits) gets an H.264 copy to play in the page (`playable`)
FORMATS = (("MP4 (H.264)", ".mp4", {"codec": "h264"}),
           ("MOV (ProRes 422 HQ)", ".mov", {"codec": "prores"}),
           ("MOV (ProRes 4444, 16-bit frames)", ".mov", {"codec": "prores4444", "bit_depth": 16}),
           ("MKV (H.265)", ".mkv", {"codec": "h265"}),
           ("WebM (VP9, for the web)", ".webm", {"codec": "vp9"}))
BROWSER_PLAYS = {(".mp4", "h264", "yuv420p"), (".webm", "vp9", "yuv420p")}  # played in the page as they are


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


def typed_path(path: str, allowed: list[str] | None) -> str:
    """A path typed into the page, checked before it is opened: any file on this machine while the
    page serves this machine only (`allowed` None); served to others (--listen), only a file inside
    one of the `allowed` folders (--allow-folder; links and '..' resolved first), else InputError:
    a logged-in visitor must not read whatever the server's user can."""
    path = os.path.expanduser(path.strip())
    if allowed is None:
        return path
    real = os.path.realpath(path)
    for root in allowed:
        root = os.path.realpath(root)
        if os.path.commonpath([real, root]) == root:
            return real
    where = f"inside {', '.join(allowed)}" if allowed else "in no folder (none allowed)"
    raise InputError(f"this page is served to other machines, so a typed path must lie {where}; upload the file, "
                     f"or start the page with --allow-folder DIR")


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
    first = os.path.join(folder, "inputs", f"{stem(path)}-{key_of({'input': fingerprint(path)})}.png")
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


def stem(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", os.path.splitext(os.path.basename(path))[0])[:40] or "input"


def key_of(data) -> str:
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
                                "headers": [(b"content-type", b"text/plain"),
                                            (b"content-length", str(len(body)).encode())]})
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
    layers: str = DEFAULTS["layers"]
    step: float = DEFAULTS["dream.step"]
    octaves: int = DEFAULTS["dream.octaves"]
    iterations: int = DEFAULTS["dream.iterations"]
    iterations_next: int = DEFAULTS["iterations_next"]
    blend: float = DEFAULTS["video.blend"]
    carry_limit: float = DEFAULTS["carry_limit"]
    zoom: str = DEFAULTS["zoom"]
    width: int | None = None
    seed: int | None = 0
    keep_colors: bool = False
    mask: str | None = None
    guide: str | None = None
    guide_weight: float = DEFAULTS["guide_weight"]
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
                "iterations_next": v.iterations_next, "blend": v.blend, "carry_limit": v.carry_limit,
                "zoom": str(z.zoom), "width": o.width or 0, "seed": d.seed or 0,
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
        return ((len(self.at) - 1) / (self.at[-1] - self.at[0])
                if len(self.at) >= 2 and self.at[-1] > self.at[0] else None)

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
    """What the page plays for a render: the render itself when a browser plays it (H.264 in an
    MP4, VP9 in a WebM, 8-bit 4:2:0), else an H.264 copy in `folder`/previews (ProRes, H.265, 16
    bits), made once and kept. InputError in one line if the copy fails."""
    if (os.path.splitext(path)[1].lower(), *video_stream(path)) in BROWSER_PLAYS:
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
                         f"({p.stderr.decode('utf-8', 'replace').strip()[:160]}); "
                         "the render itself is fine, download it")
    os.replace(out + ".part.mp4", out)  # whole or not at all: a copy cut short is never played
    return out




LOOK_KEYS = ("model", "layers", "step", "octaves", "iterations", "iterations_next", "blend", "carry_limit", "zoom",
             "width", "seed", "keep_colors", "guide_weight")


def image_upload(path: str | None, what: str) -> str | None:
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
    return [(label, found[stem]) for label, stem in ((x, tile_stem(x)) for x in labels) if stem in found]
