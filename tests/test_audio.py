"""Music drives the schedules (dreamvid.media.audio, `render.py keys`, "audio:" schedules).

Sounds are made here with NumPy and written as 22050 Hz mono WAV files (the rate audio.py
decodes at, so ffmpeg resamples nothing and sample counts stay exact).
"""

import json
import math
from fractions import Fraction

import cv2
import numpy as np
import pytest
from cli_asserts import one_line_error
from helpers import run, write_clip
from scipy.io import wavfile

from dreamvid.config.schedule import Schedule
from dreamvid.core.errors import ConfigError
from dreamvid.media import audio

R = audio.RATE
NTSC = Fraction(30000, 1001)


def wav(path, samples):
    wavfile.write(str(path), R, np.asarray(samples, np.float32))
    return str(path)


def silence(seconds):
    return np.zeros(int(round(seconds * R)), np.float32)


def tone(seconds, freq=220.0, level=0.5):
    t = np.arange(int(round(seconds * R))) / R
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def clicks(seconds, times):
    """Silence with a 2 ms click (a Hann-shaped burst) at each of `times`."""
    x = silence(seconds)
    n = int(0.002 * R)
    for t in times:
        i = int(round(t * R))
        x[i:i + n] += 0.9 * np.hanning(n).astype(np.float32)
    return x


# ----------------------------------------------------------------------------- envelope


def test_envelope_has_one_value_per_frame_at_an_exact_rate(tmp_path):
    pcm = audio.decode(wav(tmp_path / "two.wav", tone(2.0)))
    assert pcm.size == 2 * R
    env = audio.envelope(pcm, R, NTSC)
    # frames starting inside 2 s at 29.97 fps: 0 .. 59 (frame 59 starts at 1.9686 s)
    assert len(env) == math.ceil(2 * NTSC) == 60
    assert len(audio.envelope(pcm, R, Fraction(25))) == 50  # an exact fit: no frame starts at 2.0 s
    assert env.min() >= 0.0 and env.max() <= 1.0
    assert len(audio.envelope(pcm, R, NTSC, frames=75)) == 75  # padded with silence


def test_a_click_train_peaks_at_the_frames_of_its_clicks(tmp_path):
    fps = Fraction(25)
    # 2 Hz, each click a quarter frame into its frame, so no click sits on a frame boundary
    times = [0.5 * i + 0.01 for i in range(1, 6)]
    pcm = audio.decode(wav(tmp_path / "clicks.wav", clicks(3.0, times)))
    env = audio.envelope(pcm, R, fps, mode="onsets", attack=0, release=0)
    expected = [int(t * fps) for t in times]  # 12, 25, 37, 50, 62
    peaks = [k for k in range(len(env)) if env[k] > 0.5]
    assert peaks == expected, np.round(env, 2)
    # between the clicks the flux is silence's: nothing
    quiet = np.delete(env, [k + d for k in expected for d in (-1, 0, 1)])
    assert quiet.max() < 0.05


def test_the_follower_rises_within_the_attack_and_decays_within_the_release(tmp_path):
    fps, attack, release = Fraction(100), 0.1, 0.5
    pcm = audio.decode(wav(tmp_path / "burst.wav", np.concatenate([silence(1.0), tone(1.0), silence(2.0)])))
    env = audio.envelope(pcm, R, fps, mode="rms", attack=attack, release=release)
    on, off = 100, 200  # the burst covers frames 100..199
    assert env[:on].max() == 0.0
    top = env[off - 1]  # the level it settles at (a sine's RMS over a 10 ms frame varies a little)
    assert top > 0.95
    # one time constant after the burst starts: 63% of the way up; three: 95%
    assert 0.55 < env[on + int(attack * 100)] / top < 0.72
    assert env[on + int(3 * attack * 100)] / top > 0.93
    # after it ends the value falls by the release: 37% left after one, 5% after three
    assert 0.30 < env[off - 1 + int(release * 100)] / top < 0.42
    assert env[off - 1 + int(3 * release * 100)] / top < 0.06
    assert np.all(np.diff(env[off:]) <= 0)  # a swell and a decay, no wobble
    # no smoothing: the raw, normalised loudness (a step from 0 to 1)
    raw = audio.envelope(pcm, R, fps, mode="rms", attack=0, release=0)
    assert raw[on - 1] == 0.0 and raw[on + 1] > 0.99 and raw[off] == 0.0


