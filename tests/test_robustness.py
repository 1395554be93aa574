"""Robustness through the command line, in-process: every bad input is answered with one line
starting 'error:' (exit 2, no traceback) and leaves nothing under the output name; odd but
valid inputs render; an interrupted or killed render resumes to the frames an uninterrupted
run makes.

Everything is tiny so the file runs in about a minute on two CPU cores: the two-conv Keras
network of conftest.py (`tiny_keras_file`), one octave of 2 steps (1 after a shot's first
frame), and media of 64x48 made here:
- `clip.mp4`: 8 frames panning 2 px a frame over smooth coloured noise, 25 fps, lossless (crf 0);
- `photo.png`: the first frame of that pan as a still.
The SIGKILL test runs the installed command (`python -m dreamvid.cli`) in subprocesses (TensorFlow
starts in each: about 7 s).
"""

import errno
import glob
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_asserts import one_line_error
from helpers import pan_frames, run, write_clip

import dreamvid
from dreamvid.config.presets import PRESET_DIR, list_presets, load_preset
from dreamvid.config.settings import build_config
from dreamvid.jobs import pipeline
from dreamvid.media.sources import ffmpeg_exe, probe_video, read_image

W, H = 64, 48
REPO = Path(dreamvid.__file__).resolve().parent.parent  # the folder holding the dreamvid under test


def write_png(path, rgb):
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    frames = pan_frames(8)
    return {"clip": write_clip(d / "clip.mp4", frames), "photo": write_png(d / "photo.png", frames[0]),
            "dir": d}


def tiny(model, image=False, seed=3):
    """Fast dream flags on the tiny network; `image`: without the video-only --iterations-next."""
    args = ["--model", str(model), "--layers", "conv2", "--octaves", "1", "--iterations", "2", "--seed", str(seed)]
    return args if image else args + ["--iterations-next", "1"]


def leftovers(folder):
    """Names in `folder` that a render may have left: outputs, temporaries, work folders."""
    return sorted(p.name for p in Path(folder).iterdir())


def png_frames(folder):
    return [read_image(p) for p in sorted(glob.glob(os.path.join(str(folder), "*.png")))]


# ----------------------------------------------------------------------------- bad inputs


def test_missing_input(capsys, tmp_path, tiny_keras_file):
    line = one_line_error(*run(capsys, "video", tmp_path / "nope.mp4", "-o", tmp_path / "o.mp4",
                               *tiny(tiny_keras_file)),
                          "nope.mp4", "no such file")
    print(line)
    assert leftovers(tmp_path) == []


def test_folder_without_images(capsys, tmp_path, tiny_keras_file):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pictures here")
    out = tmp_path / "out"
    out.mkdir()
    one_line_error(*run(capsys, "video", empty, "-o", out / "o.mp4", *tiny(tiny_keras_file)), "no images in folder")
    assert leftovers(out) == []


def test_text_file_named_mp4(capsys, tmp_path, tiny_keras_file):
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n" * 20)
    out = tmp_path / "out"
    out.mkdir()
    one_line_error(*run(capsys, "video", fake, "-o", out / "o.mp4", *tiny(tiny_keras_file)),
                   "fake.mp4", "not a video ffmpeg can decode")
    assert leftovers(out) == []


def test_truncated_video_renders_what_decodes_and_warns_once(capsys, caplog, tmp_path, tiny_keras_file):
    rng = np.random.default_rng(1)
    full = write_clip(tmp_path / "full.mp4", [rng.integers(0, 255, (H, W, 3), dtype=np.uint8) for _ in range(16)],
                      crf=18)
    data = full.read_bytes()  # +faststart: the index comes first, so half the file still opens
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="dreamvid"):
        code, err = run(capsys, "video", cut, "-o", tmp_path / "out/", *tiny(tiny_keras_file))
    assert code == 0, err
    n = len(png_frames(tmp_path / "out"))
    assert 0 < n < 16
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING and r.name.startswith("dreamvid")]
    assert len(warnings) == 1 and f"stopped at frame {n}" in warnings[0], warnings


