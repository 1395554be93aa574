"""A stop at any moment of a render: real SIGTERM, SIGINT and SIGHUP sent to a real `dreamvid video`
process at a dozen moments, from its first instants to after its output closed. Each moment is
found by watching the process, not the clock (the handlers in /proc/PID/status, the start-up
line, the frames stored in the work folder, the output's name), so the verdict holds on a fast
machine and on a slow one alike.

Every stop must end the same way: exit 128 + the signal's number, one last line that names it,
no traceback, nothing under the output's name unless it is whole, no temporary file or encoder
left, no lock. The stops are chained: each render after the first is the same command run again,
so it resumes what the stops before it kept, and the last one's output must equal an
uninterrupted render's, frame for frame.
"""

import glob
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import pan_frames, write_clip
from test_faults import ENV, decoded, encoders_writing, render_cmd

from dreamvid.jobs import pipeline
from dreamvid.render.workfolder import lock_path

FRAMES = 24
CODE = {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGHUP: 129}


def caught(pid: int) -> set[int]:
    """The signals the process has a handler for (SigCgt in /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    mask = int(line.split()[1], 16)
                    return {n for n in range(1, 65) if mask >> (n - 1) & 1}
    except OSError:
        pass
    return set()


class Render:
    """`dreamvid video` as a process of its own, its stderr read as it comes (a thread-free poll:
    the pipe is non-blocking), and the moments it passes through."""

    def __init__(self, cmd, cwd, frames_dir):
        self.proc = subprocess.Popen(cmd, env=ENV, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        os.set_blocking(self.proc.stderr.fileno(), False)
        self.frames_dir, self.err = frames_dir, b""

    def read(self) -> str:
        try:
            chunk = self.proc.stderr.read()
        except (OSError, ValueError):
            chunk = None
        if chunk:
            self.err += chunk
        return self.err.decode(errors="replace")

    def stored(self) -> int:
        return len(glob.glob(os.path.join(self.frames_dir, "[0-9]*.png")))

    def until(self, test, what: str, timeout: float = 240.0) -> bool:
        """Wait until `test()` holds; False if the render ended first (it may finish before a late moment)."""
        t0 = time.monotonic()
        while not test():
            self.read()
            if self.proc.poll() is not None:
                return False
            if time.monotonic() - t0 > timeout:
                self.proc.kill()
                pytest.fail(f"no '{what}' within {timeout} s: {self.read()[-400:]}")
            time.sleep(0.005)
        return True

    def stop(self, sigs, gap: float = 0.0) -> tuple[int, str]:
        for i, sig in enumerate(sigs):
            if i:
                time.sleep(gap)
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"the render did not stop within 120 s of {sigs[0].name}")
        time.sleep(0.05)
        return self.proc.returncode, self.read()


# (name, the moment: a test on the render, the signals sent then, seconds between them)
MOMENTS = [
    ("at once, before Python runs", lambda r: True, [signal.SIGTERM], 0),
    ("the handlers just in place", lambda r: signal.SIGHUP in caught(r.proc.pid), [signal.SIGTERM], 0),
    ("Ctrl-C as the handlers are in place", lambda r: signal.SIGHUP in caught(r.proc.pid), [signal.SIGINT], 0),
    ("starting the framework", lambda r: signal.SIGHUP in caught(r.proc.pid) and time.sleep(0.4) is None,
     [signal.SIGHUP], 0),
    ("the network loaded", lambda r: "dreaming" in r.read(), [signal.SIGTERM], 0),
    ("the first new frame stored", lambda r: r.stored() > r.before, [signal.SIGTERM], 0),
    ("two frames later", lambda r: r.stored() > r.before + 1, [signal.SIGINT], 0),
    ("a frame later, hung up", lambda r: r.stored() > r.before, [signal.SIGHUP], 0),
    ("a second and third signal during the clean-up", lambda r: r.stored() > r.before,
     [signal.SIGTERM, signal.SIGTERM, signal.SIGINT], 0.005),
    ("a frame later, again", lambda r: r.stored() > r.before, [signal.SIGTERM], 0),
    ("every frame stored, before the encoder closes", lambda r: r.stored() >= FRAMES, [signal.SIGTERM], 0),
]


def test_a_stop_at_any_moment_ends_cleanly_and_resumes_to_the_same_frames(tmp_path, tiny_keras_file):
    clip = write_clip(tmp_path / "clip.mp4", pan_frames(FRAMES, seed=6))
    out = tmp_path / "out.mp4"
    frames_dir = os.path.join(pipeline.work_folder(str(out)), "frames")
    cmd = render_cmd(tiny_keras_file, clip, out, "--iterations-next", "6")
    ref = subprocess.Popen(render_cmd(tiny_keras_file, clip, tmp_path / "ref.mp4", "--iterations-next", "6"),
                           env=ENV, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = []
    for name, moment, sigs, gap in MOMENTS:
        render = Render(cmd, tmp_path, frames_dir)
        render.before = render.stored()
        reached = render.until(lambda moment=moment, render=render: moment(render), name)
        rc, err = render.stop(sigs, gap) if reached else (render.proc.wait(), render.read())
        kept = render.stored()
        seen.append((name, rc, render.before, kept))
        assert "Traceback" not in err, (name, err)
        partial = str(tmp_path / ".out.partial.mp4")
        assert not os.path.exists(partial) and encoders_writing(partial) == [], name  # ffmpeg closed, its file gone
        assert not os.path.exists(lock_path(str(out))), name
        if rc == -sigs[0]:  # killed by the default action before dreamvid's code ran: nothing begun
            assert name.startswith("at once") and not os.path.exists(pipeline.work_folder(str(out))), (name, err)
            continue
        if rc == 0:  # it finished before the moment came (a fast machine): whole, and nothing left to stop
            assert not reached and out.exists(), (name, err)
            break
        # the first signal handled names the stop; signals that arrive together (a busy machine) are
        # handled in the order of their numbers, so any of those sent may be the one named
        got = next((sig for sig in sigs if rc == CODE[sig]), None)
        assert got is not None, (name, rc, err)
        last = err.strip().splitlines()[-1]
        how = "interrupted" if got == signal.SIGINT else f"stopped by {got.name}"
        assert last.startswith(how), (name, err)
        if out.exists():  # the stop came after the encoder closed: the output is whole
            assert last == f"{how} after the work was complete", (name, err)
            break
        assert "run the same command again to resume" in last, (name, err)
        assert kept >= render.before, (name, kept, render.before)
        if kept:
            assert f"resuming from frame {render.before}" in err or render.before == 0, (name, err)
    print("\n" + "\n".join(f"{n}: exit {rc}, frames {a} -> {b}" for n, rc, a, b in seen))
    assert len(seen) >= 10 or out.exists()
    if not out.exists():  # the same command once more: resumed to the end
        p = subprocess.run(cmd, env=ENV, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=240, check=False)
        assert p.returncode == 0, p.stderr.decode()[-500:]
    assert ref.wait(timeout=240) == 0, ref.stderr.read().decode()[-500:]
    got, want = decoded(out), decoded(tmp_path / "ref.mp4")
    assert len(got) == len(want) == FRAMES
    assert all(np.array_equal(a, b) for a, b in zip(got, want))


def test_a_still_and_a_gallery_stop_between_their_steps(tmp_path, tiny_keras_file):
    """The still's octaves and the gallery's tiles are safe points too: SIGTERM once the network
    has loaded ends either with 143 and nothing written, and the gallery resumes its tiles."""
    from test_robustness import tiny, write_png

    photo = tmp_path / "photo.png"
    write_png(photo, pan_frames(1, seed=2)[0])
    for cmd, out in (
            (["image", str(photo), "-o", str(tmp_path / "still.png"), *tiny(tiny_keras_file, image=True),
              "--octaves", "3", "--iterations", "40"], tmp_path / "still.png"),
            (["gallery", str(photo), "-o", str(tmp_path / "g.png"), "--model", str(tiny_keras_file),
              "--iterations", "30", "--tile-width", "64"], tmp_path / "g.png")):
        render = Render([sys.executable, "-m", "dreamvid.cli", *cmd], tmp_path, str(tmp_path / "none"))
        assert render.until(lambda render=render: "dreaming" in render.read(), "dreaming")
        rc, err = render.stop([signal.SIGTERM])
        assert "Traceback" not in err, err
        last = err.strip().splitlines()[-1]
        assert rc == 143 and last.startswith("stopped by SIGTERM"), (cmd[0], rc, err)
        assert not out.exists() or last == "stopped by SIGTERM after the work was complete", err
