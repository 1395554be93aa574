"""The threads around the dream: stages that run beside the calling thread, which dreams.

- `Reader`: runs a generator (decoding, cut tests, optical flow) in a thread, a bounded number of
  items ahead of the dream, and hands its items over in order;
- `Writer`: stores (work folder) and encodes (sink) finished frames in a thread, at most one
  frame behind the dream;
- `Clock`: seconds per stage, summed over the threads each stage runs in.

Every queue is bounded, so memory stays bounded whatever the clip's length; an error in a thread
is raised in the caller (by the next item taken, the next frame put, or `finish`); and `close` /
`finish` stop the threads on any exit, Ctrl-C included. No dreaming and no file formats here.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from dreamvid.workfolder import Work

__all__ = ["Clock", "Reader", "Writer", "QUEUE_DEPTH"]

QUEUE_DEPTH = 2  # input frames decoded (and their flow computed) ahead of the dream


class Clock:
    """Seconds per stage, added to from several threads: `with clock("flow"): ...`."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, stage: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[stage] += time.perf_counter() - t


class Reader:
    """Runs the generator `items` in a thread, up to `depth` items ahead of the consumer.
    Iterating yields its items in order and re-raises its exception; `close()` stops it."""

    def __init__(self, items, clock: Clock, depth: int = QUEUE_DEPTH):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._clock = clock
        self._thread = threading.Thread(target=self._run, args=(items,), name="dreamvid-reader", daemon=True)
        self._thread.start()

    def _run(self, items) -> None:
        try:
            for item in items:
                if not self._put(("item", item)):
                    return
            self._put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(("error", exc))

    def _put(self, message) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def __iter__(self):
        while True:
            with self._clock("wait"):
                kind, value = self._queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class Writer:
    """Stores (work folder) and encodes (sink) finished frames in a thread, in order, at most
    one frame behind the caller. A failure there is raised by the next `put` or by `finish`."""

    def __init__(self, work: Work, sink, clock: Clock):
        self._work, self._sink, self._clock = work, sink, clock
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dreamvid-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._error is not None:
                continue  # after a failure: drain, write nothing more
            k, frame, store = job
            try:
                if store:
                    with self._clock("store"):
                        self._work.store(k, frame)
                with self._clock("encode"):
                    self._sink.write(frame)
            except BaseException as exc:
                self._error = exc

    def put(self, k: int, frame: np.ndarray, store: bool = True) -> None:
        """Queue frame k (RGB uint8): saved to the work folder (unless `store` is False: a frame
        an earlier run saved), then written to the sink."""
        self._raise()
        with self._clock("wait"):
            self._queue.put((k, frame, store))

    def finish(self, *, check: bool = True) -> None:
        """Wait until every queued frame is stored and written; raise a failure if `check`."""
        self._queue.put(None)
        self._thread.join()
        if check:
            self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error
