"""The option groups the commands share (dream, mask, guide, backend, video, output, zoom), each
option made from its setting: its default shown from the settings' dataclasses, its choices from
their rules (config.settings.RULES). argparse keeps no defaults (SUPPRESS): a preset and the
settings' defaults fill in what was not given."""

from __future__ import annotations

import argparse
from dataclasses import fields

from dreamvid.config.presets import RAY_CHUNK_FRAMES
from dreamvid.config.settings import RULES, SECTIONS, help_of

# each setting's long option ("octaves" -> "--octaves", "zoom.blend" -> "--zoom-blend"), as the
# commands' parsers are made (the README's settings table reads it: cli/table.py)
OPTIONS: dict[str, str] = {}

SHOWN_DEFAULTS = {f.name: f.default for cls in SECTIONS.values() for f in fields(cls)}


def shown_default(key: str) -> str:
    value = SHOWN_DEFAULTS[key]
    return "" if value in (None, "") else f" (default: {value})"


def choices_of(key: str) -> tuple[str, ...]:
    """A setting's choices as the command line takes them (text), from its rule (config.settings.RULES)."""
    rule = RULES[key]
    return tuple(str(c) for c in (sorted(rule) if isinstance(rule, frozenset) else rule))


def switch(group, flag: str, dest: str, help: str | None = None, value: bool = True) -> None:
    """An option without a value that sets `dest` to `value` where given (argparse keeps nothing
    otherwise: the preset's or the setting's default applies). Its help: the setting's own
    (config.settings.help_of) unless the command words it for itself."""
    OPTIONS.setdefault(dest, flag)
    group.add_argument(flag, dest=dest, action="store_const", const=value, default=argparse.SUPPRESS,
                       help=help or help_of(dest))


def add(group, *flags, key: str, help: str | None = None, **kw):
    """The option of setting `key`: its help line the setting's own (config.settings.help_of)
    unless the command words it for itself, its default shown."""
    OPTIONS.setdefault(key, next(f for f in flags if f.startswith("--")))
    group.add_argument(*flags, dest=key, default=argparse.SUPPRESS, help=(help or help_of(key)) + shown_default(key),
                       **kw)


def dream_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("dream")
    add(g, "--model", key="model", metavar="NAME|PATH")
    add(g, "--weights", key="weights", metavar="FILE")
    switch(g, "--trust-pickle", "trust_pickle")
    add(g, "--layers", key="layers", metavar="SPEC")
    add(g, "--reduce", key="reduce", choices=choices_of("reduce"))
    add(g, "--octaves", key="octaves", metavar="N")
    add(g, "--octave-scale", key="octave_scale", metavar="X")
    add(g, "--iterations", key="iterations", metavar="N")
    add(g, "--step", key="step", metavar="X")
    add(g, "--grad-norm", key="grad_norm", choices=choices_of("grad_norm"))
    add(g, "--jitter", key="jitter", metavar="PX")
    switch(g, "--keep-colors", "keep_colors")
    add(g, "--tile-size", key="tile_size", metavar="PX")
    add(g, "--seed", key="seed", metavar="N")
    backend_options(g)
    add(g, "--precision", key="precision", choices=choices_of("precision"))
    add(g, "--xla", key="xla", choices=choices_of("xla"))
    add(g, "--width", key="width", metavar="PX")
    p.add_argument("--preset", default=None, metavar="NAME|PATH",
                   help="start from a named look (see 'dreamvid presets'); flags override it")


def look_options(p: argparse.ArgumentParser) -> None:
    """The options every dreaming command shares: the dream, where it dreams, what it looks like."""
    dream_options(p)
    mask_options(p)
    guide_options(p)


def mask_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("mask (where to dream)")
    add(g, "--mask", key="mask", metavar="FILE")
    switch(g, "--mask-invert", "mask_invert")
    add(g, "--mask-feather", key="mask_feather", metavar="PX")


def guide_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("guide (look like an image)")
    add(g, "--guide", key="guide", metavar="IMAGE")
    add(g, "--guide-weight", key="guide_weight", metavar="X")


