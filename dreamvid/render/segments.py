"""A clip as a plan of segments (`--chunk-frames`, `--ray`): each segment rendered by the same
frame loop as a render in one piece (`chain.dream_clip`) into the work folder, here one after
another or as Ray tasks (cluster.py), then the output assembled in order with the cross-fades
(plan.Plan.sources) and the input's sound.

`render_segment` renders one segment wherever it runs; `render_segments` is the job: the plan,
the runner, the assembly and the record. No argument parsing and no printing.
"""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import numpy as np

from dreamvid.config.settings import Config
from dreamvid.core.errors import InputError
from dreamvid.core.files import check_output
from dreamvid.core.frames import to_uint8
from dreamvid.core.progress import Progress, RenderResult
from dreamvid.media.bitdepth import read_frame
from dreamvid.media.formats import check_output_path, sink_options
from dreamvid.media.sinks import AudioSpec
from dreamvid.media.sources import read_image
from dreamvid.render.chain import dream_clip
from dreamvid.render.output import Output
from dreamvid.render.plan import make_plan, scan_cuts
from dreamvid.render.prepare import close_all, make_dreamer, open_clip, open_masks_for, video_inputs, video_schedules
from dreamvid.render.threads import Clock, Reader, Writer, pool_size
from dreamvid.render.workfolder import Work, locks_output, write_record

__all__ = ["render_segment", "render_segments", "dreamed_with"]


class _NoSink:
    """A segment's frames go to the work folder only; the output is assembled afterwards."""

    def write(self, frame) -> None:
        pass


def render_segment(cfg: Config, input_path: str, segment, frames, base_seed: int, dreamer=None,
                   progress: Progress | None = None, model=None) -> int:
    """Render one segment (plan.Segment) of a clip into `frames` (workfolder.SegmentFrames),
    with the same frame loop as a render in one piece and a fresh chain at segment.start;
    continue after the frames already present (a resumed render, a retried task). Opens the
    input itself, so it runs wherever the input and the work folder can be read. `dreamer`:
    (Dreamer, weights_at) from `prepare.make_dreamer`, or None to build one. Returns the frames dreamed
    now; progress.frame(k, stats) after each."""
    progress = progress or Progress()
    if frames.done >= segment.end - segment.start:
        return 0
    dreamer, weights_at = dreamer or make_dreamer(cfg, model, progress)
    clock = Clock()
    source = open_clip(cfg, input_path)
    done_until = segment.start + frames.done
    reader = writer = masks = None
    try:
        info = source.info
        sched = video_schedules(cfg, info.fps)
        masks = open_masks_for(cfg, (info.width, info.height), info.n_frames, fps=info.fps, video_range=True)
        reader = Reader(video_inputs(source, cfg.video, done_until, clock, pool_size(),
                                      frames=range(segment.start, segment.end)), clock)
        writer = Writer(frames, _NoSink(), clock)
        written = dream_clip(cfg, sched, dreamer, weights_at, reader, frames, writer, clock, progress,
                              base_seed, done_until, [], masks)
        writer.finish()
    except BaseException:
        if writer is not None:
            writer.finish(check=False)  # frames already finished are stored, for a retry
        raise
    finally:
        close_all(reader, masks, source)
    if written < segment.end - segment.start:
        raise InputError(f"'{input_path}' ended at frame {segment.start + written}, before frame {segment.end - 1} "
                         f"that its plan counted; check the file is complete and the same on every node")
    return written - (done_until - segment.start)


def _plan(cfg: Config, input_path: str, progress: Progress):
    """The clip's chunk plan (plan.make_plan), its cuts found by decoding the input once."""
    v = cfg.video
    source = open_clip(cfg, input_path)
    try:
        n, cuts = scan_cuts(iter(source), float("inf") if v.no_flow else v.cut_threshold, v.min_shot_frames)
    finally:
        source.close()
    if n == 0:
        raise InputError(f"'{input_path}' yielded no frames in the chosen range; check --start and --duration")
    return make_plan(n, cuts, v.chunk_frames, v.warmup_frames, v.overlap_frames)


def _assemble(cfg: Config, plan, work: Work, sink, clock: Clock) -> None:
    """Write the output's frames in order from the segments' stored frames, cross-fading where
    two segments share a frame (plan.Plan.sources gives the weights)."""
    deep = cfg.output.bit_depth == 16  # the stored 16-bit frames at their full depth
    stores: dict = {}
    for k in range(plan.frames):
        parts = plan.sources(k)
        with clock("store"):
            images = []
            for seg, w in parts:
                store = stores.get(seg.index) or stores.setdefault(seg.index, work.segment(seg.index, seg.start))
                path = store.frame_path(k)
                images.append((read_frame(path) if deep else read_image(path), w))
        if len(images) == 1:
            frame = images[0][0]
        else:
            mixed = sum(np.float32(w) * img.astype(np.float32) for img, w in images)
            frame = mixed if deep else to_uint8(mixed)
        with clock("encode"):
            sink.write(frame)


