"""Music drives the schedules: a sound track -> one value per frame -> Deforum keyframes.

    decode(path)                    mono float32 PCM at RATE Hz, through imageio-ffmpeg's ffmpeg
    envelope(pcm, RATE, fps, ...)   one value in 0..1 per frame, smoothed by an attack/release follower
    keyframes(env, lo, hi)          "0:(1), 1:(1.25), ..." that schedule.Schedule.parse reads back
    schedule_text(spec, fps)        the same for an "audio:FILE[:MIN:MAX[:MODE]]" schedule setting
    plot(env, lo, hi, path)         the envelope against frame numbers, as a PNG to look at first

Frames: frame k covers the seconds [k/fps, (k+1)/fps) of the sound (fps a Fraction, so 29.97 is
30000/1001 and no drift builds up); sample i belongs to frame floor(i * fps / RATE), computed in
integers. A sound of D seconds gives ceil(D * fps) frames: every frame that starts inside it.
Frame 0 is the sound's first sample, whatever part of a video is rendered.

Modes:
- "rms": loudness, the root mean square of each frame's samples.
- "onsets": percussive hits, the positive spectral flux (how much each frequency's magnitude
  rose since the last short-time spectrum, summed over frequencies) of a log-compressed STFT;
  each frame takes the largest flux inside it, so a hit is not averaged away.
Both are divided by their largest value (0..1; silence stays 0), then smoothed by `follow`.

The spec of an audio: setting (AudioSpec, parse_spec) is read by schedule.py, beside the other
schedules' notation; SciPy and OpenCV are imported where the signal is computed or drawn.
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from dreamvid.config.schedule import (
    ATTACK,
    MODES,
    RELEASE,
    AudioSpec,
    check_follower,
    check_range,
    is_audio,
    parse_spec,
)
from dreamvid.core.errors import ConfigError, InputError
from dreamvid.core.ffmpeg import complaint, ffmpeg_exe
from dreamvid.core.files import atomic_write, check_output
from dreamvid.media.sources import as_fps

__all__ = ["RATE", "MODES", "ATTACK", "RELEASE", "AudioSpec", "is_audio", "parse_spec", "check_follower",
           "decode", "envelope", "Follower", "follow", "keyframes", "schedule_text", "write_keys", "plot"]

RATE = 22050  # Hz: half of CD rate keeps everything up to 11 kHz, plenty for loudness and hits
# the STFT for onsets: 512 samples (23 ms) resolve a hit, a hop of 128 (5.8 ms) places it well
# inside a frame at any usual frame rate
_NPERSEG, _HOP = 512, 128


# ----------------------------------------------------------------------------- decoding


def decode(path: str, rate: int = RATE) -> np.ndarray:
    """The first sound track of any audio or video file, mixed to mono: float32 samples at
    `rate` Hz. InputError naming the fix for a missing file, one ffmpeg cannot read, or one
    without sound."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"cannot read the sound '{path}': no such file; check the path")
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", path, "-map", "0:a:0", "-vn",
           "-ac", "1", "-ar", str(int(rate)), "-f", "f32le", "-"]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise InputError(f"cannot read the sound '{path}': ffmpeg did not finish within 600 s; "
                         f"check that the file is a local, complete audio or video file") from None
    err = p.stderr.decode("utf-8", errors="replace")
    if p.returncode != 0:
        if "matches no streams" in err:
            raise InputError(f"'{path}' has no sound track; pass an audio file or a video with sound")
        raise InputError(f"cannot read the sound '{path}' (ffmpeg said: {complaint(err)}); "
                         f"check the file or convert it to WAV")
    pcm = np.frombuffer(p.stdout, dtype="<f4").astype(np.float32)
    if pcm.size == 0:
        raise InputError(f"'{path}' has an empty sound track; pass a file with sound")
    return pcm


