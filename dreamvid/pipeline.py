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
import functools
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import cv2
import numpy as np

from dreamvid.chain import dream_clip, full_float, palette
from dreamvid.config import Config
from dreamvid.errors import ConfigError, InputError, ResumeError
from dreamvid.stages import Clock, Reader, Writer, pool_size, run_ahead
from dreamvid.workfolder import (Work, check_image_output, check_output, record_path, work_folder, write_image,
                                 write_record)

__all__ = ["Progress", "RenderResult", "render_video", "render_zoom", "render_image", "render_sheet",
           "work_folder", "record_path", "ZOOM_DEFAULT_SIZE", "ZOOM_DEFAULT_FPS"]

ZOOM_DEFAULT_SIZE = (512, 288)  # (width, height) of a zoom from noise or a colour: 16:9, fast to dream
ZOOM_DEFAULT_FPS = Fraction(25)  # the PAL rate, and what image sequences default to as well
_Work = Work  # the work folder's class under its former name here (tests patch _Work.store)


def _noop(*_args) -> None:
    pass


@dataclass
class Progress:
    """Callbacks the CLI provides; every one is optional.

    start(total, done): once, before the first frame: total frames (None when a video does not
        say) and frames already done by an earlier, interrupted run.
    frame(index, stats): after each frame is written; stats holds "cut" (bool, a new shot
        starts here), "amount" (mean |dream - its start image| on 0..255) and "seconds".
    info(message): one-line messages (device, scene cuts, resume, fallbacks).
    """

    start: Callable[[int | None, int], None] = _noop
    frame: Callable[[int, dict], None] = _noop
    info: Callable[[str], None] = _noop


@dataclass
class RenderResult:
    path: str  # the final output
    frames: int  # frames in it (including those taken from an earlier run)
    seconds: float  # wall time of this call
    fps: Fraction  # exact frame rate of the output; Fraction(0) for a still
    cuts: list[int] = field(default_factory=list)  # frame indices where a new shot starts
    resumed_from: int = 0  # first frame this call dreamed (0 = a fresh render)
    # seconds per stage, each summed over the thread it runs in: "decode", "flow" (cut test,
    # flow, occlusion, warp), "dream", "store" (work-folder PNGs), "encode"; and "wait", the
    # time the dream's thread spent waiting for the other stages (what concurrency did not hide)
    stages: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- model


def _dreamer(cfg: Config, model, progress: Progress, settings=None):
    """One Dreamer per render, and weights_at(k) -> objective weights for frame k (None = fixed).
    `settings`: DreamSettings to use instead of cfg.dream.

    `cfg.dream.layers` containing "(" is a layer schedule ("0:(block3_conv3), 60:(block4_conv3)"):
    the objective sums every scheduled layer and the schedule's cross-fade sets their weights.
    """
    from dreamvid.dream import Dreamer
    from dreamvid.models import load_model
    from dreamvid.objectives import GuideTerm, guide, layer, parse
    from dreamvid.schedule import Schedule
    from dreamvid.sources import read_image

    if model is None or isinstance(model, str):
        name = cfg.dream.model if model is None else model
        model = load_model(name, cfg.dream.weights, fallback=(name == "googlenet"),  # logs a fallback itself
                           precision=cfg.dream.precision, device=cfg.dream.device)
    spec = cfg.dream.layers or model.default_layer
    weights_at: Callable[[int], list[float] | None] = lambda k: None
    if "(" in spec:
        sched = Schedule.parse(spec, name="layers", kind=str, interpolation=cfg.zoom.interpolation)
        objective = layer(sched.names[0], cfg.dream.reduce)
        for name in sched.names[1:]:
            objective = objective + layer(name, cfg.dream.reduce)

        def weights_at(k: int) -> list[float]:
            w = sched.weights_at(k)  # a guide term fades with its layer
            return [w.get(t.layer, 0.0) * (cfg.dream.guide_weight if isinstance(t, GuideTerm) else 1.0)
                    for t in objective.terms]  # in term order
    else:
        objective = parse(spec, cfg.dream.reduce)
    guide_image = None
    if cfg.dream.guide:  # read before the output is opened: an unreadable guide writes nothing
        guide_image = read_image(cfg.dream.guide).astype(np.float32)
        for name in objective.layers:
            objective = objective + cfg.dream.guide_weight * guide(name)
    dreamer = Dreamer(model, objective, settings or cfg.dream, guide=guide_image)
    progress.info(f"dreaming {objective} of {model.name}"
                  + (f", guided by '{cfg.dream.guide}'" if cfg.dream.guide else "")
                  + f"; backend {dreamer.device_label}, {model.precision}" + (", XLA" if dreamer.xla else ""))
    return dreamer, weights_at


