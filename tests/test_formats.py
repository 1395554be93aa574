"""Outputs for editors: ProRes/H.265/H.264 options in .mov/.mp4/.mkv, 16-bit PNG/TIFF frames,
and the one-line refusals of what this ffmpeg cannot write.

Each format is written and read back: frame count and exact rate (probe_video), codec and
pixel format (parsed from `ffmpeg -i`'s stderr, as sources.probe_video reads its facts; there
is no ffprobe in imageio-ffmpeg), audio, and for frame folders the 16-bit depth. Clips are
64x48, a few frames; the dreaming tests use a two-layer random network.
"""

import glob
import os
import re
import subprocess
from fractions import Fraction

import cv2
import numpy as np
import pytest
from cli_asserts import one_line_error
from helpers import write_clip

from dreamvid.config.settings import Config
from dreamvid.core.errors import OutputError
from dreamvid.core.ffmpeg import ffmpeg_exe, run_probe
from dreamvid.core.frames import to_uint8
from dreamvid.jobs import pipeline
from dreamvid.media import formats
from dreamvid.media.bitdepth import to_uint16
from dreamvid.media.formats import check_output_path
from dreamvid.media.sinks import AudioSpec, open_sink
from dreamvid.media.sources import open_source, probe_video, read_image

NTSC = Fraction(30000, 1001)
W, H = 64, 48


def frame(i, deep=False):
    """Frame i: a diagonal ramp with a fractional part, so 16 bits hold what 8 bits round."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    img = np.stack([x * 3.7 + i, y * 4.9, (x + y) * 2.3 + 0.37 * i], axis=2) % 250.0
    return img.astype(np.float32) if deep else to_uint8(img)


def video_facts(path):
    """(codec, profile, pix_fmt, audio codec or None) of a file's first video and audio streams,
    e.g. ("prores", "HQ", "yuv422p10le", "pcm_s24le"). The pixel format is the decoder's: ProRes
    4444 decodes to 12 bits (yuv444p12le) whatever its 10-bit source."""
    _, text = run_probe(str(path), [], decode_one=False)
    video = re.search(r"Video: (\w+)(?: \(([^)]*)\))?[^,]*, ([a-z0-9]+)", text)
    audio = re.search(r"Audio: (\w+)", text)
    return video.group(1), video.group(2), video.group(3), audio.group(1) if audio else None


@pytest.fixture(scope="module")
def tone(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "tone.m4a"
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=2", "-c:a", "aac", str(path)], check=True)
    return str(path)


@pytest.mark.parametrize("name, options, expected", [
    ("hq.mov", dict(codec="prores"), ("prores", "HQ", "yuv422p10le", "pcm_s24le")),
    ("hq16.mov", dict(codec="prores", bit_depth=16), ("prores", "HQ", "yuv422p10le", "pcm_s24le")),
    ("full.mov", dict(codec="prores4444"), ("prores", "4444", "yuv444p12le", "pcm_s24le")),
    ("alpha.mkv", dict(codec="prores4444", pix_fmt="yuva444p10le"), ("prores", "4444", "yuva444p12le", "pcm_s24le")),
    ("small.mp4", dict(codec="h265", crf=28), ("hevc", "Main", "yuv420p", "aac")),
    ("small.mov", dict(codec="h265"), ("hevc", "Main", "yuv420p", "aac")),
    ("lossless.mov", dict(codec="h264", crf=0), ("h264", "High 4:4:4 Predictive", "yuv444p", "aac")),
    ("deep.mkv", dict(codec="h264", pix_fmt="yuv420p10le", bit_depth=16), ("h264", "High 10", "yuv420p10le", "aac")),
    ("web.webm", dict(), ("vp9", "Profile 0", "yuv420p", "opus")),  # VP9 and Opus: .webm's own
    ("web.mkv", dict(codec="vp9"), ("vp9", "Profile 0", "yuv420p", "opus")),
    ("web.mp4", dict(codec="vp9", crf=30), ("vp9", "Profile 0", "yuv420p", "opus")),
])
def test_each_video_format_reads_back_with_its_codec_rate_and_audio(tmp_path, tone, name, options, expected):
    path = tmp_path / name
    deep = options.get("bit_depth") == 16
    with open_sink(str(path), fps=NTSC, size=(W, H), audio=AudioSpec(tone, 0.0, None), **options) as sink:
        for i in range(6):
            sink.write(frame(i, deep))
    facts = probe_video(str(path))
    assert (facts["n_frames"], facts["fps"], facts["width"], facts["height"]) == (6, NTSC, W, H)
    assert facts["has_audio"]
    assert video_facts(path) == expected
    assert os.listdir(tmp_path) == [name]  # no temporary left


def test_lossless_h264_keeps_the_frames(tmp_path):
    """crf 0: x264's lossless mode in 4:4:4; what differs is the RGB<->YUV rounding only."""
    path = tmp_path / "l.mkv"
    with open_sink(str(path), fps=Fraction(25), size=(W, H), crf=0) as sink:
        for i in range(3):
            sink.write(frame(i))
    back = list(open_source(str(path)))
    assert len(back) == 3
    assert max(np.abs(b.astype(int) - frame(i).astype(int)).max() for i, b in enumerate(back)) <= 3


