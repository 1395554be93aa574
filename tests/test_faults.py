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
import logging
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
from cli_asserts import one_line_error
from helpers import pan_frames, run, write_clip
from test_robustness import REPO, tiny

from dreamvid.core.errors import BusyError
from dreamvid.jobs import pipeline
from dreamvid.render.workfolder import lock_output, lock_path

ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}


def render_cmd(model, clip, out, *extra):
    return [sys.executable, "-m", "dreamvid.cli", "video", str(clip), "-o", str(out),
            *tiny(model, seed=7), "--iterations", "3", "--iterations-next", "2", *extra]


def start(cmd, cwd, group=False):
    """The render as a process of its own (`group`: in a process group of its own, with its ffmpeg)."""
    return subprocess.Popen(cmd, env=ENV, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=group)


def freeze(proc, timeout=10.0):
    """SIGSTOP to `proc`'s process group (the render and its ffmpeg), returning once every process
    in it is stopped: kill() returns before the signal lands, and an ffmpeg left running would go
    on writing what was piped to it."""
    os.killpg(proc.pid, signal.SIGSTOP)
    t0 = time.monotonic()
    while True:
        states = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == proc.pid:  # fields: state, ppid, pgrp, ...
                states.append(fields[0])
        if states and all(s in "TtZ" for s in states):  # Z: a child already done (ffprobe)
            return
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"the render's processes did not stop: {states}")
        time.sleep(0.01)


def finish(cmd, cwd, timeout=180):
    p = subprocess.run(cmd, env=ENV, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout,
                       check=False)
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
    first = start(render_cmd(tiny_keras_file, clip, out), tmp_path, group=True)
    try:
        wait_frames(first, os.path.join(work, "frames"), 2)
        freeze(first)  # frozen holding its lock: nothing of its own changes meanwhile
        before = snapshot(tmp_path, skip=("ref", ".ref"))
        code, err = finish(render_cmd(tiny_keras_file, clip, out), tmp_path)
        line = one_line_error(code, err, f"'{out}' is being rendered by pid {first.pid}", "wait for it",
                              "another output name")
        print(line)
        assert snapshot(tmp_path, skip=("ref", ".ref")) == before  # nothing new, the work folder untouched
        assert os.path.isfile(lock_path(str(out))) and not out.exists()
        os.killpg(first.pid, signal.SIGKILL)  # the kernel drops its lock; the lock file stays behind
        first.wait()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)  # its ffmpeg too: a stopped one would stay behind
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
        with lock_output(out), lock_output(out):  # re-entrant in its own thread (render_video handing on to segments)
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


# ----------------------------------------------------------------------------- a full disk

KINDS = {  # output kind -> (output name, extra flags)
    "mp4": ("o.mp4", []),
    "tiff16": ("o/", ["--bit-depth", "16", "--frame-format", "tiff"]),
}


def outputs(path):
    """What a render left under the output's name: its frames (16-bit TIFFs of a folder read as
    they are), or a video's decoded frames."""
    if str(path).endswith("/"):
        return [cv2.imread(p, cv2.IMREAD_UNCHANGED) for p in sorted(glob.glob(os.path.join(str(path), "*.tiff")))]
    return decoded(path)


@pytest.fixture(scope="module")
def fault_media(tmp_path_factory, tiny_keras_file):
    """The clip, and each output kind rendered once without a fault (the reference)."""
    d = tmp_path_factory.mktemp("faults")
    clip = write_clip(d / "clip.mp4", pan_frames(8, seed=4))
    refs = {}
    for kind, (name, extra) in KINDS.items():
        out = d / kind
        out.mkdir()
        target = os.path.join(str(out), name)
        assert run_quiet("video", clip, "-o", target, *tiny(tiny_keras_file), *extra) == 0
        refs[kind] = outputs(target)
        assert len(refs[kind]) == 8
    return clip, refs


def run_quiet(*argv):
    from dreamvid.cli import main

    return main([str(a) for a in argv])


