"""Behaviour tests for dreamvid.media.sources and dreamvid.media.sinks.

Clips are made in tmp_path: 64x48 frames whose flat gray level encodes the frame index
(level = 10 * index), written through the sinks themselves, so a round trip checks count,
size, rate and order at once. Audio inputs are made with ffmpeg's `sine` source.
"""

import logging
import os
import subprocess
import time
from fractions import Fraction

import cv2
import numpy as np
import pytest
from helpers import write_clip

from dreamvid.core.errors import InputError, OutputError
from dreamvid.media.sinks import AudioSpec, open_sink
from dreamvid.media.sources import (
    as_fps,
    exact_fps,
    ffmpeg_exe,
    natural_key,
    open_source,
    probe_video,
    read_image,
)

NTSC = Fraction(30000, 1001)
W, H = 64, 48


def gray(i, w=W, h=H):
    """Frame i: flat gray at level 10*i, (h, w, 3) uint8."""
    return np.full((h, w, 3), min(255, 10 * i), np.uint8)


def level(frame):
    """The frame index a gray() frame encodes, robust to compression."""
    return int(round(float(frame.mean()) / 10.0))


def make_clip(path, n=10, fps=NTSC, size=(W, H), audio=None, crf=0):
    """n gray() frames of size = (w, h), written with the sinks."""
    return str(write_clip(path, [gray(i, *size) for i in range(n)], fps=fps, crf=crf, audio=audio))


def make_tone(path, seconds=2.0):
    """A video-less file with an audio stream (1 kHz sine), via ffmpeg's lavfi."""
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"sine=frequency=1000:duration={seconds}", "-c:a", "aac", str(path)],
                   check=True)
    return str(path)


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext", [".mp4", ".mov", ".mkv"])
def test_video_round_trip_keeps_count_size_and_exact_ntsc_rate(tmp_path, ext):
    path = make_clip(tmp_path / f"clip{ext}", n=12)
    facts = probe_video(path)
    assert facts == dict(fps=NTSC, n_frames=12, width=W, height=H, has_audio=False)
    with open_source(path) as src:
        assert src.info.fps == NTSC and (src.info.width, src.info.height) == (W, H)
        frames = list(src)
    assert len(frames) == 12
    assert all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in frames)
    assert [level(f) for f in frames] == list(range(12))


def test_integer_rate_stays_integer(tmp_path):
    path = make_clip(tmp_path / "c25.mp4", n=5, fps=Fraction(25))
    assert open_source(path).info.fps == Fraction(25)


def test_gif_round_trip(tmp_path):
    path = make_clip(tmp_path / "a.gif", n=6, fps=Fraction(10))
    facts = probe_video(path)
    assert (facts["n_frames"], facts["width"], facts["height"]) == (6, W, H)
    assert facts["fps"] == Fraction(10)
    assert [level(f) for f in open_source(path)] == list(range(6))


@pytest.mark.parametrize("name", ["frames/", "frames"])
def test_png_folder_round_trip(tmp_path, name):
    out = make_clip(tmp_path / name, n=11)
    folder = tmp_path / "frames"
    assert sorted(os.listdir(folder)) == [f"frame_{i:06d}.png" for i in range(1, 12)]
    src = open_source(str(folder), fps=NTSC)
    assert src.info.n_frames == 11 and src.info.fps == NTSC
    assert [level(f) for f in src] == list(range(11))  # exact: PNG is lossless
    assert out.rstrip("/") == str(folder)


def test_audio_is_muxed_and_video_length_wins(tmp_path):
    tone = make_tone(tmp_path / "tone.m4a", seconds=3.0)
    path = make_clip(tmp_path / "with_audio.mp4", n=15, audio=AudioSpec(tone, 0.5, 1.0))
    facts = probe_video(path)
    assert facts["has_audio"] and facts["n_frames"] == 15 and facts["fps"] == NTSC
    assert open_source(path).info.has_audio


