"""What every job prepares before its first frame, from the settings: the Dreamer (network,
objective, a layer schedule's weights), the masks, the clip and its inputs (decoded frames, cut
tests and the flow of each pair, ahead of the dream), and the dream's schedules over frames,
checked before anything is dreamed. The video, zoom and gallery jobs (pipeline.py, gallery.py)
and a segment of a render in segments (segments.py) share these; none of them writes a file.
"""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np

from dreamvid.config.schedule import Schedule
from dreamvid.config.settings import Config
from dreamvid.core.errors import ConfigError
from dreamvid.core.progress import Progress
from dreamvid.engine import backends
from dreamvid.engine.dreamer import Dreamer
from dreamvid.engine.models import DreamModel, cached_model
from dreamvid.engine.objectives import GuideTerm, guide, layer, parse
from dreamvid.media import audio  # flow.motion looked up when called, so a test may replace it
from dreamvid.media.masks import open_masks
from dreamvid.media.sources import is_sequence, open_source, read_image
from dreamvid.motion import flow
from dreamvid.render.plan import CutTest
from dreamvid.render.threads import Clock, run_ahead

# ----------------------------------------------------------------------------- model


def make_dreamer(cfg: Config, model, progress: Progress, settings=None):
    """One Dreamer per render, and weights_at(k) -> objective weights for frame k (None = fixed).
    `settings`: DreamSettings to use instead of cfg.dream. `model`: None loads cfg.dream.model,
    a str or path names the network to load, as does a torch.nn.Module (all through
    models.cached_model: once per process, after the job's checks), or a models.DreamModel to use.

    `cfg.dream.layers` containing "(" is a layer schedule ("0:(block3_conv3), 60:(block4_conv3)"):
    the objective sums every scheduled layer and the schedule's cross-fade sets their weights.
    """
    if not isinstance(model, DreamModel):  # loaded once per process (logs a fallback itself)
        d = cfg.dream
        model = cached_model(d.model if model is None else model, weights=d.weights, precision=d.precision,
                             device=d.device, backend=d.backend, trust_pickle=d.trust_pickle)
    spec = cfg.dream.layers or model.default_layer
    def weights_at(k: int) -> list[float] | None:  # a fixed objective: its own weights
        return None
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
    mapped = {n: model.resolve(n) for n in objective.layers if n in model.aliases and model.resolve(n) != n}
    if mapped:
        progress.info(f"{model.name} has no GoogLeNet layers: "
                      + ", ".join(f"{a} dreamed as {b}" for a, b in mapped.items())
                      + " (give --layers to choose)")
    progress.check()  # a safe point: the network loaded (seconds), nothing dreamed yet
    dreamer = Dreamer(model, objective, settings or cfg.dream, guide=guide_image)
    progress.info(f"dreaming {objective} of {model.name}"
                  + (f", guided by '{cfg.dream.guide}'" if cfg.dream.guide else "")
                  + f"; backend {dreamer.device_label}, {model.precision}" + (", XLA" if dreamer.xla else "")
                  + (f" ({backends.why()})" if backends.why() else ""))
    return dreamer, weights_at


# ----------------------------------------------------------------------------- masks


def open_masks_for(cfg: Config, size: tuple[int, int], count: int | None, *, fps=None, video_range: bool = False):
    """masks.Masks for frames of size = (w, h), or None without dream.mask. Opened before the work
    folder and the output: a mask with another aspect ratio or frame count stops the render with
    nothing written. video_range: a mask sequence is taken over the input's start/duration/max_frames."""
    if not cfg.dream.mask:
        return None
    o = cfg.output
    kw = dict(start=o.start, duration=o.duration, max_frames=o.max_frames) if video_range else {}
    return open_masks(cfg.dream.mask, size, count, invert=cfg.dream.mask_invert, feather=cfg.dream.mask_feather,
                      fps=fps, **kw)


# ----------------------------------------------------------------------------- schedules

