"""Behaviour tests for dreamvid.render.threads' flow pool (`run_ahead`) and its reader thread, with stub
calls that record their threads and times: no frames, no network, a second or two in all."""

import threading
import time

import numpy as np
import pytest

from dreamvid.render.threads import Clock, Reader, pool_size, run_ahead


def pool_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("test-pool")]


class Recorder:
    """Calls that sleep `seconds` and record (index, thread, start, end); a tasks generator that
    counts the tasks taken and whether it was closed."""

    def __init__(self, seconds=0.05, fail_at=None, durations=None):
        self.seconds, self.fail_at, self.durations = seconds, fail_at, durations or {}
        self.lock = threading.Lock()
        self.runs: list[tuple[int, str, float, float]] = []
        self.taken, self.closed, self.running, self.most = 0, False, 0, 0

    def call(self, i):
        def run():
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            t = time.perf_counter()
            try:
                time.sleep(self.durations.get(i, self.seconds))
                if i == self.fail_at:
                    raise ValueError(f"call {i} failed")
                return i * 10
            finally:
                with self.lock:
                    self.running -= 1
                    self.runs.append((i, threading.current_thread().name, t, time.perf_counter()))
        return run

    def tasks(self, n, without_call=()):
        try:
            for i in range(n):
                self.taken += 1
                yield i, None if i in without_call else self.call(i)
        finally:
            self.closed = True


def test_pool_size_follows_the_cores_and_its_limit():
    assert 1 <= pool_size() <= 8 and pool_size(limit=1) == 1


def test_calls_run_at_once_in_pool_threads_and_come_back_in_order():
    rec = Recorder(durations={0: 0.3, 1: 0.15, 2: 0.2, 3: 0.1})  # later calls finish first
    clock = Clock()
    got = list(run_ahead(rec.tasks(8, without_call={5}), 4, clock, name="test-pool"))
    assert got == [(i, None if i == 5 else i * 10) for i in range(8)]
    assert all(name.startswith("test-pool") for _, name, _, _ in rec.runs)
    assert threading.current_thread().name not in {name for _, name, _, _ in rec.runs}
    assert rec.most == 4  # four at once, the bound, never more
    first = {i: (a, b) for i, _, a, b in rec.runs}
    assert max(first[i][0] for i in range(4)) < min(first[i][1] for i in range(4))  # all four overlapped
    assert clock.seconds["flow"] >= 0.3 + 0.15 + 0.2 + 0.1  # each call's seconds, summed over the threads
    assert rec.closed and pool_threads() == []


def test_tasks_are_taken_at_most_workers_ahead_of_the_consumer():
    rec = Recorder(seconds=0.0)
    ahead = []
    for i, _ in run_ahead(rec.tasks(20), 3, Clock(), name="test-pool"):
        ahead.append(rec.taken - i)  # tasks taken but not yet handed on, this one included
        time.sleep(0.005)  # a slow consumer: the pool must not run on to the end
    assert max(ahead) == 3 and rec.taken == 20


def test_a_failing_call_raises_at_its_turn_and_stops_the_pool():
    rec = Recorder(seconds=0.05, fail_at=2)
    got = []
    with pytest.raises(ValueError, match="call 2 failed"):
        for item in run_ahead(rec.tasks(50), 3, Clock(), name="test-pool"):
            got.append(item)
    assert got == [(0, 0), (1, 10)]  # the results before it, in order
    assert rec.taken <= 2 + 3 and rec.closed  # nothing more was taken, the tasks were closed
    assert pool_threads() == []  # and the pool is shut down before the error reaches us


def test_closing_cancels_waiting_calls_and_awaits_running_ones():
    rec = Recorder(seconds=0.1)
    gen = run_ahead(rec.tasks(50), 2, Clock(), name="test-pool")
    assert next(gen) == (0, 0)
    gen.close()  # what a reader's close, or Ctrl-C unwinding the render, does
    assert pool_threads() == [] and rec.closed
    assert rec.running == 0 and rec.taken <= 3 and len(rec.runs) <= 3


def test_a_reader_closes_its_pool_when_closed_and_raises_its_errors():
    rec = Recorder(seconds=0.05)
    reader = Reader(run_ahead(rec.tasks(100), 3, Clock(), name="test-pool"), Clock())
    items = iter(reader)
    assert next(items) == (0, 0) and next(items) == (1, 10)
    reader.close()  # the consumer stops early (the render failed or was interrupted)
    assert pool_threads() == [] and rec.closed and rec.taken < 10

    failing = Recorder(seconds=0.01, fail_at=4)
    reader = Reader(run_ahead(failing.tasks(100), 3, Clock(), name="test-pool"), Clock())
    with pytest.raises(ValueError, match="call 4 failed"):
        for _ in reader:
            pass
    reader.close()
    assert pool_threads() == [] and failing.closed


def test_an_error_taking_a_task_is_raised_after_the_calls_before_it():
    def tasks():
        yield 0, lambda: "a"
        yield 1, lambda: "b"
        raise OSError("the decoder failed")

    got = []
    with pytest.raises(OSError, match="decoder"):
        for item in run_ahead(tasks(), 4, Clock(), name="test-pool"):
            got.append(item)
    assert got == [(0, "a"), (1, "b")] and pool_threads() == []
    with pytest.raises(ValueError, match="at least 1 worker"):
        next(run_ahead(tasks(), 0, Clock()))


def test_writer_saves_several_frames_at_once_and_marks_them_done_in_order(tmp_path):
    """The lossless frames are encoded by a pool (a 720p PNG takes longer than a GPU's dream);
    the sink still gets every frame in order and the state counts frames in order."""
    import threading

    from dreamvid.render.threads import Clock, Writer

    gate = threading.Barrier(2, timeout=30)  # passes only when two saves run at the same time
    marked, written, overlapped = [], [], []

    class Work:
        def save(self, k, frame):
            if k < 2:
                overlapped.append(gate.wait() is not None)
            elif k == 3:
                raise OSError("disk full")

        def mark_done(self, k):
            marked.append(k)

    class Sink:
        def write(self, frame):
            written.append(int(frame[0, 0, 0]))

    w = Writer(Work(), Sink(), Clock(), workers=2)
    for k in range(3):
        w.put(k, np.full((2, 2, 3), k, np.uint8))
    w.finish()
    assert overlapped == [True, True] and marked == [0, 1, 2] and written == [0, 1, 2]
    w = Writer(Work(), Sink(), Clock(), workers=2)
    for k in range(6):
        try:
            w.put(k, np.full((2, 2, 3), k, np.uint8))
        except OSError:
            break
    with pytest.raises(OSError, match="disk full"):
        w.finish()
    assert 3 not in marked[3:]  # a frame whose file failed is never marked done
