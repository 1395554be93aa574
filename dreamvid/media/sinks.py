"""Outputs: video files (with the input's audio), GIF, or a folder of PNG/TIFF frames. No dreaming.

Every sink writes to a temporary name beside the final one (`.name.partial.mp4`, or the folder
`.name.partial/`) and renames it onto the final path only in `close()`, so a crash or an abort
never leaves a half-written file under the final name. The encoder subprocess is always
stopped and reaped (`finally`), so no zombie ffmpeg outlives a failed render.

Which sink is chosen by the path:
- `.mp4`, `.mov`, `.mkv`, `.webm`: the `codec` (see CODECS: H.264 by default, H.265, ProRes for
  editors, .mov/.mkv only, or VP9, the default for .webm), exact frame rate, the input's audio
  muxed from the `AudioSpec` range when it has an audio stream (AAC; 24-bit PCM beside ProRes, as
  editors expect; Opus beside VP9), the index first (`+faststart` in mp4/mov, the cues in
  webm/mkv), so a browser plays it while it downloads. Chroma-subsampled pixel formats need even
  sizes (4:2:0 both, 4:2:2 the width): an odd side loses its last column or row (one warning).
- `.gif`: a two-pass-palette GIF through ffmpeg (palettegen + paletteuse), looping forever.
  GIF stores delays in 1/100 s, so rates like 30000/1001 are approximated by the GIF format.
- a path ending in `/` or with no extension: a folder of `frame_000001.png`, `frame_000002.png`...
  (`frame_format="tiff"`: `.tiff` files).

Bit depth: sinks take RGB uint8 frames; opened with `bit_depth=16` they also take float frames
on 0..255 (the dream's own precision) and write 16-bit PNG/TIFF, or feed ffmpeg 16-bit RGB for a
pixel format of more than 8 bits (ProRes' 10-bit ones, yuv420p10le...): see `depth`.

`check_output_path` refuses, in one line naming the fix, every path/codec/pixel format/bit depth
combination this ffmpeg cannot write, before anything is dreamed: the encoders and the pixel
formats each encoder takes are read from ffmpeg itself (`-encoders`, `-h encoder=NAME`), once.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from dreamvid.config.settings import DEFAULTS
from dreamvid.core.errors import OutputError
from dreamvid.core.ffmpeg import ffmpeg_exe, run_probe
from dreamvid.core.files import remove
from dreamvid.media import bitdepth as depth
from dreamvid.media.formats import (
    CODECS,
    FRAME_FORMATS,
    VIDEO_FORMATS,
    check_output_path,
    codec_for,
    kind_of,
    subsampled,
)
from dreamvid.media.sources import as_fps

log = logging.getLogger("dreamvid")


@dataclass
class AudioSpec:
    """The audio to mux: the range [start, start + duration) seconds of the file at `path`
    (normally the input video, with the same range the frames came from)."""

    path: str
    start: float = DEFAULTS["start"]
    duration: float | None = None  # None: to the end (the video's length still wins)


class FrameSink:
    """Takes RGB uint8 frames of shape (height, width, 3) and writes them to one output; with
    `bit_depth` 16 also float frames on 0..255 (kept to 16 bits) and uint16 ones.

    Use as a context manager: leaving the block by an exception calls `abort()`; leaving it
    normally calls `close()` unless it was already called (call it yourself for the path).
    """

    def __init__(self, path: str, size: tuple[int, int], bit_depth: int = DEFAULTS["bit_depth"]):
        self.path = path  # final path
        self.size = size  # (width, height)
        self.bit_depth = bit_depth  # 8, or 16 (see the module docstring)
        self.frames_written = 0
        self._done = False

    def _check(self, frame: np.ndarray) -> None:
        w, h = self.size
        dtype = getattr(frame, "dtype", None)
        deep_ok = self.bit_depth == 16 and dtype is not None and (
            dtype == np.uint16 or np.issubdtype(dtype, np.floating))
        if not isinstance(frame, np.ndarray) or (dtype != np.uint8 and not deep_ok):
            raise ValueError(f"frames must be uint8 numpy arrays, got "
                             f"{getattr(frame, 'dtype', type(frame).__name__)}; convert with "
                             f"np.clip(x, 0, 255).astype(np.uint8), or open the sink with bit_depth=16 "
                             f"for float frames")
        if frame.shape != (h, w, 3):
            raise ValueError(f"frame {self.frames_written} has shape {frame.shape} but the sink "
                             f"was opened for size {w}x{h}, i.e. shape {(h, w, 3)}")
        if self._done:
            raise ValueError(f"sink for '{self.path}' is already closed or aborted")

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB (H, W, 3) frame (uint8; float on 0..255 too for 16 bits); its shape
        must match the sink's size."""
        raise NotImplementedError

    def _pixels(self, frame: np.ndarray) -> np.ndarray:
        """The frame at the sink's depth: uint8, or uint16 for 16 bits."""
        return depth.to_uint16(frame) if self.bit_depth == 16 else frame

    def close(self) -> str:
        """Finish the output and move it onto the final path; returns the final path."""
        raise NotImplementedError

    def abort(self) -> None:
        """Stop the encoder and remove the temporary output; the final path is untouched."""
        raise NotImplementedError

    def __enter__(self) -> FrameSink:
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


