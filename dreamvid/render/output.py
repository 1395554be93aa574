"""The output of a render around its frame loop, one frame for every job and segment assembly:
the sink opened (ffmpeg, a GIF or a frame folder), a `Writer` behind the dream storing each
finished frame in the work folder and encoding it, and then one of two ends:

- the loop finished: every frame stored and written, a safe point for a stop (progress.check),
  the sink closed, so the output appears under its name only now, whole (`close`); the job then
  writes its record and `done` removes the work folder unless the frames are to be kept;
- any exception (a stop, a full disk, a bug): the frames already finished are stored, for a
  resume, and the sink aborted, so nothing is left under the output's name; the work folder stays.
"""

from __future__ import annotations

from dreamvid.core.progress import Progress
from dreamvid.media.sinks import open_sink
from dreamvid.render.threads import Clock, Writer
from dreamvid.render.workfolder import Work


class Output:
    """`with Output(work, path, clock, progress, fps=..., size=..., **sink_options) as out:` opens the
    sink (timed as "encode"); `out.put(k, frame, store=True)` hands a frame to the writer (none
    with `writer=False`: a render in segments writes the sink itself, `out.sink`); `out.close()`
    ends the loop as the module docstring says and returns the output's path."""

    def __init__(self, work: Work, path: str, clock: Clock, progress: Progress, *, writer: bool = True, **sink):
        self.work, self.path, self.clock, self.progress = work, path, clock, progress
        self._sink_args, self._writes = sink, writer
        self.sink = self.writer = None

    def __enter__(self) -> Output:
        with self.clock("encode"):
            self.sink = open_sink(self.path, **self._sink_args)
        if self._writes:
            self.writer = Writer(self.work, self.sink, self.clock)
        return self

    def put(self, k: int, frame, store: bool = True) -> None:
        self.writer.put(k, frame, store=store)

    def close(self) -> str:
        if self.writer is not None:
            self.writer.finish()
        self.progress.check()  # a safe point: every frame stored, the output not yet under its name
        with self.clock("encode"):
            return self.sink.close()  # atomic: the final name appears only now, complete

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            return
        if self.writer is not None:
            self.writer.finish(check=False)  # frames already finished are stored, for a resume
        self.sink.abort()  # no partial file under the final name; the work folder stays for a resume

    def done(self, keep_frames: bool) -> None:
        """After the record is written: the work folder removed, unless its frames are to be kept."""
        if not keep_frames:
            self.work.remove()


__all__ = ["Output"]