def backend_options(g) -> None:
    add(g, "--backend", key="backend", choices=choices_of("backend"))
    add(g, "--device", key="device", choices=choices_of("device"))


CHUNK_FRAMES = RAY_CHUNK_FRAMES  # --chunk-frames alone, and with --ray: 8 s at 30 fps


def video_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("video")
    add(g, "--flow", key="flow", choices=choices_of("flow"))
    add(g, "--flow-preset", key="flow_preset", choices=choices_of("flow_preset"))
    add(g, "--blend", key="blend", metavar="X")
    add(g, "--carry", key="carry", choices=choices_of("carry"))
    add(g, "--carry-limit", key="carry_limit", metavar="X")
    add(g, "--iterations-next", key="iterations_next", metavar="N")
    add(g, "--next-skip", key="next_skip", metavar="N")
    add(g, "--interpolation", key="interpolation", choices=choices_of("interpolation"))
    add(g, "--cut-threshold", key="cut_threshold", metavar="X")
    add(g, "--min-shot-frames", key="min_shot_frames", metavar="N")
    switch(p, "--no-flow", "no_flow")
    g = p.add_argument_group("segments and clusters (README: Rendering on a cluster)")
    add(g, "--chunk-frames", key="chunk_frames", metavar="N", nargs="?", const=CHUNK_FRAMES,
        help=f"render in segments: shots split at cuts, longer ones into N-frame segments (alone: {CHUNK_FRAMES})")
    add(g, "--warmup-frames", key="warmup_frames", metavar="N")
    add(g, "--overlap-frames", key="overlap_frames", metavar="N")
    add(
        g,
        "--ray",
        key="ray",
        metavar="auto|ADDRESS",
        help="each segment a Ray task on a cluster (auto: RAY_ADDRESS, a cluster on this machine, or a new one); "
        f"the output's folder must be on storage every node sees; implies --chunk-frames {CHUNK_FRAMES}",
    )
    add(g, "--ray-cpus", key="ray_cpus", metavar="N")


def output_options(p: argparse.ArgumentParser, video: bool) -> None:
    g = p.add_argument_group("output")
    add(g, "--fps", key="fps", metavar="X")
    add(g, "--crf", key="crf", metavar="N")
    add(g, "--codec", key="codec", choices=choices_of("codec"))
    add(g, "--pix-fmt", key="pix_fmt", metavar="FMT")
    add(g, "--bit-depth", key="bit_depth", choices=choices_of("bit_depth"))
    add(g, "--frame-format", key="frame_format", choices=choices_of("frame_format"))
    if video:
        add(g, "--start", key="start", metavar="SEC")
        add(g, "--duration", key="duration", metavar="SEC")
        add(g, "--max-frames", key="max_frames", metavar="N")
        switch(g, "--no-audio", "audio", "leave the input's sound out", value=False)
    switch(g, "--keep-frames", "keep_frames")
    switch(g, "--restart", "restart")


def zoom_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        'zoom (numbers, Deforum schedules like "0:(1.02), 120:(1.05)", '
        "or a sound: \"audio:FILE:MIN:MAX[:MODE]\", see 'dreamvid keys')"
    )
    add(g, "--frames", key="frames", metavar="N")
    add(g, "--seconds", key="seconds", metavar="SEC")
    add(g, "--zoom", key="zoom", metavar="SCHED")
    add(g, "--rotate", key="rotate", metavar="SCHED")
    add(g, "--pan", key="pan", metavar="X,Y", help="pixels per frame the content moves (schedules: --pan-x/--pan-y)")
    add(g, "--pan-x", key="pan_x", metavar="SCHED")
    add(g, "--pan-y", key="pan_y", metavar="SCHED")
    add(g, "--center", key="center", metavar="X,Y")
    add(g, "--zoom-blend", key="zoom.blend", metavar="SCHED")
    add(g, "--color-match", key="color_match", metavar="X")
    add(g, "--from", key="init", metavar="image|noise|#RRGGBB")
    add(g, "--interpolation", key="interpolation", choices=choices_of("interpolation"))


SHOWN_DEFAULTS.update({"pan": None, "zoom.blend": "1.0"})
