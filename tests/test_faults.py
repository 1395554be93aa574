"""Faults a long render meets, each made for real: the same output rendered twice at once (a
second process), SIGTERM and SIGHUP (sent to a real render), a full disk (an injected ENOSPC at
each write site, and a real tiny tmpfs), damaged and odd streams (made with ffmpeg). Each asserts
the one-line message, the exit code, nothing under the output's name, and that the resumed
output equals an uninterrupted render's.

Renders that need a process of their own (a lock held, a signal) run `python -m dreamvid.cli`
on the tiny network at 64x48; the others call the CLI's main() in this process.
"""

import errno
import glob
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from dreamvid import pipeline
from dreamvid.errors import BusyError
from dreamvid.workfolder import lock_output, lock_path
from cli_asserts import one_line_error
from test_robustness import REPO, pan_frames, png_frames, run, tiny, write_clip

ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}


def render_cmd(model, clip, out, *extra):
    return [sys.executable, "-m", "dreamvid.cli", "video", str(clip), "-o", str(out),
            *tiny(model, seed=7), "--iterations", "3", "--iterations-next", "2", *extra]


def start(cmd, cwd):
    return subprocess.Popen(cmd, env=ENV, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(cmd, cwd, timeout=180):
    p = subprocess.run(cmd, env=ENV, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stderr.decode()


def wait_frames(proc, frames_dir, at_least, timeout=90.0):
    """Wait until `frames_dir` holds `at_least` stored frames while `proc` runs."""
    t0 = time.monotonic()
    while len(glob.glob(os.path.join(frames_dir, "[0-9]*.png"))) < at_least:
        if proc.poll() is not None:
            pytest.fail(f"the render ended (rc {proc.returncode}) before {at_least} frames were stored: "
                        f"{proc.stderr.read().decode()[-500:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail(f"no {at_least} frames in {frames_dir} within {timeout} s")
        time.sleep(0.01)


def decoded(path):
    """Every frame of a video file, RGB uint8."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def snapshot(folder, skip=()):
    """Every path under `folder` with its size and mtime, but those whose name starts with `skip`."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = os.path.join(root, name)
            if not os.path.relpath(p, folder).startswith(tuple(skip)):
                st = os.lstat(p)
                out[p] = (st.st_size, st.st_mtime_ns)
    return out


def encoders_writing(path):
    """Processes whose command line names `path` (an ffmpeg left writing a temporary file)."""
    found = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            if os.fsencode(path) in Path(cmdline).read_bytes():
                found.append(cmdline)
        except OSError:
            pass
    return found


# ----------------------------------------------------------------------------- one render per output


def test_a_second_render_of_the_same_output_is_refused_and_touches_nothing(tmp_path, tiny_keras_file):
    clip = write_clip(tmp_path / "clip.mp4", pan_frames(12, seed=5))
    out = tmp_path / "out.mp4"
    work = pipeline.work_folder(str(out))
    ref = start(render_cmd(tiny_keras_file, clip, tmp_path / "ref.mp4"), tmp_path)  # uninterrupted, beside
    first = start(render_cmd(tiny_keras_file, clip, out), tmp_path)
    try:
        wait_frames(first, os.path.join(work, "frames"), 2)
        first.send_signal(signal.SIGSTOP)  # frozen holding its lock: nothing of its own changes meanwhile
        before = snapshot(tmp_path, skip=("ref", ".ref"))
        code, err = finish(render_cmd(tiny_keras_file, clip, out), tmp_path)
        line = one_line_error(code, err, f"'{out}' is being rendered by pid {first.pid}", "wait for it", "another output name")
        print(line)
        assert snapshot(tmp_path, skip=("ref", ".ref")) == before  # nothing new, the work folder untouched
        assert os.path.isfile(lock_path(str(out))) and not out.exists()
        first.send_signal(signal.SIGKILL)  # the kernel drops its lock; the lock file stays behind
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert os.path.isfile(lock_path(str(out)))
    kept = len(glob.glob(os.path.join(work, "frames", "[0-9]*.png")))
    code, err = finish(render_cmd(tiny_keras_file, clip, out), tmp_path)  # the resume takes the lock as usual
    assert code == 0, err
    assert f"resuming from frame {kept}" in err
    assert ref.wait(timeout=180) == 0, ref.stderr.read().decode()[-500:]
    got, want = decoded(out), decoded(tmp_path / "ref.mp4")
    assert len(got) == len(want) == 12
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    assert not os.path.exists(lock_path(str(out))) and not os.path.exists(work)


def test_the_lock_in_one_process_refuses_another_thread_and_is_gone_after(tmp_path):
    out = str(tmp_path / "o.mp4")
    held, release, seen = threading.Event(), threading.Event(), []

    def hold():
        with lock_output(out):
            with lock_output(out):  # re-entrant in its own thread (render_video handing on to segments)
                held.set()
                release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    try:
        with lock_output(out):
            seen.append("taken")
    except BusyError as e:
        seen.append(str(e))
    release.set()
    t.join()
    assert len(seen) == 1 and "another call in this process" in seen[0] and str(os.getpid()) in seen[0]
    assert os.listdir(tmp_path) == []  # the lock file goes with the last holder
    with lock_output(out):  # and is free again
        assert os.path.isfile(lock_path(out))


# ----------------------------------------------------------------------------- SIGTERM, SIGHUP


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_stop_like_ctrl_c_and_resume(tmp_path, tiny_keras_file, sig, code):
    clip = write_clip(tmp_path / "clip.mp4", pan_frames(40, seed=6))
    out = tmp_path / "out.mp4"
    frames_dir = os.path.join(pipeline.work_folder(str(out)), "frames")
    slow = render_cmd(tiny_keras_file, clip, out, "--iterations-next", "20")
    ref = start(render_cmd(tiny_keras_file, clip, tmp_path / "ref.mp4", "--iterations-next", "20"), tmp_path) \
        if sig == signal.SIGTERM else None  # the resume compared once, after SIGTERM
    proc = start(slow, tmp_path)
    wait_frames(proc, frames_dir, 2)
    proc.send_signal(sig)
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"the render did not stop within 30 s of {sig.name}")
    err = proc.stderr.read().decode()
    assert rc == code, err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and last.startswith(f"stopped by {sig.name}:"), err
    assert "run the same command again to resume" in last
    kept = len(glob.glob(os.path.join(frames_dir, "[0-9]*.png")))
    print(f"{sig.name}: exit {rc} with {kept} of 40 frames stored")
    assert 2 <= kept < 40 and not out.exists()
    partial = str(tmp_path / ".out.partial.mp4")
    assert not os.path.exists(partial) and encoders_writing(partial) == []  # ffmpeg closed, its file gone
    assert not os.path.exists(lock_path(str(out)))
    if ref is None:
        return
    rc, err = finish(slow, tmp_path)
    assert rc == 0 and f"resuming from frame {kept}" in err, err
    assert ref.wait(timeout=240) == 0, ref.stderr.read().decode()[-500:]
    got, want = decoded(out), decoded(tmp_path / "ref.mp4")
    assert len(got) == len(want) == 40
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