def test_ten_bit_prores_keeps_what_sixteen_bit_input_gives_it(tmp_path):
    """A float ramp fed at 16 bits decodes (at 16 bits) closer to the float than one fed at 8."""
    ramp = np.repeat(np.linspace(100.0, 104.0, W, dtype=np.float32)[None, :, None], H, 0).repeat(3, 2)
    errors = {}
    for bits in (8, 16):
        path = tmp_path / f"r{bits}.mov"
        with open_sink(str(path), fps=Fraction(25), size=(W, H), codec="prores", bit_depth=bits) as sink:
            sink.write(ramp if bits == 16 else to_uint8(ramp))
        raw = subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-f", "rawvideo",
                              "-pix_fmt", "rgb48le", "-"], capture_output=True, check=True).stdout
        back = np.frombuffer(raw, "<u2").reshape(H, W, 3).astype(np.float32) / 257.0
        errors[bits] = float(np.abs(back - ramp)[:, 4:-4].mean())
    assert errors[16] < errors[8] / 2, errors


@pytest.mark.parametrize("frame_format, ext", [("png", ".png"), ("tiff", ".tiff")])
def test_sixteen_bit_frames_keep_the_float_precision(tmp_path, frame_format, ext):
    out = str(tmp_path / "frames") + "/"
    with open_sink(out, fps=NTSC, size=(W, H), bit_depth=16, frame_format=frame_format) as sink:
        for i in range(3):
            sink.write(frame(i, deep=True))
    files = sorted(glob.glob(os.path.join(out, "*")))
    assert [os.path.basename(f) for f in files] == [f"frame_00000{k}{ext}" for k in (1, 2, 3)]
    for i, f in enumerate(files):
        back = cv2.cvtColor(cv2.imread(f, cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
        assert back.dtype == np.uint16
        assert np.any(back % 257 != 0)  # levels between the 8-bit ones
        assert np.array_equal(back, to_uint16(frame(i, deep=True)))
        assert np.array_equal(read_image(f), frame(i))  # read at 8 bits: the 8-bit frame exactly


def test_eight_bit_tiff_frames(tmp_path):
    out = str(tmp_path / "t") + "/"
    with open_sink(out, fps=Fraction(25), size=(W, H), frame_format="tiff") as sink:
        sink.write(frame(0))
    (f,) = glob.glob(os.path.join(out, "*.tiff"))
    assert cv2.imread(f, cv2.IMREAD_UNCHANGED).dtype == np.uint8 and np.array_equal(read_image(f), frame(0))


def test_eight_bit_sinks_still_refuse_float_frames(tmp_path):
    with open_sink(str(tmp_path / "o/"), fps=Fraction(25), size=(W, H)) as sink:
        with pytest.raises(ValueError, match="bit_depth=16"):
            sink.write(frame(0, deep=True))
        sink.abort()


# ----------------------------------------------------------------------------- what ffmpeg can write


@pytest.mark.parametrize("name, codec, pix_fmt", [
    ("a.mp4", "h264", None), ("a.mp4", "h264", "yuv444p10le"), ("a.mp4", "h264", "yuv422p10le"),
    ("a.mp4", "h264", "gbrp"), ("a.mkv", "h265", "gbrp10le"), ("a.mp4", "h265", "yuv420p12le"),
    ("a.mp4", "prores", None), ("a.mov", "prores", None), ("a.mov", "prores", "yuv420p"),
    ("a.mkv", "prores4444", "yuva444p10le"), ("a.mp4", "prores4444", None), ("a.mov", "h265", "rgb24"),
    ("a.webm", "vp9", None), ("a.webm", "vp9", "yuv444p"), ("a.webm", "h264", None), ("a.webm", "prores", None),
    ("a.mov", "vp9", None), ("a.mp4", "vp9", "yuv420p10le"),
])
def test_the_check_agrees_with_ffmpeg(tmp_path, name, codec, pix_fmt):
    """check_output_path passes exactly when ffmpeg, asked directly, writes the combination."""
    path = tmp_path / name
    try:
        fmt = check_output_path(str(path), codec=codec, pix_fmt=pix_fmt)
        ok = True
    except OutputError:
        fmt, ok = pix_fmt or formats.CODECS[codec].pix_fmt, False
    c = formats.CODECS[codec]
    p = subprocess.run([ffmpeg_exe(), "-v", "warning", "-y", "-f", "lavfi", "-i", f"testsrc=size={W}x{H}:rate=25",
                        "-frames:v", "2", "-c:v", c.encoder, *c.args, "-pix_fmt", fmt,
                        "-f", formats.VIDEO_FORMATS[os.path.splitext(name)[1]], str(path)], capture_output=True)
    # written means: exit 0 and in that pixel format (ffmpeg swaps in another with a warning)
    written = p.returncode == 0 and re.search(rf"Incompatible pixel format '{fmt}'", p.stderr.decode()) is None
    assert ok == written, p.stderr.decode()[-300:]


@pytest.mark.parametrize("output, options, words", [
    ("o.mp4", dict(codec="prores"), ["ProRes", "does not go in .mp4", "o.mov"]),
    ("o.mov", dict(codec="prores", pix_fmt="yuv420p"), ["prores_ks", "yuv422p10le"]),
    ("o.mp4", dict(bit_depth=16), ["16 bits", "--pix-fmt yuv420p10le"]),
    ("o.mov", dict(codec="h265", pix_fmt="rgb24"), ["libx265", "no pixel format 'rgb24'"]),
    ("o.gif", dict(bit_depth=16), ["GIF", "16-bit frames"]),
    ("o.gif", dict(codec="h265"), ["--codec h265", "GIF"]),
    ("f/", dict(codec="prores"), ["--codec prores", "PNG or TIFF"]),
    ("f/", dict(pix_fmt="yuv444p"), ["--pix-fmt"]),
    ("o.mkv", dict(frame_format="tiff"), ["--frame-format tiff", "'o/'"]),
    ("o.webm", dict(codec="h264"), ["H.264 does not go in .webm", "--codec vp9"]),
    ("o.avi", dict(), ["unknown output format '.avi'", ".webm"]),
])
def test_what_ffmpeg_cannot_write_is_refused_by_the_check(tmp_path, output, options, words):
    with pytest.raises(OutputError) as e:
        check_output_path(str(tmp_path / output), **options)
    message = str(e.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_a_missing_encoder_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "ffmpeg_encoders", lambda: frozenset({"libx264", "prores_ks"}))
    with pytest.raises(OutputError, match="no libx265 encoder; choose --codec h264|prores"):
        check_output_path(str(tmp_path / "o.mp4"), codec="h265")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return str(write_clip(tmp_path_factory.mktemp("clip") / "in.mp4", [frame(3 * i) for i in range(4)], fps=NTSC))


@pytest.mark.parametrize("flags, words", [
    (["--codec", "prores"], ["does not go in .mp4"]),
    (["--bit-depth", "16"], ["16 bits", "yuv420p10le"]),
    (["--codec", "h264", "--pix-fmt", "yuv9000p"], ["yuv9000p"]),
    (["--bit-depth", "12"], ["--bit-depth"]),
    (["--codec", "av1"], ["--codec"]),
])
def test_refusals_are_one_line_exit_2_and_nothing_is_dreamed_or_written(tmp_path, capsys, monkeypatch, clip,
                                                                       tiny_keras_file, flags, words):
    from dreamvid.cli import main

    def never(*_a, **_k):
        raise AssertionError("the network was loaded before the output was checked")

    monkeypatch.setattr(pipeline, "make_dreamer", never)
    out = tmp_path / "out.mp4"
    code = main(["video", clip, "-o", str(out), "--model", str(tiny_keras_file), *flags])
    one_line_error(code, capsys.readouterr().err, *words)
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- WebM for the web


SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "samples", "pan.mp4")


def sound_seconds(path):
    """Seconds of sound a file's first audio stream decodes to (ffmpeg's last time= of a null decode)."""
    p = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:a:0", "-f", "null", "-"],
                       capture_output=True, check=True)
    h, m, sec = re.findall(r"time=(\d+):(\d+):([\d.]+)", p.stderr.decode())[-1]
    return int(h) * 3600 + int(m) * 60 + float(sec)