def test_the_sound_ends_with_the_last_frame_when_the_frames_come_slowly(tmp_path):
    """A dream's frames come seconds apart, the first after the network loads: the sound range
    (a clip's --max-frames) must still end at the last frame, not run on in padding."""
    tone = make_tone(tmp_path / "tone.m4a", seconds=3.0)
    path = str(tmp_path / "slow.mp4")
    sink = open_sink(path, fps=NTSC, size=(W, H), audio=AudioSpec(tone, 0.0, 10 / float(NTSC)))
    time.sleep(2.0)  # the network loading: ffmpeg has read the sound far ahead by now
    for i in range(10):
        sink.write(gray(i))
    sink.close()
    info = open_source(path).info
    assert probe_video(path)["n_frames"] == 10  # and every frame kept
    assert info.n_frames == 10 and info.duration == pytest.approx(10 / float(NTSC), abs=0.05), info


def test_audio_spec_without_audio_stream_gives_plain_video(tmp_path):
    silent = make_clip(tmp_path / "silent.mp4", n=4)
    path = make_clip(tmp_path / "out.mp4", n=4, audio=AudioSpec(silent, 0.0, None))
    assert probe_video(path)["has_audio"] is False


# ----------------------------------------------------------------------------- ranges, sizes


def test_start_and_max_frames_pick_a_range(tmp_path):
    path = make_clip(tmp_path / "c.mp4", n=20, fps=Fraction(25))
    src = open_source(path, start=0.4, max_frames=5)  # 0.4 s at 25 fps = frame 10
    assert src.info.n_frames == 5 and src.info.start == pytest.approx(0.4)
    assert [level(f) for f in src] == [10, 11, 12, 13, 14]


def test_duration_limits_the_range(tmp_path):
    path = make_clip(tmp_path / "c.mp4", n=20, fps=Fraction(25))
    frames = list(open_source(path, start=0.2, duration=0.2))  # frames 5..9
    assert [level(f) for f in frames] == [5, 6, 7, 8, 9]


def test_start_past_the_end_is_an_input_error(tmp_path):
    path = make_clip(tmp_path / "c.mp4", n=5, fps=Fraction(25))
    with pytest.raises(InputError, match="smaller start"):
        open_source(path, start=10.0)


def test_width_resizes_keeping_aspect_with_even_dims(tmp_path):
    path = make_clip(tmp_path / "c.mp4", n=3, fps=Fraction(25), size=(64, 48))
    src = open_source(path, width=33)
    assert (src.info.width, src.info.height) == (34, 26)  # 33 -> 34; 48*34/64 = 25.5 -> 26
    frames = list(src)
    assert all(f.shape == (26, 34, 3) for f in frames)


