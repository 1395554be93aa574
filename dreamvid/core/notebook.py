"""What a notebook shows (Jupyter, JupyterLab, VS Code, Colab): a render's result as the playable
output with its frames, time and settings (`result_html`, RenderResult's display), `Shown` for a
still, a video or a contact sheet (`dreamvid.show`), and the progress bar a notebook gets by
itself (`NotebookBar`, tqdm.auto).

IPython stays optional: everything here is HTML through the display protocol's `_repr_html_`
(and `_repr_png_`/`_repr_jpeg_` for a still), which every notebook front end reads and nothing
else calls, and a kernel is looked for among the modules already imported, never by importing
IPython. Media go into the page as data URIs up to EMBED_LIMIT bytes, so a notebook saved with
its outputs keeps them; a larger file is referenced by its path (served by Jupyter from the
notebook's folder, where a render normally is).
"""

from __future__ import annotations

import base64
import html
import json
import os
import sys

import numpy as np

from dreamvid.core.errors import InputError
from dreamvid.core.files import encode_image

# embedded up to this size (8 MiB: a minute of a small H.264 dream); base64 makes the notebook a
# third larger than the file, and front ends slow down past tens of megabytes
EMBED_LIMIT = 8 * 2**20
IMAGES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}
# what a <video> element gets: browsers play H.264 in MP4 and VP9 in WebM; MOV/MKV play where the
# codec inside is one of those (ProRes and H.265 mostly do not: the player then says so)
VIDEOS = {".mp4": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime", ".mkv": "video/x-matroska"}
STYLE = "max-width:100%;height:auto"


def in_notebook() -> bool:
    """Whether this runs in a notebook's kernel (IPython with a kernel, which a terminal IPython
    lacks); never imports IPython."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return getattr(shell, "kernel", None) is not None


def _uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _src(path: str, mime: str) -> tuple[str, str]:
    """(src, note): the file as a data URI when small, else its path (relative to the working
    folder, the notebook's, where Jupyter serves it) and a note saying so."""
    size = os.path.getsize(path)
    if size <= EMBED_LIMIT:
        with open(path, "rb") as f:
            return _uri(mime, f.read()), ""
    rel = os.path.relpath(path)
    src = rel if not rel.startswith("..") else os.path.abspath(path)
    return src, f"{size / 2**20:.0f} MB, not embedded: played from {src}"


def image_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 (H, W, 3) array (a grey (H, W) one too; floats taken on 0..255)."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.ndim != 3 or img.shape[2] != 3 or img.size == 0:
        raise InputError(f"show takes an RGB image of shape (H, W, 3), got shape {img.shape}")
    if img.dtype != np.uint8:
        img = np.clip(np.rint(img.astype(np.float32)), 0, 255).astype(np.uint8)
    return encode_image(np.ascontiguousarray(img), ".png", "the image")


def png_html(png: bytes, title: str = "") -> str:
    return f'<img src="{_uri("image/png", png)}" style="{STYLE}" title="{html.escape(title)}">'


def media_html(path: str) -> str:
    """A file or frame folder as the page shows it: an <img> for a still, a GIF or a folder's first
    frame, a <video> with controls for MP4, WebM, MOV and MKV. InputError for anything else."""
    path = os.fspath(path)
    ext = os.path.splitext(path.rstrip("/"))[1].lower()
    title = html.escape(os.path.basename(path.rstrip("/")))
    if os.path.isdir(path):
        frames = sorted(f for f in os.listdir(path) if os.path.splitext(f)[1].lower() in (".png", ".jpg", ".tiff"))
        if not frames:
            return f"<p>{title}/: no frames</p>"
        first = os.path.join(path, frames[0])
        img = media_html(first) if first.lower().endswith((".png", ".jpg")) else f"<p>{html.escape(first)}</p>"
        return f"{img}<p>{len(frames)} frames in {title}/ (the first shown)</p>"
    if not os.path.isfile(path):
        raise InputError(f"cannot show '{path}': no such file; check the path")
    if ext in IMAGES:
        src, note = _src(path, IMAGES[ext])
        return f'<img src="{src}" style="{STYLE}" title="{title}">' + (f"<p>{note}</p>" if note else "")
    if ext in VIDEOS:
        src, note = _src(path, VIDEOS[ext])
        return (f'<video controls loop playsinline style="{STYLE}" title="{title}">'
                f'<source src="{src}" type="{VIDEOS[ext]}">{title}: this browser does not play it</video>'
                + (f"<p>{note}</p>" if note else ""))
    raise InputError(f"cannot show '{path}': not an image or a video ({', '.join([*IMAGES, *VIDEOS])} or a folder)")


def _record_rows(record_path: str) -> list[tuple[str, str]]:
    """The settings worth a glance from a render's record (workfolder.write_record), [] without one."""
    try:
        with open(record_path, encoding="utf-8") as f:
            record = json.load(f)
        dream = record["settings"]["dream"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    rows = [("network", f"{record.get('network', {}).get('used', dream.get('model'))}: {record.get('objective', '')}"),
            ("device", str(record.get("device", "")))]
    steps = f"{dream.get('octaves')} octaves of {dream.get('iterations')} steps of {dream.get('step')}"
    video = record["settings"].get("video") or {}
    if "iterations_next" in video:
        steps += f", {video['iterations_next']} after the first frame"
    if video.get("blend") is not None:  # a video's (a zoom's blend is its own schedule)
        steps += f", carry {video['blend']}"
    rows += [("dream", steps), ("seed", str(dream.get("seed"))), ("settings", os.path.basename(record_path))]
    return rows


def result_html(result) -> str:
    """A RenderResult as a notebook shows it: the output (media_html) above a small table of its
    frames, time, rate, cuts and settings (from its record)."""
    try:
        media = media_html(result.path)
    except InputError as exc:
        media = f"<p>{html.escape(str(exc))}</p>"
    per = result.seconds / max(result.frames - result.resumed_from, 1)
    rows = [("output", result.path), ("frames", str(result.frames) + (
        f" (resumed from {result.resumed_from})" if result.resumed_from else "")),
            ("time", f"{result.seconds:.1f} s ({per:.2f} s a frame)")]
    if result.fps:
        rows.append(("rate", f"{float(result.fps):.3f} frames/s ({result.fps})"))
    if result.cuts:
        rows.append(("cuts", ", ".join(map(str, result.cuts))))
    rows += _record_rows(result.record) if result.record else []
    cells = "".join(f'<tr><th style="text-align:left">{k}</th><td style="text-align:left">{html.escape(v)}</td></tr>'
                    for k, v in rows)
    return f'<div>{media}<table style="font-size:90%">{cells}</table></div>'


def still_bytes(path) -> dict[str, bytes]:
    """{"png" or "jpeg": the file's bytes} where `path` is a PNG or JPEG still small enough to embed,
    else {}: a still shows as an image output too, for front ends (and readers) that take no HTML."""
    path = os.fspath(path)
    kind = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}.get(os.path.splitext(path)[1].lower())
    if kind is None or not os.path.isfile(path) or os.path.getsize(path) > EMBED_LIMIT:
        return {}
    with open(path, "rb") as f:
        return {kind: f.read()}


class Shown:
    """What `dreamvid.show` returns: shown by a notebook as the last expression of a cell (or through
    IPython.display.display); `html` is the markup, `stills` a still's {"png"/"jpeg": bytes}."""

    def __init__(self, html_text: str, stills: dict[str, bytes] | None = None):
        self.html, self.stills = html_text, stills or {}

    def _repr_html_(self) -> str:
        return self.html

    def _repr_png_(self) -> bytes | None:
        return self.stills.get("png")

    def _repr_jpeg_(self) -> bytes | None:
        return self.stills.get("jpeg")


def show(item, title: str = "") -> Shown:
    """`item` for a notebook: an RGB array (H, W, 3) or a list of them side by side, a path to an
    image, a GIF, a video or a frame folder, or a RenderResult (its display, result_html)."""
    if hasattr(item, "_repr_html_"):
        path = getattr(item, "path", None)
        return Shown(item._repr_html_(), still_bytes(path) if path else None)
    if isinstance(item, (str, os.PathLike)):
        return Shown(media_html(os.fspath(item)), still_bytes(item))
    if isinstance(item, (list, tuple)) and item and all(isinstance(x, np.ndarray) for x in item):
        tiles = "".join(f'<div style="display:inline-block;margin:2px">{png_html(image_png(x))}</div>' for x in item)
        return Shown(f"<div>{tiles}</div>")
    if isinstance(item, np.ndarray):
        png = image_png(item)
        return Shown(png_html(png, title), {"png": png})
    raise InputError(f"show takes an RGB array (H, W, 3) or a list of them, a path to an image or a video, or a "
                     f"RenderResult; got {type(item).__name__}")


class NotebookBar:
    """The progress bar a job shows by itself in a notebook (tqdm.auto: its notebook widget where
    ipywidgets is installed, else text), fed as the command line's bar is; `close` at the job's end."""

    def __init__(self, unit: str = "frame"):
        self.unit, self.bar = unit, None

    def start(self, total, done) -> None:
        from tqdm.auto import tqdm  # tqdm decides, in the kernel, between its widget and text

        self.close()
        self.bar = tqdm(total=total, initial=done, unit=self.unit)

    def frame(self, index, stats) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


__all__ = ["EMBED_LIMIT", "NotebookBar", "Shown", "image_png", "in_notebook", "media_html", "result_html", "show",
           "still_bytes"]