@pytest.mark.parametrize("kind", ["no frames", "audio only"])
def test_video_without_frames(capsys, tmp_path, tiny_keras_file, kind):
    src = ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "0", "-c:v", "libx264"] \
        if kind == "no frames" else ["-f", "lavfi", "-i", "sine=d=0.5", "-c:a", "aac"]
    path = tmp_path / ("zero.mp4" if kind == "no frames" else "tone.m4a")
    p = subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", *src, str(path)], capture_output=True)
    if p.returncode != 0 or not path.exists():
        pytest.skip(f"this ffmpeg cannot make a {kind} file: {p.stderr[-200:]!r}")
    out = tmp_path / "out"
    out.mkdir()
    one_line_error(*run(capsys, "video", path, "-o", out / "o.mp4", *tiny(tiny_keras_file)), path.name)
    assert leftovers(out) == []


def test_one_frame_video(capsys, tmp_path, media, tiny_keras_file):
    one = write_clip(tmp_path / "one.mp4", pan_frames(1))
    code, err = run(capsys, "video", one, "-o", tmp_path / "o.mp4", *tiny(tiny_keras_file))
    assert code == 0, err
    assert probe_video(tmp_path / "o.mp4")["n_frames"] == 1
    assert "wrote" in err and "1 frame " in err


# ----------------------------------------------------------------------------- odd images


def test_one_pixel_and_3x5_images_render(capsys, tmp_path, tiny_keras_file):
    rng = np.random.default_rng(2)
    for w, h in ((1, 1), (3, 5)):
        src = write_png(tmp_path / f"in{w}x{h}.png", rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        code, err = run(capsys, "image", src, "-o", tmp_path / f"o{w}x{h}.png", *tiny(tiny_keras_file, image=True))
        assert code == 0, err
        assert read_image(tmp_path / f"o{w}x{h}.png").shape == (h, w, 3)
    # a video of a 1x1 image: PNG frames work; H.264 cannot hold 1x1 and says what to do instead
    code, err = run(capsys, "video", tmp_path / "in1x1.png", "-o", tmp_path / "v1/", *tiny(tiny_keras_file))
    assert code == 0, err
    assert [f.shape for f in png_frames(tmp_path / "v1")] == [(1, 1, 3)]
    one_line_error(*run(capsys, "video", tmp_path / "in1x1.png", "-o", tmp_path / "v1.mp4", *tiny(tiny_keras_file)),
                   "1x1", "at least 2x2", "--width")
    assert not (tmp_path / "v1.mp4").exists() and not (tmp_path / ".v1.mp4.dreamvid").exists()
    # a zoom from a 1x1 image: stretched to the smallest even size, 2x2
    code, err = run(capsys, "zoom", tmp_path / "in1x1.png", "-o", tmp_path / "z1/", "--frames", 2,
                    *tiny(tiny_keras_file))
    assert code == 0, err
    assert [f.shape for f in png_frames(tmp_path / "z1")] == [(2, 2, 3)] * 2


@pytest.mark.parametrize("kind", ["gray", "rgba", "palette", "16-bit"])
def test_image_kinds_render(capsys, tmp_path, tiny_keras_file, kind):
    from PIL import Image

    rng = np.random.default_rng(3)
    path = tmp_path / f"{kind}.png"
    if kind == "gray":
        cv2.imwrite(str(path), rng.integers(0, 255, (H, W), dtype=np.uint8))
    elif kind == "rgba":
        cv2.imwrite(str(path), rng.integers(0, 255, (H, W, 4), dtype=np.uint8))
    elif kind == "palette":
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).convert("P").save(path)
    else:
        cv2.imwrite(str(path), rng.integers(0, 65535, (H, W, 3), dtype=np.uint16))
    code, err = run(capsys, "image", path, "-o", tmp_path / "o.png", *tiny(tiny_keras_file, image=True))
    assert code == 0, err
    assert cv2.imread(str(tmp_path / "o.png"), cv2.IMREAD_UNCHANGED).shape == (H, W, 3)