def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _inject(monkeypatch, site, out, frame=3):
    """Make the write at `site` fail with ENOSPC, as a full disk does (site "frame": the stored
    frame `frame`); returns the name the message must hold."""
    from dreamvid.media import sinks

    real_replace, real_makedirs, real_open = os.replace, os.makedirs, open
    target = str(out).rstrip("/")
    states = []

    def replace(src, dst, *a, **kw):
        dst = os.fspath(dst)
        if site == "frame" and dst.endswith(os.path.join("frames", f"{frame:06d}.png")):
            _enospc()
        if site == "state" and dst.endswith("state.json"):
            states.append(dst)
            if len(states) == 4:
                _enospc()
        if site == "record" and dst == target + ".json":
            _enospc()
        if site == "output" and dst == target:
            _enospc()
        return real_replace(src, dst, *a, **kw)

    def makedirs(path, *a, **kw):
        if site == "folder" and os.fspath(path).endswith("frames"):
            _enospc()
        return real_makedirs(path, *a, **kw)

    def sink_open(path, *a, **kw):
        if site == "output frame" and os.fspath(path).endswith("frame_000004.tiff"):
            _enospc()
        return real_open(path, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "makedirs", makedirs)
    monkeypatch.setattr(sinks, "open", sink_open, raising=False)
    return {"frame": f"{frame:06d}.png", "state": "state.json", "record": os.path.basename(target) + ".json",
            "output": os.path.basename(target), "folder": "frames", "output frame": os.path.basename(target)}[site]


@pytest.mark.parametrize("kind,site", [
    ("mp4", "frame"), ("mp4", "state"), ("mp4", "record"), ("mp4", "output"), ("mp4", "folder"),
    ("tiff16", "frame"), ("tiff16", "output frame"), ("tiff16", "output"), ("tiff16", "record"),
])
def test_a_full_disk_at_each_write_answers_in_one_line_and_resumes(capsys, tmp_path, tiny_keras_file, fault_media,
                                                                   monkeypatch, kind, site):
    clip, refs = fault_media
    name, extra = KINDS[kind]
    out = os.path.join(str(tmp_path), name)
    args = ["video", clip, "-o", out, *tiny(tiny_keras_file), *extra]
    names = _inject(monkeypatch, site, out)
    code, err = run(capsys, *args)
    line = one_line_error(code, err, names)
    assert "No space left" in line or "disk is full" in line, line
    assert "space" in line.split(";")[-1], line  # the fix
    print(line)
    base = os.path.basename(out.rstrip("/"))
    assert [n for n in os.listdir(tmp_path) if base in n and ".dreamvid" not in n] == []  # no output, partial, record
    work = Path(pipeline.work_folder(out))
    monkeypatch.undo()  # the disk has space again
    code, err = run(capsys, *args)
    assert code == 0, err
    got = outputs(out)
    assert len(got) == len(refs[kind]) == 8
    assert all(np.array_equal(a, b) for a, b in zip(got, refs[kind])), f"{kind}/{site}: the resumed output differs"
    assert not work.exists() and not os.path.exists(lock_path(out))


def test_a_real_full_disk_on_a_tiny_tmpfs(capsys, tmp_path, tiny_keras_file, fault_media):
    """A 1 MB tmpfs, filled but for 40 kB: the render runs out of space part way, for real."""
    clip, refs = fault_media
    disk = tmp_path / "disk"
    disk.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True, check=False)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({p.stderr.decode().strip() or p.returncode}); "
                    f"the injected ENOSPC tests stand for it")
    try:
        filler = disk / "filler"
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        filler.write_bytes(b"\0" * (free - 40 * 1024))
        out = str(disk / "o.mp4")
        args = ["video", clip, "-o", out, *tiny(tiny_keras_file)]
        code, err = run(capsys, *args)
        line = one_line_error(code, err)
        assert "No space left" in line or "disk is full" in line, line
        with capsys.disabled():
            print(line)
        assert set(os.listdir(disk)) <= {"filler", ".o.mp4.dreamvid"}, os.listdir(disk)  # no output, no partial
        kept = len(glob.glob(os.path.join(pipeline.work_folder(out), "frames", "*.png")))
        with capsys.disabled():
            print(f"out of space with {kept} frames kept")
        filler.unlink()  # the fault cleared
        code, err = run(capsys, *args)
        assert code == 0, err
        if kept:
            assert f"resuming from frame {kept}" in err
        got = decoded(out)
        assert len(got) == 8 and all(np.array_equal(a, b) for a, b in zip(got, refs["mp4"]))
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True, check=False)


