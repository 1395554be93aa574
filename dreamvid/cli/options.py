"""The option groups the commands share (dream, mask, guide, backend, video, output, zoom), each
option made from its setting: its default shown from the settings' dataclasses, its choices from
their rules (config.settings.RULES). argparse keeps no defaults (SUPPRESS): a preset and the
settings' defaults fill in what was not given."""

from __future__ import annotations

import argparse
from dataclasses import fields

from dreamvid.config.presets import RAY_CHUNK_FRAMES
from dreamvid.config.settings import (
    RULES,
    SECTIONS,
)

SHOWN_DEFAULTS = {f.name: f.default for cls in SECTIONS.values() for f in fields(cls)}


def shown_default(key: str) -> str:
    value = SHOWN_DEFAULTS[key]
    return "" if value in (None, "") else f" (default: {value})"


def choices_of(key: str) -> tuple[str, ...]:
    """A setting's choices as the command line takes them (text), from its rule (config.settings.RULES)."""
    rule = RULES[key]
    return tuple(str(c) for c in (sorted(rule) if isinstance(rule, frozenset) else rule))


def switch(group, flag: str, dest: str, help: str, value: bool = True) -> None:
    """An option without a value that sets `dest` to `value` where given (argparse keeps nothing
    otherwise: the preset's or the setting's default applies)."""
    group.add_argument(flag, dest=dest, action="store_const", const=value, default=argparse.SUPPRESS, help=help)


def add(group, *flags, key: str, help: str, **kw):
    group.add_argument(*flags, dest=key, default=argparse.SUPPRESS, help=help + shown_default(key), **kw)


def dream_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("dream")
    add(
        g,
        "--model",
        key="model",
        metavar="NAME|PATH",
        help="network: googlenet, vgg16-hed (offline), vgg16, inception_v3, ..., torchvision:NAME, timm:NAME, "
        "or a .keras/.pb/.onnx/TorchScript .pt path",
    )
    add(
        g,
        "--weights",
        key="weights",
        metavar="FILE",
        help="weights fetched elsewhere (googlenet: inception5h.zip; torchvision:/timm: a state dict); "
        "'random' for untrained Keras, torchvision and timm nets",
    )
    switch(g, "--trust-pickle", "trust_pickle",
           "a --model .pt that is a whole pickled module may be loaded (it runs the file's code): "
           "only for files you trust")
    add(
        g,
        "--layers",
        key="layers",
        metavar="SPEC",
        help="layers to maximise: 'mixed4c', 'mixed3b:1.0,mixed4c:0.5', or LAYER:CHANNEL; "
        "default: the model's own choice",
    )
    add(g, "--reduce", key="reduce", choices=choices_of("reduce"),
        help="objective per layer: mean of squares, or plain mean (the seed blog)")
    add(g, "--octaves", key="octaves", metavar="N",
        help="number of scales the dream runs at (video, zoom: also a schedule)")
    add(g, "--octave-scale", key="octave_scale", metavar="X", help="size ratio between octaves")
    add(g, "--iterations", key="iterations", metavar="N", help="gradient-ascent steps per octave (first frame)")
    add(
        g,
        "--step",
        key="step",
        metavar="X",
        help="step size per iteration, in 0..255 pixel units (video, zoom: also a schedule, "
        "or audio:FILE:MIN:MAX[:MODE] to follow a sound)",
    )
    add(g, "--grad-norm", key="grad_norm", choices=choices_of("grad_norm"), help="gradient normalisation")
    add(g, "--jitter", key="jitter", metavar="PX", help="max random shift per step")
    switch(g, "--keep-colors", "keep_colors",
           "keep the input's colours: the dream changes light and shape, not the palette")
    add(g, "--tile-size", key="tile_size", metavar="PX", help="dream larger images in tiles of this size")
    add(g, "--seed", key="seed", metavar="N", help="fix the random jitter for reproducible runs")
    backend_options(g)
    add(g, "--precision", key="precision", choices=choices_of("precision"),
        help="network arithmetic (auto: bfloat16 or float16 where the GPU or CPU runs it fast, else float32)")
    add(
        g,
        "--xla",
        key="xla",
        choices=choices_of("xla"),
        help="TensorFlow: XLA-compile the ascent loop (auto: on for videos and zooms on CPUs without AVX-512, "
        "for networks up to 40 layers deep; JAX always compiles with XLA)",
    )
    add(g, "--width", key="width", metavar="PX", help="resize the input to this width, keeping aspect")
    p.add_argument("--preset", default=None, metavar="NAME|PATH",
                   help="start from a named look (see 'dreamvid presets'); flags override it")


