"""Keyframed parameters over time, in the notation animators know from Deforum.

    "1.02"                              a constant
    "0:(1.02), 120:(1.05), 240:(1.0)"   keyframes FRAME:(VALUE), separated by commas
    "0:(mixed4c), 150:(mixed5a)"        names (layers), cross-faded between keyframes

Rules, the same for numbers and names:
- frames are non-negative integers; keyframes may be written in any order (they are sorted),
  but a frame may appear only once;
- before the first keyframe the first value holds, after the last keyframe the last value holds;
- between two keyframes the value moves from one to the next and reaches the second exactly at
  its frame (like Deforum's linear interpolation).

Interpolation of numbers:
- "linear": straight lines between keyframes.
- "smooth": monotone cubic Hermite (PCHIP: Fritsch-Carlson/Butland slopes inside, as in scipy's
  PchipInterpolator; slope 0 at the first and last keyframe, where the held value takes over).
  It passes through every keyframe with a continuous slope, eases in and out at the ends (two
  keyframes give smoothstep), and never overshoots: between two keyframes the value stays
  within their range, so a zoom easing from 1.02 to 1.05 never dips below 1.02 or rises
  above 1.05 on the way.

Cross-fade of names (weights_at): between keyframes a and b the weight moves from a's name to
b's name over the last `fade` frames before b (the whole interval when fade is None, the
default, which mirrors linear interpolation of numbers); before that the old name holds at
weight 1. The fade is linear for "linear" and smoothstep (3t^2 - 2t^3, zero slope at both ends)
for "smooth". Weights always sum to 1; a name that appears in both neighbours gets the sum.

A setting may also follow a sound, "audio:FILE[:MIN:MAX[:MODE]]" (AudioSpec, parse_spec here;
audio.py turns the sound into keyframes).

Values of name schedules are opaque strings: "0:(mixed4c:1.0;mixed3b:0.5)" is kept as the name
"mixed4c:1.0;mixed3b:0.5" for a later stage to read.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass

from dreamvid.core.errors import ConfigError

__all__ = ["Schedule", "AudioSpec", "is_audio", "parse_spec", "check_follower", "check_range", "MODES",
           "ATTACK", "RELEASE"]

LINEAR = "linear"  # between keyframes: straight lines, Deforum's default (the settings' interpolation)
MODES = ("rms", "onsets")  # what an audio: spec follows (audio.py): loudness, or percussive hits
ATTACK = 0.05  # seconds: a beat is followed within about a frame and a half at 30 fps
RELEASE = 0.3  # seconds: and fades over about 9 frames, so the dream swells and settles, not flickers
_MAX_SECONDS = 60.0  # a follower slower than a minute follows nothing; a likely typo
_PREFIX = "audio:"
_AUDIO_EXAMPLE = '"audio:song.mp3:1.0:3.0" (audio:FILE[:MIN:MAX[:MODE]], MODE rms or onsets)'


@dataclass(frozen=True)
class AudioSpec:
    """A schedule setting that follows a sound: values run from `lo` (silence) to `hi` (the
    loudest frame or hardest hit)."""

    path: str
    lo: float = 0.0
    hi: float = 1.0
    mode: str = "rms"


def is_audio(text) -> bool:
    """True for a setting written as "audio:..."."""
    return isinstance(text, str) and text.strip().lower().startswith(_PREFIX)


def parse_spec(text: str, name: str = "value") -> AudioSpec:
    """"audio:FILE[:MIN:MAX[:MODE]]" -> AudioSpec; ConfigError naming the fix. Read from the
    right, so a file name may hold colons ("audio:C:/music/song.mp3:1:3"). No file access."""
    body = text.strip()[len(_PREFIX):]
    parts = body.split(":")
    mode = "rms"
    if len(parts) > 1 and parts[-1].strip().lower() in MODES:
        mode = parts.pop().strip().lower()
    elif len(parts) > 3 and _is_number(parts[-2]) and _is_number(parts[-3]) and not _is_number(parts[-1]):
        raise ConfigError(f"{name} '{text}': mode '{parts[-1]}' is unknown; use {' or '.join(MODES)}")
    lo, hi = 0.0, 1.0
    if len(parts) > 2 and _is_number(parts[-1]) and _is_number(parts[-2]):
        hi, lo = float(parts.pop()), float(parts.pop())
    elif len(parts) > 1 and _is_number(parts[-1]):
        raise ConfigError(f"{name} '{text}': give both MIN and MAX after the file, like {_AUDIO_EXAMPLE}")
    path = ":".join(parts).strip()
    if not path:
        raise ConfigError(f"{name} '{text}' names no sound file; write it like {_AUDIO_EXAMPLE}")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ConfigError(f"{name} '{text}': MIN and MAX must be ordinary numbers, like {_AUDIO_EXAMPLE}")
    if lo > hi:
        raise ConfigError(f"{name} '{text}': MIN {lo:g} is above MAX {hi:g}; write the smaller value first")
    return AudioSpec(path, lo, hi, mode)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except (ValueError, OverflowError):
        return False
    return True


def check_follower(attack, release) -> tuple[float, float]:
    """(attack, release) as floats in 0..60 seconds, or ConfigError naming the fix."""
    out = []
    for label, value in (("attack", attack), ("release", release)):
        try:
            x = float(value)
        except (TypeError, ValueError, OverflowError):
            x = math.nan
        if not (0.0 <= x <= _MAX_SECONDS):
            raise ConfigError(f"{label} must be a number of seconds within 0..{_MAX_SECONDS:g} "
                              f"(e.g. --attack {ATTACK} --release {RELEASE}), got {value!r}")
        out.append(x)
    return out[0], out[1]


def check_range(lo, hi) -> tuple[float, float]:
    """(lo, hi) as finite floats with lo <= hi, or ConfigError naming the fix."""
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError, OverflowError):
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ConfigError(f"--min and --max must be ordinary numbers, got {lo!r} and {hi!r}")
    if lo > hi:
        raise ConfigError(f"--min {lo:g} is above --max {hi:g}; give the smaller value to --min")
    return lo, hi


_INTERPOLATIONS = ("linear", "smooth")
_KEYFRAME = re.compile(r"^(?P<frame>[^:()]*?)\s*:\s*\((?P<value>.*)\)$", re.DOTALL)
_EXAMPLE = {float: '"0:(1.02), 120:(1.05)"', str: '"0:(mixed4c), 150:(mixed5a)"'}


class Schedule:
    """A value per frame, given by keyframes. Build it with Schedule.parse(text).

    Numeric schedules (kind=float) answer at(frame) -> float; name schedules (kind=str) answer
    weights_at(frame) -> {name: weight} with weights summing to 1.
    """

    def __init__(self, keyframes, *, name="value", kind=float, interpolation=LINEAR, fade=None):
        """keyframes: sequence of (frame, value) pairs, frames distinct non-negative ints."""
        if kind not in (float, str):
            raise TypeError(f"Schedule kind must be float or str, got {kind!r}")
        if interpolation not in _INTERPOLATIONS:
            raise ConfigError(
                f"{name} schedule: interpolation {interpolation!r} is unknown; "
                f"use one of {', '.join(_INTERPOLATIONS)}"
            )
        if fade is not None and (isinstance(fade, bool) or not isinstance(fade, int) or fade < 1):
            raise ConfigError(f"{name} schedule: fade must be a whole number of frames >= 1 or None, got {fade!r}")
        pairs = sorted(keyframes, key=lambda kv: kv[0])
        if not pairs:
            raise ConfigError(f"{name} schedule is empty; give a value or keyframes like {_EXAMPLE[kind]}")
        for (f0, _), (f1, _) in zip(pairs, pairs[1:]):
            if f0 == f1:
                raise ConfigError(
                    f"{name} schedule: frame {f0} has two keyframes; keep one value per frame, like {_EXAMPLE[kind]}"
                )
        self.name = name
        self.kind = kind
        self.interpolation = interpolation
        self.fade = fade
        self.frames = [int(f) for f, _ in pairs]  # increasing, >= 0
        self.values = [v for _, v in pairs]  # float or str, one per frame
        self._slopes = _pchip_slopes(self.frames, self.values) if kind is float and interpolation == "smooth" else None

    # ---- parsing ---------------------------------------------------------------------------

    @classmethod
    def parse(cls, text, *, name="value", kind=float, interpolation=LINEAR, fade=None) -> Schedule:
        """Read a constant (1.02, "1.02", "mixed4c") or keyframes "FRAME:(VALUE), FRAME:(VALUE)".

        A Schedule passed in is returned as it is. Raises ConfigError naming the problem and the fix for an empty text,
        a malformed keyframe, a negative or repeated frame, a non-numeric or non-finite number.
        """
        if kind not in (float, str):
            raise TypeError(f"Schedule kind must be float or str, got {kind!r}")
        if isinstance(text, Schedule):
            return text
        example = _EXAMPLE[kind]
        if isinstance(text, bool) or not isinstance(text, (str, int, float)):
            raise ConfigError(
                f"{name} schedule must be a number or a text of keyframes like {example}, got {type(text).__name__}"
            )
        if isinstance(text, (int, float)):
            if kind is str:
                raise ConfigError(f"{name} schedule takes names, got the number {text!r}; "
                                  f"write keyframes like {example}")
            value = _number(text, name, where="")
            return cls([(0, value)], name=name, kind=kind, interpolation=interpolation, fade=fade)

        stripped = text.strip()
        if not stripped:
            raise ConfigError(f"{name} schedule is empty; give a value or keyframes like {example}")
        if "(" not in stripped and ")" not in stripped:
            # 1) a constant: a plain number, or a plain name
            if kind is float:
                if ":" in stripped:
                    raise ConfigError(
                        f"{name} schedule '{stripped}': keyframe values go in parentheses, FRAME:(VALUE); "
                        f"write it like {example}"
                    )
                try:
                    float(stripped)
                except ValueError:
                    raise ConfigError(
                        f"{name} schedule '{stripped}' is neither a number nor keyframes; write a number like 1.02 "
                        f"or keyframes like {example}"
                    ) from None
                return cls([(0, _number(stripped, name, where=""))], name=name, kind=kind,
                           interpolation=interpolation, fade=fade)
            return cls([(0, _name(stripped, name, stripped, 1))], name=name, kind=kind,
                       interpolation=interpolation, fade=fade)

        # 2) keyframes: split at the commas outside parentheses, then read FRAME:(VALUE)
        pieces = _split_top_level(stripped, name, example)
        while pieces and not pieces[-1].strip():  # tolerate a trailing comma, as Deforum files often have
            pieces.pop()
        pairs = []
        for i, piece in enumerate(pieces, start=1):
            piece = piece.strip()
            m = _KEYFRAME.match(piece)
            if not m:
                raise ConfigError(
                    f"{name} schedule '{stripped}': keyframe {i} ('{piece}') is not FRAME:(VALUE); "
                    f"write it like {example}"
                )
            frame_text, value_text = m.group("frame").strip(), m.group("value").strip()
            try:
                frame = int(frame_text)
            except ValueError:
                raise ConfigError(
                    f"{name} schedule '{stripped}': keyframe {i} frame '{frame_text}' is not a whole number; "
                    f"write it like {example}"
                ) from None
            if frame < 0:
                raise ConfigError(
                    f"{name} schedule '{stripped}': keyframe {i} has negative frame {frame}; frames start at 0"
                )
            if kind is float:
                value = _number(value_text, name, where=f" '{stripped}': keyframe {i}")
            else:
                value = _name(value_text, name, stripped, i)
            pairs.append((frame, value))
        seen = {}
        for frame, _ in pairs:
            if frame in seen:
                raise ConfigError(
                    f"{name} schedule '{stripped}': frame {frame} has two keyframes; keep one value per frame"
                )
            seen[frame] = True
        return cls(pairs, name=name, kind=kind, interpolation=interpolation, fade=fade)

    # ---- queries ---------------------------------------------------------------------------

    def at(self, frame) -> float:
        """The number at `frame` (any real frame; held constant outside the keyframes)."""
        if self.kind is not float:
            raise TypeError(f"{self.name} schedule holds names; use weights_at(frame), not at(frame)")
        frames, values = self.frames, self.values
        if frame <= frames[0]:
            return float(values[0])
        if frame >= frames[-1]:
            return float(values[-1])
        i = bisect.bisect_right(frames, frame) - 1  # frames[i] <= frame < frames[i + 1]
        f0, f1 = frames[i], frames[i + 1]
        v0, v1 = values[i], values[i + 1]
        h = f1 - f0
        t = (frame - f0) / h
        if self._slopes is None:
            return float(v0 + (v1 - v0) * t)
        # cubic Hermite basis on [0, 1], slopes in value per frame scaled by the interval length
        m0, m1 = self._slopes[i] * h, self._slopes[i + 1] * h
        t2, t3 = t * t, t * t * t
        return float((2 * t3 - 3 * t2 + 1) * v0 + (t3 - 2 * t2 + t) * m0 + (-2 * t3 + 3 * t2) * v1 + (t3 - t2) * m1)

    def weights_at(self, frame) -> dict[str, float]:
        """{name: weight} at `frame` for a name schedule; weights are >= 0 and sum to 1."""
        if self.kind is not str:
            raise TypeError(f"{self.name} schedule holds numbers; use at(frame), not weights_at(frame)")
        frames, values = self.frames, self.values
        if frame <= frames[0]:
            return {values[0]: 1.0}
        if frame >= frames[-1]:
            return {values[-1]: 1.0}
        i = bisect.bisect_right(frames, frame) - 1
        f0, f1 = frames[i], frames[i + 1]
        start = f0 if self.fade is None else max(f0, f1 - self.fade)  # the fade runs over [start, f1]
        t = 0.0 if frame <= start else (frame - start) / (f1 - start)
        if self.interpolation == "smooth":
            t = t * t * (3.0 - 2.0 * t)
        a, b = values[i], values[i + 1]
        if t <= 0.0 or a == b:
            return {a: 1.0}
        weights = {a: 1.0 - t}
        weights[b] = weights.get(b, 0.0) + t
        return weights

    def __call__(self, frame):
        """at(frame) for numbers, weights_at(frame) for names."""
        return self.at(frame) if self.kind is float else self.weights_at(frame)

    @property
    def names(self) -> list[str]:
        """Every name used, in keyframe order, without repeats (name schedules only)."""
        if self.kind is not str:
            raise TypeError(f"{self.name} schedule holds numbers, not names")
        return list(dict.fromkeys(self.values))

    @property
    def is_constant(self) -> bool:
        """True when every keyframe holds the same value, so the value never changes."""
        return all(v == self.values[0] for v in self.values)

    # ---- text ------------------------------------------------------------------------------

    def __str__(self) -> str:
        """The notation: a plain value when constant and keyed at 0, else "F:(V), F:(V)"; parse(str(s)) == s."""
        if len(self.frames) == 1 and self.frames[0] == 0:
            return _format(self.values[0])
        return ", ".join(f"{f}:({_format(v)})" for f, v in zip(self.frames, self.values))

    def __repr__(self) -> str:
        extra = "" if self.fade is None else f", fade={self.fade}"
        return (f"Schedule.parse({str(self)!r}, name={self.name!r}, kind={self.kind.__name__}, "
                f"interpolation={self.interpolation!r}{extra})")

    def __eq__(self, other) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return (self.kind, self.interpolation, self.fade, self.frames, self.values) == (
            other.kind, other.interpolation, other.fade, other.frames, other.values)

    __hash__ = None  # mutable-looking value object; compare, don't hash


# ---- helpers -------------------------------------------------------------------------------


def _split_top_level(text, name, example):
    """Split at commas that are not inside parentheses; reject unbalanced parentheses."""
    pieces, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                break
        if ch == "," and depth == 0:
            pieces.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise ConfigError(
            f"{name} schedule '{text}' has unbalanced parentheses; write each keyframe as FRAME:(VALUE), like {example}"
        )
    pieces.append("".join(current))
    return pieces


def _number(value, name, where):
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int past float's range
        raise ConfigError(
            f"{name} schedule{where}: value '{value}' is not a number; write numbers like 0:(1.02)"
        ) from None
    if not math.isfinite(x):
        raise ConfigError(f"{name} schedule{where}: value '{value}' is not finite; use an ordinary number like 1.02")
    return x


def _name(value, name, text, i):
    if not value:
        raise ConfigError(
            f"{name} schedule '{text}': keyframe {i} has an empty name; write it like {_EXAMPLE[str]}"
        )
    if any(c in value for c in "(),"):
        raise ConfigError(
            f"{name} schedule '{text}': keyframe {i} name '{value}' contains '(', ')' or ','; "
            f"names go inside one pair of parentheses, like {_EXAMPLE[str]}"
        )
    return value


def _format(value) -> str:
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back to the same float
    return value


def _pchip_slopes(frames, values):
    """Slopes (value per frame) at each keyframe for a monotone cubic Hermite curve (Fritsch-Carlson).

    Inside, where neighbouring secants change sign (a local peak or dip) or one is flat, the
    slope is 0, otherwise a weighted harmonic mean of the secants: the curve never leaves the
    range of the two keyframes around it. At the first and last keyframe the slope is 0, because
    the value is held flat outside them: the curve eases in and out and has no kink there
    (with two keyframes this is smoothstep).
    """
    n = len(frames)
    m = [0.0] * n
    h = [frames[k + 1] - frames[k] for k in range(n - 1)]
    d = [(values[k + 1] - values[k]) / h[k] for k in range(n - 1)]  # secant slopes
    for k in range(1, n - 1):
        if d[k - 1] * d[k] > 0:
            # weighted harmonic mean of the secants (Fritsch-Butland, as scipy's PCHIP)
            w1, w2 = 2 * h[k] + h[k - 1], h[k] + 2 * h[k - 1]
            m[k] = (w1 + w2) / (w1 / d[k - 1] + w2 / d[k])
    return m