# The dream's numbers over frames, in videos and zooms: (name, the plain setting, the range every
# frame's value must keep, the message). Each job's section (cfg.video, cfg.zoom) may hold a
# schedule under the name (step, octaves, iterations) that replaces the plain setting.
DREAM_SCHEDULES = (
    ("step", lambda cfg: cfg.dream.step, lambda x: 1e-4 <= x <= 100.0,
     "the step schedule must stay within 0.0001..100"),
    ("octaves", lambda cfg: cfg.dream.octaves, lambda x: 1 <= round(x) <= 12,
     "the octaves schedule must stay within 1..12"),
    ("iterations", lambda cfg: cfg.video.iterations_next, lambda x: 0 <= round(x) <= 1000,
     "the iterations schedule must stay within 0..1000"),
)


def schedule(text, name: str, interpolation: str, fps: Fraction, frames: int | None = None):
    """Schedule.parse, where a setting written "audio:FILE[:MIN:MAX[:MODE]]" first becomes the
    keyframes `dreamvid keys` writes for that sound at the render's `fps` (audio.schedule_text;
    `frames`: the render's length where known). The setting itself stays as written, so the
    record repeats the render."""
    if audio.is_audio(text):
        text = audio.schedule_text(text, fps, name=name, frames=frames)
    return Schedule.parse(text, name=name, interpolation=interpolation)


def dream_schedules(cfg: Config, section, fps: Fraction, frames: int | None = None) -> dict:
    """{"step", "octaves", "iterations"} -> schedule.Schedule over frames: `section`'s schedule
    (cfg.video or cfg.zoom) where given, else the plain setting as a constant. "iterations" is
    the steps per octave of a frame that starts from a dream (iterations_next). Interpolation:
    zoom.interpolation, as for a layer schedule (_dreamer). `fps`, `frames`: for a schedule that
    follows a sound (_schedule)."""
    return {name: schedule(getattr(section, name) or repr(plain(cfg)), name, cfg.zoom.interpolation, fps, frames)
            for name, plain, _, _ in DREAM_SCHEDULES}


def check_schedules(sched: dict, rules, n: int | None) -> None:
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


# ----------------------------------------------------------------------------- clips


def open_clip(cfg: Config, input_path: str):
    """The clip as sources.open_source reads it, at the settings' range and width (an image
    sequence at output.fps)."""
    return open_source(input_path, start=cfg.output.start, duration=cfg.output.duration,
                       max_frames=cfg.output.max_frames, width=cfg.output.width,
                       fps=cfg.output.fps if is_sequence(input_path) else None)


def video_inputs(source, v, first_to_dream: int, clock: Clock, workers: int, frames: range | None = None):
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
    begin, stop = (0, None) if frames is None else (frames.start, frames.stop)

    def tasks():
        prev = seen = None  # the frame before k handed on; the one decoded (the cut test sees every frame)
        test = CutTest(v.cut_threshold, v.min_shot_frames)  # as plan.scan_cuts, so a segment cuts where its plan does
        frames = iter(source)
        k = 0
        while stop is None or k < stop:
            with clock("decode"):
                frame = next(frames, None)  # (H, W, 3) uint8 RGB
            if frame is None:
                return
            with clock("flow"):
                cut_here = not v.no_flow and test(k, seen, frame)
            seen = frame
            if k < begin:  # before the segment: decoded (and cut-tested) only to reach it
                k += 1
                continue
            cut, call = False, None
            if prev is not None and not v.no_flow:
                cut = cut_here
                if not cut and k >= first_to_dream:
                    call = functools.partial(flow.motion, prev, frame, v.flow, v.flow_preset)
            yield (k, frame, cut), call
            prev, k = frame, k + 1

    return run_ahead(tasks(), workers, clock, stage="flow")


def video_schedules(cfg: Config, fps: Fraction) -> dict:
    """The dream's numbers over a clip's frames at `fps` (audio: specs follow its sound), checked."""
    sched = dream_schedules(cfg, cfg.video, fps)
    check_schedules(sched, [(name, ok, rule) for name, _, ok, rule in DREAM_SCHEDULES], None)
    return sched


def close_all(*parts) -> None:
    """Close the clip's reader thread, masks and source, those that were opened."""
    for part in parts:
        if part is not None:
            part.close()


__all__ = ["make_dreamer", "open_masks_for", "DREAM_SCHEDULES", "schedule", "dream_schedules", "check_schedules",
           "open_clip", "video_inputs", "video_schedules", "close_all"]
