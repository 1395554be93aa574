"""Outputs: H.264 video (with the input's audio), GIF, or a folder of PNG frames. No dreaming.

Every sink writes to a temporary name beside the final one (`.name.partial.mp4`, or the folder
`.name.partial/`) and renames it onto the final path only in `close()`, so a crash or an abort
never leaves a half-written file under the final name. The encoder subprocess is always
stopped and reaped (`finally`), so no zombie ffmpeg outlives a failed render.

Which sink is chosen by the path:
- `.mp4`, `.mov`, `.mkv`: H.264 (libx264, yuv420p, CRF), exact frame rate, AAC audio muxed
  from the `AudioSpec` range of the input when it has an audio stream, `+faststart` (mp4/mov).
  yuv420p needs even sizes: an odd width or height loses its last column or row (one warning).
- `.gif`: a two-pass-palette GIF through ffmpeg (palettegen + paletteuse), looping forever.
  GIF stores delays in 1/100 s, so rates like 30000/1001 are approximated by the GIF format.
- a path ending in `/` or with no extension: a folder of `frame_000001.png`, `frame_000002.png`...
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from dreamvid.errors import OutputError

log = logging.getLogger("dreamvid")

VIDEO_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}  # extension -> ffmpeg muxer
AUDIO_BITRATE = "192k"  # AAC at 192 kb/s is transparent for most stereo sources
X264_PRESET = "medium"  # x264's default: the usual balance of speed and size


@dataclass
class AudioSpec:
    """The audio to mux: the range [start, start + duration) seconds of the file at `path`
    (normally the input video, with the same range the frames came from)."""

    path: str
    start: float = 0.0
    duration: float | None = None  # None: to the end (the video's length still wins)


class FrameSink:
    """Takes RGB uint8 frames of shape (height, width, 3) and writes them to one output.

    Use as a context manager: leaving the block by an exception calls `abort()`; leaving it
    normally calls `close()` unless it was already called (call it yourself for the path).
    """

    def __init__(self, path: str, size: tuple[int, int]):
        self.path = path  # final path
        self.size = size  # (width, height)
        self.frames_written = 0
        self._done = False

    def _check(self, frame: np.ndarray) -> None:
        w, h = self.size
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 numpy arrays, got "
                             f"{getattr(frame, 'dtype', type(frame).__name__)}; convert with "
                             f"np.clip(x, 0, 255).astype(np.uint8)")
        if frame.shape != (h, w, 3):
            raise ValueError(f"frame {self.frames_written} has shape {frame.shape} but the sink "
                             f"was opened for size {w}x{h}, i.e. shape {(h, w, 3)}")
        if self._done:
            raise ValueError(f"sink for '{self.path}' is already closed or aborted")

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 (H, W, 3) frame; its shape must match the sink's size."""
        raise NotImplementedError

    def close(self) -> str:
        """Finish the output and move it onto the final path; returns the final path."""
        raise NotImplementedError

    def abort(self) -> None:
        """Stop the encoder and remove the temporary output; the final path is untouched."""
        raise NotImplementedError

    def __enter__(self) -> "FrameSink":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._done:
            return
        if exc_type is None:
            self.close()
        else:
            self.abort()


# ----------------------------------------------------------------------------- helpers


def _partial_path(path: str, folder: bool = False) -> str:
    """Temporary name in the same folder as `path`, so the final os.replace is atomic."""
    head, name = os.path.split(path.rstrip("/") if folder else path)
    if folder:
        return os.path.join(head, f".{name}.partial")
    stem, ext = os.path.splitext(name)
    return os.path.join(head, f".{stem}.partial{ext}")


def _check_folder(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path.rstrip("/") or "."))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OutputError(f"cannot write '{path}': '{folder}' is a file, not a folder; "
                          f"choose an output path inside a folder")
    if not os.path.isdir(folder):
        raise OutputError(f"cannot write '{path}': the folder '{folder}' does not exist; "
                          f"create it (mkdir -p '{folder}') or choose another output path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write '{path}': the folder '{folder}' is not writable; "
                          f"choose another output path or fix its permissions")


def _disk_full_error(path: str) -> OutputError:
    return OutputError(f"cannot write '{path}': the disk is full; free some space or "
                       f"write the output to another disk")