@pytest.mark.parametrize("how", ["command line", "api"])
def test_a_webm_render_of_the_sample_clip_plays_with_its_frames_and_sound(tmp_path, capsys, how):
    """The sample clip (29.97 fps, with sound) dreamed into .webm, as the issue asks, with no --codec: VP9
    and Opus, every frame at the exact rate, the sound as long as the frames (within a frame)."""
    out = tmp_path / "dream.webm"
    if how == "command line":
        from dreamvid.cli import main

        code = main(["video", SAMPLE, "-o", str(out), "--preset", "preview", "--width", "128", "--max-frames", "12",
                     "--seed", "1"])
        assert code == 0, capsys.readouterr().err
    else:
        import dreamvid

        result = dreamvid.render_video(SAMPLE, str(out), preset="preview", width=128, max_frames=12, seed=1)
        assert result.path == str(out) and result.frames == 12
    facts = probe_video(str(out))
    got = (facts["n_frames"], facts["fps"], facts["width"], facts["height"], facts["has_audio"])
    assert got == (12, NTSC, 128, 72, True)
    codec, _, pix_fmt, sound = video_facts(out)
    assert (codec, pix_fmt, sound) == ("vp9", "yuv420p", "opus")
    assert abs(sound_seconds(out) - 12 / NTSC) <= 1 / NTSC + 0.03  # a frame, and Opus' 20 ms packets
    first = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(out), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt",
                            "rgb24", "-"], capture_output=True, check=True).stdout
    with open_source(SAMPLE) as src:
        raw = cv2.resize(next(iter(src)), (128, 72), interpolation=cv2.INTER_AREA)
    change = np.abs(np.frombuffer(first, np.uint8).reshape(72, 128, 3).astype(np.float32) - raw).mean()
    assert change > 3.0, change  # dreamed, not the input re-encoded