class _Used:
    """What write_record reads of a Dreamer, for segments dreamed elsewhere (`dreamed_with`)."""

    def __init__(self, facts: dict):
        self.model = SimpleNamespace(name=facts["model"], resolve=None)
        self.objective = SimpleNamespace(spec=lambda _resolve: facts["objective"])
        self.device_label = facts["device"]


def dreamed_with(dreamer) -> dict:
    """The network, objective and device a segment was dreamed with, as plain data."""
    return {"model": dreamer.model.name, "objective": dreamer.objective.spec(dreamer.model.resolve),
            "device": dreamer.device_label}


@locks_output()  # taken already when render_video hands on; re-entrant
def render_segments(cfg: Config, input_path: str, output_path: str, progress: Progress | None = None,
                    model=None, connect=None) -> RenderResult:
    """render_video as a plan of segments (plan.py): the clip's shots, long ones split with
    warm-up and overlap. Each segment is rendered by `render_segment` into the work folder, one
    after the other here, or as Ray tasks on a cluster with video.ray (cluster.py); then the
    output is assembled in order, cross-faded where segments overlap, with the input's sound.
    A resume continues each segment after its frames present; a changed plan is refused.
    `connect(address, info) -> runner`: where the segments run when video.ray is set (the job
    passes cluster.connect); the runner's run(cfg, input_path, work_path, segments, base_seed,
    progress) renders them and returns what they were dreamed with (`dreamed_with`)."""
    progress = progress or Progress()
    t0 = time.perf_counter()
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    check_output(output_path, input_path)
    check_output_path(output_path, **sink_options(cfg.output))
    with open_clip(cfg, input_path) as probe:  # the clip's facts (rate, size, sound) for the output
        info = probe.info
    video_schedules(cfg, info.fps)  # the schedules checked before anything is dreamed
    runner = None
    if cfg.video.ray:
        runner = connect(cfg.video.ray, progress.info)  # before the plan: a wrong address fails fast
    clock = Clock()
    with clock("decode"):
        plan = _plan(cfg, input_path, progress)
    work = Work(output_path, "video", cfg, input_path, progress.info)
    work.check_plan(plan.to_dict())
    for c in plan.cuts:
        progress.info(f"scene cut at frame {c}")
    progress.info(f"{plan.frames} frames in {len(plan.cuts) + 1} shot{'s' * bool(plan.cuts)}, "
                  f"{len(plan.segments)} segment{'s' * (len(plan.segments) != 1)}")
    stores = [work.segment(s.index, s.start) for s in plan.segments]
    done = sum(min(st.done, s.frames) for st, s in zip(stores, plan.segments))
    total = sum(s.frames for s in plan.segments)  # frames to dream, warm-ups included
    if done:
        progress.info(f"resuming: {done} of {total} segment frames are in '{work.path}'")
    progress.start(total, done)
    todo = [s for st, s in zip(stores, plan.segments) if st.done < s.frames]
    if runner is not None:
        facts = runner.run(cfg, input_path, work.path, todo, work.base_seed, progress)
        if facts:
            work.state["used"] = facts
            work.check_plan(plan.to_dict())  # writes the state, with what was used, for a resume
        facts = work.state.get("used")
        dreamer = _Used(facts) if facts else make_dreamer(cfg, model, progress)[0]
    else:
        dreamer, weights_at = make_dreamer(cfg, model, progress)
        for s in todo:
            with clock("dream"):
                render_segment(cfg, input_path, s, work.segment(s.index, s.start), work.base_seed,
                               (dreamer, weights_at), progress)
    audio = None
    if cfg.output.audio and info.has_audio:
        audio = AudioSpec(input_path, cfg.output.start, cfg.output.duration)
    with Output(work, output_path, clock, progress, writer=False, fps=info.fps, size=(info.width, info.height),
                audio=audio, **sink_options(cfg.output)) as out:
        _assemble(cfg, plan, work, out.sink, clock)  # the segments' stored frames, in order, cross-faded
        path = out.close()
    result = RenderResult(path=path, frames=plan.frames, seconds=time.perf_counter() - t0, fps=info.fps,
                          cuts=list(plan.cuts), resumed_from=done, stages=dict(clock.seconds))
    result.record = write_record(output_path, "video", cfg, dreamer, input_path, work.base_seed, result,
                                 plan=plan.to_dict())
    out.done(cfg.output.keep_frames)
    return result