def mask_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("mask (where to dream)")
    add(g, "--mask", key="mask", metavar="FILE",
        help="greyscale image (every frame) or folder/video of one per frame: white dreams, black stays the input")
    switch(g, "--mask-invert", "mask_invert", "dream where the mask is black instead")
    add(g, "--mask-feather", key="mask_feather", metavar="PX", help="soften the mask's edge over about PX pixels")


def guide_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("guide (look like an image)")
    add(g, "--guide", key="guide", metavar="IMAGE",
        help="make the dream look like this image: at the objective's layers, match its features")
    add(g, "--guide-weight", key="guide_weight", metavar="X", help="weight of the guide's term beside the layers'")


def backend_options(g) -> None:
    add(
        g,
        "--backend",
        key="backend",
        choices=choices_of("backend"),
        help="framework that runs the network (auto: one that sees a GPU, JAX first, else TensorFlow; "
        "KERAS_BACKEND is honoured)",
    )
    add(g, "--device", key="device", choices=choices_of("device"), help="where the gradient loop runs")


CHUNK_FRAMES = RAY_CHUNK_FRAMES  # --chunk-frames alone, and with --ray: 8 s at 30 fps


def video_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("video")
    add(g, "--flow", key="flow", choices=choices_of("flow"), help="optical flow method")
    add(g, "--flow-preset", key="flow_preset", choices=choices_of("flow_preset"), help="DIS flow preset")
    add(g, "--blend", key="blend", metavar="X", help="share of the previous dream carried into the next frame (0..1)")
    add(g, "--carry", key="carry", choices=choices_of("carry"),
        help="carry the dream's added detail, or the dreamed frame")
    add(
        g,
        "--carry-limit",
        key="carry_limit",
        metavar="X",
        help="limit each pixel's carried change to X times a fresh dream's mean amount, so the dream "
        "cannot run away into saturated blobs (0 = no limit)",
    )
    add(g, "--iterations-next", key="iterations_next", metavar="N",
        help="steps per octave for frames after the first of a shot (also a schedule)")
    add(
        g,
        "--next-skip",
        key="next_skip",
        metavar="N",
        help="frames after the first of a shot skip their N finest octaves: a touch-up at a lower resolution "
        "upsampled onto the carried dream (0: every octave, the recipe before)",
    )
    add(g, "--interpolation", key="interpolation", choices=choices_of("interpolation"),
        help="schedules: between keyframes")
    add(g, "--cut-threshold", key="cut_threshold", metavar="X", help="content change that starts a new shot")
    add(g, "--min-shot-frames", key="min_shot_frames", metavar="N",
        help="frames a shot lasts at least: a cut sooner after the last is ignored (a flash frame cuts once)")
    switch(p, "--no-flow", "no_flow", "dream every frame independently (for comparison)")
    g = p.add_argument_group("segments and clusters (README: Rendering on a cluster)")
    add(g, "--chunk-frames", key="chunk_frames", metavar="N", nargs="?", const=CHUNK_FRAMES,
        help=f"render in segments: shots split at cuts, longer ones into N-frame segments (alone: {CHUNK_FRAMES})")
    add(g, "--warmup-frames", key="warmup_frames", metavar="N",
        help="frames dreamed and thrown away before a later segment")
    add(g, "--overlap-frames", key="overlap_frames", metavar="N", help="frames consecutive segments share, cross-faded")
    add(
        g,
        "--ray",
        key="ray",
        metavar="auto|ADDRESS",
        help="each segment a Ray task on a cluster (auto: RAY_ADDRESS, a cluster on this machine, or a new one); "
        f"the output's folder must be on storage every node sees; implies --chunk-frames {CHUNK_FRAMES}",
    )
    add(g, "--ray-cpus", key="ray_cpus", metavar="N", help="CPUs per Ray task where the cluster has no GPU")


