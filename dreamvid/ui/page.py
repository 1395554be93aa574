"""The web page (`dreamvid ui`): open a clip or a still, pick a look by eye, preview it, render
it with progress, cancel and resume, play and download the result. A thin layer over the Python
API (api.py), served by Gradio (the `ui` extra): its job queue runs one dream at a time, its
video and image components play and show the results, its uploads are size-limited. What the
page does without Gradio (the checks, the settings, the running job, the H.264 copies) is in
uiwork.py; here are the controls, their events and the server.

Everything the page makes lives in one work folder (`--folder`, default ./dreamvid-ui):
  uploads/   what the browser sent (Gradio's upload folder, GRADIO_TEMP_DIR)
  inputs/    each opened input's first frame (the still the previews and the gallery dream)
  renders/   the renders, each named by its input and a hash of its settings, with its record
             and its work folder: the same settings again resume a cancelled render there
  previews/  the previews (a frame, a two-second excerpt) and the H.264 copies that play in the
             page where the render is ProRes, H.265 or 16-bit
  gallery/   the layer galleries, tiles kept (a second look at the same image is instant)

Security: loopback (127.0.0.1) unless `listen` is given, and then only with a password
(`uiwork.check_listen`); every /file= request is answered only for a file inside the work folder
(`uiwork.FileGuard`, before Gradio's own rules); analytics, telemetry, run history, the MCP server and
web fonts off (nothing is fetched from outside); every bad file or setting is answered in the
page in one line ("error: ..."), an upload checked for its type before any work.
"""

from __future__ import annotations

import os
import time

from dreamvid import api
from dreamvid.config.presets import list_presets
from dreamvid.config.settings import UI_FOLDER, UI_PORT
from dreamvid.core.errors import Cancelled, ConfigError, DreamvidError
from dreamvid.render.workfolder import fingerprint, record_path, work_folder
from dreamvid.ui.work import (
    AUTH_ENV,
    FORMATS,
    LOOK_KEYS,
    LOOPBACK,
    MAX_UPLOAD_MB,
    NO_PRESET,
    FileGuard,
    Jobs,
    Look,
    Pace,
    check_listen,
    describe,
    gallery_tiles,
    image_upload,
    key_of,
    one_line,
    playable,
    preset_look,
    record_look,
    status,
    stem,
    typed_path,
)

__all__ = [
    "AUTH_ENV",
    "DEFAULT_FOLDER",
    "DEFAULT_PORT",
    "LOOPBACK",
    "MAX_UPLOAD_MB",
    "build",
    "serve",
]

DEFAULT_FOLDER, DEFAULT_PORT = UI_FOLDER, UI_PORT
EXCERPT_SECONDS = 2.0
GALLERY_TILE_WIDTH = 160  # small: a tile in about a second or two on a CPU
# what the page writes; served by Gradio from here (the uploads folder is not among them: an
# upload is served back only as an attachment, never inline)
SERVED = ("inputs", "renders", "previews", "gallery")


# ----------------------------------------------------------------------------- the page


CSS = """
.dv-progress {display: flex; gap: .8em; align-items: center; font-variant-numeric: tabular-nums}
.dv-progress progress {width: 16em; height: 1em}
#dv-status {min-height: 2em}
#dv-input img, #dv-dream img {width: 100%; height: 100%; object-fit: contain}
"""


