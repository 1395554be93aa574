"""The threads around the dream: stages that run beside the calling thread, which dreams.

- `Reader`: runs a generator (decoding, cut tests, optical flow) in a thread, a bounded number of
  items ahead of the dream, and hands its items over in order;
- `run_ahead`: computes calls (the optical flow of upcoming frame pairs) in a bounded pool of
  threads, several at once, and hands their results over in order;
- `Writer`: stores (work folder, several frames at once) and encodes (sink, in order) finished
  frames in threads, a few frames behind the dream;
- `Clock`: seconds per stage, summed over the threads each stage runs in.

Every queue is bounded, so memory stays bounded whatever the clip's length; an error in a thread
is raised in the caller (by the next item taken, the next frame put, or `finish`); and `close` /
`finish` stop the threads on any exit, Ctrl-C included. No dreaming and no file formats here.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numpy as np

from dreamvid.render.workfolder import Work

__all__ = ["Clock", "Reader", "Writer", "run_ahead", "pool_size", "QUEUE_DEPTH"]

QUEUE_DEPTH = 2  # input frames decoded (and their flow computed) ahead of the dream
# At most this many frame pairs' flow in flight: 8 keep up with a GPU's ~35 ms dream of a 720p
# frame when one pair takes ~130 ms on one core, while a 4K clip's pairs in flight (two frames,
# two flows and their temporaries each, ~0.3 GB) stay a few GB.
POOL_MAX = 8

T = TypeVar("T")
R = TypeVar("R")


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
        finally:
            # close the generator here, in its own thread, rather than whenever it is collected:
            # its cleanup (a run_ahead pool's shutdown) must be over when close() returns
            close = getattr(items, "close", None)
            if close is not None:
                close()

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


def pool_size(limit: int = POOL_MAX) -> int:
    """Threads for `run_ahead`: the cores this process may use, at most `limit`."""
    try:
        cores = len(os.sched_getaffinity(0))  # honours taskset and container CPU sets
    except (AttributeError, OSError):  # not on every platform
        cores = os.cpu_count() or 1
    return max(1, min(limit, cores))


def run_ahead(tasks: Iterable[tuple[T, Callable[[], R] | None]], workers: int, clock: Clock,
              stage: str = "flow", name: str = "dreamvid-motion") -> Iterator[tuple[T, R | None]]:
    """Compute each task's call in a pool of `workers` threads, ahead of the consumer; yield
    (item, the call's result, or None for a task without a call) in the tasks' order.

    tasks: (item, call) pairs, call a function of no arguments or None; they are taken from
    `tasks` in the consumer's thread (so decoding the next frame runs while the pool works).
    Bounded: at most `workers` tasks are taken and not yet yielded, so only their items (the
    frames of the pairs in flight) are held. A call's exception is raised here, at its turn, and
    so is one from taking a task (a decoding error), after the items taken before it.
    The calls' seconds go to `clock[stage]`, summed over the pool's threads. On any exit (the
    end, an error, or `close()` of this generator: a Reader closing, Ctrl-C), calls not started
    are cancelled, running ones awaited and `tasks` closed, so no thread outlives it.
    Threads are named `name_0`, `name_1`, ...
    """
    if workers < 1:
        raise ValueError(f"run_ahead needs at least 1 worker, got {workers}")

    def timed(call: Callable[[], R]) -> R:
        with clock(stage):
            return call()

    source = iter(tasks)
    pending: deque = deque()  # (item, Future or None), oldest first
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    try:
        more, failed = True, None
        while True:
            while more and len(pending) < workers:
                try:
                    task = next(source, None)
                except Exception as exc:  # raised at its turn, after the items taken before it
                    task, failed = None, exc
                if task is None:
                    more = False
                    break
                item, call = task
                pending.append((item, None if call is None else pool.submit(timed, call)))
            if not pending:
                if failed is not None:
                    raise failed
                return
            item, future = pending.popleft()
            yield item, None if future is None else future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        close = getattr(source, "close", None)
        if close is not None:
            close()


class Writer:
    """Stores (work folder) and encodes (sink) finished frames behind the dream. The lossless
    frames are encoded in a small pool of threads, several at once (a 720p PNG takes ~45 ms on
    one core, more than a GPU takes to dream the frame); the sink gets the frames in order in a
    thread of its own, and each frame is marked done in the work folder's state, in order, once
    its file is complete. At most `workers` frames wait behind the dream, so a kill -9 loses
    those and the frame being dreamed, which a resume dreams again, identically. A failure
    there is raised by the next `put` or by `finish`."""

    def __init__(self, work: Work, sink, clock: Clock, workers: int | None = None):
        self._work, self._sink, self._clock = work, sink, clock
        workers = workers or max(1, min(4, (os.cpu_count() or 2) // 2))
        self._stores = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dreamvid-store")
        self._queue: queue.Queue = queue.Queue(maxsize=workers)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dreamvid-writer", daemon=True)
        self._thread.start()

    def _save(self, k: int, frame: np.ndarray) -> None:
        with self._clock("store"):
            self._work.save(k, frame)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            k, frame, saving = job
            if self._error is not None:
                continue  # after a failure: drain, write nothing more
            try:
                with self._clock("encode"):
                    self._sink.write(frame)
                if saving is not None:
                    saving.result()  # raises the store's failure
                    self._work.mark_done(k)
            except BaseException as exc:
                self._error = exc

    def put(self, k: int, frame: np.ndarray, store: bool = True) -> None:
        """Queue frame k (RGB uint8, or float on 0..255 for a 16-bit output): saved to the work
        folder (unless `store` is False: a frame an earlier run saved), and written to the sink."""
        self._raise()
        saving = self._stores.submit(self._save, k, frame) if store else None
        with self._clock("wait"):
            self._queue.put((k, frame, saving))

    def finish(self, *, check: bool = True) -> None:
        """Wait until every queued frame is stored and written; raise a failure if `check`."""
        self._queue.put(None)
        self._thread.join()
        self._stores.shutdown(wait=True)  # frames already handed over are completed, for a resume
        if check:
            self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error