# ----------------------------------------------------------------------------- masks


def _masks(cfg: Config, size: tuple[int, int], count: int | None, *, fps=None, video_range: bool = False):
    """masks.Masks for frames of size = (w, h), or None without dream.mask. Opened before the work
    folder and the output: a mask with another aspect ratio or frame count stops the render with
    nothing written. video_range: a mask sequence is taken over the input's start/duration/max_frames."""
    if not cfg.dream.mask:
        return None
    from dreamvid.masks import open_masks

    o = cfg.output
    kw = dict(start=o.start, duration=o.duration, max_frames=o.max_frames) if video_range else {}
    return open_masks(cfg.dream.mask, size, count, invert=cfg.dream.mask_invert, feather=cfg.dream.mask_feather,
                      fps=fps, **kw)


# ----------------------------------------------------------------------------- inputs


def _is_sequence(path: str) -> bool:
    """True when open_source will read `path` as images (folder, glob or one image file)."""
    from dreamvid.sources import _GLOB_CHARS, IMAGE_EXTENSIONS

    if _GLOB_CHARS.search(path) and not os.path.exists(path):
        return True
    return os.path.isdir(path) or path.lower().endswith(IMAGE_EXTENSIONS)


# ----------------------------------------------------------------------------- schedules

# The dream's numbers over frames, in videos and zooms: (name, the plain setting, the range every
# frame's value must keep, the message). Each job's section (cfg.video, cfg.zoom) may hold a
# schedule under the name (step, octaves, iterations) that replaces the plain setting.
_DREAM_SCHEDULES = (
    ("step", lambda cfg: cfg.dream.step, lambda x: 1e-4 <= x <= 100.0, "the step schedule must stay within 0.0001..100"),
    ("octaves", lambda cfg: cfg.dream.octaves, lambda x: 1 <= round(x) <= 12, "the octaves schedule must stay within 1..12"),
    ("iterations", lambda cfg: cfg.video.iterations_next, lambda x: 0 <= round(x) <= 1000,
     "the iterations schedule must stay within 0..1000"),
)


def _schedule(text, name: str, interpolation: str, fps: Fraction, frames: int | None = None):
    """Schedule.parse, where a setting written "audio:FILE[:MIN:MAX[:MODE]]" first becomes the
    keyframes `render.py keys` writes for that sound at the render's `fps` (audio.schedule_text;
    `frames`: the render's length where known). The setting itself stays as written, so the
    record repeats the render."""
    from dreamvid import audio
    from dreamvid.schedule import Schedule

    if audio.is_audio(text):
        text = audio.schedule_text(text, fps, name=name, frames=frames)
    return Schedule.parse(text, name=name, interpolation=interpolation)


def _dream_schedules(cfg: Config, section, fps: Fraction, frames: int | None = None) -> dict:
    """{"step", "octaves", "iterations"} -> schedule.Schedule over frames: `section`'s schedule
    (cfg.video or cfg.zoom) where given, else the plain setting as a constant. "iterations" is
    the steps per octave of a frame that starts from a dream (iterations_next). Interpolation:
    zoom.interpolation, as for a layer schedule (_dreamer). `fps`, `frames`: for a schedule that
    follows a sound (_schedule)."""
    return {name: _schedule(getattr(section, name) or repr(plain(cfg)), name, cfg.zoom.interpolation, fps, frames)
            for name, plain, _, _ in _DREAM_SCHEDULES}


def _check_schedules(sched: dict, rules, n: int | None) -> None:
    """ConfigError naming the frame where a schedule leaves its range; rules: (name, ok, message).
    Run before frame 0 is dreamed: linear and monotone-cubic ("smooth") interpolation never
    overshoot, so the keyframes in range (all of them when the length `n` is unknown), frame 0
    and the last frame bound every frame."""
    for name, ok, rule in rules:
        s = sched[name]
        ends = {0} if n is None else {0, n - 1}
        for f in sorted(ends | {f for f in s.frames if n is None or f < n}):
            if not ok(s.at(f)):
                raise ConfigError(f"{rule}, got {s.at(f):g} at frame {f}")


# ----------------------------------------------------------------------------- video


