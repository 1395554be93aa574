"""The command line in-process: exit codes, one-line messages, the output file."""

import re

import cv2
import numpy as np
import pytest
from cli_asserts import one_line_error
from helpers import run

from dreamvid.cli import main
from dreamvid.cli.parser import build_parser, config_from_args


@pytest.fixture
def photo(tmp_path, texture):
    path = tmp_path / "in put é.png"  # spaces and non-ASCII on purpose
    cv2.imwrite(str(path), texture(48, 64).astype(np.uint8))
    return path


def tiny_args(tiny_keras_file):
    return ["--model", tiny_keras_file, "--layers", "conv2", "--octaves", "2", "--iterations", "3", "--seed", "1"]


def test_image_writes_a_dreamed_file(capsys, tmp_path, photo, tiny_keras_file):
    out = tmp_path / "out.png"
    code, err = run(capsys, "image", photo, "-o", out, *tiny_args(tiny_keras_file))
    assert code == 0, err
    result = cv2.imread(str(out))
    source = cv2.imread(str(photo))
    assert result.shape == source.shape
    assert np.abs(result.astype(float) - source).mean() > 1.0
    assert "wrote" in err and re.search(r"backend (tensorflow|jax|torch) on cpu", err.lower()), err  # the start-up line
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_width_resizes_keeping_aspect(capsys, tmp_path, photo, tiny_keras_file):
    out = tmp_path / "small.png"
    code, err = run(capsys, "image", photo, "-o", out, "--width", 32, *tiny_args(tiny_keras_file))
    assert code == 0, err
    assert cv2.imread(str(out)).shape[:2] == (24, 32)




@pytest.mark.parametrize("extra,words", [
    (["--octaves", "0"], ["octaves", "between 1 and 12"]),
    (["--step", "-1"], ["step"]),
    (["--step", "abc"], ["step", "number"]),
    (["--iterations", "nan"], ["iterations", "whole number"]),
    (["--layers", "conv3"], ["no layer 'conv3'", "did you mean"]),
    (["--layers", "conv2:99"], ["channel 99", "0..15"]),
])
def test_bad_settings_give_one_line(capsys, tmp_path, photo, tiny_keras_file, extra, words):
    code, err = run(capsys, "image", photo, "-o", tmp_path / "o.png", *tiny_args(tiny_keras_file), *extra)
    one_line_error(code, err, *words)
    assert not (tmp_path / "o.png").exists()


def test_bad_inputs_and_outputs(capsys, tmp_path, photo, tiny_keras_file):
    args = tiny_args(tiny_keras_file)
    one_line_error(*run(capsys, "image", tmp_path / "missing.png", "-o", tmp_path / "o.png", *args), "missing.png")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    one_line_error(*run(capsys, "image", text, "-o", tmp_path / "o.png", *args), "notes.png")
    one_line_error(*run(capsys, "image", photo, "-o", tmp_path / "nofolder" / "o.png", *args), "nofolder")
    one_line_error(*run(capsys, "image", photo, "-o", photo, *args), "input")
    one_line_error(*run(capsys, "image", photo, "-o", tmp_path / "o.png", "--model", "nosuchnet"), "unknown model")


def test_unwritable_output_folder(capsys, tmp_path, photo, tiny_keras_file):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    code, err = run(capsys, "image", photo, "-o", blocker / "o.png", *tiny_args(tiny_keras_file))
    one_line_error(code, err)


def test_debug_switch_shows_the_traceback(tmp_path, photo, tiny_keras_file, monkeypatch):
    import dreamvid.cli as cli

    monkeypatch.setattr(cli, "DEBUG", True)
    from dreamvid.core.errors import DreamvidError

    with pytest.raises(DreamvidError):
        main(["image", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o.png"),
              *map(str, tiny_args(tiny_keras_file))])


def test_flags_override_preset_and_unknown_preset_keys_are_named(tmp_path):
    parser = build_parser()
    cfg = config_from_args(parser.parse_args(["image", "x.png", "-o", "y.png", "--preset", "classic",
                                              "--octaves", "2"]))
    assert cfg.dream.octaves == 2 and cfg.dream.layers == "mixed4c" and cfg.dream.grad_norm == "mean"
    bad = tmp_path / "bad.toml"
    bad.write_text('[dream]\noctavs = 3\n')
    from dreamvid.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"bad.toml.*octavs.*octaves"):
        config_from_args(parser.parse_args(["image", "x.png", "-o", "y.png", "--preset", str(bad)]))
    bad.write_text('[dream]\noctaves = 40\n')
    with pytest.raises(ConfigError, match=r"bad.toml.*octaves must be between 1 and 12"):
        config_from_args(parser.parse_args(["image", "x.png", "-o", "y.png", "--preset", str(bad)]))