def test_specs_read_from_the_right():
    assert audio.parse_spec("audio:song.mp3") == audio.AudioSpec("song.mp3", 0.0, 1.0, "rms")
    assert audio.parse_spec("audio:song.mp3:1:3") == audio.AudioSpec("song.mp3", 1.0, 3.0, "rms")
    assert (audio.parse_spec("audio:C:/m/song.mp3:1.0:1.04:onsets")
            == audio.AudioSpec("C:/m/song.mp3", 1.0, 1.04, "onsets"))
    assert audio.parse_spec("audio:a.wav:onsets").mode == "onsets"
    with pytest.raises(ConfigError, match="MIN 3 is above MAX 1"):
        audio.parse_spec("audio:song.mp3:3:1")
    with pytest.raises(ConfigError, match="both MIN and MAX"):
        audio.parse_spec("audio:song.mp3:3")


# ----------------------------------------------------------------------------- render.py keys


def test_keys_writes_a_schedule_that_reads_back_with_the_same_values(capsys, tmp_path):
    sound = wav(tmp_path / "beat.wav", np.concatenate([tone(0.3), silence(0.4), tone(0.3, level=0.2), silence(0.5)]))
    out, png = tmp_path / "keys.txt", tmp_path / "keys.png"
    code, err = run(capsys, "keys", sound, "--fps", "29.97", "-o", out, "--min", "1.0", "--max", "3.0", "--plot", png)
    assert code == 0, err
    text = out.read_text()
    env = audio.envelope(audio.decode(sound), R, NTSC)
    want = audio.values(env, 1.0, 3.0)
    sched = Schedule.parse(text, name="step")
    assert sched.frames == list(range(len(env))) == list(range(45))  # 1.5 s at 29.97 fps
    assert [sched.at(k) for k in range(len(env))] == list(want)
    assert want.min() >= 1.0 and want.max() <= 3.0 and want.max() > 2.9
    assert text.startswith("0:(") and "1:(" in text
    img = cv2.imread(str(png))
    assert img is not None and img.shape[1] > img.shape[0] > 100
    assert img.std() > 10  # axes, labels and a curve on white
    # --frames: this many keyframes, the sound cut short
    code, err = run(capsys, "keys", sound, "--fps", "25", "-o", out, "--frames", "10", "--mode", "onsets")
    assert code == 0, err
    assert Schedule.parse(out.read_text()).frames == list(range(10))