def test_mixed_sizes_in_a_sequence_render_with_one_warning(capsys, caplog, tmp_path, tiny_keras_file):
    seq = tmp_path / "seq"
    seq.mkdir()
    frames = pan_frames(4)
    for i, f in enumerate(frames):
        write_png(seq / f"f{i}.png", f if i % 2 == 0 else cv2.resize(f, (50, 40)))
    with caplog.at_level(logging.WARNING, logger="dreamvid"):
        code, err = run(capsys, "video", seq, "-o", tmp_path / "out/", *tiny(tiny_keras_file))
    assert code == 0, err
    assert [f.shape for f in png_frames(tmp_path / "out")] == [(H, W, 3)] * 4
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING and r.name.startswith("dreamvid")]
    assert len(warnings) == 1 and "f1.png" in warnings[0] and "50x40" in warnings[0], warnings


# ----------------------------------------------------------------------------- bad outputs


def test_output_equal_to_input(capsys, tmp_path, media, tiny_keras_file):
    clip = shutil.copy(media["clip"], tmp_path / "clip.mp4")
    before = Path(clip).read_bytes()
    one_line_error(*run(capsys, "video", clip, "-o", clip, *tiny(tiny_keras_file)), "is the input")
    seq = tmp_path / "seq"
    seq.mkdir()
    write_png(seq / "a.png", pan_frames(1)[0])
    one_line_error(*run(capsys, "video", seq, "-o", f"{seq}/", *tiny(tiny_keras_file)), "is the input")
    assert Path(clip).read_bytes() == before and leftovers(seq) == ["a.png"]
    assert leftovers(tmp_path) == ["clip.mp4", "seq"]


def test_output_folder_missing(capsys, tmp_path, media, tiny_keras_file):
    one_line_error(*run(capsys, "video", media["clip"], "-o", tmp_path / "no" / "o.mp4", *tiny(tiny_keras_file)),
                   "does not exist", "mkdir -p")
    assert leftovers(tmp_path) == []


def test_output_folder_not_writable(capsys, tmp_path, media, tiny_keras_file, monkeypatch):
    # under a regular file (root can write anywhere, so a file in the way is the real case)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    one_line_error(*run(capsys, "video", media["clip"], "-o", blocker / "o.mp4", *tiny(tiny_keras_file)),
                   "is a file, not a folder")
    # a read-only folder, as os.access reports it for an ordinary user
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access",
                        lambda p, mode, **kw: False if os.fspath(p) == str(ro) else real_access(p, mode, **kw))
    one_line_error(*run(capsys, "video", media["clip"], "-o", ro / "o.mp4", *tiny(tiny_keras_file)), "not writable")
    one_line_error(*run(capsys, "image", media["photo"], "-o", ro / "o.png", *tiny(tiny_keras_file, image=True)),
                   "not writable")
    assert leftovers(ro) == []


def test_unknown_output_format_is_refused_before_the_network_loads(capsys, tmp_path, media, tiny_keras_file):
    code, err = run(capsys, "video", media["clip"], "-o", tmp_path / "o.avi", *tiny(tiny_keras_file))
    one_line_error(code, err, "unknown output format '.avi'", ".mp4")
    assert "dreaming" not in err
    one_line_error(*run(capsys, "zoom", media["photo"], "-o", tmp_path / "o.flv", *tiny(tiny_keras_file)), "'.flv'")
    assert leftovers(tmp_path) == []


def _fail_replace_onto(monkeypatch, predicate):
    """Make os.replace raise ENOSPC for destinations matching `predicate` (a full disk)."""
    real = os.replace

    def replace(src, dst, *a, **kw):
        if predicate(os.fspath(dst)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)


def test_full_disk_when_saving_the_output_keeps_the_work(capsys, tmp_path, media, tiny_keras_file, monkeypatch):
    out = tmp_path / "o.mp4"
    args = ["video", media["clip"], "-o", out, *tiny(tiny_keras_file)]
    _fail_replace_onto(monkeypatch, lambda dst: dst == str(out))
    one_line_error(*run(capsys, *args), "disk is full", "free some space")
    work = Path(pipeline.work_folder(str(out)))
    assert not out.exists() and len(list((work / "frames").glob("*.png"))) == 8
    assert [n for n in leftovers(tmp_path) if "partial" in n] == []
    monkeypatch.undo()
    code, err = run(capsys, *args)  # space again: every frame comes from the work folder
    assert code == 0, err
    assert "resuming from frame 8" in err and probe_video(out)["n_frames"] == 8 and not work.exists()


