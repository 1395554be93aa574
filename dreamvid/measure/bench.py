"""Performance, measured against a reference in the same run: `python -m dreamvid.measure.bench`.

One synthetic clip, one network object, one set of settings, two implementations:
- the project: `pipeline.render_video` (the compiled ascent loop, flow-guided frames, the
  resumable work folder, the ffmpeg sink);
- the reference (`dreamvid/reference.py`): the loop a tutorial would write. A Python loop calls
  a compiled one-step gradient function (tape, gradient, normalise) once per step with a NumPy round trip
  (np -> tensor -> np), octaves built as in the original DeepDream notebook (Laplacian-style
  detail split), flow between frames computed serially with OpenCV DIS, warp and blend, frames
  encoded with `imageio_ffmpeg.write_frames`.

Both do the same algorithm (same objective, step, normalisation, jitter range, temporal carry,
consistency mask), so the dream strength of the two outputs agrees and the ratio of their times
measures the implementation, not a different amount of work. Tracing (the first call of each
compiled function) happens before the timed region and is reported on its own line.

    python -m dreamvid.measure.bench                      # 320x180, 6 frames, vgg16-hed (~3-5 min on 2 cores)
    python -m dreamvid.measure.bench --full               # the issue's setting: 640x360, 12 frames
    python -m dreamvid.measure.bench --model inception_v3 # Keras InceptionV3, random weights (no download)
    python -m dreamvid.measure.bench --peak-memory        # peak RSS dreaming one 3840x2160 frame, then exit

    python -m dreamvid.measure.bench --model vgg16 --width 1280 --height 720 --frames 24   # a GPU (random weights)

Both run on the Keras backend of this process (`--backend`, or KERAS_BACKEND; TensorFlow by
default). The reference is the float32 tutorial loop whatever the project uses: the project runs
its defaults (`--precision auto`, `--xla auto`) against it. With TensorFlow the reference runs,
by default, in a child process with TensorFlow's own settings (what a tutorial gets: on CPUs
without AVX-512 VNNI/BF16 TensorFlow leaves its oneDNN kernels off, while dreamvid turns them
on); `--reference-tf same` runs it in this process with the project's settings, so the ratio
isolates the code from the kernel choice. Other switches: `--precision`, `--xla` (the project's
settings), `--intra N --inter N` (TensorFlow thread pools), `--io png` (frames as PNG folders
instead of MP4, for machines without ffmpeg). Besides seconds per frame, the report gives frames
per second of the whole pipeline and of the dream alone after the first frame (what a long clip
runs at), and the compile time of the first frame. FLOPs are counted analytically from the
network's convolutions; a CPU's peak is an estimate (cores x GHz x FLOP/cycle of its widest
vector units in the precision used: hardware.flop_per_cycle).

This module is a command-line tool: it prints, and `main()` returns an exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

import numpy as np

from dreamvid.config.settings import DEFAULTS, DreamSettings, VideoSettings, build_config
from dreamvid.core.frames import to_uint8
from dreamvid.engine import backends
from dreamvid.engine import dreamer as dream_mod
from dreamvid.engine.dreamer import Dreamer
from dreamvid.engine.models import OFFLINE_MODEL, load_model
from dreamvid.engine.objectives import layer as term
from dreamvid.jobs.pipeline import Progress, render_sheet, render_video
from dreamvid.measure import recipes
from dreamvid.measure.machine import cpu_peak, peak_memory_4k, share_of_peak
from dreamvid.measure.metrics import measure_videos
from dreamvid.measure.reference import SEED, STAGES, Run, native_torch_loop, plain_loop, run_reference, step_flops
from dreamvid.media.sinks import open_sink
from dreamvid.media.sources import open_source
from dreamvid.motion.flow import Motion
from dreamvid.render.chain import DeviceValues, carry_over

DEFAULT_SIZE = (320, 180, 6)  # (width, height, frames): ~3-5 minutes on 2 CPU cores with vgg16-hed
FULL_SIZE = (640, 360, 12)  # the setting
OCTAVES = 3  # fixed by the issue
STEPS_FIRST = 10  # ascent steps per octave on the first frame
STEPS_NEXT = 5  # ... and on the frames that start from the previous dream
PAN = 4  # pixels per frame the texture moves (right and a little down)
FPS = 25
MODELS = ("vgg16-hed", "vgg16", "inception_v3")  # Keras applications get random weights


# ----------------------------------------------------------------------------- the clip


def texture(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth coloured noise at a few scales, (h, w, 3) float32 in [25, 225]."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for scale, weight in ((4, 0.5), (12, 1.0), (40, 1.0)):
        small = rng.random((max(2, h // scale), max(2, w // scale), 3)).astype(np.float32)
        img += weight * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img -= img.min()
    return img / img.max() * 200 + 25


def make_clip(path: str, width: int, height: int, frames: int, seed: int = SEED) -> None:
    """Write a textured pan to `path` (.mp4, or a folder/ of PNGs): a fixed texture, moving PAN px
    right and PAN/2 px down per frame, encoded near-losslessly (crf 10) with the project's sink."""
    tex = texture(height + PAN * frames, width + PAN * frames, seed)
    with open_sink(path, fps=FPS, size=(width, height), crf=10) as sink:
        for k in range(frames):
            x0, y0 = PAN * (frames - k), (PAN // 2) * (frames - k)  # the content moves right/down
            sink.write(np.clip(np.rint(tex[y0:y0 + height, x0:x0 + width]), 0, 255).astype(np.uint8))
        sink.close()


# ----------------------------------------------------------------------------- measuring


@contextmanager
def _instrument(run: Run, dream_sizes: list, frame_shape: tuple[int, int], chain: bool = True, fuse: bool = True,
                steps: tuple[int, ...] = (1,)):
    """Watch the project's Dreamer from outside: log the octave sizes and steps of every frame's
    dream (for the FLOPs) and its time, and warm up each new Dreamer inside its constructor (the
    frame's compiled loops, the carry on the device where it runs there: one step, so
    TensorFlow's XLA gradient compiles too, or each of `steps` where the count is compiled in
    (Dreamer.static_steps); frames reseed the jitter), that time going to
    `run.trace`. `chain` / `fuse` False turn the GPU's device chain / one call per frame off
    (Dreamer.chain_on_device, fuse_octaves), to measure what each gains. Stage times, frame ends
    and the amount each frame added come from the pipeline itself (RenderResult.stages,
    Progress.frame). Everything patched is restored on exit."""
    saved = []

    def patch(obj, name, new):
        saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, new)

    Dreamer = dream_mod.Dreamer
    init, dream = Dreamer.__init__, Dreamer.dream

    def init_warm(self, *a, **k):
        init(self, *a, **k)
        self.chain_on_device = self.chain_on_device and chain
        self.fuse_octaves = self.fuse_octaves and fuse
        run.overlapped = self.chain_on_device
        t = time.perf_counter()
        zeros = np.zeros((*frame_shape, 3), np.uint8)  # a decoded frame
        start = zeros
        if self.carry_on_device:  # a video frame's start is made on the device: compile that too
            still = Motion(flow=np.zeros((*frame_shape, 2), np.float32), mask=np.ones(frame_shape, np.float32))
            # (with the limit the chain's default carry_limit gives: that compiled carry)
            start = carry_over(self, zeros, zeros, zeros, still, blend=1.0,
                               limit=1.0 if VideoSettings().carry_limit else 0.0)
        for n in (steps if self.static_steps else (1,)):
            dream(self, start, iterations=n, as_uint8=True)
        if self.chain_on_device:  # and the chain's amounts and shares
            values = DeviceValues(self)
            values.share(1.0, values.amount(zeros, zeros), values.amount(zeros, zeros))
        run.trace += time.perf_counter() - t

    def dream_timed(self, image, *a, **k):
        h, w = image.shape[:2]
        n = self.settings.iterations if k.get("iterations") is None else int(k["iterations"])
        sizes = self.octave_sizes(h, w, k.get("octaves"), k.get("octave_scale"))
        ascended = sizes[:len(sizes) - min(int(k.get("skip_top") or 0), len(sizes) - 1)]  # a touch-up's octaves
        dream_sizes.extend((hh, ww, n) for hh, ww in ascended)
        t = time.perf_counter()
        out = dream(self, image, *a, **k)
        run.dream_times.append(time.perf_counter() - t)
        return out

    patch(Dreamer, "__init__", init_warm)
    patch(Dreamer, "dream", dream_timed)
    try:
        yield
    finally:
        for obj, name, old in reversed(saved):
            setattr(obj, name, old)