def build(folder: str, *, max_mb: float = MAX_UPLOAD_MB, allowed: list[str] | None = None):
    """The page, as a gr.Blocks, writing into `folder` (made here). Gradio must be imported
    after GRADIO_TEMP_DIR is set (serve does both). `allowed`: where a typed path may point
    (uiwork.typed_path; None: anywhere on this machine)."""
    import gradio as gr  # the optional `ui` extra: only `dreamvid ui` needs it

    folder = os.path.abspath(folder)
    jobs = Jobs()
    presets = [NO_PRESET] + list_presets()
    start = preset_look("preview")

    def look(preset, record, model, layers, step, octaves, iterations, iterations_next, blend, carry_limit, zoom, width,
             seed, keep_colors, mask, guide, guide_weight, frames, fmt) -> Look:
        def count(x):  # a Number box: blank or 0 is "not given"
            return None if x in (None, "") or int(x) == 0 else int(x)

        return Look(preset=preset, record=record, model=(model or "").strip(), layers=(layers or "").strip(),
                    step=float(step), octaves=int(octaves), iterations=int(iterations),
                    iterations_next=int(iterations_next), blend=float(blend),
                    carry_limit=float(carry_limit), zoom=str(zoom).strip() or "1.02",
                    width=count(width), seed=int(seed or 0),
                    keep_colors=bool(keep_colors), mask=image_upload(mask, "mask"), guide=image_upload(guide, "guide"),
                    guide_weight=float(guide_weight), frames=count(frames), fmt=fmt)

    def skip_all(n):
        return tuple(gr.skip() for _ in range(n))

    # -- open

    def open_input(upload, typed):
        path = upload or (typed or "").strip()
        if not path:
            return None, "", None, None, status("error: choose a clip or a still to upload, "
                                                "or type a path on this machine")
        try:
            opened, _ = describe(path if upload else typed_path(path, allowed), folder, max_mb)
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
        name = (f"{stem(opened.path)}-{'excerpt-' if excerpt else ''}"
                f"{key_of([job, preset, options, fingerprint(opened.path)])}{lk.ext()}")
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
        for kind, item in jobs.run(lambda progress, cancel: render(opened.path, output, preset=preset,
                                                                   progress=progress, cancel=cancel, **options)):
            if kind == "update":
                pace.update(item)
                if item.kind == "frame":
                    latest = item.index
                elif item.kind == "info":
                    note = f" · {item.message}"
                continue
            if kind == "done":
                # the running notes (the backend, where a resume's frames are) give way to how it ended
                note = (f" · done in {item.seconds:.1f} s"
                        + (f", resumed at frame {item.resumed_from}" if item.resumed_from else ""))
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
        output = os.path.join(folder, "gallery",
                              f"{stem(opened.path)}-{key_of([preset, options, fingerprint(opened.first)])}.jpg")
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
                yield (status(one_line(item) if not isinstance(item, Cancelled)
                              else "cancelled; the tiles made are kept"), gr.skip(), gr.skip())
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
                    model = gr.Textbox(start["model"], label="Network", elem_id="dv-model",
                                       info="a name, torchvision:NAME, timm:NAME, or a .keras/.pb/.onnx/.pt path")
                    layers = gr.Textbox(start["layers"], label="Layers (blank: the network's own)", elem_id="dv-layers")
                with gr.Row():
                    step = gr.Slider(0.1, 10, value=start["step"], step=0.1, label="Strength (step)", elem_id="dv-step")
                    octaves = gr.Slider(1, 8, value=start["octaves"], step=1, label="Octaves", elem_id="dv-octaves")
                with gr.Row():
                    iterations = gr.Slider(0, 50, value=start["iterations"], step=1, label="Steps (first frame)",
                                           elem_id="dv-iterations")
                    iterations_next = gr.Slider(0, 50, value=start["iterations_next"], step=1,
                                                label="Steps (later frames)",
                                                elem_id="dv-iterations-next")
                with gr.Row():
                    blend = gr.Slider(0, 1, value=start["blend"], step=0.05,
                                      label="Carry (share of the last dream kept)",
                                      elem_id="dv-blend")
                    carry_limit = gr.Slider(0, 10, value=start["carry_limit"], step=0.5,
                                            label="Carry limit (x the first frame's dream; 0: none)",
                                            elem_id="dv-carry-limit")
                with gr.Row():
                    zoom = gr.Textbox(start["zoom"], label="Zoom per frame (a still's zoom)", elem_id="dv-zoom")
                    width = gr.Number(start["width"] or 0, label="Width (px; 0: the input's)", precision=0,
                                      elem_id="dv-width")
                    seed = gr.Number(start["seed"] or 0, label="Seed (the same seed, the same dream)", precision=0,
                                     elem_id="dv-seed")
                    frames = gr.Number(0, label="Frames (0: all; a zoom: 120)", precision=0, elem_id="dv-frames")
                with gr.Row():
                    keep_colors = gr.Checkbox(start["keep_colors"], label="Keep the input's colours",
                                              elem_id="dv-keep-colors")
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

        controls = [preset, record, model, layers, step, octaves, iterations, iterations_next, blend, carry_limit, zoom,
                    width, seed, keep_colors, mask, guide, guide_weight, frames, fmt]
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


def serve(*, port: int = DEFAULT_PORT, listen: str | None = None, auth: str | None = None,
          folder: str = DEFAULT_FOLDER, max_mb: float = MAX_UPLOAD_MB, allow_folders: list[str] | None = None):
    """Start the page (returns (page, url) once it listens; `page.block_thread()` waits). The
    checks come first: a bad --listen/--auth raises ConfigError before anything starts. A path
    typed into the page may name any file on this machine while it serves the loopback only;
    with `listen`, only a file inside `allow_folders` (none: uploads only)."""
    host, pair = check_listen(listen, auth)
    allowed = None if host in (LOOPBACK, "localhost", "::1") else [os.path.abspath(f) for f in (allow_folders or [])]
    for f in allowed or []:
        if not os.path.isdir(f):
            raise ConfigError(f"--allow-folder '{f}' is not a folder on this machine; check the path")
    if not 1 <= int(port) <= 65535:
        raise ConfigError(f"--port must be 1..65535, got {port}")
    if max_mb <= 0:
        raise ConfigError(f"--max-upload must be a positive number of MB, got {max_mb:g}")
    folder = os.path.abspath(folder)
    try:
        for sub in ("uploads", *SERVED):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot make the work folder '{folder}' ({exc.strerror}); "
                          "pass --folder DIR on a writable disk") from None
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
    page = build(folder, max_mb=max_mb, allowed=allowed)
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