def test_full_disk_in_the_work_folder_keeps_earlier_frames(capsys, tmp_path, media, tiny_keras_file, monkeypatch):
    out = tmp_path / "o.mp4"
    args = ["video", media["clip"], "-o", out, *tiny(tiny_keras_file)]
    _fail_replace_onto(monkeypatch, lambda dst: dst.endswith("000003.png"))
    one_line_error(*run(capsys, *args), "000003.png", "No space left", "check that the disk has space")
    work = Path(pipeline.work_folder(str(out)))
    stored = sorted(p.name for p in (work / "frames").glob("*.png"))
    # frames 0-2 kept, frame 3 not; the frame after it may be stored too, where its store began before the
    # failure was seen (a resume continues after the frames stored without a gap)
    assert not out.exists() and stored[:3] == ["000000.png", "000001.png", "000002.png"] and "000003.png" not in stored
    monkeypatch.undo()
    code, err = run(capsys, *args)
    assert code == 0, err
    assert "resuming from frame 3" in err and probe_video(out)["n_frames"] == 8


# ----------------------------------------------------------------------------- bad settings


@pytest.mark.parametrize("text,words", [
    ("[dream]\noctavs = 3\n", ["bad.toml", "unknown setting 'dream.octavs'", "dream.octaves"]),
    ("[video]\nblend = 2.5\n", ["bad.toml", "blend must be between 0.0 and 1.0"]),
    ("[dream]\noctaves = \"many\"\n", ["bad.toml", "octaves must be a whole number"]),
    ("[dream\noctaves = 3\n", ["bad.toml", "not valid TOML", "line 1"]),
    ("[dreams]\noctaves = 3\n", ["bad.toml", "unknown table [dreams]"]),
])
def test_invalid_preset_names_the_file_and_key(capsys, tmp_path, media, tiny_keras_file, text, words):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    one_line_error(*run(capsys, "image", media["photo"], "-o", tmp_path / "o.png", "--preset", bad,
                        *tiny(tiny_keras_file, image=True)), *words)
    assert not (tmp_path / "o.png").exists()


def test_unknown_or_missing_preset(capsys, tmp_path, media):
    one_line_error(*run(capsys, "image", media["photo"], "-o", tmp_path / "o.png", "--preset", "clasic"),
                   "unknown preset 'clasic'", "did you mean 'classic'")
    one_line_error(*run(capsys, "image", media["photo"], "-o", tmp_path / "o.png", "--preset", tmp_path / "no.toml"),
                   "no.toml", "does not exist")


@pytest.mark.parametrize("name", list_presets())
def test_every_bundled_preset_loads_and_validates(name):
    values, description = load_preset(name)
    assert description and values
    build_config(values, source=str(PRESET_DIR / f"{name}.toml"))


@pytest.mark.parametrize("command,extra,words", [
    ("video", ["--octaves", "1000"], ["octaves must be between 1 and 12"]),
    ("video", ["--step", "nan"], ["step must be a finite number"]),
    ("video", ["--step", "inf"], ["step must be a finite number"]),
    ("video", ["--step", "-1"], ["step must be between"]),
    ("video", ["--blend", "2"], ["blend must be between 0.0 and 1.0"]),
    ("video", ["--iterations", "-3"], ["iterations must be between 0 and 1000"]),
    ("video", ["--octave-scale", "1e9"], ["octave_scale must be between"]),
    ("video", ["--width", "1"], ["width must be between 16"]),
    ("video", ["--fps", "0"], ["fps must be between"]),
    ("video", ["--start", "-1"], ["start must be >= 0"]),
    ("video", ["--max-frames", "0"], ["max_frames must be >= 1"]),
    ("video", ["--tile-size", "1"], ["tile_size must be between 64"]),
    ("video", ["--crf", "99"], ["crf must be between 0 and 51"]),
    ("video", ["--seed", "-5"], ["seed must be between 0"]),
    ("video", ["--octaves"], ["--octaves: expected one argument"]),
    ("zoom", ["--frames", "0"], ["frames must be between 1"]),
    ("zoom", ["--zoom", "nan"], ["zoom schedule", "not finite"]),
    ("zoom", ["--zoom", "0"], ["zoom must be > 0", "at frame 0"]),
    ("zoom", ["--zoom", "0:(1.02), 2:(-1)"], ["zoom must be > 0", "got -1 at frame 2"]),
    ("zoom", ["--zoom-blend", "2"], ["zoom blend must stay within 0..1"]),
    ("zoom", ["--center", "a,b"], ["center must be X,Y"]),
    ("zoom", ["--pan", "1"], ["--pan must be X,Y"]),
])
def test_absurd_parameters(capsys, tmp_path, media, tiny_keras_file, command, extra, words):
    src = media["clip"] if command == "video" else media["photo"]
    out = tmp_path / "out"
    out.mkdir()
    code, err = run(capsys, command, src, "-o", out / "o.mp4", "--frames" if command == "zoom" else "--max-frames", 3,
                    *tiny(tiny_keras_file), *extra)
    one_line_error(code, err, *words)
    assert "dreaming" not in err  # refused before any frame is dreamed
    assert leftovers(out) == []  # no output, no temporary, no work folder