def test_image_sequence_natural_sort_range_and_width(tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in [1, 2, 10, 11, 3]:
        cv2.imwrite(str(folder / f"frame_{i}.png"), gray(i, 90, 60))
    (folder / "notes.txt").write_text("not an image")
    assert sorted(["f_10", "f_2", "f_1"], key=natural_key) == ["f_1", "f_2", "f_10"]
    src = open_source(str(folder), fps=Fraction(10))
    assert src.info.n_frames == 5 and src.info.fps == Fraction(10)
    assert [level(f) for f in src] == [1, 2, 3, 10, 11]
    src = open_source(str(folder / "frame_*.png"), fps=10, start=0.1, max_frames=2, width=45)
    assert (src.info.width, src.info.height) == (46, 30)
    assert [level(f) for f in src] == [2, 3]


def test_image_sequence_defaults_to_25_fps_and_resizes_odd_sizes_with_one_warning(tmp_path, caplog):
    folder = tmp_path / "seq"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_1.png"), gray(1, 40, 30))
    cv2.imwrite(str(folder / "a_2.png"), gray(2, 50, 20))
    cv2.imwrite(str(folder / "a_3.png"), gray(3, 60, 10))
    src = open_source(str(folder))
    assert src.info.fps == Fraction(25)
    with caplog.at_level(logging.WARNING, logger="dreamvid"):
        frames = list(src)
    assert all(f.shape == (30, 40, 3) for f in frames)
    assert len([r for r in caplog.records if "resizing" in r.getMessage()]) == 1


def test_single_image_is_a_one_frame_source(tmp_path):
    cv2.imwrite(str(tmp_path / "still.png"), gray(7))
    src = open_source(str(tmp_path / "still.png"))
    assert src.info.n_frames == 1 and [level(f) for f in src] == [7]


def test_odd_output_size_is_cropped_to_even_for_h264(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="dreamvid"):
        path = make_clip(tmp_path / "odd.mp4", n=3, size=(65, 49), crf=18)  # yuv420p (crf 0 is 4:4:4)
    facts = probe_video(path)
    assert (facts["width"], facts["height"]) == (64, 48) and facts["n_frames"] == 3
    assert any("odd" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------- atomic writes


@pytest.mark.parametrize("name", ["out.mp4", "out.gif", "out/"])
def test_abort_leaves_no_final_file_and_no_temp(tmp_path, name):
    sink = open_sink(str(tmp_path / name), fps=Fraction(25), size=(W, H))
    sink.write(gray(1))
    sink.abort()
    assert os.listdir(tmp_path) == []


def test_exception_in_with_block_aborts_and_keeps_existing_output(tmp_path):
    final = tmp_path / "out.mp4"
    final.write_bytes(b"previous render")
    with pytest.raises(RuntimeError), open_sink(str(final), fps=Fraction(25), size=(W, H)) as sink:
        sink.write(gray(1))
        raise RuntimeError("dream failed")
    assert final.read_bytes() == b"previous render"
    assert os.listdir(tmp_path) == ["out.mp4"]


def test_close_replaces_output_and_returns_path(tmp_path):
    final = tmp_path / "out.mp4"
    final.write_bytes(b"previous render")
    sink = open_sink(str(final), fps=Fraction(25), size=(W, H))
    for i in range(3):
        sink.write(gray(i))
    assert final.read_bytes() == b"previous render"
    assert sink.close() == str(final)
    assert probe_video(str(final))["n_frames"] == 3
    assert os.listdir(tmp_path) == ["out.mp4"]


def test_wrong_frame_shape_is_refused(tmp_path):
    with open_sink(str(tmp_path / "o.mp4"), fps=Fraction(25), size=(W, H)) as sink:
        with pytest.raises(ValueError, match="64x48"):
            sink.write(gray(1, 32, 32))
        with pytest.raises(ValueError, match="uint8"):
            sink.write(gray(1).astype(np.float32))
        sink.abort()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_is_an_output_error_and_temp_is_removed(tmp_path, monkeypatch):
    import dreamvid.media.sinks as sinks

    removed = []
    monkeypatch.setattr(sinks, "_partial_path", lambda path, folder=False: "/dev/full")
    monkeypatch.setattr(sinks, "remove", removed.append)  # /dev/full is not removed
    sink = open_sink(str(tmp_path / "o.mp4"), fps=Fraction(25), size=(W, H))
    with pytest.raises(OutputError, match="disk is full"):
        rng = np.random.default_rng(0)
        for _ in range(200):  # enough data that ffmpeg must write before close
            sink.write(rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
        sink.close()
    assert removed == ["/dev/full"]
    assert sink.proc.poll() is not None  # the encoder was reaped
    assert not (tmp_path / "o.mp4").exists()


# ----------------------------------------------------------------------------- errors


def test_missing_input_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file.*check the path"):
        open_source(str(tmp_path / "nope.mp4"))


def test_empty_folder_is_an_input_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images in folder"):
        open_source(str(tmp_path / "empty"))
    with pytest.raises(InputError, match="no images in pattern"):
        open_source(str(tmp_path / "empty" / "*.png"))


def test_text_file_named_mp4_is_an_input_error(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n" * 20)
    with pytest.raises(InputError, match="not a video ffmpeg can decode.*convert it"):
        open_source(str(fake))


def test_file_without_video_stream_is_an_input_error(tmp_path):
    tone = make_tone(tmp_path / "tone.m4a", seconds=0.5)
    with pytest.raises(InputError, match="no video stream"):
        open_source(tone)


def test_truncated_video_yields_what_decodes_and_warns_once(tmp_path, caplog):
    rng = np.random.default_rng(1)
    path = tmp_path / "full.mp4"
    with open_sink(str(path), fps=Fraction(25), size=(W, H)) as sink:  # +faststart: index first
        for _ in range(50):
            sink.write(rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="dreamvid"):
        frames = list(open_source(str(cut)))
    assert 0 < len(frames) < 50
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"stopped at frame {len(frames)}" in warnings[0]


def test_missing_output_folder_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="does not exist; create it"):
        open_sink(str(tmp_path / "no" / "such" / "out.mp4"), fps=Fraction(25), size=(W, H))


def test_unknown_output_format_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="use .mp4"):
        open_sink(str(tmp_path / "out.avi"), fps=Fraction(25), size=(W, H))


def test_png_sink_refuses_a_folder_that_holds_files(tmp_path):
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "x.txt").write_text("keep me")
    with pytest.raises(OutputError, match="already holds files"):
        open_sink(str(tmp_path / "frames/"), fps=Fraction(25), size=(W, H))


# ----------------------------------------------------------------------------- read_image, rates


def test_read_image_normalises_grayscale_rgba_palette_and_16_bit(tmp_path):
    g = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    cv2.imwrite(str(tmp_path / "gray.png"), g)
    img = read_image(str(tmp_path / "gray.png"))
    assert img.shape == (3, 4, 3) and img.dtype == np.uint8 and (img[:, :, 1] == g).all()

    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 2] = 200  # red
    bgra[..., 3] = [[255, 0], [128, 255]]
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    img = read_image(str(tmp_path / "rgba.png"))
    assert img.shape == (2, 2, 3)
    assert img[0, 0].tolist() == [200, 0, 0] and img[0, 1].tolist() == [0, 0, 0]
    assert abs(int(img[1, 0, 0]) - 100) <= 1  # half transparent over black

    deep = np.full((2, 3, 3), 65535, np.uint16)
    deep[0, 0] = [0, 32896, 65535]  # BGR
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    img = read_image(str(tmp_path / "deep.png"))
    assert img.dtype == np.uint8 and img[0, 0].tolist() == [255, 128, 0] and img[1, 1].tolist() == [255] * 3

    pil = pytest.importorskip("PIL.Image")
    pal = pil.new("P", (4, 2))
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pal.putpixel((1, 0), 1)
    pal.save(tmp_path / "pal.png")
    img = read_image(str(tmp_path / "pal.png"))
    assert img.shape == (2, 4, 3) and img[0, 1].tolist() == [10, 200, 30] and img[0, 0].tolist() == [0, 0, 0]


