"""The benchmark end to end on a tiny clip: both implementations run, report positive timings
and a ratio, and dream about as strongly. No timing is asserted (machines differ)."""

import re

import numpy as np
import pytest

from dreamvid.measure import bench, machine, reference


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
    # the detail's tail per shot of each output (metrics.detail_tail): one shot of both frames
    tails = re.findall(r"(?m)^\s+(project|reference) detail tail, frames 0-1: extreme ([\d.]+)% -> ([\d.]+)%.*"
                       r"mean change ([\d.]+) -> ([\d.]+)", out)
    assert sorted(t[0] for t in tails) == ["project", "reference"], out
    assert all(float(t[3]) > 0 for t in tails)  # the first frame's mean change: the dream was measured


def test_step_flops_counts_convolutions(tiny_model):
    # tiny model up to conv2: conv1 3x3x3->8 at 32x32, conv2 3x3x8->16 stride 2 at 16x16
    forward = 2 * 9 * 3 * 8 * 32 * 32 + 2 * 9 * 8 * 16 * 16 * 16
    assert bench.step_flops(tiny_model, "conv2", 32, 32) == reference.BACKWARD_FACTOR * forward


@pytest.mark.parametrize("fused", [False, True], ids=["cpu", "gpu-path"])
def test_dream_only_times_the_engine_beside_the_plainest_loop(tiny_model, capsys, monkeypatch, fused):
    """Frames per second of the engine and of the plainest loop; where the engine dreams a
    frame in one compiled call with its step count compiled in and the chain on the device (a
    GPU's path, forced here), of frames queued back to back, its per-octave calls and of the
    count passed in too."""
    from dreamvid.engine.dreamer import Dreamer

    init = Dreamer.__init__

    def gpu_path(self, *a, **k):
        init(self, *a, **k)
        self.fuse_octaves = self.static_steps = self.chain_on_device = fused

    monkeypatch.setattr(Dreamer, "__init__", gpu_path)
    rc = bench.main(["--width", "48", "--height", "40", "--octaves", "2", "--steps-next", "2",
                     "--dream-only", "2", "--xla", "off"], model=tiny_model)
    out = capsys.readouterr().out
    assert rc == 0, out
    engine = _floats(r"(?m)^dream only: .*: ([\d.]+) frames/s \(median of 2", out)
    plain = re.findall(r"(?m)^dream only, the plainest compiled loop .*: ([\d.]+) frames/s; "
                       r"the project at ([\d.]+)x", out)
    per_octave = re.findall(r"(?m)^dream only, one compiled call per octave .*: ([\d.]+) frames/s; "
                            r"the one call at ([\d.]+)x", out)
    assert len(engine) == 1 and engine[0] > 0, out
    assert len(plain) == 1 and float(plain[0][0]) > 0 and float(plain[0][1]) > 0, out
    passed_in = re.findall(r"(?m)^dream only, the step count passed in .*: ([\d.]+) frames/s; "
                           r"compiled in at ([\d.]+)x", out)
    queued = _floats(r"(?m)^dream only, frames queued one behind another .*: ([\d.]+) frames/s \(2 frames\)", out)
    assert len(queued) == fused and all(q > 0 for q in queued), out
    assert len(per_octave) == fused and all(float(a) > 0 and float(b) > 0 for a, b in per_octave), out
    assert len(passed_in) == fused and all(float(a) > 0 and float(b) > 0 for a, b in passed_in), out


def test_the_plainest_loop_dreams(tiny_model):
    """The control dreams for real: uint8 in and out, the image changed, the objective up."""
    import numpy as np

    from dreamvid.config.settings import DreamSettings
    from dreamvid.core.frames import to_uint8
    from dreamvid.engine.dreamer import Dreamer
    from dreamvid.engine.objectives import layer

    frame = to_uint8(bench.texture(40, 48, 1))
    plain = reference.plain_loop(tiny_model, "conv2", [(28, 34), (40, 48)], 4, 2.0)
    out = plain(frame)
    assert out.dtype == np.uint8 and out.shape == frame.shape
    d = Dreamer(tiny_model, layer("conv2"), DreamSettings(xla="off"))
    assert np.abs(out.astype(np.float32) - frame).mean() > 1.0
    assert d.objective_value(out.astype(np.float32)) > d.objective_value(frame.astype(np.float32))