# ----------------------------------------------------------------------------- the project


def run_project(model, layer: str, clip: str, workdir: str, octaves: int, steps_first: int,
                steps_next: int, xla: str = DEFAULTS["xla"], device: str = DEFAULTS["device"], chain: bool = True,
                fuse: bool = True) -> Run:
    """pipeline.render_video on the clip, instrumented from outside (see _instrument)."""
    # next_skip 0: every later frame dreams every octave, as the reference does (the same work, so
    # the ratio measures the implementation; --recipes measures the touch-up against it)
    cfg = build_config({"model": model.name, "layers": layer, "octaves": octaves, "iterations": steps_first,
                        "iterations_next": steps_next, "next_skip": 0, "seed": SEED, "device": device,
                        "audio": False, "xla": xla,
                        "precision": model.precision, **({"fps": FPS} if clip.endswith("/") else {})})
    with open_source(clip, fps=FPS if clip.endswith("/") else None) as src:
        shape = (src.info.height, src.info.width)
    run = Run("project")
    sizes: list = []

    def frame_done(k: int, stats: dict) -> None:
        run.done_at.append(time.perf_counter())
        run.amounts.append(stats["amount"])  # dream.amount(out, input frame), as the reference's

    out = os.path.join(workdir, "project/" if clip.endswith("/") else "project.mp4")
    with _instrument(run, sizes, shape, chain, fuse, (steps_first, steps_next)):
        t = time.perf_counter()
        result = render_video(cfg, clip, out, Progress(frame=frame_done), model=model)
        wall = time.perf_counter() - t
    run.total = wall - run.trace
    run.frames = result.frames
    run.flops = sum(n * step_flops(model, layer, h, w) for h, w, n in sizes)
    run.stages.update(result.stages)  # each summed over its own thread; "wait": the dream waiting
    return run


