"""What `python -m dreamvid.measure.bench` measures the project against, and the record each run fills.

- `run_reference`: the loop a tutorial would write (see dreamvid.measure.bench): a compiled one-step
  gradient called from a Python loop with a NumPy round trip per step, octaves as in the
  original DeepDream notebook, serial OpenCV flow, warp and blend, frames encoded as they come;
- `plain_loop`: the plainest compiled loop of the same network, precision, octaves and steps
  (no jitter, tiles or masks), the floor under the engine's dream of one frame;
- `native_torch_loop`: the same in plain PyTorch (torch.nn convolutions, torch.autograd.grad, no
  Keras), what the engine on PyTorch is measured against;
- `Run`: what one implementation did (seconds by stage, strength, steps, FLOPs);
- `step_flops`: the FLOPs of one ascent step, counted from the network's convolutions.

Both loops share one objective (`layer_loss`: the project's default mean square, in float32),
so their dreams and the project's are the same amount of work. Nothing here prints.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from dreamvid.config.settings import DreamSettings, VideoSettings
from dreamvid.core.frames import amount
from dreamvid.engine import backends
from dreamvid.engine.dreamer import over_octaves
from dreamvid.engine.models import CAFFE_MEAN_BGR

SEED = 1234  # jitter of the reference (the bench's clip and project use the same)
# Dreaming takes the gradient with respect to the image only: per convolution the forward pass
# and the input gradient (~2x the forward FLOPs); the weight gradient (the third 1x that training
# pays, the usual "x3") is never computed, so counting it would overstate the throughput by 1.5x.
BACKWARD_FACTOR = 2
# Stage times: the reference runs them one after another in one thread ("other": the rest of its
# loop); the project runs decode and flow ahead in a reader thread and store and encode behind in
# a writer thread, so its stages overlap and "wait" is the time its dream waited for them.
STAGES = ("decode", "flow", "dream", "store", "encode", "wait", "other")


@dataclass
class Run:
    """What one implementation did: seconds by stage, trace time, strength, dream steps."""

    name: str
    frames: int = 0
    stages: dict = field(default_factory=lambda: defaultdict(float))
    total: float = 0.0  # seconds, without tracing
    trace: float = 0.0  # seconds spent tracing/compiling before the timed region
    amounts: list = field(default_factory=list)  # mean |out - in| per frame, 0..255
    done_at: list = field(default_factory=list)  # perf_counter seconds when each frame was finished
    flops: float = 0.0  # conv FLOPs of all the ascent steps taken
    dream_times: list = field(default_factory=list)  # seconds in Dreamer.dream, per frame
    # the dream ran behind the rest on the device (a chain kept on the GPU: Dreamer.dream only
    # queues it), so it has no time of its own here: `--dream-only` measures it
    overlapped: bool = False

    @property
    def per_frame(self) -> float:
        return self.total / max(1, self.frames)

    @property
    def steady(self) -> float:
        """Seconds per frame after the first (which takes more steps, and where XLA compiles):
        what a long clip costs per frame. NaN with fewer than two frames."""
        t = self.done_at
        return (t[-1] - t[0]) / (len(t) - 1) if len(t) > 1 else float("nan")

    @property
    def dream_fps(self) -> float:
        """Frames per second of the dream alone after the first frame; NaN with one frame."""
        t = self.dream_times[1:]
        return len(t) / sum(t) if t and sum(t) > 0 else float("nan")

    @property
    def strength(self) -> float:
        return float(np.mean(self.amounts)) if self.amounts else float("nan")


def png_frames(folder: str):
    """The frames of a PNG folder as RGB uint8, in name order (the reference's --io png reader)."""
    import cv2

    for name in sorted(os.listdir(folder)):
        if name.endswith(".png"):
            yield cv2.cvtColor(cv2.imread(os.path.join(folder, name)), cv2.COLOR_BGR2RGB)


def layer_loss(apply, preprocess):
    """loss(state, img): the mean square of the layer's activations for an (H, W, 3) image on
    0..255, in float32 (the project's default objective), for the reference and the plain loop."""
    from keras import ops

    def loss(state, img):
        out = apply(state, preprocess(img[None]))
        out = out[0] if isinstance(out, (list, tuple)) else out
        return ops.mean(ops.square(ops.cast(out, "float32")))

    return loss


def run_reference(model, layer: str, clip: str, workdir: str, octaves: int, steps_first: int,
                  steps_next: int) -> Run:
    """The straightforward implementation (module docstring), same network and settings, on the
    backend Keras runs on: a compiled one-step gradient (tf.function, jax.jit, or PyTorch as is)
    called from a Python loop with a NumPy round trip per step."""
    import cv2
    from keras import ops

    ds, vs = DreamSettings(), VideoSettings()
    step, scale, jitter, blend = ds.step, ds.octave_scale, ds.jitter, vs.blend
    bk = backends.current()
    state, apply = bk.bind(model.network([layer]))
    run = Run("reference")
    clock = run.stages

    grad = bk.grad(layer_loss(apply, model.preprocess))

    def normalised(state, img):
        """One step's gradient, normalised by its std: (H, W, 3) -> (H, W, 3)."""
        g = grad(state, img)
        g = g / (ops.max(ops.abs(g)) + 1e-30)  # scale-free first, as the project does
        return g / (ops.std(g) + 1e-8)

    gradient = bk.compile(normalised)
    png = clip.endswith("/")
    if png:
        h, w = next(png_frames(clip)).shape[:2]
    else:
        import imageio_ffmpeg

        w, h = imageio_ffmpeg.read_frames(clip).__next__()["size"]
    t = time.perf_counter()
    for _ in range(octaves):  # warm-up: trace (and on JAX compile) for each octave size, untimed
        bk.to_numpy(gradient(state, ops.zeros((h, w, 3))))
        h, w = int(h / scale), int(w / scale)
        if min(h, w) < 32:
            break
    run.trace = time.perf_counter() - t
    rng = np.random.default_rng(SEED)
    sizes: list = []

    def ascend(img, n):
        sizes.append((img.shape[0], img.shape[1], n))
        for _ in range(n):
            ox, oy = rng.integers(-jitter, jitter + 1, 2)
            rolled = np.roll(np.roll(img, ox, 1), oy, 0)
            g = bk.to_numpy(gradient(state, ops.convert_to_tensor(rolled)))  # the NumPy round trip of every step
            img = np.clip(img + step * np.roll(np.roll(g, -ox, 1), -oy, 0), 0.0, 255.0)
        return img

    def deepdream(img, n):
        # the notebook's octaves: split into a small base and the detail lost at each scale...
        details = []
        for _ in range(octaves - 1):
            h, w = img.shape[:2]
            lo_size = (int(w / scale), int(h / scale))
            if min(lo_size) < 32:
                break
            lo = cv2.resize(img, lo_size, interpolation=cv2.INTER_AREA)
            details.append(img - cv2.resize(lo, (w, h), interpolation=cv2.INTER_LINEAR))
            img = lo
        # ... then ascend from the smallest, adding each detail back on the way up
        for k in range(len(details) + 1):
            if k > 0:
                hi = details[-k]
                img = cv2.resize(img, (hi.shape[1], hi.shape[0]), interpolation=cv2.INTER_LINEAR) + hi
            img = ascend(img, n)
        return img

    dis = cv2.DISOpticalFlow_create(cv2.DISOpticalFlow_PRESET_MEDIUM)
    out_path = os.path.join(workdir, "reference/" if png else "reference.mp4")
    t_all = time.perf_counter()
    t = time.perf_counter()
    if png:
        reader = png_frames(clip)
        os.makedirs(out_path, exist_ok=True)
        writer = None
    else:
        reader = imageio_ffmpeg.read_frames(clip)
        meta = next(reader)
        w, h = meta["size"]
        writer = imageio_ffmpeg.write_frames(out_path, (w, h), fps=meta["fps"], codec="libx264", quality=None,
                                             pix_fmt_out="yuv420p", macro_block_size=1,
                                             output_params=["-crf", "18", "-preset", "medium"])
        writer.send(None)  # starts ffmpeg
    clock["decode"] += time.perf_counter() - t
    prev_in = prev_out = None
    target = 0.0
    try:
        while True:
            t = time.perf_counter()
            try:
                raw = next(reader)
            except StopIteration:
                clock["decode"] += time.perf_counter() - t
                break
            frame = raw if png else np.frombuffer(raw, np.uint8).reshape(h, w, 3)
            h, w = frame.shape[:2]
            clock["decode"] += time.perf_counter() - t
            if prev_in is None:
                init, n = frame.astype(np.float32), steps_first
            else:
                t = time.perf_counter()
                ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
                g0 = cv2.cvtColor(prev_in, cv2.COLOR_RGB2GRAY)
                g1 = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
                bw = dis.calc(g1, g0, None)  # (H, W, 2) px, current -> previous
                fw = dis.calc(g0, g1, None)  # (H, W, 2) px, previous -> current
                mx, my = xs + bw[..., 0], ys + bw[..., 1]
                fw_at = cv2.remap(fw, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                bad = np.sum((bw + fw_at) ** 2, 2) >= 0.01 * (np.sum(bw ** 2, 2) + np.sum(fw_at ** 2, 2)) + 0.5
                bad |= (mx < -0.5) | (mx > w - 0.5) | (my < -0.5) | (my > h - 0.5)
                mask = cv2.GaussianBlur(cv2.erode((~bad).astype(np.float32), np.ones((3, 3), np.uint8)), (0, 0), 2.0)
                prev_amount = amount(prev_out, prev_in)
                share = blend * min(1.0, target / prev_amount) if prev_amount > 0 else blend
                detail = prev_out.astype(np.float32) - prev_in.astype(np.float32)
                warped = cv2.remap(detail, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                init = np.clip(frame + share * mask[..., None] * warped, 0, 255).astype(np.float32)
                n = steps_next
                clock["flow"] += time.perf_counter() - t
            t = time.perf_counter()
            out = np.clip(np.rint(deepdream(init, n)), 0, 255).astype(np.uint8)
            clock["dream"] += time.perf_counter() - t
            run.dream_times.append(time.perf_counter() - t)
            run.amounts.append(amount(out, frame))
            if prev_in is None:
                target = run.amounts[-1]
            t = time.perf_counter()
            if png:
                cv2.imwrite(os.path.join(out_path, f"{run.frames:06d}.png"), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
            else:
                writer.send(out)
            clock["encode"] += time.perf_counter() - t
            prev_in, prev_out = frame, out
            run.frames += 1
            run.done_at.append(time.perf_counter())
    finally:
        t = time.perf_counter()
        if writer is not None:
            writer.close()  # always: a crash never leaves an encoder running
            reader.close()
        clock["encode"] += time.perf_counter() - t
    run.total = time.perf_counter() - t_all
    run.flops = sum(n * step_flops(model, layer, hh, ww) for hh, ww, n in sizes)
    run.stages["other"] = max(0.0, run.total - sum(run.stages[s] for s in STAGES if s != "other"))
    return run


def plain_loop(model, layer: str, sizes: list, steps: int, step: float):
    """The dream loop with nothing but the algorithm: per octave one compiled call of `steps`
    std-normalised ascent steps on the whole image (no jitter, tiles, masks or guides), octaves
    resized on the device, a uint8 frame in and out. What the engine's extras cost is the gap
    between its speed and this one's."""
    from keras import ops

    bk = backends.current()
    state, apply = bk.bind(model.network([layer]))
    grad = bk.grad(layer_loss(apply, model.preprocess))

    def octave(state, img):
        def one_step(i, x):
            g = grad(state, x)
            return ops.clip(x + step * g / (ops.std(g) + 1e-8), 0.0, 255.0)
        return ops.fori_loop(0, steps, one_step, img)

    octave = bk.compile(octave)

    def dream(frame):  # the engine's octave loop around it: one compiled call per octave
        out = over_octaves(ops.convert_to_tensor(frame), None, sizes, lambda k, img, m: octave(state, img), True)
        return bk.to_numpy(out)

    return dream


def native_torch_loop(model, layer: str, sizes: list, steps: int, step: float, device: str = "cpu"):
    """The plainest native PyTorch dream of the same network, precision, octaves and steps: the
    network's convolutions and poolings as a torch.nn.Sequential holding its weights, channels-last,
    autocast in the network's precision, torch.autograd.grad on the image, std-normalised steps
    (no jitter, tiles or masks), octaves resized with F.interpolate: no Keras anywhere in the
    loop. What a PyTorch user would write; the floor under the engine on PyTorch. None where the
    network is not a plain chain of "same" stride-1 convolutions and poolings (VGG) in "caffe"
    preprocessing; `device` a torch device ("cpu", "cuda")."""
    import torch
    import torch.nn.functional as F

    from dreamvid.engine.backends import torchnet  # (PyTorch: only on that backend)

    net = model.network([layer])
    if model.preprocess_mode != "caffe":
        return None
    mods = []
    for lyr in net.layers:
        kind, cfg = type(lyr).__name__, torchnet.config(lyr)  # (get_config would import TensorFlow)
        act = getattr(getattr(lyr, "activation", None), "__name__", "")
        if kind == "InputLayer":
            continue
        if kind == "Conv2D" and cfg["padding"] == "same" and tuple(cfg["strides"]) == (1, 1) \
                and tuple(cfg["dilation_rate"]) == (1, 1) and cfg.get("groups", 1) == 1 and cfg["use_bias"] \
                and act in ("relu", "linear") and all(k % 2 for k in cfg["kernel_size"]):
            kernel, bias = (np.asarray(w) for w in lyr.get_weights())
            conv = torch.nn.Conv2d(kernel.shape[2], kernel.shape[3], kernel.shape[:2],
                                   padding=(kernel.shape[0] // 2, kernel.shape[1] // 2))
            conv.weight.data = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
            conv.bias.data = torch.from_numpy(bias.copy())
            mods += [conv, torch.nn.ReLU()] if act == "relu" else [conv]
        elif kind == "MaxPooling2D" and cfg["padding"] == "valid":
            mods.append(torch.nn.MaxPool2d(tuple(cfg["pool_size"]), tuple(cfg["strides"] or cfg["pool_size"])))
        else:
            return None
    dev = torch.device(device)
    seq = torch.nn.Sequential(*mods).to(dev).to(memory_format=torch.channels_last).eval().requires_grad_(False)
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(model.precision)
    mean = torch.tensor(CAFFE_MEAN_BGR, device=dev).view(1, 3, 1, 1)

    def loss(x):
        with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = seq(x.flip(1) - mean)  # RGB -> BGR, minus the means: "caffe"
        return out.float().square().mean()

    def octave(x):
        for _ in range(steps):
            x = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(loss(x), x)
            x = (x + step * g / (g.std() + 1e-8)).clamp(0.0, 255.0)
        return x.detach()

    def resize(x, size):
        if tuple(x.shape[2:]) == tuple(size):
            return x
        down = size[0] * size[1] < x.shape[2] * x.shape[3]
        return F.interpolate(x, size=tuple(size), mode="bilinear" if down else "bicubic", antialias=down,
                             align_corners=False)

    def dream(frame):  # uint8 (H, W, 3) in and out, as the engine's
        full = (torch.from_numpy(frame).to(dev).permute(2, 0, 1)[None].float()
                .contiguous(memory_format=torch.channels_last))
        detail = torch.zeros((1, 3, *sizes[0]), device=dev)
        for size in sizes:
            base = resize(full, size)
            detail = octave(base + resize(detail, size)) - base
        out = (full + detail).clamp(0.0, 255.0).round().to(torch.uint8)
        return out[0].permute(1, 2, 0).cpu().numpy()

    return dream


_flops_cache: dict = {}


def step_flops(model, layer: str, h: int, w: int) -> float:
    """FLOPs of one ascent step on an (h, w) image: BACKWARD_FACTOR x the forward convolutions
    up to `layer`, counted as 2*kh*kw*Cin*Cout*Hout*Wout (depthwise: no Cin) from the output
    shapes Keras infers symbolically for that input size (nothing is computed)."""
    key = (id(model), layer, h, w)
    if key not in _flops_cache:
        import keras

        net = model.network([layer])
        kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
        layers = [lyr for lyr in net.layers if isinstance(lyr, kinds)]
        probe = keras.Model(net.inputs[0], [lyr.output for lyr in layers])
        shapes = probe.compute_output_spec(keras.KerasTensor((1, h, w, 3)))
        shapes = shapes if isinstance(shapes, (list, tuple)) else [shapes]
        total = 0.0
        for lyr, out in zip(layers, shapes):
            kernel = tuple(lyr.kernel.shape)  # (kh, kw, Cin, Cout or multiplier) or (Cin, Cout)
            per_out = 2.0 * (kernel[0] * kernel[1] * (1 if isinstance(lyr, keras.layers.DepthwiseConv2D) else kernel[2])
                             if len(kernel) == 4 else kernel[0])
            total += per_out * float(np.prod(out.shape[1:]))
        _flops_cache[key] = BACKWARD_FACTOR * total
    return _flops_cache[key]


__all__ = ["Run", "run_reference", "plain_loop", "native_torch_loop", "layer_loss", "png_frames", "step_flops",
           "STAGES", "BACKWARD_FACTOR"]
