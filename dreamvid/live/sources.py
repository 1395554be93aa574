"""Live sources: frames as they happen, the newest always next. No dreaming, no TensorFlow.

A live source runs a reader thread that takes every frame as it arrives and keeps only the
newest one: `take()` hands out the newest frame not handed out yet, and a frame overwritten
before anyone took it is dropped and counted. Nothing queues, so the age of the frame dreamed
next never grows, however slow the dream is.

Which source a spec opens (`open_live_source`):
- `camera:N`: OpenCV's capture of camera N (V4L2 on Linux, AVFoundation on macOS, DirectShow /
  MSMF on Windows), its own buffer held to one frame where the backend allows;
- a URL (`udp://`, `srt://`, `rtsp://`, `rtmp://`, `http(s)://` HLS...) or a device
  (`/dev/video0`): read by the bundled ffmpeg as it arrives (`-fflags nobuffer`), scaled by
  ffmpeg to the width asked for, its size and rate read from ffmpeg's own stream lines;
- a video file or an image sequence: played at its own frame rate (each frame released at its
  time, as a camera would), from the start again at the end with `loop`.

The source's own sound, where a setting follows it (`sound_modes`): `level(k, mode)` is the
envelope (0..1, audio.py's follower) at frame k: for a file, its sound track's envelope at the
frame it plays (looped with it); for a stream, its sound decoded live by the same ffmpeg (a
second output, mono PCM) and followed as it arrives (loudness, "rms", only: the level now).

Frames are RGB uint8 (H, W, 3), all of the source's `size`; each `Captured` keeps its number in
the stream (at the source's `fps`: frame numbers are time, dropped frames included) and the
moment it arrived (time.perf_counter), from which the live loop measures latency.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from dreamvid.core.errors import ConfigError, InputError
from dreamvid.core.ffmpeg import ffmpeg_exe
from dreamvid.core.frames import output_size, resize
from dreamvid.media import audio
from dreamvid.media.sources import exact_fps, open_source

START_TIMEOUT = 30.0  # seconds to wait for a stream's first frame: a live encoder sends a key frame within a few
CAMERA_FPS = Fraction(30)  # what a camera is taken to run at when its driver does not say
STREAM_FPS = Fraction(25)  # the same for a stream whose rate ffmpeg cannot read
URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")  # a URL and its scheme


@dataclass
class Captured:
    """One frame of a live source: its number in the stream, the RGB uint8 (H, W, 3) frame and
    the time.perf_counter() at which it arrived."""

    index: int
    frame: np.ndarray
    at: float


class LiveSource:
    """The newest-frame slot and its reader thread (module docstring). Subclasses yield frames
    from `_frames()` in the reader thread; `start()` opens the source and waits until its size
    is known; `take(timeout)` returns the newest frame not taken yet (a Captured), or None when
    none came within `timeout` seconds; `ended` is set once the source has no more frames.
    Counters: `received` (frames arrived), `taken`, `dropped` (overwritten before being taken)."""

    name = "source"
    paced = False  # every frame handed on in turn, at the taker's pace (a file's pace "dream")
    fps: Fraction = STREAM_FPS
    size: tuple[int, int] = (0, 0)  # (width, height)

    def __init__(self) -> None:
        self.received = self.taken = self.dropped = 0
        self.ended = False
        self.error: BaseException | None = None
        self._slot: Captured | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the reader side
    def _frames(self):
        """Yields RGB uint8 frames as they arrive, in the reader thread, until the source ends or
        `self._stop` is set."""
        raise NotImplementedError

    def _read(self) -> None:
        try:
            for frame in self._frames():
                if self._stop.is_set():
                    break
                self.put(frame)
        except BaseException as exc:  # noqa: BLE001 (the reader thread's any failure) handed to the live loop, raised from take()
            self.error = exc
        finally:
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def put(self, frame: np.ndarray) -> None:
        """The newest frame arrived: it replaces one not taken yet (dropped, counted); a source
        paced by the dream (`paced`) waits instead until the one before was taken."""
        with self._cond:
            if self.paced:
                self._cond.wait_for(lambda: self._slot is None or self._stop.is_set())
            if self._slot is not None:
                self.dropped += 1
            self._slot = Captured(self.received, frame, time.perf_counter())
            self.received += 1
            self._cond.notify_all()

    # -- the live loop's side
    def start(self) -> LiveSource:
        self._thread = threading.Thread(target=self._read, name=f"live source {self.name}", daemon=True)
        self._thread.start()
        return self

    def take(self, timeout: float | None = None) -> Captured | None:
        """The newest frame not taken yet, waiting up to `timeout` seconds for one (None: no
        frame came, or the source ended: see `ended`). Raises what the reader met."""
        with self._cond:
            if self._slot is None and not self.ended:
                self._cond.wait_for(lambda: self._slot is not None or self.ended, timeout)
            got, self._slot = self._slot, None
            if got is not None:
                self.taken += 1
                self._cond.notify_all()  # a paced reader waits for the slot
            elif self.error is not None:
                raise self.error
            return got

    def close(self) -> None:
        """Stop the reader (and its decoder) and wait for it."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()  # a paced reader waiting for the slot
        self._halt()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _halt(self) -> None:
        """Unblock the reader: close what it reads from."""

    def level(self, k: int, mode: str) -> float:
        """The source's sound at frame k, 0..1 (module docstring)."""
        raise ConfigError(f"'{self.name}' has no sound to follow here; audio:source follows a file's or a "
                          f"stream's own sound track (leave audio:source out, or give an audio:FILE)")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FileSource(LiveSource):
    """A video file or image sequence played at its own frame rate, as if it were live: frame i
    is released at start + i / fps (the decoder runs ahead of that only by one frame). `loop`:
    from the first frame again at the end, the frame numbers running on. `paced`: every frame
    handed on in turn as soon as the one before was taken (the dream's pace, nothing dropped)."""

    def __init__(self, path: str, width: int | None, loop: bool, sound_modes=(), paced: bool = False):
        super().__init__()
        self.name, self.loop, self.paced = path, loop, paced
        self.source = open_source(path, width=width)
        self.fps = self.source.info.fps
        self.size = (self.source.info.width, self.source.info.height)
        self.envelopes = {}  # mode -> one value per frame of the file (its own sound track)
        if sound_modes:
            pcm = audio.decode(path)  # InputError naming the fix where the file has no sound
            for mode in sound_modes:
                self.envelopes[mode] = audio.envelope(pcm, audio.RATE, self.fps, mode=mode,
                                                      frames=self.source.info.n_frames or None)

    def level(self, k: int, mode: str) -> float:
        env = self.envelopes[mode]
        return float(env[k % len(env)] if self.loop else env[min(k, len(env) - 1)])  # frame k plays the sound's k

    def _frames(self):
        t0, i = time.perf_counter(), 0
        while True:
            yielded = False
            for frame in self.source:
                delay = 0.0 if self.paced else t0 + float(i / self.fps) - time.perf_counter()
                if delay > 0 and self._stop.wait(delay):
                    return
                if delay < -1.0:  # decoding fell more than a second behind the clock: catch up, not rush
                    t0 = time.perf_counter() - float(i / self.fps)
                yield frame
                i += 1
                yielded = True
            if not self.loop or not yielded or self._stop.is_set():
                return

    def close(self) -> None:
        super().close()  # the reader sees the stop within a frame's time and stops its decoder itself
        self.source.close()