def _disk_full_error(path: str) -> OutputError:
    return OutputError(f"cannot write '{path}': the disk is full; free some space or "
                       f"write the output to another disk")


class _FfmpegSink(FrameSink):
    """Raw RGB frames piped into an ffmpeg subprocess that writes the temporary file."""

    def __init__(self, path: str, fps: Fraction, size: tuple[int, int], output_args: list[str],
                 input_args: tuple[list[str], ...] = (), bit_depth: int = DEFAULTS["bit_depth"]):
        super().__init__(path, size, bit_depth)
        self.tmp = _partial_path(path)
        w, h = size
        raw = "rgb48le" if bit_depth == 16 else "rgb24"  # 16-bit RGB in, little-endian as written below
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", raw, "-s", f"{w}x{h}",
               "-framerate", f"{fps.numerator}/{fps.denominator}", "-i", "-"]
        for extra in input_args:
            cmd += extra
        cmd += output_args + [self.tmp]
        # a file, not a pipe: ffmpeg can never block on it
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 (closed in _cleanup)
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
            pixels = self._pixels(frame)
            if pixels.dtype == np.uint16:
                pixels = pixels.astype("<u2", copy=False)  # rgb48le on any machine's byte order
            self.proc.stdin.write(np.ascontiguousarray(pixels).tobytes())
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
                return self.proc.wait(timeout=None if not kill else 30)  # noqa: B012 (reaped on every path)
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
            remove(self.tmp)
            self._err.close()

    def __del__(self):  # last resort: a sink dropped without close() or abort()
        if not getattr(self, "_done", True) and hasattr(self, "proc"):
            try:
                self._cleanup()
            except Exception:
                pass