def test_a_read_only_mount_answers_in_one_line_and_resumes_once_writable(capsys, tmp_path, tiny_keras_file,
                                                                         fault_media):
    """A tmpfs remounted read-only after a first run stored frames: the next run is refused in
    one line naming the path, touching nothing; writable again, it resumes to the reference."""
    clip, refs = fault_media
    disk = tmp_path / "disk"
    disk.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True, check=False)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({p.stderr.decode().strip() or p.returncode})")
    try:
        out = str(disk / "o.mp4")
        args = ["video", clip, "-o", out, *tiny(tiny_keras_file)]
        with pytest.MonkeyPatch.context() as mp:  # a first run stopped by a full disk at frame 3
            _inject(mp, "frame", out)
            assert run(capsys, *args)[0] == 2
        before = snapshot(str(disk))
        assert subprocess.run(["mount", "-o", "remount,ro", str(disk)],
                              capture_output=True, check=False).returncode == 0
        code, err = run(capsys, *args)
        line = one_line_error(code, err, str(disk), "writable")
        with capsys.disabled():
            print(line)
        assert snapshot(str(disk)) == before and not os.path.exists(out)
        assert subprocess.run(["mount", "-o", "remount,rw", str(disk)],
                              capture_output=True, check=False).returncode == 0
        code, err = run(capsys, *args)
        assert code == 0 and "resuming from frame 3" in err, err
        got = decoded(out)
        assert len(got) == 8 and all(np.array_equal(a, b) for a, b in zip(got, refs["mp4"]))
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True, check=False)


# ----------------------------------------------------------------------------- damaged and odd streams


def ffmpeg_make(path, *args):
    from dreamvid.media.sources import ffmpeg_exe

    p = subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", *args, str(path)], capture_output=True, check=False)
    assert p.returncode == 0, p.stderr.decode()[-300:]
    return path


def test_a_stream_whose_frame_size_changes_keeps_the_first_size_with_one_notice(capsys, caplog, tmp_path,
                                                                                 tiny_keras_file):
    """Two transport streams of 64x48 and 80x60 (testsrc2, H.264) concatenated byte for byte, as
    broadcast captures and `cat a.ts b.ts` make them."""
    a = ffmpeg_make(tmp_path / "a.ts", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "6",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p")
    b = ffmpeg_make(tmp_path / "b.ts", "-f", "lavfi", "-i", "testsrc2=size=80x60:rate=25", "-frames:v", "6",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p")
    both = tmp_path / "both.ts"
    both.write_bytes(a.read_bytes() + b.read_bytes())
    with caplog.at_level(logging.WARNING, logger="dreamvid"):
        code, err = run(capsys, "video", both, "-o", tmp_path / "out/", *tiny(tiny_keras_file))
    assert code == 0, err
    frames = sorted(glob.glob(str(tmp_path / "out" / "*.png")))
    assert len(frames) == 12 and {cv2.imread(f).shape for f in frames} == {(48, 64, 3)}
    notes = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "frame size" in r.getMessage()]
    assert len(notes) == 1 and "80x60" in notes[0] and "64x48" in notes[0], notes


def test_bytes_destroyed_in_the_middle_keep_decoding(capsys, caplog, tmp_path, tiny_keras_file):
    """A 40-frame H.264 transport stream with 4 kB in its middle overwritten by noise: ffmpeg
    conceals what it can and goes on; the render keeps every frame it decodes after the damage."""
    clip = ffmpeg_make(tmp_path / "clip.ts", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "40",
                       "-c:v", "libx264", "-g", "10", "-pix_fmt", "yuv420p")
    data = bytearray(clip.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 4096] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="dreamvid"):
        code, err = run(capsys, "video", damaged, "-o", tmp_path / "out/", *tiny(tiny_keras_file))
    assert code == 0, err
    n = len(glob.glob(str(tmp_path / "out" / "*.png")))
    print(f"{n} of 40 frames decoded from the damaged stream")
    assert n >= 30  # the frames after the damage too, not only those before it


def smooth_pan(texture, n):
    """n frames of 64x48 panning 2 px a frame over smooth texture: no cut anywhere."""
    wide = cv2.GaussianBlur(texture(48, 64 + 2 * n, seed=3), (0, 0), 8).astype(np.uint8)
    return [np.ascontiguousarray(wide[:, 2 * i:2 * i + 64]) for i in range(n)]