class StreamSource(LiveSource):
    """Anything ffmpeg reads live (module docstring), decoded to RGB by one ffmpeg process whose
    stream lines (stderr) give the size and rate before the first frame."""

    def __init__(self, url: str, width: int | None, timeout: float = START_TIMEOUT, sound_modes=()):
        super().__init__()
        self.name = url
        if set(sound_modes) - {"rms"}:
            raise ConfigError(f"a stream's sound is followed live by its loudness only; write audio:source:MIN:MAX "
                              f"(or :rms), not :{next(iter(set(sound_modes) - {'rms'}))}")
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
               "-fflags", "nobuffer", "-flags", "low_delay",  # hand each frame on as soon as it is decoded
               "-probesize", "500000", "-analyzeduration", "1000000"]  # start within a second, not five
        if url.startswith("/dev/video"):
            cmd += ["-f", "v4l2"]
        cmd += ["-i", url, "-map", "0:v:0", "-an", "-sn"]
        if width:
            cmd += ["-vf", f"scale={width - width % 2}:-2"]  # even sizes, the aspect kept
        cmd += ["-fps_mode", "passthrough", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"]
        self._level, self._sound_fd = 0.0, None
        fds = ()
        if sound_modes:  # a second output: the sound, mono float32 PCM, on a pipe of its own
            self._sound_fd, write_fd = os.pipe()
            cmd += ["-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(audio.RATE), "-f", "f32le", f"pipe:{write_fd}"]
            fds = (write_fd,)
        self.lines: deque[str] = deque(maxlen=200)  # ffmpeg's stderr, the last lines, for errors
        self._header = threading.Event()
        # this line starts the decoder; close() stops and reaps it on every exit
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     pass_fds=fds)
        for fd in fds:
            os.close(fd)  # ffmpeg holds the write end now
        self._err_thread = threading.Thread(target=self._stderr, name=f"ffmpeg stderr {url}", daemon=True)
        self._err_thread.start()
        if self._sound_fd is not None:
            threading.Thread(target=self._hear, name=f"live sound {url}", daemon=True).start()
        if not self._header.wait(timeout) or self.size == (0, 0):
            said = next((ln for ln in reversed(self.lines) if ln.strip()), "nothing")
            self.close()
            if sound_modes and "matches no streams" in " ".join(self.lines):
                raise InputError(f"'{url}' has no sound track; audio:source follows the stream's own sound (send "
                                 f"the sound with it, or leave audio:source out)")
            raise InputError(f"no video from '{url}' within {timeout:.0f} s (ffmpeg said: {said[:200]}); check "
                             f"that the stream is being sent there (and for udp:// that this machine is its "
                             f"destination), or that the device exists")

    def _stderr(self) -> None:
        """Reads ffmpeg's stderr to its end (so ffmpeg never blocks on it); the input stream's
        rate and the output stream's size set `fps` and `size`, then `_header` is set."""
        seen_output = False
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.lines.append(line)
            video = re.search(r"Stream #\d+:\d+[^:]*: Video: (.*)", line)
            if line.startswith("Output #0"):
                seen_output = True
            elif video and not seen_output:
                rate = re.search(r"([\d.]+k?) fps", video.group(1)) or re.search(r"([\d.]+k?) tbr", video.group(1))
                if rate and float(rate.group(1).rstrip("k")) > 0:
                    self.fps = exact_fps(rate.group(1))
            elif video and seen_output and not self._header.is_set():
                size = re.search(r"(?<![\w])(\d{1,5})x(\d{1,5})(?![\w])", video.group(1))
                if size:
                    self.size = (int(size.group(1)), int(size.group(2)))
                    self._header.set()
        self._header.set()  # ffmpeg ended: whoever waits learns it now

    def _hear(self) -> None:
        """The sound's reader: each frame's worth of samples (at `fps`) -> its loudness (RMS over
        the loudest heard so far, 0..1) -> the follower -> `_level`, the level now."""
        follower, top, pending = None, 0.0, b""
        with os.fdopen(self._sound_fd, "rb", buffering=0) as f:
            while True:
                chunk = f.read(65536)
                if not chunk:
                    return  # the stream ended, or close() stopped ffmpeg
                pending += chunk
                n = 4 * max(1, round(audio.RATE / float(self.fps)))  # bytes of one frame's samples
                while len(pending) >= n:
                    pcm, pending = np.frombuffer(pending[:n], "<f4"), pending[n:]
                    rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))
                    top = max(top, rms)
                    follower = follower or audio.Follower(self.fps)
                    self._level = follower.step(rms / top if top > 0 else 0.0)

    def level(self, k: int, mode: str) -> float:
        return self._level  # live: the sound now, whatever frame is dreamed

    def _frames(self):
        w, h = self.size
        n = w * h * 3
        while True:
            buf = self.proc.stdout.read(n)
            if len(buf) < n:
                return  # the stream ended (or close() stopped ffmpeg)
            yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)  # (H, W, 3) RGB

    def _halt(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except (OSError, ValueError):
                pass  # the reader may be mid-read; it ends with a short read


class CameraSource(LiveSource):
    """Camera N through OpenCV's capture, resized to `width` (keeping its aspect)."""

    def __init__(self, index: int, width: int | None):
        import cv2

        super().__init__()
        self.name = f"camera:{index}"
        self.cap = cv2.VideoCapture(index)
        if not self.cap.isOpened():
            raise InputError(f"camera {index} did not open; check that it is connected and not in use by another "
                             f"program (on Linux: ls /dev/video*), or try camera:{index + 1}")
        self.cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not the driver's queue (where honoured)
        ok, first = self.cap.read()
        if not ok:
            self.cap.release()
            raise InputError(f"camera {index} opened but gave no frame; check that no other program holds it")
        h, w = output_size(first.shape[0], first.shape[1], width)
        self.size = (w, h)
        rate = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = Fraction(rate).limit_denominator(1001) if rate and rate > 0 else CAMERA_FPS

    def _frames(self):
        w, h = self.size
        while not self._stop.is_set():
            ok, bgr = self.cap.read()  # blocks until the camera's next frame
            if not ok:
                return
            yield resize(np.ascontiguousarray(bgr[:, :, ::-1]), (h, w))  # (H, W, 3) RGB

    def close(self) -> None:
        super().close()
        self.cap.release()


def open_live_source(spec: str, *, width: int | None = None, loop: bool = False, sound_modes=(),
                     pace: str = "source") -> LiveSource:
    """The live source `spec` names (module docstring), started: its reader runs and its `size`
    and `fps` are known. `sound_modes`: the audio modes its own sound is followed by (`level`).
    `pace` "dream": a file's every frame in turn, at the dream's pace (config.LiveSettings).
    InputError, naming the fix, where it cannot be opened."""
    spec = os.fspath(spec)
    sound_modes = tuple(sorted(set(sound_modes)))
    m = re.fullmatch(r"camera:(\d+)", spec)
    if m:
        if loop or pace != "source":
            raise InputError("--loop and --pace dream replay a file; a camera cannot (leave them out)")
        if sound_modes:
            raise ConfigError("a camera brings no sound here; audio:source follows a file's or a stream's own "
                              "sound (give an audio:FILE, or send the camera as a stream with its sound)")
        return CameraSource(int(m.group(1)), width).start()
    if URL.match(spec) or spec.startswith("/dev/video"):
        if loop or pace != "source":
            raise InputError(f"--loop and --pace dream replay a file; '{spec}' is a stream (leave them out)")
        return StreamSource(spec, width, sound_modes=sound_modes).start()
    if spec.startswith("camera"):
        raise InputError(f"'{spec}' is not a camera: write camera:N, e.g. camera:0 for the first")
    return FileSource(spec, width, loop, sound_modes, paced=(pace == "dream")).start()


__all__ = ["URL", "CameraSource", "Captured", "FileSource", "LiveSource", "StreamSource", "open_live_source"]
