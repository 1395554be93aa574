"""The jobs: the frame loops of a video, a zoom, a still and a contact sheet. No argument parsing
and no printing: the CLI passes a `Config` and a `Progress`, and gets a `RenderResult` back or a
`DreamvidError` whose message names the fix.

- `render_video`: each frame of a clip, flow-guided so the dream sticks to the scene (frame 0
  of a shot is dreamed in full; later frames start from the previous dream warped onto them);
  with video.chunk_frames or video.ray, `segments.render_segments`: the clip as a plan of segments
  (plan.py), each rendered by `segments.render_segment` here or as a Ray task (cluster.py), then
  assembled;
- `render_zoom`: the infinite zoom, each frame the previous dream transformed and dreamed again;
- `render_image`: one still;
- `render_sheet`: a contact sheet of a render's frames.

The plumbing the jobs share lives beside them: `chain` (a clip's chain of frames, each started
from the previous dream, on the host or kept on the GPU), `workfolder` (resume state, lossless
frames, output records, atomic writes) and `stages` (the reader, writer and flow threads).
Resume: frame k is dreamed with seed `base_seed + k` and the chain carries each frame exactly as
saved, so a resumed render makes the frames an uninterrupted one would (see workfolder).

Concurrency. The dream runs in the calling thread; decoding and the scene-cut test run ahead in a
reader thread, and the optical flow of the next frame pairs (it needs the input frames only) in a
pool of threads beside it, several pairs at once; the finished frames are stored and encoded in a
writer thread. Every queue is bounded. On a GPU the CPU stages hide behind the dream;
`RenderResult.stages` says how much time each took and how long the dream waited for them. The
writer runs at most one frame behind the dream (on a GPU, the frame queued before the one being
dreamed), so a kill -9 loses the frame being dreamed and, during the milliseconds its PNG takes,
the one before.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from fractions import Fraction

import cv2
import numpy as np

from dreamvid.config.settings import Config
from dreamvid.core.errors import ConfigError, InputError, ResumeError
from dreamvid.core.files import check_image_output, check_output, write_image
from dreamvid.core.frames import amount, even, output_size, resize, to_uint8
from dreamvid.core.progress import Progress, RenderResult
from dreamvid.media.formats import check_output_path, sink_options
from dreamvid.media.sheets import contact_sheet
from dreamvid.media.sinks import AudioSpec
from dreamvid.media.sources import as_fps, read_image
from dreamvid.motion.zoom import color_stats, match_color, noise_image, solid_image, transform
from dreamvid.render.chain import dream_clip, full_float, palette
from dreamvid.render.output import Output
from dreamvid.render.prepare import (
    DREAM_SCHEDULES,
    check_schedules,
    close_all,
    dream_schedules,
    make_dreamer,
    open_clip,
    open_masks_for,
    schedule,
    video_inputs,
    video_schedules,
)
from dreamvid.render.segments import render_segments
from dreamvid.render.threads import Clock, Reader, pool_size
from dreamvid.render.workfolder import Work, locks_output, record_path, stored_for_sink, work_folder, write_record

__all__ = ["Progress", "RenderResult", "render_video", "render_zoom", "render_image", "render_sheet", "dream_image",
           "still_input",
           "work_folder", "record_path", "ZOOM_DEFAULT_SIZE", "ZOOM_DEFAULT_FPS"]

ZOOM_DEFAULT_SIZE = (512, 288)  # (width, height) of a zoom from noise or a colour: 16:9, fast to dream
ZOOM_DEFAULT_FPS = Fraction(25)  # the PAL rate, and what image sequences default to as well


# ----------------------------------------------------------------------------- video


def _sound_length(out, fps) -> float | None:
    """Seconds of the input's sound to mux: --duration, or the frames --max-frames keeps (ffmpeg's
    -shortest alone lets the sound run on by up to a second past a short render's last frame,
    since the sound is read far ahead of the frames piped in)."""
    cap = out.max_frames / float(fps) if out.max_frames else None
    return cap if out.duration is None else out.duration if cap is None else min(out.duration, cap)


@locks_output()  # one render per output: a second is refused (workfolder.lock_output)
def render_video(cfg: Config, input_path: str, output_path: str, progress: Progress | None = None,
                 model=None) -> RenderResult:
    """Dream every frame of a clip (video file, image folder or glob) into `output_path`
    (.mp4/.mov/.mkv/.gif, or a folder ending in '/' for PNG frames) at the input's exact rate.

    Frame 0 of each shot is dreamed in full; frame t>0 starts from the previous dream carried
    along the optical flow (flow.motion, flow.carry_over) and takes `video.iterations_next`
    steps per octave. A scene cut (flow.cut_score above `video.cut_threshold`) starts a fresh
    shot. video.step / video.octaves / video.iterations, when set, are schedules that replace
    dream.step / dream.octaves / video.iterations_next frame by frame (a shot's first frame
    keeps dream.iterations). Decoding runs ahead in a reader thread and flow in a pool of
    threads beside it, storing and encoding behind in a writer thread (module docstring).
    With video.chunk_frames or video.ray the clip is rendered as a plan of segments instead
    (`render_segments`). `model`: None loads cfg.dream.model; or a DreamModel (or a model
    name/path) to use.
    """
    if cfg.video.chunk_frames or cfg.video.ray:
        connect = None
        if cfg.video.ray:
            from dreamvid.render.cluster import connect  # imports Ray (heavy, optional): only for --ray
        return render_segments(cfg, input_path, output_path, progress, model, connect)
    progress = progress or Progress()
    t0 = time.perf_counter()
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    check_output(output_path, input_path)
    check_output_path(output_path, **sink_options(cfg.output))  # the format and codec too, before the network loads
    clock = Clock()
    source = open_clip(cfg, input_path)
    reader = masks = None
    try:
        info = source.info
        # the dream's numbers over the frames, checked now, before frame 0 is dreamed; at every
        # keyframe, since a video's length is an estimate until it is decoded
        sched = video_schedules(cfg, info.fps)
        masks = open_masks_for(cfg, (info.width, info.height), info.n_frames, fps=info.fps, video_range=True)
        work = Work(output_path, "video", cfg, input_path, progress.info)
        if work.state.get("plan") is not None:
            raise ResumeError(f"the work folder '{work.path}' holds a render in segments; run again with the same "
                              f"--chunk-frames, or with --restart to discard it")
        dreamer, weights_at = make_dreamer(cfg, model, progress)
        audio = None
        if cfg.output.audio and info.has_audio:
            audio = AudioSpec(input_path, cfg.output.start, _sound_length(cfg.output, info.fps))
        cuts: list[int] = []
        with Output(work, output_path, clock, progress, fps=info.fps, size=(info.width, info.height), audio=audio,
                    **sink_options(cfg.output)) as out:
            if work.done:
                progress.info(f"resuming from frame {work.done} (frames 0-{work.done - 1} are in '{work.path}')")
            progress.start(info.n_frames, work.done)
            reader = Reader(video_inputs(source, cfg.video, work.done, clock, pool_size()), clock)
            written = dream_clip(cfg, sched, dreamer, weights_at, reader, work, out, clock, progress,
                                 work.base_seed, work.done, cuts, masks)
            if written == 0:
                raise InputError(f"'{input_path}' yielded no frames in the chosen range; check --start and --duration")
            path = out.close()
    finally:
        close_all(reader, masks, source)
    result = RenderResult(path=path, frames=written, seconds=time.perf_counter() - t0, fps=info.fps,
                          cuts=cuts, resumed_from=work.done, stages=dict(clock.seconds))
    result.record = write_record(output_path, "video", cfg, dreamer, input_path, work.base_seed, result)
    out.done(cfg.output.keep_frames)
    return result


# ----------------------------------------------------------------------------- zoom


def _zoom_start(cfg: Config, image_path: str | None, seed: int, progress: Progress) -> np.ndarray:
    """Frame 0 before dreaming: (H, W, 3) float32 in [0, 255], even width and height.

    zoom.init "image": the image, resized to output.width if given; "noise": zoom.noise_image;
    anything else is a colour for zoom.solid_image. Noise and colours are output.width wide
    (default 512) at 16:9, i.e. 512x288 by default.
    """
    init = (cfg.zoom.init or "image").strip()
    if init == "image":
        if image_path is None:
            raise ConfigError("a zoom needs a start image, or --from noise, or --from a colour like '#204060'")
        img = read_image(image_path)  # (H, W, 3) uint8
        h, w = output_size(img.shape[0], img.shape[1], cfg.output.width)
        img = resize(img, (max(h, 2), max(w, 2)))  # a 1-pixel side would crop to nothing: stretch to 2
        img = img[: img.shape[0] - img.shape[0] % 2, : img.shape[1] - img.shape[1] % 2]  # even for H.264
        return img.astype(np.float32)
    if image_path is not None:
        progress.info(f"--from {init}: the image '{image_path}' is not used")
    if cfg.output.width:
        w = even(cfg.output.width)
        h = even(w * ZOOM_DEFAULT_SIZE[1] / ZOOM_DEFAULT_SIZE[0])
    else:
        w, h = ZOOM_DEFAULT_SIZE
    if init == "noise":
        return noise_image(w, h, seed=seed)
    return solid_image(w, h, init)


def _parse_center(text: str | None) -> tuple[float, float] | None:
    if text is None or not str(text).strip():
        return None
    try:
        x, y = (float(p) for p in str(text).split(","))
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError
        return x, y
    except ValueError:
        raise ConfigError(f"zoom center must be X,Y in pixels, e.g. 256,144; got {text!r}") from None


@locks_output()
def render_zoom(cfg: Config, image_path: str | None, output_path: str, progress: Progress | None = None,
                model=None) -> RenderResult:
    """The infinite zoom: frame 0 is the start image dreamed in full; frame k > 0 is frame k-1
    transformed by the zoom schedules at k (zoom, rotate, pan), mixed with the undreamed start
    image where blend < 1 (img = blend * img + (1 - blend) * start), pulled towards frame 0's
    colours (zoom.color_match), and dreamed with `video.iterations_next` steps per octave (it
    starts from a dream already). zoom.step / zoom.octaves / zoom.iterations, when set, are
    schedules that replace dream.step / dream.octaves / video.iterations_next frame by frame.
    Length: zoom.seconds * fps when given, else zoom.frames; fps: output.fps, else 25.
    """
    progress = progress or Progress()
    t0 = time.perf_counter()
    output_path = os.fspath(output_path)
    image_path = None if image_path is None else os.fspath(image_path)
    z = cfg.zoom
    image_path_used = image_path if (z.init or "image").strip() == "image" else None
    check_output(output_path, image_path_used)
    check_output_path(output_path, **sink_options(cfg.output))  # the format and codec too, before the network loads
    fps = as_fps(cfg.output.fps) if cfg.output.fps else ZOOM_DEFAULT_FPS
    n = max(1, int(round(z.seconds * fps))) if z.seconds else int(z.frames)
    if cfg.output.max_frames:
        n = min(n, cfg.output.max_frames)
    sched = {name: schedule(getattr(z, name), name, z.interpolation, fps, n)
             for name in ("zoom", "rotate", "pan_x", "pan_y", "blend")}
    sched.update(dream_schedules(cfg, z, fps, n))  # the dream's numbers over time
    center = _parse_center(z.center)
    # check the schedules now, before frame 0 is dreamed
    check_schedules(sched, (("zoom", lambda x: x > 0, "zoom must be > 0 (1.0 = no zoom, 1.02 = zoom in 2% per frame)"),
                             ("blend", lambda x: 0.0 <= x <= 1.0,
                              "zoom blend must stay within 0..1 (1 = pure feedback)"),
                             *((name, ok, rule) for name, _, ok, rule in DREAM_SCHEDULES)), n)
    masks = None
    if cfg.dream.mask:  # checked before the work folder: the frame size does not depend on the seed
        sh, sw = _zoom_start(cfg, image_path_used, 0, Progress()).shape[:2]
        masks = open_masks_for(cfg, (sw, sh), n)
    work = Work(output_path, "zoom", cfg, image_path_used, progress.info)
    start_img = _zoom_start(cfg, image_path_used, work.base_seed, progress)  # (H, W, 3) float32
    h, w = start_img.shape[:2]
    dreamer, weights_at = make_dreamer(cfg, model, progress)
    clock = Clock()
    written = 0
    try:
        with Output(work, output_path, clock, progress, fps=fps, size=(w, h), **sink_options(cfg.output)) as output:
            if work.done:
                done = min(work.done, n)
                progress.info(f"resuming from frame {done} (frames 0-{done - 1} are in '{work.path}')")
            progress.start(n, min(work.done, n))
            prev = first_stats = None  # the previous frame exactly as saved (uint8); frame 0's colours
            for k in range(n):
                if k < work.done:  # 0) done by an earlier run
                    prev = work.read(k, start_img.shape)
                    output.put(k, stored_for_sink(work, k, prev, cfg.output.bit_depth), store=False)
                    if first_stats is None:
                        first_stats = color_stats(prev)
                    written += 1
                    continue
                t = time.perf_counter()
                seed = work.base_seed + k
                if prev is None:
                    # 1) frame 0: the start image dreamed in full
                    img, iterations = start_img, cfg.dream.iterations
                else:
                    # 2) move the previous dream: zoom/rotate about the centre, then pan
                    img = transform(prev.astype(np.float32), zoom=sched["zoom"].at(k), rotate=sched["rotate"].at(k),
                                    pan=(sched["pan_x"].at(k), sched["pan_y"].at(k)), center=center)
                    # 3) optionally let the start image show through
                    b = sched["blend"].at(k)
                    if not 0.0 <= b <= 1.0:
                        raise ConfigError(f"zoom blend must stay within 0..1 (1 = pure feedback), "
                                          f"got {b:g} at frame {k}")
                    if b < 1.0:
                        img = np.float32(b) * img + np.float32(1.0 - b) * start_img
                    # 4) hold frame 0's colours, 5) dream on
                    if z.color_match > 0:
                        img = match_color(img, first_stats, strength=z.color_match)
                    iterations = round(sched["iterations"].at(k))
                with clock("dream"):
                    dreamed = dreamer.dream(img, iterations=iterations, step=sched["step"].at(k),
                                            octaves=round(sched["octaves"].at(k)), seed=seed, weights=weights_at(k),
                                            mask=None if masks is None else masks.at(k), as_uint8=not full_float(cfg))
                dreamed = palette(cfg, dreamed, img)  # the palette of the frame it started from
                out = to_uint8(dreamed)
                output.put(k, dreamed if cfg.output.bit_depth == 16 else out)  # 16 bits: the float dream
                written += 1
                if first_stats is None:
                    first_stats = color_stats(out)
                progress.frame(k, {"cut": k == 0, "amount": amount(out, img), "seconds": time.perf_counter() - t})
                prev = out
            path = output.close()
    finally:
        if masks is not None:
            masks.close()
    result = RenderResult(path=path, frames=written, seconds=time.perf_counter() - t0, fps=fps,
                          cuts=[], resumed_from=min(work.done, n), stages=dict(clock.seconds))
    result.record = write_record(output_path, "zoom", cfg, dreamer, image_path_used, work.base_seed, result)
    output.done(cfg.output.keep_frames)
    return result


# ----------------------------------------------------------------------------- still image


def still_input(cfg: Config, img: np.ndarray) -> np.ndarray:
    """A still (RGB uint8 (H, W, 3)) at output.width, keeping its aspect (no rounding to even: a
    still is no video frame), or as it is."""
    if not cfg.output.width:
        return img
    w = int(cfg.output.width)
    h = max(1, round(img.shape[0] * w / img.shape[1]))
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if w < img.shape[1] else cv2.INTER_CUBIC)


def dream_image(cfg: Config, img: np.ndarray, progress: Progress | None = None, model=None):
    """Dream one still, RGB uint8 (H, W, 3), with cfg.dream's settings and mask: (the dream as
    RGB uint8 (H, W, 3), the Dreamer). progress.start(octaves, 0) and progress.frame(k, stats)
    once per octave. `model`: as for render_video."""
    progress = progress or Progress()
    masks = open_masks_for(cfg, (img.shape[1], img.shape[0]), 1)  # one image, or a sequence of exactly one
    mask = None if masks is None else masks.at(0)
    if masks is not None:
        masks.close()
    # one still: XLA would compile each octave's gradient for a single use, so "auto" is off here
    still = dataclasses.replace(cfg.dream, xla="off") if cfg.dream.xla == "auto" else cfg.dream
    dreamer, _ = make_dreamer(cfg, model, progress, still)
    n_oct = len(dreamer.octave_sizes(img.shape[0], img.shape[1]))
    progress.start(n_oct, 0)
    t = [time.perf_counter()]

    def octave_done(done: int, total: int) -> None:
        progress.frame(done - 1, {"cut": done == 1, "amount": float("nan"), "seconds": time.perf_counter() - t[0]})
        t[0] = time.perf_counter()

    dreamed = dreamer.dream(img.astype(np.float32), seed=dreamer.seed, progress=octave_done, mask=mask)
    return to_uint8(palette(cfg, dreamed, img)), dreamer


def render_image(cfg: Config, input_path: str, output_path: str, progress: Progress | None = None,
                 model=None, *, gradient_path: str | None = None, strip_path: str | None = None,
                 strip_every: int = 5) -> RenderResult:
    """Dream one still into `output_path` (.png, .jpg or .jpeg), written atomically.

    progress.start(octaves, 0) and progress.frame(k, stats) once per octave. Optional extras:
    gradient_path: the objective's normalised gradient on the input (Dreamer.gradient_image);
    strip_path: the input followed by the image after every `strip_every` ascent steps, 5 times
    (one octave at full size), side by side.
    """
    progress = progress or Progress()
    t0 = time.perf_counter()
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    for p in (output_path, gradient_path, strip_path):
        if p:
            check_image_output(p, input_path)
    if strip_path and strip_every < 1:
        raise ConfigError(f"--strip-every must be >= 1 step, got {strip_every}")
    img = still_input(cfg, read_image(input_path))  # (H, W, 3) uint8
    out, dreamer = dream_image(cfg, img, progress, model)
    progress.check()  # a safe point: dreamed, nothing written yet
    write_image(output_path, out)
    if gradient_path:
        g = dreamer.gradient_image(img.astype(np.float32))
        write_image(gradient_path, g)
    if strip_path:
        steps = dreamer.steps_strip(img.astype(np.float32), strip_every, 5)
        strip = np.concatenate([img] + [to_uint8(s) for s in steps], axis=1)  # (H, 6W, 3)
        write_image(strip_path, strip)
    progress.info(f"added {amount(out, img):.1f} on average (0..255)")
    result = RenderResult(path=output_path, frames=1, seconds=time.perf_counter() - t0, fps=Fraction(0))
    # the seed: cfg.dream.seed, or the one the Dreamer drew; recorded either way
    result.record = write_record(output_path, "image", cfg, dreamer, input_path, dreamer.seed, result)
    return result


# ----------------------------------------------------------------------------- contact sheet


def render_sheet(input_path: str, output_path: str, *, count: int = 12, columns: int = 4,
                 width: int = 1280) -> RenderResult:
    """A contact sheet of `input_path`'s frames (preview.contact_sheet) into `output_path`
    (.png, .jpg or .jpeg), written atomically. RenderResult.frames: the frames shown."""
    t0 = time.perf_counter()
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    check_image_output(output_path, input_path)
    sheet, shown = contact_sheet(input_path, count=count, columns=columns, width=width)
    write_image(output_path, sheet)
    return RenderResult(path=output_path, frames=len(shown), seconds=time.perf_counter() - t0, fps=Fraction(0))