def _video_inputs(source, v, first_to_dream: int, clock: Clock, workers: int, frames: range | None = None):
    """((k, frame, cut), move) for each input frame, in order, made in the reader thread: `cut`
    is True where a new shot starts (flow.cut_score against frame k-1 above the threshold),
    `move` the flow.Motion from frame k-1 to k where frame k will start from a carried dream (a
    frame to dream, inside a shot, with flow on), else None. `frames`: only these frames (a
    segment's); those before it are decoded and passed over, and its first has no frame before.

    Decoding and the cut test run in the reader thread; the motions (the costly part: two DIS
    flows and the occlusion mask) in a pool of `workers` threads, several frame pairs at once,
    at most `workers` frames ahead of what the reader has handed on (stages.run_ahead).
    OpenCV's own thread count is left as it is: OpenCV runs a parallel loop started while
    another one runs serially in its caller's thread, so the pool does not oversubscribe the
    cores (and one pair took the same CPU time with 1 or 2 OpenCV threads)."""
    from dreamvid import flow  # flow.motion looked up when called, so a test may replace it

    begin, stop = (0, None) if frames is None else (frames.start, frames.stop)

    def tasks():
        prev = None
        frames = iter(source)
        k = 0
        while stop is None or k < stop:
            with clock("decode"):
                frame = next(frames, None)  # (H, W, 3) uint8 RGB
            if frame is None:
                return
            if k < begin:  # before the segment: decoded only to reach it
                k += 1
                continue
            cut, call = False, None
            if prev is not None and not v.no_flow:
                with clock("flow"):
                    cut = flow.cut_score(prev, frame) > v.cut_threshold
                if not cut and k >= first_to_dream:
                    call = functools.partial(flow.motion, prev, frame, v.flow, v.flow_preset)
            yield (k, frame, cut), call
            prev, k = frame, k + 1

    return run_ahead(tasks(), workers, clock, stage="flow")


def _close(*parts) -> None:
    """Close the clip's reader thread, masks and source, those that were opened."""
    for part in parts:
        if part is not None:
            part.close()


def _open_clip(cfg: Config, input_path: str):
    from dreamvid.sources import open_source

    return open_source(input_path, start=cfg.output.start, duration=cfg.output.duration,
                       max_frames=cfg.output.max_frames, width=cfg.output.width,
                       fps=cfg.output.fps if _is_sequence(input_path) else None)


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
    from dreamvid.sinks import AudioSpec, check_output_path, open_sink, sink_options

    if cfg.video.chunk_frames or cfg.video.ray:
        from dreamvid.segments import render_segments

        return render_segments(cfg, input_path, output_path, progress, model)
    progress = progress or Progress()
    t0 = time.perf_counter()
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    check_output(output_path, input_path)
    check_output_path(output_path, **sink_options(cfg.output))  # the format and codec too, before the network loads
    clock = Clock()
    source = _open_clip(cfg, input_path)
    reader = masks = None
    try:
        info = source.info
        # the dream's numbers over the frames, checked now, before frame 0 is dreamed; at every
        # keyframe, since a video's length is an estimate until it is decoded
        sched = _video_schedules(cfg, info.fps)
        masks = _masks(cfg, (info.width, info.height), info.n_frames, fps=info.fps, video_range=True)
        work = Work(output_path, "video", cfg, input_path, progress.info)
        if work.state.get("plan") is not None:
            raise ResumeError(f"the work folder '{work.path}' holds a render in segments; run again with the same "
                              f"--chunk-frames, or with --restart to discard it")
        dreamer, weights_at = _dreamer(cfg, model, progress)
        audio = AudioSpec(input_path, cfg.output.start, cfg.output.duration) if cfg.output.audio and info.has_audio else None
        with clock("encode"):
            sink = open_sink(output_path, fps=info.fps, size=(info.width, info.height), audio=audio,
                             **sink_options(cfg.output))
        writer = Writer(work, sink, clock)
        cuts: list[int] = []
        try:
            if work.done:
                progress.info(f"resuming from frame {work.done} (frames 0-{work.done - 1} are in '{work.path}')")
            progress.start(info.n_frames, work.done)
            reader = Reader(_video_inputs(source, cfg.video, work.done, clock, pool_size()), clock)
            written = dream_clip(cfg, sched, dreamer, weights_at, reader, work, writer, clock, progress,
                                  work.base_seed, work.done, cuts, masks)
            if written == 0:
                raise InputError(f"'{input_path}' yielded no frames in the chosen range; check --start and --duration")
            writer.finish()
            with clock("encode"):
                path = sink.close()  # atomic: the final name appears only now, complete
        except BaseException:
            writer.finish(check=False)  # frames already finished are stored, for a resume
            sink.abort()  # no partial file under the final name; the work folder stays for a resume
            raise
    finally:
        _close(reader, masks, source)
    result = RenderResult(path=path, frames=written, seconds=time.perf_counter() - t0, fps=info.fps,
                          cuts=cuts, resumed_from=work.done, stages=dict(clock.seconds))
    write_record(output_path, "video", cfg, dreamer, input_path, work.base_seed, result)
    if not cfg.output.keep_frames:
        work.remove()
    return result