def test_a_single_flash_frame_cuts_once(tmp_path, texture):
    from dreamvid.render.plan import scan_cuts

    frames = smooth_pan(texture, 30)
    frames[20] = np.full_like(frames[20], 255)  # one white frame
    n, cuts = scan_cuts(frames, 27.0, 15)
    assert n == 30 and cuts == [20]
    assert scan_cuts(frames, 27.0, 1)[1] == [20, 21]  # without a minimum: into the flash and out of it
    # the setting reaches the frame loop through config, CLI and API alike
    import dreamvid
    from dreamvid.cli.parser import build_parser, config_from_args

    assert dreamvid.settings("video").video.min_shot_frames == 15
    assert dreamvid.settings("video", min_shot_frames=1).video.min_shot_frames == 1
    args = build_parser().parse_args(["video", "in.mp4", "-o", "o.mp4", "--min-shot-frames", "4"])
    assert config_from_args(args).video.min_shot_frames == 4
    with pytest.raises(dreamvid.ConfigError, match="min_shot_frames"):
        dreamvid.settings("video", min_shot_frames=0)


def test_a_flash_frame_resets_the_render_once(tmp_path, tiny_keras_file, texture):
    clip = tmp_path / "flash.mp4"
    frames = smooth_pan(texture, 24)
    frames[18] = np.full_like(frames[18], 255)
    write_clip(clip, frames)
    import dreamvid

    result = dreamvid.render_video(clip, tmp_path / "out/", model=str(tiny_keras_file), layers="conv2", octaves=1,
                                   iterations=1, iterations_next=1, seed=1)
    assert result.cuts == [18]


def odd_streams(tmp_path, texture):
    """name -> (clip, the frame a fault stops the render at, just after what is odd about it)."""
    x264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
    a = ffmpeg_make(tmp_path / "a.ts", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "6", *x264)
    b = ffmpeg_make(tmp_path / "b.ts", "-f", "lavfi", "-i", "testsrc2=size=80x60:rate=25", "-frames:v", "6", *x264)
    sizes = tmp_path / "sizes.ts"
    sizes.write_bytes(a.read_bytes() + b.read_bytes())
    clip = ffmpeg_make(tmp_path / "clip.ts", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "24",
                       "-g", "8", *x264)
    data = bytearray(clip.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 2048] = np.random.default_rng(1).integers(0, 256, 2048, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(bytes(data))
    frames = smooth_pan(texture, 24)
    frames[18] = np.full_like(frames[18], 255)
    flash = write_clip(tmp_path / "flash.mp4", frames)
    return {"size change": (sizes, 8), "damaged": (damaged, 14), "flash": (flash, 19)}


@pytest.mark.parametrize("name", ["size change", "damaged", "flash"])
def test_an_odd_stream_stopped_after_its_oddity_resumes_to_the_uninterrupted_render(capsys, tmp_path, tiny_keras_file,
                                                                                   texture, monkeypatch, name):
    """A full disk (an injected ENOSPC) stops the render just after the frame size changed, after
    the damaged bytes, or on the frame after a flash (the min-shot-length test must not cut there
    on resume either); the resume equals the render no fault stopped."""
    clip, at = odd_streams(tmp_path, texture)[name]
    ref = tmp_path / "ref/"
    assert run(capsys, "video", clip, "-o", ref, *tiny(tiny_keras_file))[0] == 0
    want = [cv2.imread(f) for f in sorted(glob.glob(str(ref / "*.png")))]
    out = str(tmp_path / "out") + "/"
    args = ["video", clip, "-o", out, *tiny(tiny_keras_file)]
    names = _inject(monkeypatch, "frame", out, frame=at)
    code, err = run(capsys, *args)
    one_line_error(code, err, names, "space")
    assert not os.path.exists(out) and not os.path.exists(str(tmp_path / "out.json"))
    monkeypatch.undo()
    code, err = run(capsys, *args)
    assert code == 0 and f"resuming from frame {at}" in err, err
    got = [cv2.imread(f) for f in sorted(glob.glob(os.path.join(out, "*.png")))]
    assert len(got) == len(want) > at + 2
    # (the flash: a cut at frame 19 on resume would dream it afresh, not carried from frame 18)
    assert all(np.array_equal(a, b) for a, b in zip(got, want)), f"{name}: the resumed frames differ"