def output_options(p: argparse.ArgumentParser, video: bool) -> None:
    g = p.add_argument_group("output")
    add(g, "--fps", key="fps", metavar="X", help="frame rate (video: the input's; image sequences and zooms: 25)")
    add(g, "--crf", key="crf", metavar="N", help="H.264/H.265 quality, lower is better; 0 = lossless")
    add(
        g,
        "--codec",
        key="codec",
        choices=choices_of("codec"),
        help="video codec (default: h264, vp9 for .webm); prores and prores4444 (for editors) write .mov or .mkv, "
              "vp9 (with Opus sound) .webm, .mkv or .mp4",
    )
    add(
        g, "--pix-fmt", key="pix_fmt", metavar="FMT", help="ffmpeg pixel format, e.g. yuv422p10le; default: the codec's"
    )
    add(g, "--bit-depth", key="bit_depth", choices=choices_of("bit_depth"),
        help="16 keeps the dream's float precision: 16-bit PNG/TIFF frames, or a 10-bit codec's input")
    add(g, "--frame-format", key="frame_format", choices=choices_of("frame_format"),
        help="files in a frame folder (an output ending in '/')")
    if video:
        add(g, "--start", key="start", metavar="SEC", help="start this many seconds into the input")
        add(g, "--duration", key="duration", metavar="SEC", help="render this many seconds")
        add(g, "--max-frames", key="max_frames", metavar="N", help="render at most N frames")
        switch(g, "--no-audio", "audio", "leave the input's sound out", value=False)
    switch(g, "--keep-frames", "keep_frames", "keep the work folder of lossless frames")
    switch(g, "--restart", "restart", "discard an unfinished earlier render of this output and start over")


def zoom_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        'zoom (numbers, Deforum schedules like "0:(1.02), 120:(1.05)", '
        "or a sound: \"audio:FILE:MIN:MAX[:MODE]\", see 'dreamvid keys')"
    )
    add(g, "--frames", key="frames", metavar="N", help="number of frames")
    add(g, "--seconds", key="seconds", metavar="SEC", help="length in seconds (overrides --frames)")
    add(g, "--zoom", key="zoom", metavar="SCHED", help="scale per frame")
    add(g, "--rotate", key="rotate", metavar="SCHED", help="degrees per frame, counter-clockwise")
    add(g, "--pan", key="pan", metavar="X,Y", help="pixels per frame the content moves (schedules: --pan-x/--pan-y)")
    add(g, "--pan-x", key="pan_x", metavar="SCHED", help="pixels per frame to the right")
    add(g, "--pan-y", key="pan_y", metavar="SCHED", help="pixels per frame down")
    add(g, "--center", key="center", metavar="X,Y", help="zoom centre in pixels; default the middle")
    add(g, "--zoom-blend", key="zoom.blend", metavar="SCHED", help="share of the previous dream kept each frame")
    add(g, "--color-match", key="color_match", metavar="X", help="pull colours towards the first frame's (0..1)")
    add(g, "--from", key="init", metavar="image|noise|#RRGGBB", help="start frame: the image, noise, or a colour")
    add(g, "--interpolation", key="interpolation", choices=choices_of("interpolation"), help="between keyframes")


SHOWN_DEFAULTS.update({"pan": None, "zoom.blend": "1.0"})