def _video_schedules(cfg: Config, fps: Fraction) -> dict:
    """The dream's numbers over a clip's frames at `fps` (audio: specs follow its sound), checked."""
    sched = _dream_schedules(cfg, cfg.video, fps)
    _check_schedules(sched, [(name, ok, rule) for name, _, ok, rule in _DREAM_SCHEDULES], None)
    return sched


# ----------------------------------------------------------------------------- zoom


def _zoom_start(cfg: Config, image_path: str | None, seed: int, progress: Progress) -> np.ndarray:
    """Frame 0 before dreaming: (H, W, 3) float32 in [0, 255], even width and height.

    zoom.init "image": the image, resized to output.width if given; "noise": zoom.noise_image;
    anything else is a colour for zoom.solid_image. Noise and colours are output.width wide
    (default 512) at 16:9, i.e. 512x288 by default.
    """
    from dreamvid.sources import _output_size, _resize, even, read_image
    from dreamvid.zoom import noise_image, solid_image

    init = (cfg.zoom.init or "image").strip()
    if init == "image":
        if image_path is None:
            raise ConfigError("a zoom needs a start image, or --from noise, or --from a colour like '#204060'")
        img = read_image(image_path)  # (H, W, 3) uint8
        w, h = _output_size(img.shape[1], img.shape[0], cfg.output.width)
        img = _resize(img, (max(w, 2), max(h, 2)))  # a 1-pixel side would crop to nothing: stretch to 2
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
        return x, y
    except ValueError:
        raise ConfigError(f"zoom center must be X,Y in pixels, e.g. 256,144; got {text!r}") from None


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
    from dreamvid.depth import read_frame
    from dreamvid.dream import amount, to_uint8
    from dreamvid.sinks import check_output_path, open_sink, sink_options
    from dreamvid.sources import as_fps
    from dreamvid.zoom import color_stats, match_color, transform

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
    sched = {name: _schedule(getattr(z, name), name, z.interpolation, fps, n)
             for name in ("zoom", "rotate", "pan_x", "pan_y", "blend")}
    sched.update(_dream_schedules(cfg, z, fps, n))  # the dream's numbers over time
    center = _parse_center(z.center)
    # check the schedules now, before frame 0 is dreamed
    _check_schedules(sched, (("zoom", lambda x: x > 0, "zoom must be > 0 (1.0 = no zoom, 1.02 = zoom in 2% per frame)"),
                             ("blend", lambda x: 0.0 <= x <= 1.0, "zoom blend must stay within 0..1 (1 = pure feedback)"),
                             *((name, ok, rule) for name, _, ok, rule in _DREAM_SCHEDULES)), n)
    masks = None
    if cfg.dream.mask:  # checked before the work folder: the frame size does not depend on the seed
        sh, sw = _zoom_start(cfg, image_path_used, 0, Progress()).shape[:2]
        masks = _masks(cfg, (sw, sh), n)
    work = Work(output_path, "zoom", cfg, image_path_used, progress.info)
    start_img = _zoom_start(cfg, image_path_used, work.base_seed, progress)  # (H, W, 3) float32
    h, w = start_img.shape[:2]
    dreamer, weights_at = _dreamer(cfg, model, progress)
    clock = Clock()
    with clock("encode"):
        sink = open_sink(output_path, fps=fps, size=(w, h), **sink_options(cfg.output))
    writer = Writer(work, sink, clock)
    written = 0
    try:
        if work.done:
            progress.info(f"resuming from frame {min(work.done, n)} (frames 0-{min(work.done, n) - 1} are in '{work.path}')")
        progress.start(n, min(work.done, n))
        prev = first_stats = None  # the previous frame exactly as saved (uint8); frame 0's colours
        for k in range(n):
            if k < work.done:  # 0) done by an earlier run
                prev = work.read(k, start_img.shape)
                writer.put(k, read_frame(work.frame_path(k)) if cfg.output.bit_depth == 16 else prev,
                           store=False)  # 16 bits: the stored frame at its full depth
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
                    raise ConfigError(f"zoom blend must stay within 0..1 (1 = pure feedback), got {b:g} at frame {k}")
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
            writer.put(k, dreamed if cfg.output.bit_depth == 16 else out)  # 16 bits: the float dream
            written += 1
            if first_stats is None:
                first_stats = color_stats(out)
            progress.frame(k, {"cut": k == 0, "amount": amount(out, img), "seconds": time.perf_counter() - t})
            prev = out
        writer.finish()
        with clock("encode"):
            path = sink.close()
    except BaseException:
        writer.finish(check=False)  # frames already finished are stored, for a resume
        sink.abort()
        raise
    finally:
        if masks is not None:
            masks.close()
    result = RenderResult(path=path, frames=written, seconds=time.perf_counter() - t0, fps=fps,
                          cuts=[], resumed_from=min(work.done, n), stages=dict(clock.seconds))
    write_record(output_path, "zoom", cfg, dreamer, image_path_used, work.base_seed, result)
    if not cfg.output.keep_frames:
        work.remove()
    return result