def test_zoom_and_video_route_dream_schedules_and_numbers_override_them():
    parser = build_parser()
    args = ["zoom", "x.png", "-o", "z.mp4", "--preset", "zoom-classic"]
    cfg = config_from_args(parser.parse_args(args + ["--step", "0:(1.0), 50:(2.0)", "--iterations-next", "0:(3), 9:(6)",
                                                     "--octaves", "3"]))
    # the preset's number stays for frame 0's default
    assert cfg.zoom.step == "0:(1.0), 50:(2.0)" and cfg.dream.step == 1.5
    assert cfg.zoom.iterations == "0:(3), 9:(6)" and cfg.zoom.octaves is None and cfg.dream.octaves == 3
    cfg = config_from_args(parser.parse_args(["image", "x.png", "-o", "y.png", "--step", "2"]))
    assert cfg.dream.step == 2.0 and cfg.zoom.step is None
    from dreamvid.core.errors import ConfigError

    cfg = config_from_args(parser.parse_args(["video", "x.mp4", "-o", "y.mp4", "--step", "0:(1), 5:(2)",
                                              "--iterations-next", "0:(3), 9:(6)", "--interpolation", "smooth"]))
    assert cfg.video.step == "0:(1), 5:(2)" and cfg.video.iterations == "0:(3), 9:(6)" and cfg.zoom.step is None
    assert cfg.dream.step == 1.5 and cfg.video.iterations_next == 5 and cfg.zoom.interpolation == "smooth"
    with pytest.raises(ConfigError, match="step must be a number"):  # a still has no frames to schedule over
        config_from_args(parser.parse_args(["image", "x.png", "-o", "y.png", "--step", "0:(1), 5:(2)"]))


def test_keep_colors_flag_sets_the_dream_setting():
    parser = build_parser()
    for command in (["image", "x.png"], ["video", "x.mp4"], ["zoom", "x.png"]):
        assert config_from_args(parser.parse_args([*command, "-o", "y.png", "--keep-colors"])).dream.keep_colors is True
    assert config_from_args(parser.parse_args(["image", "x.png", "-o", "y.png"])).dream.keep_colors is False


def test_layers_and_presets_commands(capsys, tiny_keras_file):
    assert main(["layers", "--model", str(tiny_keras_file)]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in out if line.startswith("conv")]
    assert rows == [["conv1", "8", "1"], ["conv2", "16", "2"]]
    assert main(["presets"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {"classic", "gentle", "deep", "offline", "zoom-classic", "preview"} <= set(names)


def test_other_libraries_info_notices_stay_out_of_the_output():
    """The CLI prints dreamvid's own notices ("dreamvid: ...") but not other libraries' INFO
    records (JAX logs that it found no TPU while it looks for a GPU); their warnings still show.
    In a fresh process: logging is configured once per process."""
    import subprocess
    import sys

    code = ("import logging, sys; from dreamvid import cli; rc = cli.main(['presets']); "
            "logging.getLogger('jax._src.xla_bridge').info('Unable to initialize backend tpu'); "
            "logging.getLogger('dreamvid.render.threads').info('own notice'); "
            "logging.getLogger('some.library').warning('a warning of theirs'); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "dreamvid: own notice" in proc.stderr and "a warning of theirs" in proc.stderr
    assert "tpu" not in proc.stderr


def test_a_video_reports_its_pace_after_the_first_frame(capsys, tmp_path, tiny_keras_file):
    """The summary line gives the overall seconds per frame and, the first frame (loading,
    compiling) left out, the frames per second a long clip runs at."""
    frames = tmp_path / "in"
    frames.mkdir()
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (40, 72, 3), dtype=np.uint8)
    for k in range(4):
        cv2.imwrite(str(frames / f"{k:03d}.png"), np.roll(base, 2 * k, axis=1))
    code, err = run(capsys, "video", f"{frames}/", "-o", f"{tmp_path / 'out'}/", "--fps", 10,
                    *tiny_args(tiny_keras_file))
    assert code == 0, err
    m = re.search(r"wrote .*: 4 frames in ([\d.]+) s \(([\d.]+) s/frame; ([\d.]+) frames/s after the first\)", err)
    assert m, err
    seconds, per, pace = map(float, m.groups())
    assert abs(per * 4 - seconds) < 0.1 and pace > 0  # (both printed rounded)