def test_read_image_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(str(tmp_path / "nope.png"))
    (tmp_path / "fake.png").write_text("text")
    with pytest.raises(InputError, match="not an image"):
        read_image(str(tmp_path / "fake.png"))


@pytest.mark.parametrize("printed, exact", [
    ("29.97", Fraction(30000, 1001)), ("23.98", Fraction(24000, 1001)),
    ("59.94", Fraction(60000, 1001)), ("25", Fraction(25)), ("12.5", Fraction(25, 2)),
    ("30k", Fraction(30000)), ("33.33", Fraction(100, 3)),
])
def test_exact_fps_recovers_rates_from_ffmpeg_rounding(printed, exact):
    assert exact_fps(printed) == exact


def test_float_rates_mean_what_people_type(tmp_path):
    assert as_fps(29.97) == NTSC and as_fps("30000/1001") == NTSC and as_fps(25) == 25
    with pytest.raises(ValueError, match="fps must be > 0"):
        as_fps(0)
    path = make_clip(tmp_path / "f.mp4", n=3, fps=29.97)
    assert probe_video(path)["fps"] == NTSC


def test_stopping_early_reaps_the_decoder(tmp_path):
    path = make_clip(tmp_path / "c.mp4", n=10, fps=Fraction(25))
    src = open_source(path)
    frames = iter(src)
    next(frames)
    assert len(src._procs) == 1
    proc = src._procs[0]
    frames.close()  # what a `break` out of a for loop does, once the iterator is dropped
    assert src._procs == [] and proc.returncode is not None
    src.close()


SAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, "samples", "pan.mp4")


@pytest.mark.skipif(not os.path.exists(SAMPLE), reason="samples/pan.mp4 not present")
def test_bundled_sample_has_exact_rate_audio_and_a_cut_at_frame_60():
    src = open_source(SAMPLE)
    assert src.info.fps == NTSC and src.info.has_audio
    frames = [f.astype(np.int16) for f in src]
    assert len(frames) == 120
    diffs = [np.abs(a - b).mean() for a, b in zip(frames, frames[1:])]
    assert int(np.argmax(diffs)) + 1 == 60  # the hard cut
    # seeking: 2.0 s is between frame 59 (1.968 s) and 60 (2.002 s), so the range starts at 60
    first = next(iter(open_source(SAMPLE, start=2.0, max_frames=1))).astype(np.int16)
    assert np.abs(first - frames[60]).mean() < 2.0
