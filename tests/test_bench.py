"""The benchmark end to end on a tiny clip: both implementations run, report positive timings
and a ratio, and dream about as strongly. No timing is asserted (machines differ)."""

import re

from dreamvid import bench


def _floats(pattern, text):
    return [float(x) for x in re.findall(pattern, text)]


def test_bench_reports_both_timings_ratio_and_similar_strength(tiny_model, capsys):
    rc = bench.main(["--width", "64", "--height", "48", "--frames", "2",
                     "--octaves", "1", "--steps-first", "2", "--steps-next", "1"], model=tiny_model)
    out = capsys.readouterr().out
    assert rc == 0, out
    project = _floats(r"(?m)^project: ([\d.]+) s/frame", out)
    reference = _floats(r"(?m)^reference: ([\d.]+) s/frame", out)
    ratio = _floats(r"(?m)^ratio \(reference / project\): ([\d.]+)", out)
    assert len(project) == 1 and len(reference) == 1 and len(ratio) == 1, out
    assert project[0] > 0 and reference[0] > 0 and ratio[0] > 0
    for stage in ("decode", "flow", "dream", "encode"):
        assert re.search(rf"(?m)^\s+project stages \(s\):.*\b{stage} [\d.]+", out), out
    strength = dict(re.findall(r"(?m)^\s+(project|reference) dream strength: ([\d.]+)", out))
    p, r = float(strength["project"]), float(strength["reference"])
    assert p > 0 and r > 0
    assert abs(p - r) <= 0.10 * p, out  # the issue: within 10%


def test_step_flops_counts_convolutions(tiny_model):
    # tiny model up to conv2: conv1 3x3x3->8 at 32x32, conv2 3x3x8->16 stride 2 at 16x16
    forward = 2 * 9 * 3 * 8 * 32 * 32 + 2 * 9 * 8 * 16 * 16 * 16
    assert bench.step_flops(tiny_model, "conv2", 32, 32) == bench.BACKWARD_FACTOR * forward


def test_dream_only_times_the_engine_beside_the_plainest_loop(tiny_model, capsys):
    rc = bench.main(["--width", "48", "--height", "40", "--octaves", "2", "--steps-next", "2",
                     "--dream-only", "2", "--xla", "off"], model=tiny_model)
    out = capsys.readouterr().out
    assert rc == 0, out
    engine = _floats(r"(?m)^dream only: .*: ([\d.]+) frames/s \(median of 2", out)
    plain = re.findall(r"(?m)^dream only, the plainest compiled loop .*: ([\d.]+) frames/s; the project at ([\d.]+)x", out)
    assert len(engine) == 1 and engine[0] > 0, out
    assert len(plain) == 1 and float(plain[0][0]) > 0 and float(plain[0][1]) > 0, out


def test_the_plainest_loop_dreams(tiny_model):
    """The control dreams for real: uint8 in and out, the image changed, the objective up."""
    import numpy as np

    from dreamvid.config import DreamSettings
    from dreamvid.dream import Dreamer, to_uint8
    from dreamvid.objectives import layer

    frame = to_uint8(bench.texture(40, 48, 1))
    plain = bench._plain_loop(tiny_model, "conv2", [(28, 34), (40, 48)], 4, 2.0)
    out = plain(frame)
    assert out.dtype == np.uint8 and out.shape == frame.shape
    d = Dreamer(tiny_model, layer("conv2"), DreamSettings(xla="off"))
    assert np.abs(out.astype(np.float32) - frame).mean() > 1.0
    assert d.objective_value(out.astype(np.float32)) > d.objective_value(frame.astype(np.float32))


def test_bench_runs_with_the_carry_on_the_device(tiny_model, capsys, monkeypatch):
    """The path a GPU takes (Dreamer.carry_on_device), forced here on the CPU: the warm-up
    compiles the carry too, and every frame after the first starts from it."""
    from dreamvid.dream import Dreamer

    init, carry_over, calls = Dreamer.__init__, Dreamer.carry_over, []

    def on_device(self, *a, **k):
        init(self, *a, **k)
        self.carry_on_device = True

    monkeypatch.setattr(Dreamer, "__init__", on_device)
    monkeypatch.setattr(Dreamer, "carry_over", lambda self, *a, **k: (calls.append(k["blend"]),
                                                                     carry_over(self, *a, **k))[1])
    rc = bench.main(["--width", "64", "--height", "48", "--frames", "4", "--octaves", "1", "--steps-first", "2",
                     "--steps-next", "1", "--only", "project", "--io", "png"], model=tiny_model)
    out = capsys.readouterr().out
    assert rc == 0, out
    assert len(calls) == 1 + 3, calls  # the warm-up, then frames 1-3
    assert _floats(r"(?m)^project: ([\d.]+) s/frame", out)[0] > 0