# ----------------------------------------------------------------------------- 16 bits through the pipeline


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


def small(**output):
    cfg = Config()
    cfg.dream.layers, cfg.dream.octaves, cfg.dream.iterations, cfg.dream.seed = "conv2", 1, 3, 5
    cfg.video.iterations_next = 2
    for key, value in output.items():
        setattr(cfg.output, key, value)
    return cfg


def deep_frames(folder):
    return [cv2.cvtColor(cv2.imread(f, cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
            for f in sorted(glob.glob(os.path.join(folder, "frame_*")))]


class Stop(Exception):
    pass


def test_sixteen_bit_video_is_the_eight_bit_one_with_its_precision_and_resumes_exactly(tmp_path, clip, model):
    eight = str(tmp_path / "eight") + "/"
    pipeline.render_video(small(), clip, eight, model=model)
    sixteen = str(tmp_path / "sixteen") + "/"
    pipeline.render_video(small(bit_depth=16, frame_format="tiff"), clip, sixteen, model=model)
    deep, flat = deep_frames(sixteen), [read_image(f) for f in sorted(glob.glob(eight + "*.png"))]
    assert len(deep) == len(flat) == 4
    assert all(d.dtype == np.uint16 and np.any(d % 257) for d in deep)
    # the same chain of frames: each 16-bit frame rounds to the 8-bit render's
    assert all(np.array_equal(((d.astype(np.float32) + 128) / 257).astype(np.uint8), f) for d, f in zip(deep, flat))

    def stop_at(k):
        def frame_done(index, _stats):
            if index == k:
                raise Stop
        return frame_done

    resumed = str(tmp_path / "resumed") + "/"
    with pytest.raises(Stop):
        pipeline.render_video(small(bit_depth=16, frame_format="tiff"), clip, resumed,
                              pipeline.Progress(frame=stop_at(1)), model=model)
    kept = glob.glob(os.path.join(pipeline.work_folder(resumed), "frames", "*.png"))
    assert kept and all(cv2.imread(f, cv2.IMREAD_UNCHANGED).dtype == np.uint16 for f in kept)
    result = pipeline.render_video(small(bit_depth=16, frame_format="tiff"), clip, resumed, model=model)
    assert result.resumed_from == 2
    assert all(np.array_equal(a, b) for a, b in zip(deep_frames(resumed), deep))


def test_sixteen_bit_frames_keep_the_input_colors_too(tmp_path, clip, model):
    def kept(**output):
        cfg = small(max_frames=2, **output)
        cfg.dream.keep_colors = True
        return cfg

    eight, sixteen = str(tmp_path / "eight") + "/", str(tmp_path / "sixteen") + "/"
    pipeline.render_video(kept(), clip, eight, model=model)
    pipeline.render_video(kept(bit_depth=16), clip, sixteen, model=model)
    deep, flat = deep_frames(sixteen), [read_image(f) for f in sorted(glob.glob(eight + "*.png"))]
    assert len(deep) == len(flat) == 2 and all(d.dtype == np.uint16 for d in deep)
    # the palette is applied before the depth is chosen: 16 bits round to the 8-bit render's
    assert all(np.array_equal(((d.astype(np.float32) + 128) / 257).astype(np.uint8), f) for d, f in zip(deep, flat))


def test_sixteen_bit_zoom_into_prores(tmp_path, model, texture):
    start = tmp_path / "start.png"
    cv2.imwrite(str(start), texture(H, W).astype(np.uint8))
    cfg = small(bit_depth=16, codec="prores", fps=30000 / 1001)  # a float, as config holds it
    cfg.zoom.frames = 3
    out = tmp_path / "zoom.mov"
    result = pipeline.render_zoom(cfg, str(start), str(out), model=model)
    assert result.frames == 3
    facts = probe_video(str(out))
    assert (facts["n_frames"], facts["fps"]) == (3, NTSC)
    assert video_facts(out)[:3] == ("prores", "HQ", "yuv422p10le")
