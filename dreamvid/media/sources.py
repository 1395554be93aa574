"""Frame sources: video files and image sequences behind one interface. No TensorFlow here.

Every source yields frames as RGB uint8 arrays of shape (H, W, 3), all the same size, and
describes itself with a `SourceInfo` before the first frame is decoded.

Video files are decoded by the ffmpeg binary that imageio-ffmpeg ships, in a subprocess
started here (not `imageio_ffmpeg.read_frames`) so that its stderr can be read after the
last frame: that is how a truncated file is told apart from one that simply ended.

Image sequences are a folder of images, a glob pattern (`frames/*.png`) or a single image
(a one-frame sequence). Their rules:
- files are taken in natural order (`frame_2` before `frame_10`);
- `fps` defaults to 25 when not given: ffmpeg's image2 default, so the same folder gives the
  same timing here and in ffmpeg;
- images whose size differs from the first one are resized to the first one's size (the
  aspect ratio may change), with one warning naming the first such file.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from dreamvid.config.settings import DEFAULTS
from dreamvid.core.errors import InputError
from dreamvid.core.ffmpeg import complaint, ffmpeg_exe, run_probe
from dreamvid.core.frames import output_size, resize

log = logging.getLogger("dreamvid")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
SEQUENCE_DEFAULT_FPS = Fraction(25)  # ffmpeg's image2 default, so timings agree with ffmpeg
GLOB_CHARS = re.compile(r"[*?\[]")
# stderr lines from ffmpeg that mean the stream broke off, rather than ended
_SIZE_CHANGE = re.compile(r"video parameters changed to [^\n]*?\b(\d+)x(\d+)\b")  # ffmpeg -loglevel verbose
_ERROR_TAG = re.compile(r" ?\[(error|fatal|panic)\] ")


def _errors_only(log_text: str) -> str:
    """The error lines of a level-tagged ffmpeg log, untagged (what -loglevel error shows)."""
    return "\n".join(_ERROR_TAG.sub(" ", ln, count=1).strip() for ln in log_text.splitlines() if _ERROR_TAG.search(ln))


_DECODE_TROUBLE = re.compile(
    r"partial file|invalid nal|error while decoding|corrupt|truncat|invalid data|"
    r"end of file|missing picture|concealing",
    re.IGNORECASE,
)


@dataclass
class SourceInfo:
    """What a source will yield. Sizes are after any resize; times are in seconds."""

    path: str
    fps: Fraction  # exact: 29.97 is Fraction(30000, 1001)
    width: int
    height: int
    n_frames: int | None  # frames this source will yield: exact for image sequences,
    #                        an estimate from duration * fps for videos, None if unknown
    start: float  # seconds into the input where the first frame is
    duration: float | None  # seconds covered, None if unknown
    has_audio: bool


class FrameSource:
    """Yields frames as RGB uint8 arrays of shape (H, W, 3), all of size (info.height,
    info.width). Each `iter()` starts again from the first frame of the range. `close()`
    stops any decoder still running; a source is also a context manager."""

    info: SourceInfo

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------- helpers


def natural_key(path: str) -> list:
    """Sort key that orders `frame_2.png` before `frame_10.png` (case-insensitive)."""
    parts = re.split(r"(\d+)", os.path.basename(path).lower())
    return [int(p) if p.isdigit() else p for p in parts] + [path]


def _check_range(start: float, duration: float | None, max_frames: int | None,
                 width: int | None, fps) -> None:
    if start is None or start < 0:
        raise ValueError(f"start must be >= 0 seconds, got {start}")
    if duration is not None and duration <= 0:
        raise ValueError(f"duration must be > 0 seconds (or None for all), got {duration}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 (or None for all), got {max_frames}")
    if width is not None and width < 2:
        raise ValueError(f"width must be >= 2 pixels (or None to keep the size), got {width}")
    if fps is not None:
        as_fps(fps)


def exact_fps(printed: str) -> Fraction:
    """Recover an exact frame rate from ffmpeg's printed, rounded one.

    ffmpeg prints rates with at most 2 decimals ("29.97", "23.98", "25", "30k"). Integers stay
    integers; a value within rounding of an NTSC rate n*1000/1001 becomes that rate; anything
    else becomes the simplest fraction that rounds to it (12.5 -> 25/2, 33.33 -> 100/3).
    """
    s = printed.strip()
    value = float(s[:-1]) * 1000 if s.endswith("k") else float(s)
    if value <= 0:
        raise ValueError(f"frame rate must be > 0, got {printed!r}")
    if value == int(value):
        return Fraction(int(value))
    tolerance = 0.005 + 1e-9  # half of the last printed digit
    for n in range(1, 481):
        ntsc = Fraction(n * 1000, 1001)
        if abs(float(ntsc) - value) <= tolerance:
            return ntsc
    for q in range(1, 1002):  # the simplest fraction that prints the same (33.33 -> 100/3)
        p = round(value * q)
        if p > 0 and abs(p / q - value) <= tolerance:
            return Fraction(p, q)
    return Fraction(s).limit_denominator(1001)


def as_fps(value) -> Fraction:
    """A frame rate argument as an exact Fraction: Fractions, ints and strings ("30000/1001")
    are taken as they are; floats as typed by people are read like ffmpeg's printed rates,
    so 29.97 becomes 30000/1001 (not 29.97's binary value)."""
    if isinstance(value, float):
        fps = exact_fps(repr(value)) if value > 0 else Fraction(0)
    else:
        fps = Fraction(value)
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {value}")
    return fps


# ----------------------------------------------------------------------------- images


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return ((img.astype(np.float32) + 128.0) / 257.0).astype(np.uint8)  # 65535 -> 255
    if np.issubdtype(img.dtype, np.floating):  # EXR / float TIFF: assume [0, 1]
        return (np.clip(np.nan_to_num(img), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    info = np.iinfo(img.dtype)
    scaled = (img.astype(np.float64) - info.min) / (info.max - info.min) * 255.0
    return (scaled + 0.5).astype(np.uint8)


def read_image(path: str) -> np.ndarray:
    """Read one image file as RGB uint8 (H, W, 3).

    Grayscale is copied to three channels, palette images are expanded, 16-bit images are
    scaled to 8 bits, and an alpha channel is composited onto black. JPEG EXIF orientation is
    applied. Raises InputError when the file is missing or is not an image OpenCV can decode.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"cannot read image '{path}': no such file; check the path")
    if os.path.isdir(path):
        raise InputError(f"cannot read image '{path}': it is a folder; pass an image file")
    if path.lower().endswith((".jpg", ".jpeg")):
        flags = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH  # no alpha in JPEG; applies EXIF rotation
    else:
        flags = cv2.IMREAD_UNCHANGED  # keeps alpha and 16 bits
    img = cv2.imread(path, flags)
    if img is None:
        raise InputError(
            f"cannot read image '{path}': not an image OpenCV can decode; "
            f"check the file or convert it to PNG or JPEG"
        )
    # 1) channels: (H, W) or (H, W, 1) gray, (H, W, 3) BGR, (H, W, 4) BGRA
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return np.repeat(_to_uint8(img)[:, :, None], 3, axis=2)
    # 2) alpha: composite onto black in float, before reducing the depth
    if img.shape[2] == 4:
        if img.dtype == np.uint8:
            full = 255.0
        elif img.dtype == np.uint16:
            full = 65535.0
        else:
            full = 1.0
        alpha = img[:, :, 3:4].astype(np.float32) / full  # (H, W, 1) in [0, 1]
        bgr = img[:, :, :3].astype(np.float32) * alpha
        img = bgr.astype(img.dtype) if img.dtype != np.float32 else bgr
    # 3) depth and channel order
    return np.ascontiguousarray(cv2.cvtColor(_to_uint8(img[:, :, :3]), cv2.COLOR_BGR2RGB))


class ImageSequenceSource(FrameSource):
    """Frames from a list of image files, in the given order. See the module docstring."""

    def __init__(self, path: str, files: list[str], *, start: float, duration: float | None,
                 max_frames: int | None, width: int | None, fps):
        self.fps = as_fps(fps) if fps is not None else SEQUENCE_DEFAULT_FPS
        # 1) pick the range: start and duration are converted to frame indices at self.fps
        first = int(math.floor(start * self.fps + 1e-9))
        if first >= len(files):
            raise InputError(
                f"no frames in '{path}' from {start} s: the sequence has {len(files)} images "
                f"({float(len(files) / self.fps):.3f} s at {self.fps} fps); choose a smaller start"
            )
        files = files[first:]
        if duration is not None:
            files = files[: max(1, int(math.ceil(duration * self.fps - 1e-9)))]
        if max_frames is not None:
            files = files[:max_frames]
        self.files = files
        # 2) the first image fixes the size of every frame
        first_img = read_image(files[0])
        h, w = output_size(first_img.shape[0], first_img.shape[1], width)
        self.size = (w, h)
        self.info = SourceInfo(
            path=path, fps=self.fps, width=self.size[0], height=self.size[1],
            n_frames=len(files), start=float(first / self.fps),
            duration=float(len(files) / self.fps), has_audio=False,
        )

    def __iter__(self) -> Iterator[np.ndarray]:
        warned = False
        for f in self.files:
            img = read_image(f)
            if not warned and (img.shape[1], img.shape[0]) != (self.info.width, self.info.height):
                first = read_image(self.files[0])
                if img.shape[:2] != first.shape[:2]:
                    log.warning(
                        "image '%s' is %dx%d but the sequence started at %dx%d; resizing every "
                        "such image to %dx%d (resize the images beforehand to choose how)",
                        f, img.shape[1], img.shape[0], first.shape[1], first.shape[0],
                        self.info.width, self.info.height,
                    )
                    warned = True
            yield resize(img, (self.size[1], self.size[0]))


def is_sequence(path: str) -> bool:
    """True when open_source reads `path` as images (a folder, a glob or one image file)."""
    if GLOB_CHARS.search(path) and not os.path.exists(path):
        return True
    return os.path.isdir(path) or path.lower().endswith(IMAGE_EXTENSIONS)


def list_sequence(path: str) -> list[str]:
    """The image files of a folder or a glob, in natural order; InputError when there are none."""
    if os.path.isdir(path):
        names = [os.path.join(path, n) for n in os.listdir(path) if not n.startswith(".")]
        what = f"folder '{path}'"
    else:
        names = glob.glob(path)
        what = f"pattern '{path}'"
    files = sorted(
        (n for n in names if n.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(n)),
        key=natural_key,
    )
    if not files:
        raise InputError(
            f"no images in {what}; put {', '.join(IMAGE_EXTENSIONS[:3])}... files there "
            f"or pass a video file"
        )
    return files


# ----------------------------------------------------------------------------- video


@dataclass
class _VideoHeader:
    width: int  # as decoded, after any rotation ffmpeg applies
    height: int
    fps: Fraction | None
    duration: float | None
    container_start: float
    has_audio: bool
    decoded_frames: int | None  # frames decoded by the probe (it decodes at most one)


def _parse_header(path: str, text: str) -> _VideoHeader:
    video = re.search(r"Stream #\d+:\d+[^\n]*?: Video: ([^\n]*)", text)
    if video is None and re.search(r"^Input #\d+", text, re.MULTILINE):
        raise InputError(f"cannot read '{path}': it holds no video stream (no frames to dream); "
                         f"pass a video file that has pictures, or an image folder")
    if video is None:
        raise InputError(
            f"cannot read '{path}': not a video ffmpeg can decode "
            f"(ffmpeg said: {complaint(text)}); check the file or convert it"
        )
    line = video.group(1)
    size = re.search(r"(?<![\w])(\d{1,5})x(\d{1,5})(?![\w])", line)
    if size is None:
        raise InputError(f"cannot read '{path}': ffmpeg reports no frame size for its video "
                         f"stream; re-encode it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4)")
    w, h = int(size.group(1)), int(size.group(2))
    # ffmpeg auto-rotates phone videos on decode, so a quarter turn swaps the frame size
    rot = re.search(r"rotation of (-?[\d.]+) degrees", text[video.end():])
    if rot and abs(round(float(rot.group(1)))) % 180 == 90:
        w, h = h, w
    fps_m = re.search(r"([\d.]+k?) fps", line) or re.search(r"([\d.]+k?) tbr", line)
    fps = exact_fps(fps_m.group(1)) if fps_m and float(fps_m.group(1).rstrip("k")) > 0 else None
    dur = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    duration = int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else None
    cstart = re.search(r"Duration: [^\n]*?start: (-?[\d.]+)", text)
    frames = re.findall(r"frame=\s*(\d+)", text)
    return _VideoHeader(
        width=w, height=h, fps=fps, duration=duration,
        container_start=float(cstart.group(1)) if cstart else 0.0,
        has_audio=re.search(r"Stream #\d+:\d+[^\n]*?: Audio:", text) is not None,
        decoded_frames=int(frames[-1]) if frames else None,
    )


def _probe(path: str, start: float = DEFAULTS["start"], decode_one: bool = True) -> _VideoHeader:
    extra = ["-ss", f"{start:.6f}"] if start > 0 else []
    rc, text = run_probe(path, extra, decode_one)
    header = _parse_header(path, text)
    if decode_one and not header.decoded_frames:
        if start > 0 and header.duration is not None and start >= header.duration:
            raise InputError(f"no frames in '{path}' from {start} s: the video is "
                             f"{header.duration:.3f} s long; choose a smaller start")
        raise InputError(
            f"cannot read '{path}': its video stream has no decodable frames "
            f"(ffmpeg said: {complaint(text)}); check the file or re-encode it"
        )
    return header


class VideoSource(FrameSource):
    """Frames of a video file decoded by ffmpeg, optionally resized and resampled.

    A file that breaks off part-way (truncated download, damaged data) yields the frames that
    decode and logs one warning naming the frame index where decoding stopped.
    """

    def __init__(self, path: str, *, start: float, duration: float | None,
                 max_frames: int | None, width: int | None, fps):
        self.path = path
        self.start = float(start)
        self.max_frames = max_frames
        self.header = h = _probe(path, self.start)
        oh, ow = output_size(h.height, h.width, width)
        self.size = (ow, oh)
        self.resample = as_fps(fps) if fps is not None else None
        out_fps = self.resample or h.fps
        if out_fps is None:
            raise InputError(f"cannot read '{path}': ffmpeg reports no frame rate for it; "
                             f"pass fps= (--fps) to set one")
        self.fps = out_fps
        # what will be covered: from start to the end, cut by duration and max_frames
        covered = None if h.duration is None else max(0.0, h.duration - self.start)
        if duration is not None:
            covered = duration if covered is None else min(covered, duration)
        n = None if covered is None else max(1, int(round(covered * out_fps)))
        if max_frames is not None:
            n = max_frames if n is None else min(n, max_frames)
            covered = n / out_fps if covered is None else min(covered, float(n / out_fps))
        self.duration = duration
        self.info = SourceInfo(
            path=path, fps=out_fps, width=self.size[0], height=self.size[1],
            n_frames=n, start=self.start, duration=None if covered is None else float(covered),
            has_audio=h.has_audio,
        )
        self._procs: list[subprocess.Popen] = []

    def _command(self) -> list[str]:
        # verbose, each line tagged with its level: the decoder's size changes are read from it
        # (_SIZE_CHANGE), and only the errors are what ffmpeg "said" (_errors_only)
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+verbose"]
        if self.start > 0:
            cmd += ["-ss", f"{self.start:.6f}"]  # input seek: fast, and exact in ffmpeg >= 2.1
        cmd += ["-i", self.path, "-map", "0:v:0", "-an", "-sn"]
        if self.duration is not None:
            cmd += ["-t", f"{self.duration:.6f}"]
        filters = []
        if self.resample is not None:
            filters.append(f"fps={self.resample.numerator}/{self.resample.denominator}")
        if self.size != (self.header.width, self.header.height):
            shrink = self.size[0] * self.size[1] < self.header.width * self.header.height
            filters.append(f"scale={self.size[0]}:{self.size[1]}:flags={'area' if shrink else 'bicubic'}")
        if filters:
            cmd += ["-vf", ",".join(filters)]
        if self.resample is None:
            cmd += ["-fps_mode", "passthrough"]  # one output frame per decoded frame
        if self.max_frames is not None:
            cmd += ["-frames:v", str(self.max_frames)]
        return cmd + ["-pix_fmt", "rgb24", "-f", "rawvideo", "-"]

    def __iter__(self) -> Iterator[np.ndarray]:
        w, h = self.size
        frame_bytes = w * h * 3
        errlog = tempfile.TemporaryFile()  # noqa: SIM115 (closed below) a file, not a pipe: ffmpeg never blocks on it
        proc = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=errlog, bufsize=frame_bytes)
        self._procs.append(proc)
        count = said = 0  # frames read; bytes of ffmpeg's log read
        self._noticed = False
        try:
            while self.max_frames is None or count < self.max_frames:
                buf = proc.stdout.read(frame_bytes)
                if len(buf) < frame_bytes:
                    break  # end of stream (a partial last frame is dropped)
                said = self._size_changes(errlog, said)
                yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)  # (H, W, 3) RGB, read-only
                count += 1
            finished = self.max_frames is not None and count >= self.max_frames
            if not finished:
                proc.wait()
                errlog.seek(0)
                self._report_end(count, proc.returncode, _errors_only(errlog.read().decode("utf-8", "replace")))
        finally:
            # the decoder is always stopped and reaped, also when the consumer stops early
            _stop(proc)
            self._procs.remove(proc)
            errlog.close()

    def _size_changes(self, errlog, offset: int) -> int:
        """One warning when the decoder says the stream's frame size changed (concatenated
        transport streams, some broadcast captures): ffmpeg scales those frames to the first
        frame's size (its autoscale), which is what the chain needs. Reads ffmpeg's log from
        `offset` on, up to its last whole line (a line still being written is read again whole the
        next time); returns the new offset. Once warned, nothing more is read (this runs per frame)."""
        if self._noticed:
            return offset
        try:
            new = os.pread(errlog.fileno(), 1 << 16, offset)
        except OSError:
            return offset
        if len(new) < 1 << 16:  # (a full read with no line end is taken as it is)
            new = new[:new.rfind(b"\n") + 1]
        if new:
            first = (self.header.width, self.header.height)
            for m in _SIZE_CHANGE.finditer(new.decode("utf-8", "replace")):
                size = (int(m.group(1)), int(m.group(2)))
                if size != first:
                    self._noticed = True
                    log.warning("'%s' changes its frame size part-way, to %dx%d; such frames are scaled to "
                                "the first frame's %dx%d (the aspect ratio may change; re-encode the clip to "
                                "choose how)", self.path, *size, *first)
                    break
        return offset + len(new)

    def _report_end(self, count: int, rc: int, err: str) -> None:
        if count == 0:
            raise InputError(
                f"cannot read '{self.path}': no frame decoded from {self.start} s "
                f"(ffmpeg said: {complaint(err)}); check the file or re-encode it"
            )
        expected = self.info.n_frames
        short = expected is not None and count < 0.9 * expected - 1
        trouble = [ln for ln in err.splitlines() if _DECODE_TROUBLE.search(ln)]
        if rc != 0 or short or trouble:
            said = (trouble or [ln for ln in err.splitlines() if ln.strip()] or ["nothing"])[-1]
            log.warning(
                "decoding '%s' stopped at frame %d%s (ffmpeg said: %s); the file may be truncated "
                "or damaged: re-download or re-encode it to get every frame",
                self.path, count, f" of about {expected}" if expected else "", said.strip()[:200],
            )

    def close(self) -> None:
        for proc in list(self._procs):
            _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """Stop an ffmpeg subprocess and reap it, so no zombie is left behind."""
    if proc.poll() is None:
        proc.kill()
    try:
        if proc.stdout:
            proc.stdout.close()
    except OSError:
        pass
    proc.wait()


# ----------------------------------------------------------------------------- entry points


def open_source(path: str, *, start: float = DEFAULTS["start"], duration: float | None = None,
                max_frames: int | None = None, width: int | None = None,
                fps=None) -> FrameSource:
    """Open a video file, an image folder, a glob pattern or a single image as a FrameSource.

    start, duration: the range to take, in seconds. max_frames: at most this many frames.
    width: resize keeping the aspect ratio, both dimensions rounded to even numbers (H.264
    needs them even); None keeps the input size. fps: for image sequences the frame rate
    (default 25); for videos a rate to resample to by dropping or repeating frames (default:
    the video's own, exact, e.g. Fraction(30000, 1001)).
    Raises InputError when the path is missing, empty or not decodable.
    """
    path = os.fspath(path)
    if "\x00" in path:  # no file system takes one (glob and open raise ValueError)
        raise InputError(f"cannot read {path!r}: a path cannot hold a NUL character; check the path")
    _check_range(start, duration, max_frames, width, fps)
    kw = dict(start=start, duration=duration, max_frames=max_frames, width=width, fps=fps)
    if GLOB_CHARS.search(path) and not os.path.exists(path):
        return ImageSequenceSource(path, list_sequence(path), **kw)
    if not os.path.exists(path):
        raise InputError(f"cannot read '{path}': no such file or folder; check the path")
    if os.path.isdir(path):
        return ImageSequenceSource(path, list_sequence(path), **kw)
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return ImageSequenceSource(path, [path], **kw)
    if os.path.getsize(path) == 0:
        raise InputError(f"cannot read '{path}': the file is empty; check the path or re-export it")
    return VideoSource(path, **kw)


def probe_video(path: str) -> dict:
    """Facts about a video file, counting frames exactly by decoding all of them.

    Returns dict(fps=Fraction, n_frames=int, width=int, height=int, has_audio=bool).
    Meant for checking outputs (tests); it decodes the whole file, so it is slow on long ones.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"cannot read '{path}': no such file; check the path")
    rc, text = run_probe(path, [], decode_one=False)
    header = _parse_header(path, text)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path, "-map", "0:v:0",
           "-fps_mode", "passthrough", "-stats", "-f", "null", "-"]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=600)
    frames = re.findall(r"frame=\s*(\d+)", p.stderr.decode("utf-8", "replace").replace("\r", "\n"))
    return dict(fps=header.fps, n_frames=int(frames[-1]) if frames else 0,
                width=header.width, height=header.height, has_audio=header.has_audio)