# ----------------------------------------------------------------------------- still image


def render_image(cfg: Config, input_path: str, output_path: str, progress: Progress | None = None,
                 model=None, *, gradient_path: str | None = None, strip_path: str | None = None,
                 strip_every: int = 5) -> RenderResult:
    """Dream one still into `output_path` (.png, .jpg or .jpeg), written atomically.

    progress.start(octaves, 0) and progress.frame(k, stats) once per octave. Optional extras:
    gradient_path: the objective's normalised gradient on the input (Dreamer.gradient_image);
    strip_path: the input followed by the image after every `strip_every` ascent steps, 5 times
    (one octave at full size), side by side.
    """
    from dreamvid.dream import amount, to_uint8
    from dreamvid.sources import read_image

    progress = progress or Progress()
    t0 = time.perf_counter()
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    for p in (output_path, gradient_path, strip_path):
        if p:
            check_image_output(p, input_path)
    if strip_path and strip_every < 1:
        raise ConfigError(f"--strip-every must be >= 1 step, got {strip_every}")
    img = read_image(input_path)  # (H, W, 3) uint8
    if cfg.output.width:
        w = int(cfg.output.width)
        h = max(1, round(img.shape[0] * w / img.shape[1]))
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if w < img.shape[1] else cv2.INTER_CUBIC)
    masks = _masks(cfg, (img.shape[1], img.shape[0]), 1)  # one image, or a sequence of exactly one
    mask = None if masks is None else masks.at(0)
    if masks is not None:
        masks.close()
    # one still: XLA would compile each octave's gradient for a single use, so "auto" is off here
    still = dataclasses.replace(cfg.dream, xla="off") if cfg.dream.xla == "auto" else cfg.dream
    dreamer, _ = _dreamer(cfg, model, progress, still)
    n_oct = len(dreamer.octave_sizes(img.shape[0], img.shape[1]))
    progress.start(n_oct, 0)
    t = [time.perf_counter()]

    def octave_done(done: int, total: int) -> None:
        progress.frame(done - 1, {"cut": done == 1, "amount": float("nan"), "seconds": time.perf_counter() - t[0]})
        t[0] = time.perf_counter()

    seed = dreamer.seed  # cfg.dream.seed, or the one the Dreamer drew: recorded either way
    out = to_uint8(palette(cfg, dreamer.dream(img.astype(np.float32), seed=seed, progress=octave_done, mask=mask), img))
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
    write_record(output_path, "image", cfg, dreamer, input_path, seed, result)
    return result


# ----------------------------------------------------------------------------- contact sheet


def render_sheet(input_path: str, output_path: str, *, count: int = 12, columns: int = 4,
                 width: int = 1280) -> RenderResult:
    """A contact sheet of `input_path`'s frames (preview.contact_sheet) into `output_path`
    (.png, .jpg or .jpeg), written atomically. RenderResult.frames: the frames shown."""
    from dreamvid.preview import contact_sheet

    t0 = time.perf_counter()
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    check_image_output(output_path, input_path)
    sheet, shown = contact_sheet(input_path, count=count, columns=columns, width=width)
    write_image(output_path, sheet)
    return RenderResult(path=output_path, frames=len(shown), seconds=time.perf_counter() - t0, fps=Fraction(0))