@pytest.mark.parametrize("flags", [[], ["--no-chain", "--octave-calls"]], ids=["gpu-path", "switched-off"])
def test_bench_runs_the_gpus_path(tiny_model, capsys, monkeypatch, flags):
    """The path a GPU takes, forced here on the CPU: each frame's start made on the device
    (carry_on_device), its octaves in one compiled call (fuse_octaves) with the step counts
    compiled in (static_steps, both warmed up) and the chain of frames
    kept there (chain_on_device); the warm-up compiles all of it, every frame after the first
    starts from the device carry, and the report says the dream ran behind the rest. The
    bench's switches turn the chain and the one call off, to measure what each gains."""
    import keras

    from dreamvid.engine.dreamer import Dreamer
    from dreamvid.render import chain

    init, carry_over, calls = Dreamer.__init__, chain.carry_over, []

    def on_device(self, *a, **k):
        init(self, *a, **k)
        self.carry_on_device = self.chain_on_device = self.fuse_octaves = self.static_steps = True

    dream, traces = Dreamer.dream, []

    def dream_counted(self, *a, **k):  # the traces before and after each dream, warm-up included
        before = self.trace_count
        out = dream(self, *a, **k)
        traces.append((before, self.trace_count))
        return out

    monkeypatch.setattr(Dreamer, "__init__", on_device)
    monkeypatch.setattr(Dreamer, "dream", dream_counted)
    def carry_counted(dreamer, *a, **k):
        calls.append((dreamer.chain_on_device, dreamer.fuse_octaves))
        return carry_over(dreamer, *a, **k)

    monkeypatch.setattr(chain, "carry_over", carry_counted)  # the chain's frames
    monkeypatch.setattr(bench, "carry_over", carry_counted)  # the bench's warm-up
    rc = bench.main(["--width", "64", "--height", "48", "--frames", "4", "--octaves", "2", "--steps-first", "2",
                     "--steps-next", "1", "--only", "project", "--io", "png", *flags], model=tiny_model)
    out = capsys.readouterr().out
    assert rc == 0, out
    assert calls == [(not flags, not flags)] * (1 + 3), calls  # the warm-up, then frames 1-3
    # the warm-up compiled both step counts (first frame 2, the rest 1): the 4 frames trace nothing
    assert len(traces) == 2 + 4, traces
    if keras.backend.backend() != "torch":  # (PyTorch runs eagerly: nothing compiles, every call "traces")
        assert all(a == b for a, b in traces[2:]), traces
    assert _floats(r"(?m)^project: ([\d.]+) s/frame", out)[0] > 0
    assert _floats(r"whole pipeline ([\d.]+)", out)[0] > 0
    if flags:  # the host waits for each dream: its time and arithmetic are seen
        assert _floats(r"dream alone ([\d.]+)", out)[0] > 0 and "TFLOP" in out
    else:
        assert "dream alone (not seen: the device runs it behind the rest" in out and "TFLOP" not in out