def test_unknown_layer_and_model(capsys, tmp_path, media, tiny_keras_file):
    args = ["video", media["clip"], "-o", tmp_path / "o.mp4", *tiny(tiny_keras_file)]
    one_line_error(*run(capsys, *args, "--layers", "conv9"), "no layer 'conv9'", "did you mean conv2")
    one_line_error(*run(capsys, *args, "--model", "nosuchnet"), "unknown model 'nosuchnet'", "googlenet")
    one_line_error(*run(capsys, *args, "--model", tmp_path / "missing.keras"), "missing.keras", "does not exist")
    assert leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- awkward names


def test_paths_with_spaces_and_non_ascii(capsys, tmp_path, media, tiny_keras_file):
    src = Path(shutil.copy(media["clip"], tmp_path / "my clip é ü.mp4"))
    folder = tmp_path / "out put ñ 夢"
    folder.mkdir()
    out = folder / "dréam ø.mp4"
    code, err = run(capsys, "video", src, "-o", out, "--max-frames", 3, *tiny(tiny_keras_file))
    assert code == 0, err
    assert probe_video(out)["n_frames"] == 3 and leftovers(folder) == ["dréam ø.mp4", "dréam ø.mp4.json"]


def test_file_name_starting_with_a_dash(capsys, tmp_path, media, tiny_keras_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(media["photo"], tmp_path / "-in.png")
    flags = tiny(tiny_keras_file, image=True)
    code, err = run(capsys, "image", "--output=-o1.png", *flags, "--", "-in.png")  # after --; OPTION=VALUE
    assert code == 0, err
    code, err = run(capsys, "image", "./-in.png", "-o", "./-o2.png", *flags)  # ./ form
    assert code == 0, err
    assert read_image("-o1.png").shape == read_image("-o2.png").shape == (H, W, 3)
    # without either, argparse takes it for an option: one line that says how to write it
    one_line_error(*run(capsys, "image", "-in.png", "-o", "o3.png", *flags), "./-name", "--")


# ----------------------------------------------------------------------------- interruptions


def test_keyboard_interrupt_exits_130_and_resumes(capsys, tmp_path, media, tiny_keras_file, monkeypatch):
    from dreamvid.cli import commands as cli

    out = tmp_path / "o.mp4"
    args = ["video", media["clip"], "-o", out, *tiny(tiny_keras_file)]
    real_frame = cli._Bar.frame

    def frame(self, index, stats):
        if index == 2:
            raise KeyboardInterrupt
        real_frame(self, index, stats)

    monkeypatch.setattr(cli._Bar, "frame", frame)
    code, err = run(capsys, *args)
    assert code == 130, err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and lines[-1].startswith("interrupted:") and "run the same command again" in lines[-1]
    work = Path(pipeline.work_folder(str(out)))
    assert not out.exists() and len(list((work / "frames").glob("*.png"))) == 3
    assert [n for n in leftovers(tmp_path) if "partial" in n] == []
    monkeypatch.undo()
    code, err = run(capsys, *args)
    assert code == 0, err
    assert "resuming from frame 3" in err and probe_video(out)["n_frames"] == 8 and not work.exists()


def _render_cmd(model, clip, out):
    return [sys.executable, "-m", "dreamvid.cli", "video", str(clip), "-o", str(out),
            *tiny(model, seed=7), "--iterations", "3", "--iterations-next", "2"]


def _kill_when(proc, frames_dir, at_least, timeout=60.0):
    """SIGKILL `proc` once `frames_dir` holds `at_least` finished frames; returns how many it held."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if len(glob.glob(os.path.join(frames_dir, "[0-9]*.png"))) >= at_least:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return len(glob.glob(os.path.join(frames_dir, "[0-9]*.png")))
        if proc.poll() is not None:
            pytest.fail(f"the render ended (rc {proc.returncode}) before {at_least} frames were stored: "
                        f"{proc.stderr.read().decode()[-500:]}")
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"no {at_least} frames in {frames_dir} within {timeout} s")


# frames stored before each SIGKILL; each kill hits the run resumed after the previous one. One
# kill keeps the file near a minute (every run starts TensorFlow); DREAMVID_TEST_KILLS=2,5,9 runs more.
KILLS = tuple(int(k) for k in os.environ.get("DREAMVID_TEST_KILLS", "3").split(","))


def test_sigkill_then_resume_gives_the_uninterrupted_frames(tmp_path, tiny_keras_file):
    clip = write_clip(tmp_path / "clip.mp4", pan_frames(12, seed=5))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    pipe = dict(env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # the uninterrupted reference runs beside the killed one (two cores, two processes)
    ref = subprocess.Popen(_render_cmd(tiny_keras_file, clip, tmp_path / "ref/"), **pipe)
    out = tmp_path / "out"
    frames_dir = os.path.join(pipeline.work_folder(str(out) + "/"), "frames")
    held = []
    for at_least in KILLS:
        proc = subprocess.Popen(_render_cmd(tiny_keras_file, clip, f"{out}/"), **pipe)
        held.append(_kill_when(proc, frames_dir, at_least))
        assert not out.exists()  # nothing under the final name while the render is dead
        assert os.path.isfile(os.path.join(os.path.dirname(frames_dir), "state.json"))
    print(f"killed with {held} frames stored")
    assert all(a <= b for a, b in zip(held, held[1:])) and held[0] >= KILLS[0]
    final = subprocess.run(_render_cmd(tiny_keras_file, clip, f"{out}/"), **{k: v for k, v in pipe.items()})
    err = final.stderr.decode()
    assert final.returncode == 0, err
    assert f"resuming from frame {held[-1]}" in err
    assert ref.wait(timeout=120) == 0, ref.stderr.read().decode()[-500:]
    got, want = png_frames(out), png_frames(tmp_path / "ref")
    assert len(got) == len(want) == 12
    for k, (a, b) in enumerate(zip(got, want)):
        assert np.array_equal(a, b), f"frame {k} differs from the uninterrupted render's (kills at {held})"
    assert not os.path.exists(os.path.dirname(frames_dir))  # the work folder goes once the output is whole


def test_ctrl_c_stops_the_threads_cleanly_and_says_how_to_resume(tmp_path, tiny_keras_file):
    clip = write_clip(tmp_path / "clip.mp4", pan_frames(60, seed=6))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = tmp_path / "out.mp4"
    frames_dir = os.path.join(pipeline.work_folder(str(out)), "frames")
    # 30 steps a frame: slow enough that the render cannot finish between the poll and the signal
    # on a loaded machine (it once did, at 2 steps a frame)
    slow = _render_cmd(tiny_keras_file, clip, out) + ["--iterations-next", "30"]
    proc = subprocess.Popen(slow, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    while len(glob.glob(os.path.join(frames_dir, "[0-9]*.png"))) < 2 and time.monotonic() - t0 < 60:
        assert proc.poll() is None, proc.stderr.read().decode()[-500:]
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    try:
        rc = proc.wait(timeout=30)  # reader and writer threads stop; no hang
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the render did not stop within 30 s of SIGINT")
    err = proc.stderr.read().decode()
    assert rc == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("interrupted:"), err
    assert "run the same command again to resume" in err
    kept = len(glob.glob(os.path.join(frames_dir, "[0-9]*.png")))
    print(f"interrupted with {kept} of 60 frames stored")
    assert 2 <= kept < 60 and not out.exists()  # finished frames kept, nothing under the final name
    final = subprocess.run(slow, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert final.returncode == 0 and f"resuming from frame {kept}" in final.stderr.decode()
    assert probe_video(out)["n_frames"] == 60