# ----------------------------------------------------------------------------- the reference


def _reference_in_child(args, model, layer: str, clip: str, workdir: str, octaves: int, steps_first: int,
                        steps_next: int) -> Run:
    """run_reference in a fresh Python on the same backend and device, in float32; with TensorFlow,
    with its own settings: DREAMVID_TF_DEFAULTS=1 and no TF_ENABLE_ONEDNN_OPTS, so TensorFlow picks
    its kernels as it would for a tutorial's code."""
    import keras

    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update(DREAMVID_TF_DEFAULTS="1", TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND=keras.backend.backend())
    cmd = [sys.executable, "-m", "dreamvid.measure.bench", "--model", args.model, "--precision", "float32",
           "--backend", keras.backend.backend(), "--device", args.device,
           "--octaves", str(octaves), "--steps-first", str(steps_first), "--steps-next", str(steps_next),
           "--intra", str(args.intra), "--inter", str(args.inter), "--_child-reference", clip, workdir]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RUN ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"the reference's process failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    data = json.loads(line[4:])
    run = Run("reference", frames=data["frames"], total=data["total"], trace=data["trace"],
              amounts=data["amounts"], flops=data["flops"], done_at=data["done_at"], dream_times=data["dream_times"])
    run.stages.update(data["stages"])
    return run


def child_4k(model_name: str) -> int:
    model = load_model(model_name, weights="random" if model_name != "vgg16-hed" else None)
    d = Dreamer(model, term(model.default_layer), DreamSettings(octaves=1, iterations=1, tile_size=512,
                                                                 seed=SEED, device="cpu"))
    t = time.perf_counter()
    d.dream(texture(2160, 3840, SEED))
    print(f"seconds {time.perf_counter() - t:.1f}")
    print(f"maxrss_kb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")  # Linux: kilobytes
    return 0


# ----------------------------------------------------------------------------- command line