@pytest.mark.parametrize("extra, words", [
    (["--attack", "-0.1"], ["attack", "seconds"]),
    (["--release", "x"], ["release", "seconds"]),
    (["--attack", "nan"], ["attack"]),
    (["--min", "3", "--max", "1"], ["--min 3 is above --max 1"]),
    (["--fps", "0"], ["--fps"]),
])
def test_keys_rejects_bad_settings_in_one_line_writing_nothing(capsys, tmp_path, extra, words):
    sound = wav(tmp_path / "s.wav", tone(0.5))
    out = tmp_path / "keys.txt"
    argv = ["keys", sound, "-o", out, "--plot", tmp_path / "k.png"]
    argv += extra if "--fps" in extra else ["--fps", "25", *extra]
    one_line_error(*run(capsys, *argv), *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.wav"]


def test_keys_rejects_bad_sound_files_in_one_line(capsys, tmp_path):
    picture = tmp_path / "picture.png"
    cv2.imwrite(str(picture), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "noise.mp3").write_bytes(b"not a sound at all" * 10)
    for name, words in (("missing.wav", ["no such file"]), ("picture.png", ["no sound track"]),
                        ("noise.mp3", ["cannot read the sound"])):
        one_line_error(*run(capsys, "keys", tmp_path / name, "--fps", "25", "-o", tmp_path / "k.txt"), *words)
    assert not (tmp_path / "k.txt").exists()


# ----------------------------------------------------------------------------- audio: schedules


def tiny_zoom(tiny_keras_file, out, *extra):
    return ["zoom", "--from", "noise", "--width", "32", "--frames", "6", "--fps", "10", "-o", out,
            "--model", tiny_keras_file, "--layers", "conv2", "--octaves", "1", "--iterations", "1",
            "--iterations-next", "1", "--seed", "1", "--color-match", "0", *extra]


def test_an_audio_step_follows_the_envelope_frame_by_frame(capsys, tmp_path, tiny_keras_file, monkeypatch):
    from dreamvid.engine.dreamer import Dreamer

    # silence, a loud 0.2 s (frames 2-3 at 10 fps), silence again
    sound = wav(tmp_path / "burst.wav", np.concatenate([silence(0.2), tone(0.2), silence(0.2)]))
    steps = []
    dream = Dreamer.dream

    def spy(self, img, **kw):
        if kw.get("seed") is not None:  # the pipeline's call (a tiny frame is dreamed enlarged, a call within)
            steps.append(kw["step"])
        return dream(self, img, **kw)

    monkeypatch.setattr(Dreamer, "dream", spy)
    spec = f"audio:{sound}:0.5:4.0"
    out = tmp_path / "z"
    code, err = run(capsys, *tiny_zoom(tiny_keras_file, f"{out}/", "--step", spec))
    assert code == 0, err
    env = audio.envelope(audio.decode(sound), R, Fraction(10), frames=6)
    want = audio.values(env, 0.5, 4.0)
    assert steps == pytest.approx(list(want), abs=1e-9)
    assert steps[0] == 0.5 and steps[1] == 0.5 and max(steps) == steps[3] > 3.0 and steps[5] < steps[4] < steps[3]
    record = json.loads((tmp_path / "z.json").read_text())
    assert record["settings"]["zoom"]["step"] == spec  # as written: the record repeats the render


def test_a_sound_changed_behind_its_spec_is_noticed_on_resume(capsys, tmp_path, tiny_keras_file):
    """A zoom whose step follows a sound, stopped after 3 frames (the API's progress callback);
    the sound file rewritten (same name, same spec): the resume is refused in one line naming it,
    exit 2, nothing under the output's name. The first sound put back (copied with its times):
    the same command resumes to the frames of an uninterrupted render."""
    import glob
    import shutil

    import dreamvid
    from dreamvid.jobs.pipeline import work_folder

    sound = wav(tmp_path / "s.wav", np.concatenate([silence(0.2), tone(0.2), silence(0.2)]))
    shutil.copy2(sound, tmp_path / "kept.wav")
    spec = f"audio:{sound}:0.5:4.0"
    ref, out = tmp_path / "ref", tmp_path / "z"
    assert run(capsys, *tiny_zoom(tiny_keras_file, f"{ref}/", "--step", spec))[0] == 0
    with pytest.raises(dreamvid.Cancelled):
        dreamvid.render_zoom(None, f"{out}/", model=tiny_keras_file, from_="noise", width=32, frames=6, fps=10,
                             layers="conv2", octaves=1, iterations=1, iterations_next=1, seed=1, color_match=0,
                             step=spec, progress=lambda u: not (u.kind == "frame" and u.index == 2))
    wav(tmp_path / "s.wav", np.concatenate([tone(0.2), silence(0.4)]))  # another sound, the same name
    line = one_line_error(*run(capsys, *tiny_zoom(tiny_keras_file, f"{out}/", "--step", spec)),
                          f"the sound file '{sound}' that zoom.step follows changed", "--restart")
    print(line)
    assert not out.exists() and not (tmp_path / "z.json").exists()
    assert len(glob.glob(f"{work_folder(str(out))}/frames/*.png")) == 3  # the frames kept
    shutil.copy2(tmp_path / "kept.wav", sound)  # the first sound back, times and all
    code, err = run(capsys, *tiny_zoom(tiny_keras_file, f"{out}/", "--step", spec))
    assert code == 0 and "resuming from frame 3" in err, err
    got, want = sorted(glob.glob(f"{out}/*.png")), sorted(glob.glob(f"{ref}/*.png"))
    assert len(got) == len(want) == 6
    assert all(np.array_equal(cv2.imread(a), cv2.imread(b)) for a, b in zip(got, want))


@pytest.mark.parametrize("make_args, words", [
    (lambda s, p: ["--step", f"audio:{p}:1:2"], ["no sound track"]),
    (lambda s, p: ["--zoom", f"audio:{s}:1.04:1.0"], ["MIN 1.04 is above MAX 1"]),
    (lambda s, p: ["--zoom", f"audio:{s}:1.0:1.04:drums"], ["mode 'drums' is unknown", "rms or onsets"]),
    (lambda s, p: ["--layers", f"audio:{s}"], ["layers cannot follow a sound", "--step"]),
    (lambda s, p: ["--jitter", f"audio:{s}"], ["jitter cannot follow a sound"]),
    (lambda s, p: ["--step", f"audio:{s}.missing:1:2"], ["no such file"]),
])
def test_audio_schedules_reject_bad_input_in_one_line_writing_nothing(capsys, tmp_path, tiny_keras_file,
                                                                       make_args, words):
    sound = wav(tmp_path / "s.wav", tone(0.5))
    picture = tmp_path / "p.png"
    cv2.imwrite(str(picture), np.zeros((8, 8, 3), np.uint8))
    before = sorted(p.name for p in tmp_path.iterdir())
    one_line_error(*run(capsys, *tiny_zoom(tiny_keras_file, tmp_path / "z.mp4", *make_args(sound, picture))), *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_still_cannot_follow_a_sound(capsys, tmp_path):
    sound = wav(tmp_path / "s.wav", tone(0.5))
    picture = tmp_path / "p.png"
    cv2.imwrite(str(picture), np.full((8, 8, 3), 128, np.uint8))
    one_line_error(*run(capsys, "image", picture, "-o", tmp_path / "o.png", "--step", f"audio:{sound}:1:2"),
                   "step cannot follow a sound")
    assert not (tmp_path / "o.png").exists()


def test_an_audio_step_in_a_video_follows_the_envelope_at_the_clip_rate(tmp_path, tiny_model, monkeypatch):
    from dreamvid.config.settings import build_config
    from dreamvid.engine.dreamer import Dreamer
    from dreamvid.jobs import pipeline

    clip = str(tmp_path / "clip.mp4")
    rng = np.random.default_rng(0)
    write_clip(clip, [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(5)], fps=NTSC)
    # frames 0-1 silent, 2-4 loud at 29.97 fps (frame 2 starts at 0.0667 s)
    sound = wav(tmp_path / "s.wav", np.concatenate([silence(0.07), tone(0.12)]))
    steps = []
    dream = Dreamer.dream

    def spy(self, img, **kw):
        if kw.get("seed") is not None:
            steps.append(kw["step"])
        return dream(self, img, **kw)

    monkeypatch.setattr(Dreamer, "dream", spy)
    spec = f"audio:{sound}:0.5:2.0"
    cfg = build_config({"video.step": spec, "octaves": 1, "iterations": 1, "iterations_next": 1, "seed": 1,
                        "next_skip": 0})  # every octave: the step passed is the schedule's own
    pipeline.render_video(cfg, clip, str(tmp_path / "out") + "/", model=tiny_model)
    want = audio.values(audio.envelope(audio.decode(sound), R, NTSC), 0.5, 2.0)
    assert len(want) == 6 and steps == pytest.approx(list(want[:5]), abs=1e-9)  # 0.19 s: 6 frames, the clip 5
    assert steps[0] == steps[1] == 0.5 < steps[2] < steps[3]