def _decode_once(path: str) -> np.ndarray:
    """decode(path), kept while the file is unchanged: a render whose --step and --zoom follow
    the same song decodes it once."""
    try:
        st = os.stat(path)
    except OSError:
        return decode(path)  # decode names the problem
    return _decode_cached(os.path.abspath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _decode_cached(path: str, size: int, mtime_ns: int) -> np.ndarray:
    pcm = decode(path)
    pcm.flags.writeable = False  # shared between callers
    return pcm


# ----------------------------------------------------------------------------- envelope


def frame_count(n_samples: int, rate: int, fps: Fraction) -> int:
    """Frames that start inside n_samples of sound: ceil(n_samples * fps / rate)."""
    fps = Fraction(fps)
    return -((-n_samples * fps.numerator) // (rate * fps.denominator))


def envelope(pcm: np.ndarray, rate: int, fps, *, mode: str = "rms", attack: float = ATTACK,
             release: float = RELEASE, frames: int | None = None) -> np.ndarray:
    """One value in 0..1 per frame (float64, length frame_count, or `frames` when given: cut
    short, or padded with silence that the follower decays into). Normalised over the frames
    kept, so the loudest of them reaches 1 before smoothing."""
    if mode not in MODES:
        raise ConfigError(f"audio mode must be one of {', '.join(MODES)}, got {mode!r}")
    attack, release = check_follower(attack, release)
    fps = Fraction(fps)
    pcm = np.asarray(pcm, np.float64).ravel()
    n = frame_count(pcm.size, rate, fps) if frames is None else int(frames)
    raw = _rms(pcm, rate, fps, n) if mode == "rms" else _onsets(pcm, rate, fps, n)
    top = raw.max() if raw.size else 0.0
    raw = raw / top if top > 0 else np.zeros_like(raw)
    return follow(raw, fps, attack, release)


def _frame_of(times_in_samples: np.ndarray, rate: int, fps: Fraction) -> np.ndarray:
    """Frame index of each sample position (integers), exact: floor(i * fps / rate)."""
    return (times_in_samples.astype(np.int64) * fps.numerator) // (rate * fps.denominator)


def _rms(pcm: np.ndarray, rate: int, fps: Fraction, n: int) -> np.ndarray:
    k = _frame_of(np.arange(pcm.size), rate, fps)
    keep = k < n
    power = np.bincount(k[keep], weights=pcm[keep] ** 2, minlength=n)[:n]
    count = np.bincount(k[keep], minlength=n)[:n]
    return np.sqrt(power / np.maximum(count, 1))


def _onsets(pcm: np.ndarray, rate: int, fps: Fraction, n: int) -> np.ndarray:
    from scipy.signal import stft

    if pcm.size < _NPERSEG:
        pcm = np.pad(pcm, (0, _NPERSEG - pcm.size))
    _, t, z = stft(pcm, fs=rate, nperseg=_NPERSEG, noverlap=_NPERSEG - _HOP, boundary="zeros", padded=True)
    mag = np.log1p(100.0 * np.abs(z))  # log compression: a quiet hit counts, a loud pad does not swamp it
    flux = np.maximum(np.diff(mag, axis=1), 0.0).sum(axis=0)  # column j-1 -> j
    # Where a hit is: column j's window is centred on j * hop; a click entering it raises the
    # Hann-weighted magnitude most a quarter window after the centre, so the flux into column j
    # is placed there (measured: hits land in their own frame, not the one before).
    pos = np.round(t[1:] * rate + _NPERSEG / 4).astype(np.int64)
    k = _frame_of(pos, rate, fps)
    keep = (k >= 0) & (k < n)
    out = np.full(n, -1.0)
    np.maximum.at(out, k[keep], flux[keep])
    empty = out < 0
    if empty.any():  # frames shorter than a hop, or past the sound: the flux between columns, or 0
        centres = (np.arange(n) + 0.5) / float(fps)
        out[empty] = np.interp(centres[empty], pos / rate, flux, left=0.0, right=0.0)
    return out


class Follower:
    """The attack/release follower one value at a time (a sound heard live; `follow` runs it over
    a whole envelope): y[k] = c * y[k-1] + (1 - c) * x[k], starting from silence, with
    c = exp(-1 / (seconds * fps)): `attack` while x rises above y, `release` while it falls
    (0 s follows at once). After a step, y covers 63% of the way in `seconds`."""

    def __init__(self, fps, attack: float = ATTACK, release: float = RELEASE):
        fps = float(fps)
        self.ca = math.exp(-1.0 / (attack * fps)) if attack > 0 else 0.0
        self.cr = math.exp(-1.0 / (release * fps)) if release > 0 else 0.0
        self.value = 0.0

    def step(self, x: float) -> float:
        c = self.ca if x > self.value else self.cr
        self.value = c * self.value + (1.0 - c) * float(x)
        return self.value


def follow(x: np.ndarray, fps, attack: float, release: float) -> np.ndarray:
    """The Follower over a whole envelope (one value per frame at `fps`). A loop, since the
    coefficient changes sample by sample (scipy.signal.lfilter takes one)."""
    f = Follower(fps, attack, release)
    return np.array([f.step(v) for v in np.asarray(x, np.float64)], dtype=np.float64).reshape(len(x))


# ----------------------------------------------------------------------------- keyframes


def values(env: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The envelope mapped onto lo..hi, rounded as the keyframes write it (6 significant
    digits), so a schedule read back holds these numbers exactly."""
    return np.array([float(f"{lo + (hi - lo) * float(e):.6g}") for e in env])


def keyframes(env: np.ndarray, lo: float, hi: float) -> str:
    """Deforum schedule text, one keyframe a frame: "0:(1), 1:(1.25), ..." on lo..hi."""
    return ", ".join(f"{k}:({v:.6g})" for k, v in enumerate(values(env, lo, hi)))


def schedule_text(text: str, fps, *, name: str = "value", frames: int | None = None,
                  attack: float = ATTACK, release: float = RELEASE) -> str:
    """An "audio:FILE[:MIN:MAX[:MODE]]" setting -> the keyframes `keys` would write for it at
    `fps` (a render's rate; `frames`: the render's length where known)."""
    spec = parse_spec(text, name)
    env = envelope(_decode_once(spec.path), RATE, fps, mode=spec.mode, attack=attack, release=release, frames=frames)
    if env.size == 0:
        raise InputError(f"'{spec.path}' is shorter than one frame; pass a longer sound")
    return keyframes(env, spec.lo, spec.hi)


@dataclass(frozen=True)
class KeysResult:
    """What `write_keys` wrote."""

    path: str
    frames: int
    fps: Fraction
    lo: float
    hi: float


def write_keys(input_path: str, output_path: str, *, fps, mode: str = "rms", attack=ATTACK, release=RELEASE,
               lo=0.0, hi=1.0, frames: int | None = None, plot_path: str | None = None) -> KeysResult:
    """`dreamvid keys`: the schedule text for a sound at `fps` into `output_path` (and its plot
    into `plot_path`). Every setting and path is checked, and the sound decoded, before anything
    is written; each file is written all or nothing."""
    rate = _fps(fps)
    attack, release = check_follower(attack, release)
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise ConfigError(f"--min and --max must be numbers, got {lo!r} and {hi!r}") from None
    lo, hi = check_range(lo, hi)
    if mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if frames is not None and frames < 1:
        raise ConfigError(f"--frames must be at least 1, got {frames}")
    check_output(output_path, input_path)
    if plot_path is not None:
        if not plot_path.lower().endswith(".png"):
            raise ConfigError(f"--plot '{plot_path}' must name a .png file")
        check_output(plot_path, input_path)
        if os.path.abspath(plot_path) == os.path.abspath(output_path):
            raise ConfigError(f"--plot '{plot_path}' is the keyframe file too; give the plot its own name")
    env = envelope(decode(input_path), RATE, rate, mode=mode, attack=attack, release=release, frames=frames)
    if env.size == 0:
        raise InputError(f"'{input_path}' is shorter than one frame; pass a longer sound")
    atomic_write(output_path, (keyframes(env, lo, hi) + "\n").encode("utf-8"))
    if plot_path is not None:
        plot(env, lo, hi, plot_path, title=f"{os.path.basename(input_path)}: {mode}, attack {attack:g} s, "
             f"release {release:g} s, {len(env)} frames at {_fps_text(rate)} fps")
    return KeysResult(output_path, len(env), rate, lo, hi)


def _fps(value) -> Fraction:
    """--fps as an exact rate: "29.97" -> 30000/1001 (sources.as_fps), "30000/1001" as written."""
    try:
        fps = as_fps(float(value)) if "/" not in str(value) else as_fps(str(value).strip())
    except (TypeError, ValueError, ZeroDivisionError):
        raise ConfigError(f"--fps must be a frame rate above 0 like 25, 29.97 or 30000/1001, got {value!r}") from None
    if not (Fraction(1, 10) <= fps <= 1000):
        raise ConfigError(f"--fps must be within 0.1..1000, got {value!r}")
    return fps


def _fps_text(fps: Fraction) -> str:
    return str(fps.numerator) if fps.denominator == 1 else f"{float(fps):.3f}"


# ----------------------------------------------------------------------------- plot


def plot(env: np.ndarray, lo: float, hi: float, path: str, *, title: str = "", size=(960, 360)) -> None:
    """Draw the mapped envelope against frame numbers (axes, ticks, the curve) into a PNG,
    written all or nothing, so a person sees what a long render will do before starting it."""
    import cv2

    w, h = size
    left, right, top, bottom = 70, 20, 34, 44
    img = np.full((h, w, 3), 255, np.uint8)
    x0, x1, y0, y1 = left, w - right, h - bottom, top  # y0: the bottom of the plot area
    vals = values(env, lo, hi)
    n = max(len(vals), 1)
    span = hi - lo if hi > lo else 1.0
    font, grey, ink = cv2.FONT_HERSHEY_SIMPLEX, (200, 200, 200), (40, 40, 40)

    def px(k):
        return int(round(x0 + (x1 - x0) * k / max(n - 1, 1)))

    def py(v):
        return int(round(y0 - (y0 - y1) * (v - lo) / span))

    for i in range(5):  # value grid: lo, three steps, hi
        v = lo + span * i / 4
        cv2.line(img, (x0, py(v)), (x1, py(v)), grey, 1)
        cv2.putText(img, f"{v:.4g}", (4, py(v) + 5), font, 0.45, ink, 1, cv2.LINE_AA)
    tick = _nice_step(n)
    for k in range(0, n, tick):  # frame numbers along the bottom
        cv2.line(img, (px(k), y0), (px(k), y0 + 5), ink, 1)
        label = str(k)
        (tw, _), _ = cv2.getTextSize(label, font, 0.45, 1)
        cv2.putText(img, label, (px(k) - tw // 2, y0 + 20), font, 0.45, ink, 1, cv2.LINE_AA)
    cv2.line(img, (x0, y0), (x1, y0), ink, 1)
    cv2.line(img, (x0, y0), (x0, y1), ink, 1)
    cv2.putText(img, "frame", (x1 - 50, h - 6), font, 0.45, ink, 1, cv2.LINE_AA)
    if title:
        cv2.putText(img, title, (x0, 22), font, 0.5, ink, 1, cv2.LINE_AA)
    points = np.array([[px(k), py(v)] for k, v in enumerate(vals)], np.int32).reshape(-1, 1, 2)
    if len(points):
        cv2.polylines(img, [points], False, (200, 90, 20), 2, cv2.LINE_AA)  # BGR: a blue curve
    ok, data = cv2.imencode(".png", img)
    if not ok:
        raise InputError(f"cannot encode the plot for '{path}'")
    atomic_write(path, data.tobytes())


def _nice_step(n: int) -> int:
    """A round frame interval (1, 2, 5, 10, 20, 50, ...) giving at most about 12 ticks."""
    step = 1
    while n / step > 12:
        for m in (2, 5, 10):
            if n / (step * m) <= 12 or m == 10:
                step *= m
                break
    return step
