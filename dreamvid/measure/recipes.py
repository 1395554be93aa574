"""The later frames' recipe, measured: `python -m dreamvid.measure.bench --recipes CLIP [CLIP ...]`.

A shot's first frame is dreamed in full; a later frame starts from the carried dream. Two recipes
for the later frames run on the same frames of each clip, in one run, one after the other:
- "full": every octave (video.next_skip 0, the recipe before);
- "touch": the default touch-up (video.next_skip 1: the finest octave left out, the detail of
  the others upsampled onto the carried frame, whose own fine detail stays).

For each it prints what a long clip runs at (frames/s after the first frame, the whole render:
decode, flow, dream, store, encode) and the look's measures against the same input frames:
the dream's strength per shot (mean |output - input|), the relative detail flicker
(metrics.detail_flicker), each shot's extreme and saturated shares in its last quarter against
its first frame (metrics.detail_tail), and how far newly revealed regions catch up
(metrics.reveal_catch_up: their detail 5 frames after the reveal against the frame's). Then the
ratios, and a line per aim: frames/s at least twice the full recipe's; strength within 10% in
every shot; flicker no higher; tails within 3x; revealed regions at least 0.8 of the frame's
detail, or as much as the full recipe's where that is below. Timing decides no test: this is
a measurement to read (README, Speed).
"""

from __future__ import annotations

import glob
import os
import tempfile
import time

import numpy as np

from dreamvid import api
from dreamvid.config.settings import DEFAULTS
from dreamvid.measure.metrics import detail_flicker, detail_tail, reveal_catch_up
from dreamvid.media.sources import open_source, read_image

RECIPES = {"full": 0, "touch": DEFAULTS["next_skip"] or 1}  # name -> video.next_skip
AIMS = {"speed": 2.0, "strength": 0.10, "tails": 3.0, "reveal": 0.8}


def _inputs(clip: str, width: int, frames: int) -> list[np.ndarray]:
    with open_source(clip, width=width) as src:
        out = []
        for frame in src:
            out.append(frame.copy())
            if len(out) == frames:
                break
    return out


def render(clip: str, folder: str, skip: int, *, model, width: int, frames: int, seed: int, **settings) -> dict:
    """One recipe on one clip into `folder` (PNG frames): its timing and its frames."""
    done_at: list[float] = []

    def progress(u) -> None:
        if u.kind == "frame":
            done_at.append(time.perf_counter())

    result = api.render_video(clip, folder, model=model, width=width, max_frames=frames, seed=seed,
                              next_skip=skip, progress=progress, **settings)
    outputs = [read_image(p) for p in sorted(glob.glob(os.path.join(folder, "*.png")))]
    after = (len(done_at) - 1) / (done_at[-1] - done_at[0]) if len(done_at) > 2 else float("nan")
    return {"fps_after": after, "seconds": result.seconds, "cuts": list(result.cuts), "outputs": outputs}


def measure(inputs: list[np.ndarray], run: dict) -> dict:
    """The look's measures of one render against its inputs (module docstring)."""
    outputs, cuts = run["outputs"], run["cuts"]
    starts = sorted({0, *cuts}) + [len(outputs)]
    strength = [float(np.mean([np.abs(outputs[k].astype(np.float32) - inputs[k]).mean() for k in range(a, b)]))
                for a, b in zip(starts, starts[1:])]
    _, shots = detail_tail(inputs, outputs, cuts)
    return {"strength": strength, "flicker": detail_flicker(inputs, outputs, relative=True),
            "tails": [s.growth() for s in shots], "reveal": reveal_catch_up(inputs, outputs, cuts)}


def compare(clip: str, *, model, width: int, frames: int, seed: int, sheet: str | None = None,
            **settings) -> dict:
    """Both recipes on `clip`'s first `frames` frames at `width`: {recipe: timing and measures}."""
    inputs = _inputs(clip, width, frames)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="dreamvid-recipes-") as tmp:
        for name, skip in RECIPES.items():
            folder = os.path.join(tmp, name) + "/"
            run = render(clip, folder, skip, model=model, width=width, frames=len(inputs), seed=seed, **settings)
            rows[name] = {**{k: v for k, v in run.items() if k != "outputs"}, **measure(inputs, run)}
            if sheet:
                path = f"{os.path.splitext(sheet)[0]}-{name}{os.path.splitext(sheet)[1] or '.jpg'}"
                api.render_sheet(folder, path, count=8, columns=4, width=1280)
                rows[name]["sheet"] = path
    return rows


def report(clip: str, rows: dict) -> list[str]:
    """The lines of one clip's comparison, the aims last."""
    full, touch = rows["full"], rows["touch"]
    lines = [f"{os.path.basename(clip)}:"]
    for name, r in rows.items():
        tails = ", ".join(f"{e:.1f}x/{s:.1f}x" for e, s in r["tails"])
        lines.append(f"  {name:5s} {r['fps_after']:.3f} frames/s after the first; strength "
                     f"{', '.join(f'{v:.2f}' for v in r['strength'])}; flicker {r['flicker']:.4f}; "
                     f"tails (extreme/saturated) {tails}; revealed {r['reveal']:.3f}"
                     + (f"; sheet {r['sheet']}" if r.get("sheet") else ""))
    speed = touch["fps_after"] / full["fps_after"]
    drift = max(abs(t / f - 1) for t, f in zip(touch["strength"], full["strength"]))
    worst_tail = max(max(t) for t in touch["tails"])
    aims = [("frames/s", f"{speed:.2f}x the full recipe's", speed >= AIMS["speed"]),
            ("strength", f"within {100 * drift:.1f}% in every shot", drift <= AIMS["strength"]),
            ("flicker", f"{touch['flicker']:.4f} against {full['flicker']:.4f}", touch["flicker"] <= full["flicker"]),
            ("tails", f"at most {worst_tail:.1f}x the shot's first frame", worst_tail <= AIMS["tails"]),
            ("revealed regions", f"{touch['reveal']:.3f} of the frame's detail (full: {full['reveal']:.3f})",
             touch["reveal"] >= min(AIMS["reveal"], full["reveal"]))]  # 0.8, or as the full recipe or better
    lines += [f"  {name}: {text} ({'met' if ok else 'NOT met'})" for name, text, ok in aims]
    return lines


__all__ = ["RECIPES", "AIMS", "compare", "measure", "render", "report"]