def _dream_only(model, layer: str, width: int, height: int, args) -> int:
    """Frames per second of Dreamer.dream alone on one (height, width) uint8 frame with the steps
    of a frame after the first (what a long clip costs per frame on the device), nothing around
    it but the frame's trips to the device and back, as uint8 like the pipeline's: per call
    (each frame back before the next goes), and where the chain stays on the device (a GPU) in
    the steady state of a render too, frames queued one behind another."""
    settings = DreamSettings(octaves=args.octaves, iterations=args.steps_next, seed=SEED, device=args.device,
                             xla=args.xla)
    t = time.perf_counter()
    d = Dreamer(model, term(layer), settings)
    frame = to_uint8(texture(height, width, SEED))  # a decoded frame, in and out as the pipeline has it
    d.dream(frame, as_uint8=True)  # compiles every octave size
    compile_s = time.perf_counter() - t
    # the floor under the engine: the same octaves and steps as the plainest compiled loop; and,
    # where the engine dreams a frame in one compiled call or with its step count compiled in (a
    # GPU), the engine without each; all timed in turn so that other load hits each alike
    def dreaming(dreamer):
        return lambda k: dreamer.dream(frame, seed=k, as_uint8=True)

    plain = plain_loop(model, layer, d.octave_sizes(height, width), args.steps_next, d.settings.step)
    plain(frame)  # compiles
    variants = {"engine": dreaming(d), "plain": lambda k: plain(frame)}
    if d.backend.NAME == "torch":  # beside it the plainest native PyTorch loop, and the engine through Keras
        native = native_torch_loop(model, layer, d.octave_sizes(height, width), args.steps_next, d.settings.step,
                                   d.backend.device())
        if native is not None:
            native(frame)  # warms up
            variants["native"] = lambda k: native(frame)
        os.environ["DREAMVID_TORCH_NATIVE"], saved = "0", os.environ.get("DREAMVID_TORCH_NATIVE")
        try:
            keras_engine = Dreamer(model, term(layer), settings)
        finally:
            os.environ.pop("DREAMVID_TORCH_NATIVE") if saved is None else os.environ.update(DREAMVID_TORCH_NATIVE=saved)
        keras_engine.dream(frame, as_uint8=True)
        variants["through keras"] = dreaming(keras_engine)
    for name, attr in (("per octave", "fuse_octaves"), ("count passed in", "static_steps")):
        if getattr(d, attr):
            other = Dreamer(model, term(layer), settings)
            setattr(other, attr, False)
            other.dream(frame, as_uint8=True)  # compiles
            variants[name] = dreaming(other)
    times = {name: [] for name in variants}
    for k in range(args.dream_only):
        for name, fn in variants.items():
            t = time.perf_counter()
            fn(k)
            times[name].append(time.perf_counter() - t)
    median = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
    queued = None
    if d.chain_on_device:
        # the steady state of a render's chain: each frame queued behind the last, fetched once
        # the next is queued, so the device never waits for a frame's trip to the host
        t, last = time.perf_counter(), None
        for k in range(args.dream_only):
            out = d.dream(frame, seed=k, as_uint8=True, to_host=False)
            if last is not None:
                d.backend.to_numpy(last)
            last = out
        d.backend.to_numpy(last)
        queued = (time.perf_counter() - t) / args.dream_only
    print(f"dream only: {model.name} ({layer}) {width}x{height}, {args.octaves} octaves of {args.steps_next} steps, "
          f"{model.precision}, {backends.describe(d.backend.gpu_name() if d.device == 'gpu' else None)}: "
          f"{1 / median['engine']:.2f} frames/s (median of {args.dream_only}; best {1 / min(times['engine']):.2f}); "
          f"first call {compile_s:.2f} s")
    if queued is not None:
        print(f"dream only, frames queued one behind another (each fetched once the next is queued, as a "
              f"video's chain on a GPU): {1 / queued:.2f} frames/s ({args.dream_only} frames)")
    if "per octave" in median:
        print(f"dream only, one compiled call per octave instead of one per frame: {1 / median['per octave']:.2f} "
              f"frames/s; the one call at {median['per octave'] / median['engine']:.2f}x its speed")
    if "count passed in" in median:
        print(f"dream only, the step count passed in (a loop of unknown length) instead of compiled in: "
              f"{1 / median['count passed in']:.2f} frames/s; compiled in at "
              f"{median['count passed in'] / median['engine']:.2f}x its speed")
    print(f"dream only, the plainest compiled loop (no jitter, tiles or masks; same network, precision, octaves "
          f"and steps): {1 / median['plain']:.2f} frames/s; "
          f"the project at {median['plain'] / median['engine']:.2f}x its speed")
    if "through keras" in median:
        print(f"dream only, the engine with the network through Keras' PyTorch layers (DREAMVID_TORCH_NATIVE=0): "
              f"{1 / median['through keras']:.2f} frames/s; the native network at "
              f"{median['through keras'] / median['engine']:.2f}x its speed")
    if "native" in median:
        print(f"dream only, the plainest native PyTorch loop (torch.nn convolutions, torch.autograd.grad, no Keras; "
              f"same network, precision, octaves and steps): {1 / median['native']:.2f} frames/s; "
              f"the project at {median['native'] / median['engine']:.2f}x its speed")
    elif d.backend.NAME == "torch":
        print("dream only, the plainest native PyTorch loop: not run (it is written for VGG-like networks)")
    return 0