class ImageFolderSink(FrameSink):
    """Frames as `frame_000001.png`... (or `.tiff`, 8 or 16 bits) in a folder, built under
    `.name.partial/` and renamed."""

    def __init__(self, path: str, size: tuple[int, int], frame_format: str = DEFAULTS["frame_format"],
                 bit_depth: int = DEFAULTS["bit_depth"]):
        super().__init__(path.rstrip("/") or path, size, bit_depth)
        self.ext = FRAME_FORMATS[frame_format]
        if os.path.isdir(self.path) and os.listdir(self.path):
            raise OutputError(f"cannot write frames to '{path}': the folder already holds files; "
                              f"choose a new or empty folder, or remove it first")
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise OutputError(f"cannot write frames to '{path}': a file of that name exists; "
                              f"remove it or choose another path")
        self.tmp = _partial_path(self.path, folder=True)
        remove(self.tmp)  # a leftover of an earlier crashed run
        try:
            os.mkdir(self.tmp)
        except OSError as e:
            raise OutputError(f"cannot create '{self.tmp}' ({e}); check the folder's permissions "
                              f"or choose another output path") from e

    # Frames are encoded by a few threads at once (OpenCV encodes outside the GIL): a 720p PNG
    # takes ~45 ms on one core, longer than a GPU takes to dream the frame.
    _WORKERS = max(1, min(4, (os.cpu_count() or 2) // 2))

    def write(self, frame: np.ndarray) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._check(frame)
        if not hasattr(self, "_pool"):
            self._pool, self._pending = ThreadPoolExecutor(self._WORKERS, thread_name_prefix="dreamvid-frames"), []
        while len(self._pending) >= self._WORKERS:  # bounded: at most that many frames held
            self._pending.pop(0).result()
        name = os.path.join(self.tmp, f"frame_{self.frames_written + 1:06d}{self.ext}")
        self._pending.append(self._pool.submit(self._write_file, name, self._pixels(frame), self.frames_written))
        self.frames_written += 1

    def _write_file(self, name: str, pixels: np.ndarray, index: int) -> None:
        ok, png = cv2.imencode(self.ext, cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OutputError(f"OpenCV could not encode frame {index} as "
                              f"{self.ext[1:].upper()}; reinstall opencv-python-headless")
        try:
            with open(name, "wb") as f:
                f.write(png.tobytes())
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise _disk_full_error(self.path) from e
            raise OutputError(f"cannot write '{name}' ({e}); check the output folder") from e

    def _drain(self) -> None:
        """Wait for the frames being written; raise the first failure (the folder is removed)."""
        pending, self._pending = getattr(self, "_pending", []), []
        try:
            for job in pending:
                job.result()
        except BaseException:
            self.abort()
            raise
        finally:
            if hasattr(self, "_pool"):
                self._pool.shutdown(wait=True)
                del self._pool

    def close(self) -> str:
        if self._done:
            raise ValueError(f"sink for '{self.path}' is already closed or aborted")
        self._drain()
        try:
            if os.path.isdir(self.path):
                os.rmdir(self.path)  # empty (checked at open); rename needs it gone or empty
            os.replace(self.tmp, self.path)
        except OSError as e:
            self.abort()
            if e.errno == errno.ENOSPC:
                raise _disk_full_error(self.path) from e
            raise OutputError(f"cannot move the frames to '{self.path}' ({e}); check that the "
                              f"folder is empty and writable") from e
        self._done = True
        return self.path

    def abort(self) -> None:
        self._done = True
        if hasattr(self, "_pool"):
            self._pool.shutdown(wait=True, cancel_futures=True)
            del self._pool
        self._pending = []
        remove(self.tmp)


PngFolderSink = ImageFolderSink  # the name it had when it wrote PNGs only


# ----------------------------------------------------------------------------- what ffmpeg writes

def open_sink(path: str, *, fps: Fraction, size: tuple[int, int], audio: AudioSpec | None = None,
              crf: int = DEFAULTS["crf"], codec: str | None = DEFAULTS["codec"], pix_fmt: str | None = None,
              bit_depth: int = DEFAULTS["bit_depth"], frame_format: str = DEFAULTS["frame_format"]) -> FrameSink:
    """Open the output at `path` for frames of size = (width, height) at `fps` frames/s.

    The extension picks the format (see the module docstring). `audio` is muxed into video
    outputs when its file has an audio stream, and ignored for GIFs and frame folders.
    crf: H.264/H.265/VP9 quality, 0 (lossless) to 51; 18 is visually near-lossless (ProRes has
    none). codec: a CODECS name, None for the container's (VP9 in .webm, else H.264); pix_fmt:
    ffmpeg's name, None for the codec's default;
    bit_depth: 8, or 16 (float frames kept to 16 bits); frame_format: "png" or "tiff" (folders).
    Raises OutputError for what check_output_path refuses.
    """
    path = os.fspath(path)

    fps = as_fps(fps)  # exact; a float 29.97 means 30000/1001
    w, h = size
    if int(w) != w or int(h) != h or w < 1 or h < 1:
        raise ValueError(f"size must be (width, height) in whole pixels >= 1, got {size}")
    size = (int(w), int(h))
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in 0..51 (x264's range; 18 is near-lossless), got {crf}")
    fmt = check_output_path(path, codec=codec, pix_fmt=pix_fmt, crf=crf, bit_depth=bit_depth,
                            frame_format=frame_format)
    ext = os.path.splitext(path.rstrip("/"))[1].lower()
    kind = kind_of(path)
    if kind == "frames":
        return ImageFolderSink(path, size, frame_format, bit_depth)
    if kind == "gif":
        graph = "split[a][b];[a]palettegen[p];[b][p]paletteuse=dither=sierra2_4a"  # one palette for all
        return _FfmpegSink(path, fps, size, ["-filter_complex", graph, "-loop", "0", "-f", "gif"])
    codec = codec_for(path, codec)
    c = CODECS[codec]
    # 1) video: subsampled chroma needs even sides; drop the odd last column/row
    if w < 2 or h < 2:  # the crop below would leave nothing
        raise OutputError(f"cannot write '{path}': frames of {w}x{h} are too small for {c.label}, which "
                          f"needs at least 2x2; enlarge them with --width 16, or write PNG frames "
                          f"(an output path ending in '/') or a .gif")
    args = ["-map", "0:v:0"]
    even_w, even_h = subsampled(fmt)
    if (even_w and w % 2) or (even_h and h % 2):
        cw, ch = w - (w % 2 if even_w else 0), h - (h % 2 if even_h else 0)
        log.warning("output size %dx%d is odd; %s (%s) needs even sizes, so '%s' will be %dx%d "
                    "(pass an even width to avoid this)", w, h, c.label, fmt, path, cw, ch)
        args += ["-vf", f"crop={cw}:{ch}:0:0"]
    args += ["-c:v", c.encoder, *c.args, *_quality(codec, crf, ext), "-pix_fmt", fmt,
             "-fps_mode", "passthrough"]
    # 2) audio: the same range of the input, padded with silence so the video sets the end
    inputs: tuple[list[str], ...] = ()
    if audio is not None and _has_audio(audio.path):
        a_in = ["-ss", f"{float(audio.start):.6f}"] if audio.start else []
        if audio.duration is not None:
            a_in += ["-t", f"{float(audio.duration):.6f}"]
        inputs = (a_in + ["-i", os.fspath(audio.path)],)
        a_codec = ["-c:a", *c.audio]
        # padded to the range's length and one frame more where it is known: -shortest with an
        # endless pad lets it run on past the last frame (by a second where the frames came
        # slowly, as a dream's do), and padded to the length alone its rounding cut the last frame
        pad = f"apad=whole_dur={float(audio.duration) + 1 / float(fps):.6f}" if audio.duration is not None else "apad"
        args += ["-map", "1:a:0", *a_codec, "-af", pad, "-shortest"]
    # 3) container
    if VIDEO_FORMATS[ext] in ("mp4", "mov"):
        args += ["-movflags", "+faststart"]  # index first: playable while downloading
    else:  # matroska, webm: the cues (the index) first, for the same reason; seeking works before the end arrives
        args += ["-cues_to_front", "1"]
    return _FfmpegSink(path, fps, size, args + ["-f", VIDEO_FORMATS[ext]], inputs, bit_depth)


def _quality(codec: str, crf: int, ext: str) -> list[str]:
    """The encoder's quality options: CRF for H.264/H.265/VP9 (crf 0: lossless), none for ProRes
    (its profile sets the rate)."""
    if codec == "vp9":  # constant quality needs the bit rate's cap off (-b:v 0); VP9's scale reaches 63
        return ["-lossless", "1"] if crf == 0 else ["-crf", str(crf), "-b:v", "0"]
    if codec == "h264":
        return ["-qp", "0"] if crf == 0 else ["-crf", str(crf)]  # qp 0 is lossless at any bit depth; crf 0 only at 8
    if codec == "h265":
        x265 = "log-level=error" + (":lossless=1" if crf == 0 else "")  # x265 prints its banner otherwise
        tag = ["-tag:v", "hvc1"] if VIDEO_FORMATS[ext] in ("mp4", "mov") else []
        return ["-crf", str(crf), "-x265-params", x265, *tag]
    return []


def _has_audio(path: str) -> bool:
    if not os.path.isfile(path):
        log.warning("audio source '%s' does not exist; writing video without sound", path)
        return False
    _, text = run_probe(os.fspath(path), [], decode_one=False)
    return " Audio: " in text