def _remove(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    except FileNotFoundError:
        pass


class _FfmpegSink(FrameSink):
    """Raw RGB frames piped into an ffmpeg subprocess that writes the temporary file."""

    def __init__(self, path: str, fps: Fraction, size: tuple[int, int], output_args: list[str],
                 input_args: tuple[list[str], ...] = ()):
        super().__init__(path, size)
        from dreamvid.sources import ffmpeg_exe  # one place knows where ffmpeg is

        self.tmp = _partial_path(path)
        w, h = size
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
               "-framerate", f"{fps.numerator}/{fps.denominator}", "-i", "-"]
        for extra in input_args:
            cmd += extra
        cmd += output_args + [self.tmp]
        self._err = tempfile.TemporaryFile()  # a file, not a pipe: ffmpeg can never block on it
        try:
            # this line starts the encoder; from here on every exit path goes through _stop()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=self._err)
        except OSError as e:
            self._err.close()
            raise OutputError(f"cannot start ffmpeg to write '{path}' ({e}); reinstall "
                              f"imageio-ffmpeg (pip install --force-reinstall imageio-ffmpeg)") from e

    def _ffmpeg_lines(self) -> list[str]:
        try:
            self._err.seek(0)
            text = self._err.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return []
        return [ln.strip() for ln in text.splitlines() if ln.strip()]

    def _failure(self, exc: BaseException | None = None) -> OutputError:
        lines = self._ffmpeg_lines()
        said = lines[-1][:300] if lines else "nothing"
        if any("No space left" in ln for ln in lines) or (
                isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
            return _disk_full_error(self.path)
        return OutputError(f"ffmpeg failed writing '{self.path}' (ffmpeg said: {said}); "
                           f"check the output path and free disk space")

    def write(self, frame: np.ndarray) -> None:
        self._check(frame)
        try:
            self.proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except (BrokenPipeError, OSError) as e:
            self._stop(kill=True)  # ffmpeg is gone or failing: reap it, then report why
            err = self._failure(e)
            self._cleanup()
            raise err from e
        self.frames_written += 1

    def close(self) -> str:
        if self._done:
            raise ValueError(f"sink for '{self.path}' is already closed or aborted")
        try:
            if self.frames_written == 0:
                raise OutputError(f"no frames were written to '{self.path}'; nothing to save "
                                  f"(check that the input yields frames)")
            rc = self._stop(kill=False)
            if rc != 0:
                raise self._failure()
            os.replace(self.tmp, self.path)  # atomic: the final name appears complete or not at all
        except OSError as e:
            err = _disk_full_error(self.path) if e.errno == errno.ENOSPC else OutputError(
                f"cannot move the finished output to '{self.path}' ({e}); check that the path "
                f"is not a folder and is writable")
            self._cleanup()
            raise err from e
        except BaseException:
            self._cleanup()
            raise
        self._done = True
        self._err.close()
        return self.path

    def abort(self) -> None:
        self._cleanup()

    def _stop(self, kill: bool) -> int:
        """End the encoder: let it finish (kill=False) or kill it; always reap it."""
        try:
            if self.proc.stdin and not self.proc.stdin.closed:
                if kill:
                    self.proc.kill()
                self.proc.stdin.close()
        except OSError:
            self.proc.kill()  # closing stdin flushes; a dead pipe means it is gone anyway
        finally:
            try:
                return self.proc.wait(timeout=None if not kill else 30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()

    def _cleanup(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._stop(kill=True)
        finally:
            _remove(self.tmp)
            self._err.close()

    def __del__(self):  # last resort: a sink dropped without close() or abort()
        if not getattr(self, "_done", True) and hasattr(self, "proc"):
            try:
                self._cleanup()
            except Exception:
                pass


class PngFolderSink(FrameSink):
    """Frames as `frame_000001.png`... in a folder, built under `.name.partial/` and renamed."""

    def __init__(self, path: str, size: tuple[int, int]):
        super().__init__(path.rstrip("/") or path, size)
        if os.path.isdir(self.path) and os.listdir(self.path):
            raise OutputError(f"cannot write frames to '{path}': the folder already holds files; "
                              f"choose a new or empty folder, or remove it first")
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise OutputError(f"cannot write frames to '{path}': a file of that name exists; "
                              f"remove it or choose another path")
        self.tmp = _partial_path(self.path, folder=True)
        _remove(self.tmp)  # a leftover of an earlier crashed run
        try:
            os.mkdir(self.tmp)
        except OSError as e:
            raise OutputError(f"cannot create '{self.tmp}' ({e}); check the folder's permissions "
                              f"or choose another output path") from e

    def write(self, frame: np.ndarray) -> None:
        self._check(frame)
        ok, png = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OutputError(f"OpenCV could not encode frame {self.frames_written} as PNG; "
                              f"reinstall opencv-python-headless")
        name = os.path.join(self.tmp, f"frame_{self.frames_written + 1:06d}.png")
        try:
            with open(name, "wb") as f:
                f.write(png.tobytes())
        except OSError as e:
            self.abort()
            if e.errno == errno.ENOSPC:
                raise _disk_full_error(self.path) from e
            raise OutputError(f"cannot write '{name}' ({e}); check the output folder") from e
        self.frames_written += 1

    def close(self) -> str:
        if self._done:
            raise ValueError(f"sink for '{self.path}' is already closed or aborted")
        try:
            if os.path.isdir(self.path):
                os.rmdir(self.path)  # empty (checked at open); rename needs it gone or empty
            os.replace(self.tmp, self.path)
        except OSError as e:
            self.abort()
            raise OutputError(f"cannot move the frames to '{self.path}' ({e}); check that the "
                              f"folder is empty and writable") from e
        self._done = True
        return self.path

    def abort(self) -> None:
        self._done = True
        _remove(self.tmp)


# ----------------------------------------------------------------------------- entry point


def check_output_path(path: str) -> None:
    """OutputError unless open_sink could write `path`: its folder exists and is writable, and
    the extension is a known format. Cheap, so a render can call it before loading a network."""
    path = os.fspath(path)
    _check_folder(path)
    ext = os.path.splitext(path.rstrip("/"))[1].lower()
    if path.endswith("/") or ext == "":
        return
    if os.path.isdir(path):
        raise OutputError(f"cannot write '{path}': it is a folder; end the path with '/' to "
                          f"write PNG frames into it, or choose a file name")
    if ext != ".gif" and ext not in VIDEO_FORMATS:
        raise OutputError(f"cannot write '{path}': unknown output format '{ext}'; use .mp4, "
                          f".mov, .mkv, .gif, or a folder path ending in '/' for PNG frames")


def open_sink(path: str, *, fps: Fraction, size: tuple[int, int],
              audio: AudioSpec | None = None, crf: int = 18) -> FrameSink:
    """Open the output at `path` for frames of size = (width, height) at `fps` frames/s.

    The extension picks the format (see the module docstring). `audio` is muxed into video
    outputs when its file has an audio stream, and ignored for GIFs and PNG folders.
    crf: x264 quality, 0 (lossless) to 51; 18 is visually near-lossless.
    Raises OutputError when the folder is missing or not writable or the format is unknown.
    """
    path = os.fspath(path)
    from dreamvid.sources import as_fps

    fps = as_fps(fps)  # exact; a float 29.97 means 30000/1001
    w, h = size
    if int(w) != w or int(h) != h or w < 1 or h < 1:
        raise ValueError(f"size must be (width, height) in whole pixels >= 1, got {size}")
    size = (int(w), int(h))
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in 0..51 (x264's range; 18 is near-lossless), got {crf}")
    check_output_path(path)
    ext = os.path.splitext(path.rstrip("/"))[1].lower()
    if path.endswith("/") or ext == "":
        return PngFolderSink(path, size)
    if ext == ".gif":
        graph = "split[a][b];[a]palettegen[p];[b][p]paletteuse=dither=sierra2_4a"  # one palette for all
        return _FfmpegSink(path, fps, size, ["-filter_complex", graph, "-loop", "0", "-f", "gif"])
    # 1) video: H.264 needs even sizes in yuv420p; drop the odd last column/row
    if w < 2 or h < 2:  # the crop below would leave nothing
        raise OutputError(f"cannot write '{path}': frames of {w}x{h} are too small for H.264, which "
                          f"needs at least 2x2; enlarge them with --width 16, or write PNG frames "
                          f"(an output path ending in '/') or a .gif")
    args = ["-map", "0:v:0"]
    if w % 2 or h % 2:
        log.warning("output size %dx%d is odd; H.264 (yuv420p) needs even sizes, so '%s' "
                    "will be %dx%d (pass an even width to avoid this)", w, h, path,
                    w - w % 2, h - h % 2)
        args += ["-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2:0:0"]
    args += ["-c:v", "libx264", "-preset", X264_PRESET, "-crf", str(crf), "-pix_fmt", "yuv420p",
             "-fps_mode", "passthrough"]
    # 2) audio: the same range of the input, AAC, padded with silence so the video sets the end
    inputs: tuple[list[str], ...] = ()
    if audio is not None and _has_audio(audio.path):
        a_in = ["-ss", f"{float(audio.start):.6f}"] if audio.start else []
        if audio.duration is not None:
            a_in += ["-t", f"{float(audio.duration):.6f}"]
        inputs = (a_in + ["-i", os.fspath(audio.path)],)
        args += ["-map", "1:a:0", "-c:a", "aac", "-b:a", AUDIO_BITRATE, "-af", "apad", "-shortest"]
    # 3) container
    if VIDEO_FORMATS[ext] in ("mp4", "mov"):
        args += ["-movflags", "+faststart"]  # index first: playable while downloading
    return _FfmpegSink(path, fps, size, args + ["-f", VIDEO_FORMATS[ext]], inputs)


def _has_audio(path: str) -> bool:
    from dreamvid.sources import _run_ffmpeg_probe

    if not os.path.isfile(path):
        log.warning("audio source '%s' does not exist; writing video without sound", path)
        return False
    _, text = _run_ffmpeg_probe(os.fspath(path), [], decode_one=False)
    return " Audio: " in text