def test_the_assumed_peak_follows_the_vector_units_and_precision(monkeypatch):
    """Faked CPU flags: AVX2 (Zen 3), Zen 4's AVX-512 in two halves with AVX512_BF16, an Intel
    Xeon's AVX-512 with AMX; each says what it assumes, and that it is an estimate."""
    from dreamvid.engine import hardware

    zen3, zen4 = {"avx2", "fma"}, {"avx2", "fma", "avx512f", "avx512_bf16"}
    xeon = zen4 | {"amx_bf16", "amx_tile"}
    assert hardware.flop_per_cycle(zen3, "float32") == (32, "AVX2 FMA")
    assert hardware.flop_per_cycle(zen3, "bfloat16")[0] == 32  # no bfloat16 units: the float32 rate
    assert hardware.flop_per_cycle(zen4, "float32", "AMD EPYC 9R14") == (32, "AVX-512 FMA as two 256-bit halves")
    assert hardware.flop_per_cycle(zen4, "bfloat16", "AMD EPYC 9R14")[0] == 64
    assert hardware.flop_per_cycle(xeon, "float32", "Intel(R) Xeon(R) Platinum") == (64, "AVX-512 FMA")
    assert hardware.flop_per_cycle(xeon, "bfloat16", "Intel(R) Xeon(R) Platinum") == (1024, "AMX bfloat16 tiles")
    monkeypatch.setattr(hardware, "cpu_flags", lambda: zen4)
    _, cores, ghz, peak, basis = machine.cpu_peak("bfloat16")
    assert "an estimate" in basis and "FLOP/cycle" in basis
    assert peak == cores * ghz * hardware.flop_per_cycle(zen4, "bfloat16", machine.cpu_peak()[0])[0]
    monkeypatch.setattr(hardware, "cpu_flags", lambda: None)  # macOS, Windows: nothing to read
    assert "no CPU flags to read" in machine.cpu_peak()[4]


def test_the_share_of_the_peak_never_passes_100_percent(monkeypatch, tmp_path):
    """The peak uses the cores' maximum clock where cpufreq gives one; a figure above the peak
    (cores running faster than the clock assumed) is said as such, never as 117%."""
    from dreamvid.measure import machine as bench

    assert bench.share_of_peak(73.0, 100.0) == "73%"
    assert bench.share_of_peak(117.0, 100.0).startswith("100% (the cores ran faster")
    for n, khz in enumerate((2_600_000, 3_700_000)):
        d = tmp_path / f"cpu{n}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "cpuinfo_max_freq").write_text(f"{khz}\n")
    real_glob = bench.glob.glob
    monkeypatch.setattr(bench.glob, "glob",
                        lambda pattern: real_glob(str(tmp_path / "cpu[0-9]*/cpufreq/cpuinfo_max_freq"))
                        if "cpuinfo_max_freq" in pattern else real_glob(pattern))
    assert bench.max_clock_mhz() == 3700.0
    assert bench.cpu_peak()[2] == 3.7 and "at the maximum clock" in bench.cpu_peak()[4]


def test_the_recipes_compare_the_full_dream_and_the_touch_up_on_the_same_frames(tiny_model, tmp_path, texture):
    """bench --recipes: both recipes render the same frames, the first frame of the shot dreamed in full
    by each (identical), the later frames different; every measure and every aim is reported."""
    import cv2

    from dreamvid.measure import recipes
    from dreamvid.media.sinks import open_sink

    tex = cv2.GaussianBlur(texture(64, 64 + 40, seed=5), (0, 0), 2).astype(np.uint8)  # one shot: no cut
    clip = str(tmp_path / "pan.mp4")
    with open_sink(clip, fps=25, size=(64, 64), crf=0) as sink:
        for i in range(10):
            sink.write(np.ascontiguousarray(tex[:, 2 * i: 2 * i + 64]))
    inputs = recipes._inputs(clip, 64, 10)
    runs = {name: recipes.render(clip, str(tmp_path / name) + "/", skip, model=tiny_model, width=64, frames=10,
                                 seed=1, layers="conv2", octaves=2, octave_scale=1.5, iterations=3)
            for name, skip in recipes.RECIPES.items()}
    full, touch = runs["full"]["outputs"], runs["touch"]["outputs"]
    assert len(full) == len(touch) == 10 and np.array_equal(full[0], touch[0])
    assert runs["full"]["cuts"] == runs["touch"]["cuts"] == []
    assert all(not np.array_equal(a, b) for a, b in zip(full[1:], touch[1:]))
    rows = {name: {**run, **recipes.measure(inputs, run)} for name, run in runs.items()}
    lines = recipes.report(clip, rows)
    assert lines[0] == "pan.mp4:" and len(lines) == 1 + len(runs) + 5
    for words in ("frames/s after the first", "strength", "flicker", "tails", "revealed", "frames/s: ",
                  "revealed regions: "):
        assert any(words in line for line in lines), (words, lines)
    assert all(0 < v < 255 for r in rows.values() for v in r["strength"])