def _load(name: str, precision: str, device: str):
    """The benchmark's network: vgg16-hed's bundled weights, or a Keras application with random
    weights (the same cost as the trained one, no download), computing in `precision`."""
    import keras

    if name != OFFLINE_MODEL:
        keras.utils.set_random_seed(SEED)  # the same random weights here and in the reference's process
    return load_model(name, weights="random" if name != OFFLINE_MODEL else None, precision=precision, device=device)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dreamvid.measure.bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    w, h, n = DEFAULT_SIZE
    p.add_argument("--model", choices=MODELS, default="vgg16-hed",
                   help="network (inception_v3 is built with random weights: same cost, no download)")
    p.add_argument("--width", type=int, default=w)
    p.add_argument("--height", type=int, default=h)
    p.add_argument("--frames", type=int, default=n)
    p.add_argument("--full", action="store_true", help="the issue's full setting: {}x{}, {} frames".format(*FULL_SIZE))
    p.add_argument("--octaves", type=int, default=OCTAVES, help=argparse.SUPPRESS)  # tests shrink these
    p.add_argument("--steps-first", type=int, default=STEPS_FIRST, help=argparse.SUPPRESS)
    p.add_argument("--steps-next", type=int, default=STEPS_NEXT, help=argparse.SUPPRESS)
    p.add_argument("--only", choices=("project", "reference"), help="run one implementation only")
    p.add_argument("--repeats", type=int, default=1,
                   help="run both N times, alternating, and report each one's fastest (other load evens out)")
    p.add_argument("--backend", choices=("auto", "tensorflow", "jax", "torch"), default="auto",
                   help="Keras backend of both implementations (auto: as the dreamvid command chooses)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help="where both run")
    p.add_argument("--io", choices=("mp4", "png"), default=None,
                   help="the clip and the outputs as MP4 (ffmpeg) or PNG folders; default mp4 where "
                        "imageio-ffmpeg is installed")
    p.add_argument("--xla", choices=("auto", "on", "off"), default="auto",
                   help="the project's xla setting "
                        "(TensorFlow; auto: on for AVX2 CPUs and networks up to 40 layers deep)")
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
                   help="the project's arithmetic (the reference is always float32; auto: bfloat16 where the "
                        "hardware runs it fast)")
    p.add_argument("--reference-tf", choices=("defaults", "same"), default="defaults",
                   help="defaults: the reference runs in a child process with TensorFlow's own settings, as a "
                        "tutorial would (no oneDNN switch); same: in this process, with the project's settings")
    p.add_argument("--intra", type=int, default=0, help="TensorFlow intra-op threads (0: its default)")
    p.add_argument("--inter", type=int, default=0, help="TensorFlow inter-op threads (0: its default)")
    p.add_argument("--dream-only", type=int, default=0, metavar="N",
                   help="only time the project's dream of one frame, N times after a warm-up (no pipeline around it)")
    p.add_argument("--no-chain", action="store_true",
                   help="on a GPU, fetch each frame's dream before the next is queued (the chain on the host): "
                        "what keeping it on the device gains")
    p.add_argument("--octave-calls", action="store_true",
                   help="on a GPU, one compiled call per octave instead of one per frame: what the one call gains")
    p.add_argument("--sheet", metavar="FILE", help="also save a contact sheet of the project's output frames")
    p.add_argument("--recipes", nargs="+", metavar="CLIP",
                   help="compare the later frames' recipes on these clips (the first --frames frames at --width): the "
                        "full dream and the touch-up, frames/s and the look's measures (measure/recipes.py)")
    p.add_argument("--peak-memory", action="store_true", help="only measure peak memory dreaming one 4K frame")
    p.add_argument("--_child-4k", dest="child_4k", help=argparse.SUPPRESS)
    p.add_argument("--_child-reference", dest="child_reference", nargs=2, metavar=("CLIP", "WORKDIR"),
                   help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None, *, model=None) -> int:
    """Run the benchmark and print its report. `model`: a DreamModel to use instead of --model."""
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.child_4k:
        return child_4k(args.child_4k)
    if args.peak_memory:
        print(f"peak memory, one 3840x2160 frame, tile 512, 1 octave, 1 step, {args.model}: "
              f"{peak_memory_4k(args.model):.2f} GB (ru_maxrss of a fresh process)")
        return 0
    width, height, frames = FULL_SIZE if args.full else (args.width, args.height, args.frames)
    if width < 32 or height < 32 or frames < 1:
        raise SystemExit(f"--width and --height must be >= 32 and --frames >= 1, got {width}x{height}x{frames}")

    backend = backends.configure(args.backend, args.device)
    import keras

    if backend == "tensorflow" and (args.intra or args.inter):
        import tensorflow as tf

        if args.intra:
            tf.config.threading.set_intra_op_parallelism_threads(args.intra)
        if args.inter:
            tf.config.threading.set_inter_op_parallelism_threads(args.inter)
    cpu, cores, ghz, peak, basis = cpu_peak()
    given_model = model is not None
    if model is None:
        model = _load(args.model, args.precision, args.device)
    layer = model.resolve(model.default_layer)
    model.network([layer])  # build once, outside both timings
    if args.child_reference:  # the reference alone, in TensorFlow's own settings: a Run as JSON
        clip, workdir = args.child_reference
        r = run_reference(model, layer, clip, workdir, args.octaves, args.steps_first, args.steps_next)
        print("RUN " + json.dumps({"frames": r.frames, "stages": dict(r.stages), "total": r.total, "trace": r.trace,
                                   "amounts": r.amounts, "flops": r.flops, "dream_times": r.dream_times,
                                   "done_at": [t - r.done_at[0] for t in r.done_at]}))
        return 0
    if args.dream_only:
        return _dream_only(model, layer, width, height, args)
    if args.recipes:
        print(f"dreamvid bench --recipes: {model.name}, {width} px wide, {frames} frames, seed {SEED}; "
              f"{backends.current().NAME} {model.precision}")
        for clip in args.recipes:
            rows = recipes.compare(clip, model=model, width=width, frames=frames, seed=SEED,
                                   sheet=args.sheet and f"{os.path.splitext(args.sheet)[0]}-"
                                                         f"{os.path.basename(clip)}.jpg")
            print("\n".join(recipes.report(clip, rows)), flush=True)
        return 0
    io = args.io or ("mp4" if backends.installed("imageio_ffmpeg") else "png")
    bk = backends.current()
    gpu = bk.gpu_name() if args.device != "cpu" else None
    print(f"dreamvid bench: {model.name} ({layer}), {width}x{height}, {frames} frames, "
          f"{args.octaves} octaves, {args.steps_first} steps on frame 0 and {args.steps_next} after, seed {SEED}; "
          f"frames as {io}")
    versions = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
    framework = __import__(backend)
    print(f"Keras {keras.__version__} on {versions[backend]} {framework.__version__}; "
          f"device: {backends.describe(gpu)}; "
          f"project: precision {model.precision} ({args.precision}), xla {args.xla}"
          + (f", oneDNN {os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')}" if backend == "tensorflow" else ""))
    in_child = backend == "tensorflow" and not (args.reference_tf == "same" or given_model)
    print("reference: float32, " + ("a child process"
                                    + (" with TensorFlow's own settings (TF_ENABLE_ONEDNN_OPTS unset), no XLA"
                                       if backend == "tensorflow" else "")
                                    if in_child else "this process"))
    peaks = {"float32": peak}
    line = f"CPU: {cpu}, {cores} cores at {ghz:.2f} GHz; assumed float32 peak {peak:.0f} GFLOP/s ({basis})"
    if model.precision != "float32":
        peaks[model.precision], other = cpu_peak(model.precision)[3:]
        line += f"; {model.precision} peak {peaks[model.precision]:.0f} GFLOP/s ({other})"
    if gpu:
        peaks = {}  # no CPU peak to compare a GPU's throughput with
    print(line if not gpu else f"CPU: {cpu}, {cores} cores at {ghz:.2f} GHz")
    load = os.getloadavg()[0]
    best: dict = {}
    with tempfile.TemporaryDirectory(prefix="dreamvid-bench-") as tmp:
        clip = os.path.join(tmp, "clip.mp4" if io == "mp4" else "clip/")
        make_clip(clip, width, height, frames)
        common = (model, layer, clip, tmp, args.octaves, args.steps_first, args.steps_next)
        project = lambda *a: run_project(*a, xla=args.xla, device=args.device, chain=not args.no_chain,  # noqa: E731
                                         fuse=not args.octave_calls)
        # a network handed in (tests) exists only in this process: its reference runs here too,
        # in float32 (a second copy of the network when the project's is not)
        ref_model = model if model.precision == "float32" or given_model else _load(args.model, "float32", args.device)
        reference = (lambda *a: run_reference(ref_model, *a[1:])) if not in_child else \
            (lambda *a: _reference_in_child(args, *a))
        for _ in range(max(1, args.repeats)):
            for name, fn in (("project", project), ("reference", reference)):
                if args.only in (None, name):
                    r = fn(*common)
                    if name not in best or r.total < best[name].total:
                        best[name] = r
        tails = {}  # the detail's tail per shot of each run's output (metrics.detail_tail)
        outputs = {name: os.path.join(tmp, name + ("/" if io == "png" else ".mp4")) for name in best}
        if all(os.path.exists(p) for p in outputs.values()):
            measured, _ = measure_videos(clip, list(outputs.values()))
            tails = {name: m.shots() for name, m in zip(outputs, measured)}
        if args.sheet and "project" in best:
            render_sheet(os.path.join(tmp, "project/" if io == "png" else "project.mp4"), args.sheet, count=8)
    runs = list(best.values())
    load = max(load, os.getloadavg()[0])
    if load > cores:
        print(f"warning: load average {load:.1f} on {cores} cores: other processes shared the CPU, so the "
              f"absolute times are inflated; compare ratios, and use --repeats on a quiet machine")
    for r in runs:
        split = ", ".join(f"{s} {r.stages[s]:.2f}" for s in STAGES
                          if r.stages.get(s, 0) > 0 or s in ("decode", "flow", "dream", "encode"))
        gflops = r.flops / 1e9 / r.stages["dream"] if r.stages["dream"] > 0 else float("nan")
        beyond = r.total - r.stages["dream"]
        alone = f"{r.dream_fps:.2f}"
        if r.overlapped:  # the dream's own time is not seen from the host: say so rather than print queue times
            alone = "(not seen: the device runs it behind the rest; see --dream-only)"
        print(f"{r.name}: {r.per_frame:.3f} s/frame "
              f"({r.total:.2f} s for {r.frames} frames; trace {r.trace:.2f} s not counted); "
              f"after the first frame {r.steady:.3f} s/frame")
        print(f"  {r.name} stages (s): {split}")
        if not r.overlapped:
            print(f"  {r.name} time beyond the dream: {beyond:.2f} s = "
                  f"{100 * beyond / max(r.stages['dream'], 1e-9):.1f}% of the dream time")
        print(f"  {r.name} frames/s after the first frame: whole pipeline {1 / r.steady:.2f}, "
              f"dream alone {alone}; compile/trace before the first frame {r.trace:.2f} s")
        print(f"  {r.name} dream strength: {r.strength:.2f} (mean |out - in|, 0..255)")
        for shot in tails.get(r.name, []):
            print(f"  {r.name} detail tail, {shot.describe()}")
        prec = model.precision if r.name == "project" else "float32"  # (the reference is float32)
        peak = peaks.get(prec, 0.0)
        if not r.overlapped:
            print(f"  {r.name} arithmetic: {r.flops / 1e12:.3f} TFLOP in {r.stages['dream']:.2f} s of dreaming = "
                  f"{gflops:.1f} GFLOP/s"
                  + (f", {share_of_peak(gflops, peak)} of the assumed {prec} peak" if peak else ""))
    if len(runs) == 2:
        proj, ref = runs
        print(f"ratio (reference / project): {ref.per_frame / proj.per_frame:.3f}; "
              f"after the first frame (a long clip): {ref.steady / proj.steady:.3f}"
              + ("" if proj.overlapped
                 else f"; the dream alone after the first frame: {proj.dream_fps / ref.dream_fps:.3f}"))
        diff = abs(ref.strength - proj.strength) / max(proj.strength, 1e-9)
        print(f"dream strength difference: {100 * diff:.1f}% ({'within' if diff <= 0.10 else 'NOT within'} 10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
