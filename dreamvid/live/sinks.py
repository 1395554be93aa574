"""Live sinks: where a live dream goes as it is made. No dreaming.

Every sink takes each new dream through `show(frame)` (RGB uint8 (H, W, 3), from the live
loop's thread) and is ended by `close()`, which leaves a recording complete and playable.

- a file (`show.mp4`, `.mkv`, `.mov`, a `folder/`): a recording of what was shown, at a steady
  rate (`fps`): each moment holds the newest dream, repeated until the next, so it plays back in
  real time (sinks.open_sink writes it: atomic, the final name appears at close);
- a stream URL (`udp://`, `srt://`, `tcp://`: MPEG-TS; `rtmp://`: FLV; `rtsp://`), written by
  ffmpeg at the same steady rate (x264 `ultrafast`, `zerolatency`, a key frame every second);
- `window`: OpenCV's window (`fullscreen` for a projector); its keys come back through `keys()`;
- `virtualcam`: a virtual camera through pyvirtualcam (v4l2loopback on Linux, OBS's virtual
  camera on Windows and macOS), at the steady rate.

The steady-rate sinks run a thread each, so a slow encoder never holds up the dream: the thread
writes, at each of its moments, the newest frame shown (`PacedSink`).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from fractions import Fraction

import numpy as np

from dreamvid.core.errors import OutputError
from dreamvid.core.ffmpeg import ffmpeg_exe
from dreamvid.live.sources import URL
from dreamvid.media.formats import check_output_path
from dreamvid.media.sinks import open_sink

STREAM_FORMATS = {"rtmp": "flv", "rtmps": "flv", "rtsp": "rtsp"}  # else MPEG-TS, what udp/srt/tcp receivers expect


class LiveSink:
    """One output of a live dream (module docstring)."""

    name = "sink"
    late = 0  # moments a steady-rate sink could not fill in time (its writer fell behind)

    def show(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def keys(self) -> list[int]:
        """Keys pressed since the last call (a window's); [] elsewhere."""
        return []

    def close(self) -> str | None:
        """Finish the output; returns its path where it is a file."""
        return None


class PacedSink(LiveSink):
    """A sink written at a steady `fps` by a thread of its own: at moment n (first + n / fps) it
    writes the newest frame shown, repeated while no newer came. A writer that falls more than
    a second behind skips ahead (counted in `late`). At close, the last frame shown is written
    once more if it came after the last moment, so the output ends on it. Subclasses `_write(frame)` and `_finish()`."""

    def __init__(self, fps: Fraction):
        self.fps = Fraction(fps)
        self._newest: np.ndarray | None = None
        self._fresh = False  # the newest frame shown is not written yet
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = threading.Event()
        self.error: BaseException | None = None
        self.written = 0
        self._thread = threading.Thread(target=self._run, name=f"live sink {self.name}", daemon=True)
        self._thread.start()

    def show(self, frame: np.ndarray) -> None:
        if self.error is not None:
            raise self.error
        with self._lock:
            self._newest, self._fresh = frame, True
        self._started.set()

    def _run(self) -> None:
        try:
            while not self._started.wait(0.1):
                if self._stop.is_set():
                    return
            t0, period = time.perf_counter(), 1.0 / float(self.fps)
            while True:
                due = t0 + self.written * period
                now = time.perf_counter()
                if now > due + 1.0:  # more than a second behind: skip ahead, count it
                    skip = int((now - due) / period)
                    self.late += skip
                    self.written += skip
                    continue
                if due > now and self._stop.wait(due - now):
                    break
                with self._lock:
                    frame, self._fresh = self._newest, False
                self._write(frame)
                self.written += 1
                if self._stop.is_set():
                    break
            with self._lock:  # the last frame shown, if it came after the last moment: it ends the output
                frame, fresh, self._fresh = self._newest, self._fresh, False
            if fresh:
                self._write(frame)
                self.written += 1
        except BaseException as exc:  # noqa: BLE001 (the writer thread's any failure) raised in the live loop at the next show()
            self.error = exc

    def close(self) -> str | None:
        self._stop.set()
        self._started.set()
        self._thread.join()
        return self._finish()

    def _write(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def _finish(self) -> str | None:
        return None


class RecordingSink(PacedSink):
    """A recording of what was shown, into a file or folder (sinks.open_sink, with the
    output settings' codec and quality)."""

    def __init__(self, path: str, fps: Fraction, size: tuple[int, int], **options):
        self.name = path
        self.sink = open_sink(path, fps=fps, size=size, **options)
        super().__init__(fps)

    def _write(self, frame):
        self.sink.write(frame)

    def _finish(self):
        if self.sink.frames_written == 0:
            self.sink.abort()
            return None
        return self.sink.close()


class StreamSink(PacedSink):
    """The dream streamed to a URL by ffmpeg (module docstring)."""

    def __init__(self, url: str, fps: Fraction, size: tuple[int, int]):
        self.name = url
        w, h = size
        scheme = URL.match(url).group(1).lower()
        gop = max(1, round(float(fps)))  # a key frame every second: a receiver joining late starts within one
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
               "-framerate", f"{fps.numerator}/{fps.denominator}", "-i", "-",
               "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(gop), "-bf", "0",
               "-pix_fmt", "yuv420p", "-f", STREAM_FORMATS.get(scheme, "mpegts"), url]
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 (closed in _finish) a file, not a pipe: ffmpeg never blocks on it
        # this line starts the encoder; _finish() stops and reaps it on every exit
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err)
        super().__init__(fps)

    def _write(self, frame):
        try:
            self.proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except (BrokenPipeError, OSError) as exc:
            self._err.seek(0)
            said = self._err.read().decode("utf-8", "replace").strip().splitlines() or ["nothing"]
            raise OutputError(f"ffmpeg stopped streaming to '{self.name}' (ffmpeg said: {said[-1][:200]}); "
                              f"check the URL and that its receiver or server is up") from exc

    def _finish(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


class WindowSink(LiveSink):
    """OpenCV's window (module docstring); shown from the live loop's thread, as the GUI toolkits
    want."""

    def __init__(self, title: str = "dreamvid live", fullscreen: bool = False):
        import cv2

        self.name, self.cv2 = "window", cv2
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
            if fullscreen:
                cv2.setWindowProperty(title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
        except cv2.error as exc:
            raise OutputError(f"cannot open a window ({str(exc).strip().splitlines()[-1][:120]}); a window needs a "
                              f"display (DISPLAY set, or Xvfb) and OpenCV with a GUI (pip install opencv-python, "
                              f"not opencv-python-headless)") from None
        self._keys: list[int] = []

    def show(self, frame):
        self.cv2.imshow(self.title, np.ascontiguousarray(frame[:, :, ::-1]))  # RGB -> BGR
        self._poll()

    def _poll(self) -> None:
        while True:
            key = self.cv2.waitKey(1)
            if key < 0:
                return
            self._keys.append(key & 0xFF)

    def keys(self) -> list[int]:
        self._poll()
        got, self._keys = self._keys, []
        return got

    def close(self):
        self.cv2.destroyWindow(self.title)
        self.cv2.waitKey(1)


class VirtualCamSink(PacedSink):
    """A virtual camera through pyvirtualcam (an optional extra: pip install 'dreamvid[virtualcam]')."""

    def __init__(self, fps: Fraction, size: tuple[int, int]):
        self.name = "virtualcam"
        try:
            import pyvirtualcam
        except ImportError:
            raise OutputError("the virtualcam sink needs pyvirtualcam: pip install 'dreamvid[virtualcam]' (and on "
                              "Linux the v4l2loopback module: sudo modprobe v4l2loopback)") from None
        try:
            self.cam = pyvirtualcam.Camera(width=size[0], height=size[1], fps=float(fps))
        except RuntimeError as exc:
            raise OutputError(f"no virtual camera to write to ({str(exc).splitlines()[0][:160]}); "
                              "on Linux load v4l2loopback (sudo modprobe v4l2loopback), "
                              "elsewhere install OBS's virtual camera") from None
        super().__init__(fps)

    def _write(self, frame):
        self.cam.send(np.ascontiguousarray(frame))

    def _finish(self):
        self.cam.close()


def check_live_sink(spec: str, **options) -> None:
    """OutputError, before anything starts, for a recording path no sink can write."""
    if spec in ("window", "virtualcam") or URL.match(spec):
        return
    check_output_path(spec, **options)


def open_live_sink(spec: str, *, fps: Fraction, size: tuple[int, int], fullscreen: bool = False,
                   **options) -> LiveSink:
    """The sink `spec` names (module docstring) for frames of size (width, height), steady ones at
    `fps`; `options`: the recording's (codec, crf, pix_fmt)."""
    spec = os.fspath(spec)
    if spec == "window":
        return WindowSink(fullscreen=fullscreen)
    if spec == "virtualcam":
        return VirtualCamSink(fps, size)
    if URL.match(spec):
        return StreamSink(spec, fps, size)
    return RecordingSink(spec, fps, size, **options)


__all__ = [
    "LiveSink",
    "PacedSink",
    "RecordingSink",
    "StreamSink",
    "VirtualCamSink",
    "WindowSink",
    "check_live_sink",
    "open_live_sink",
]
