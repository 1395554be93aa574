"""What a render keeps on disk beside its output: the work folder (resume state and lossless
frames), the output's record, and the atomic writes both rely on. No dreaming, no threads.

Work folder (videos and zooms). Beside the output lives `<output_dir>/.<output_name>.dreamvid/`
(see `work_folder`) with `state.json` (the settings that shape the frames, the input's
fingerprint, the base seed, the frames done) and `frames/000000.png ...`, each PNG written under
a temporary name and renamed, so a kill -9 loses at most the frame in progress. Running the same
command again picks up where it stopped and makes exactly the frames an uninterrupted run would
make, because
  1) frame k is dreamed with seed `base_seed + k` (base_seed stored in the state), and
  2) the chain carries the uint8 frame exactly as saved, never a float only the killed run had.
The jobs remove the work folder once the final output is complete (unless `keep_frames`); a
failed or interrupted render keeps it and leaves no file under the final name.

Lock. While a job writes an output it holds `<output_dir>/.<output_name>.dreamvid.lock` (see
`lock_output`): an flock the kernel drops when the process ends, however it ends, so a second
render of the same output is refused (naming the first's pid) and a kill -9 leaves no stale lock.

Record. Beside every finished output lives `<output>.json` (see `record_path`): the settings it
was made with, the network and objective actually used (after an offline fallback), the seed
actually used, the input and the dreamvid version. `--preset <output>.json` reads it back, so
the same command with that preset makes the same frames.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import inspect
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from dreamvid.config.schedule import is_audio, parse_spec
from dreamvid.config.settings import Config
from dreamvid.core.errors import BusyError, OutputError, ResumeError
from dreamvid.core.files import atomic_write, check_folder, encode_image, make_folder, remove
from dreamvid.core.progress import RenderResult
from dreamvid.media.bitdepth import read_frame, to_uint16
from dreamvid.media.sources import list_sequence, read_image
from dreamvid.version import VERSION

__all__ = ["Work", "work_folder", "record_path", "lock_path", "lock_output", "locks_output", "withdraw", "fingerprint",
           "sounds", "job_sections", "frame_settings", "write_record"]

STATE_VERSION = 1
RECORD_VERSION = 1
# Settings that do not change a single dreamed pixel, so a resume may change them freely:
# the encoder's (crf, audio, codec, pix_fmt, frame_format: the stored frames are encoded again),
# the work folder's own switches, and where the loop runs. bit_depth is not among them: it sets
# the depth of the stored frames.
_OUTPUT_ONLY = ("keep_frames", "restart", "crf", "audio", "codec", "pix_fmt", "frame_format")
_DREAM_WHERE_NOT_WHAT = ("device", "backend", "trust_pickle")  # (trust_pickle: how a network loads, not which)
_VIDEO_WHERE_NOT_WHAT = ("ray", "ray_cpus")  # where the segments run: the same frames anywhere
_FINGERPRINT_BYTES = 1 << 20  # the input's first 1 MB is hashed: catches a replaced file cheaply


# ----------------------------------------------------------------------------- paths


def work_folder(output_path: str) -> str:
    """`<output_dir>/.<output_name>.dreamvid`: where an unfinished render keeps its frames."""
    head, name = os.path.split(os.path.abspath(os.fspath(output_path).rstrip("/") or "."))
    return os.path.join(head, f".{name}.dreamvid")


def record_path(output_path: str) -> str:
    """`<output>.json` beside the output (`out.mp4.json`; `frames.json` for a folder `frames/`)."""
    return os.path.abspath(os.fspath(output_path).rstrip("/") or ".") + ".json"


def lock_path(output_path: str) -> str:
    """`<output_dir>/.<output_name>.dreamvid.lock`: held while a render writes the output."""
    return work_folder(output_path) + ".lock"


# ----------------------------------------------------------------------------- lock

_HELD: dict[str, int] = {}  # lock path -> how many calls of this process hold it (a job inside a job)
_HELD_BY: dict[str, int] = {}  # lock path -> the thread that took it
_HELD_FD: dict[str, int] = {}
_HELD_LOCK = threading.Lock()


def _holder(fd: int) -> str:
    """'pid 1234' from a lock file's content (the holder writes its pid), else 'another process'."""
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "another process"


def _acquire(path: str, output_path: str) -> int:
    """Open and flock `path` without waiting; the file descriptor, or BusyError naming the holder.
    A holder removes the file before it lets go, so a lock taken on a file no longer at `path`
    is given up and taken again on the new one (the usual unlink-while-locked protocol)."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise OutputError(f"cannot create the lock '{path}' ({e.strerror}); check that the disk has space "
                              f"and the folder is writable") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            who = _holder(fd)
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise OutputError(f"cannot lock '{path}' ({e.strerror}); put the output on a file system with "
                                  f"locks (a local disk, NFSv4)") from e
            raise BusyError(f"'{output_path}' is being rendered by {who} (lock '{path}'); wait for it to "
                            f"finish, stop it, or choose another output name") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the last holder removed it meanwhile: lock the file now at `path`


@contextmanager
def lock_output(output_path: str) -> Iterator[str]:
    """Hold the output's lock (`lock_path`) for the block: BusyError, at once and touching nothing,
    when another process (or another thread of this one) holds it. Re-entrant in the thread that
    holds it (a job that hands on to another job of the same output). The kernel drops an flock
    when its process dies, so a render killed with kill -9 leaves a file, never a held lock, and
    the resume takes it as usual. The lock file holds the holder's pid, and is removed at the end."""
    output_path = os.fspath(output_path)
    check_folder(output_path)  # the folder must exist for the lock file: the usual one-line answer
    path = lock_path(output_path)
    me = threading.get_ident()
    with _HELD_LOCK:
        if _HELD.get(path):
            if _HELD_BY[path] != me:
                raise BusyError(f"'{output_path}' is being rendered by another call in this process (pid "
                                f"{os.getpid()}); wait for it to finish, or choose another output name")
            _HELD[path] += 1
        else:
            fd = _acquire(path, output_path)
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            except OSError:
                pass  # the pid is a courtesy for the message; the lock holds without it
            _HELD[path], _HELD_BY[path], _HELD_FD[path] = 1, me, fd
    try:
        yield path
    finally:
        with _HELD_LOCK:
            _HELD[path] -= 1
            if not _HELD[path]:
                fd = _HELD_FD.pop(path)
                del _HELD[path], _HELD_BY[path]
                try:
                    os.unlink(path)  # before letting go: whoever opened it retries on a fresh file
                except OSError:
                    pass
                os.close(fd)


def locks_output(name: str = "output_path") -> Callable:
    """A job decorated to run holding its output's lock (`lock_output`), the output path being
    its argument `name`, given by position or keyword."""

    def wrap(job: Callable) -> Callable:
        signature = inspect.signature(job)

        @functools.wraps(job)
        def locked(*args, **kw):
            with lock_output(signature.bind(*args, **kw).arguments[name]):
                return job(*args, **kw)

        return locked

    return wrap


# ----------------------------------------------------------------------------- settings


def fingerprint(path: str | None) -> dict | None:
    """What identifies an input without reading it all: for a file its size, mtime_ns and the
    SHA-256 of its first 1 MB; for a folder or glob of images a digest of every file's name,
    size and mtime_ns. None for no input (a zoom from noise)."""
    if path is None:
        return None
    if os.path.isfile(path):
        st = os.stat(path)
        with open(path, "rb") as f:
            head = hashlib.sha256(f.read(_FINGERPRINT_BYTES)).hexdigest()
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_1mb": head}
    files = list_sequence(path)
    h = hashlib.sha256()
    for name in files:
        st = os.stat(name)
        h.update(f"{os.path.basename(name)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return {"files": len(files), "sha256_listing": h.hexdigest()}


def sounds(settings: dict) -> dict:
    """{"zoom.zoom": fingerprint, ...}: each sound file an "audio:" schedule among `settings`
    (frame_settings' sections) follows, fingerprinted as an input is, so a resume notices a sound
    file replaced behind an unchanged spec. A file not there is None (the render says so itself)."""
    out = {}
    for section, values in settings.items():
        for key, value in values.items():
            if is_audio(value):
                path = parse_spec(value, key).path
                out[f"{section}.{key}"] = fingerprint(path) if os.path.isfile(path) else None
    return out


def job_sections(cfg: Config, job: str) -> dict:
    """cfg as plain data with only the sections `job` ("video", "zoom", "image") reads: a video
    of the zoom's only its interpolation, and only when it has a schedule to interpolate; a zoom
    only iterations_next of the video's; a still neither."""
    d = cfg.to_dict()
    if job != "zoom":
        zoom = d.pop("zoom")
        v = cfg.video
        if job == "video" and (v.step or v.octaves or v.iterations or "(" in (cfg.dream.layers or "")):
            d["zoom"] = {"interpolation": zoom["interpolation"]}
    if job == "zoom":
        d["video"] = {"iterations_next": d["video"]["iterations_next"]}
    elif job == "image":
        d.pop("video")
    return d


def frame_settings(cfg: Config, job: str) -> dict:
    """The settings that shape the frames of `job`, as JSON-comparable data."""
    d = job_sections(cfg, job)
    d["output"] = {k: v for k, v in d["output"].items() if k not in _OUTPUT_ONLY}
    d["dream"] = {k: v for k, v in d["dream"].items() if k not in _DREAM_WHERE_NOT_WHAT}
    if "video" in d:
        d["video"] = {k: v for k, v in d["video"].items() if k not in _VIDEO_WHERE_NOT_WHAT}
        if not d["video"].get("chunk_frames"):  # shots whole: warm-up and overlap shape nothing
            for key in ("chunk_frames", "warmup_frames", "overlap_frames"):
                d["video"].pop(key, None)
    return json.loads(json.dumps(d))


def _diff(old: dict, new: dict) -> str:
    """'video.blend: 0.9 -> 0.5, ...' for the first few settings that differ."""
    out = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section) or {}, new.get(section) or {}
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                out.append(f"{section}.{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return ", ".join(out[:4]) + (", ..." if len(out) > 4 else "") if out else "a different version"


# ----------------------------------------------------------------------------- record


def write_record(output_path: str, job: str, cfg: Config, dreamer, input_path: str | None, seed: int,
                 result: RenderResult, plan: dict | None = None) -> str:
    """Write `record_path(output_path)` atomically, after the output itself is complete; returns its path.

    Its "settings" sections are those of a preset file (see config.presets.load_preset, which reads this
    JSON too), with the model, layers and seed that were actually used, so the record reproduces
    the output even when the requested model fell back or no seed was given. The work folder's
    switches (restart, keep_frames) are left out: they do not shape the output.
    """
    settings = job_sections(cfg, job)
    # the network that really ran: an offline fallback replaces the requested googlenet
    used = dreamer.model.name if cfg.dream.model == "googlenet" else cfg.dream.model
    settings["dream"].update(model=used, seed=int(seed))
    if not (cfg.dream.layers and "(" in cfg.dream.layers):  # a layer schedule stays as written
        settings["dream"]["layers"] = dreamer.objective.spec(dreamer.model.resolve)
    for key in ("restart", "keep_frames"):
        settings["output"].pop(key)
    for key in _VIDEO_WHERE_NOT_WHAT:
        settings.get("video", {}).pop(key, None)
    record = {
        "dreamvid_record": RECORD_VERSION,
        "dreamvid_version": VERSION,
        "job": job,
        "output": os.path.abspath(result.path),
        "input": None if input_path is None else os.path.abspath(input_path),
        "input_fingerprint": fingerprint(input_path),
        "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "frames": result.frames,
        "fps": str(result.fps) if result.fps else None,
        "network": {"requested": cfg.dream.model, "used": dreamer.model.name},
        "objective": dreamer.objective.spec(dreamer.model.resolve),
        "device": dreamer.device_label,
        "settings": json.loads(json.dumps(settings)),
    }
    if plan is not None:  # a render in segments: its shots and segments (plan.Plan.to_dict)
        record["plan"] = plan
    path = record_path(output_path)
    try:
        atomic_write(path, (json.dumps(record, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    except OutputError:
        withdraw(result.path)  # a finished output always has its record; the kept work folder makes it again
        raise
    return path


def withdraw(output_path: str) -> None:
    """Remove a finished output (a file, or a folder of frames) whose record could not be written."""
    try:
        remove(os.fspath(output_path).rstrip("/") or output_path)
    except OSError:
        pass


# ----------------------------------------------------------------------------- work folder


def stored_for_sink(store, k: int, frame, bit_depth: int):
    """Frame k as an earlier run stored it, for the sink: at 16 bits re-read at its full depth
    from `store`'s file (a Work or a segment's frames), else `frame`, the uint8 frame the chain
    carries on. The one rule for a resumed video, zoom and segment."""
    return read_frame(store.frame_path(k)) if bit_depth == 16 else frame


class Work:
    """The resume state of one render. Nothing is created on disk until the first frame is
    stored, so a render that fails before dreaming leaves no work folder behind.

    `done`: frames 0..done-1 an earlier run finished (0 for a fresh render); `base_seed`: the
    seed of frame 0 (frame k uses base_seed + k). `info` receives one-line messages.
    """

    def __init__(self, output_path: str, job: str, cfg: Config, input_path: str | None,
                 info: Callable[[str], None]):
        self.path = work_folder(output_path)
        self.frames_dir = os.path.join(self.path, "frames")
        self.state_path = os.path.join(self.path, "state.json")
        self.created = False
        settings, finger = frame_settings(cfg, job), fingerprint(input_path)
        heard = sounds(settings)
        if cfg.output.restart and os.path.exists(self.path):
            shutil.rmtree(self.path)
            info(f"--restart: discarded the earlier render's work folder '{self.path}'")
        if os.path.exists(self.path):
            state = self._read_state()
            fix = "; run again with --restart to discard it, or change the output name"
            if state.get("job") != job:
                raise ResumeError(f"the work folder '{self.path}' holds a {state.get('job')} render, not a {job}{fix}")
            if state.get("input") != finger:
                raise ResumeError(f"the work folder '{self.path}' was started with another input "
                                  f"(or the input file changed since){fix}")
            if state.get("settings") != settings:
                changed = _diff(state.get("settings") or {}, settings)
                raise ResumeError(f"the work folder '{self.path}' was started with other settings "
                                  f"({changed}){fix}")
            old = state.get("sounds", heard)  # a work folder of an older version: not recorded
            for name in sorted(set(old) | set(heard)):
                if old.get(name) != heard.get(name):
                    path = parse_spec(settings[name.split(".")[0]][name.split(".")[1]], name).path
                    raise ResumeError(f"the sound file '{path}' that {name} follows changed since the work folder "
                                      f"'{self.path}' was started{fix}")
            self.state = state
            self.created = True
            self.done = self._count_frames()
        else:
            seed = cfg.dream.seed if cfg.dream.seed is not None else int(np.random.SeedSequence().entropy % 2**31)
            self.state = {"dreamvid_state": STATE_VERSION, "job": job, "settings": settings,
                          "input": finger, "input_path": None if input_path is None else os.path.abspath(input_path),
                          "sounds": heard,
                          "base_seed": seed, "frames_done": 0}
            self.done = 0
        self.base_seed = int(self.state["base_seed"])

    def _read_state(self) -> dict:
        try:
            with open(self.state_path, encoding="utf-8") as f:
                state = json.load(f)
            if not isinstance(state, dict) or state.get("dreamvid_state") != STATE_VERSION:
                raise ValueError("unknown format")
            return state
        except (OSError, ValueError) as e:
            raise ResumeError(f"the work folder '{self.path}' has no readable state.json ({e}); "
                              f"run again with --restart to discard it, or change the output name") from None

    def _count_frames(self) -> int:
        """Frames 0..k-1 present without a gap (a frame is on disk only once complete)."""
        k = 0
        while os.path.isfile(self.frame_path(k)):
            k += 1
        return k

    def frame_path(self, k: int) -> str:
        return os.path.join(self.frames_dir, f"{k:06d}.png")

    def read(self, k: int, shape: tuple[int, ...]) -> np.ndarray:
        """Frame k as stored (RGB uint8); ResumeError unless it has `shape`."""
        frame = read_image(self.frame_path(k))
        if frame.shape != tuple(shape):
            raise ResumeError(f"stored frame {self.frame_path(k)} is {frame.shape[1]}x{frame.shape[0]}, "
                              f"not {shape[1]}x{shape[0]}; run again with --restart")
        return frame

    def store(self, k: int, frame: np.ndarray) -> None:
        """Save frame k, then record it in the state: `save` and `mark_done` in one."""
        self.save(k, frame)
        self.mark_done(k)

    def save(self, k: int, frame: np.ndarray) -> None:
        """Save frame k (RGB uint8) losslessly, atomically; several frames may be saved at once
        from different threads. A float frame (a 16-bit output's dream) is saved as a 16-bit PNG,
        so a resume keeps its precision. A resume counts the frames present without a gap."""
        if frame.dtype != np.uint8:
            frame = to_uint16(frame)
        make_folder(self.frames_dir)
        self.created = True
        atomic_write(self.frame_path(k), encode_image(frame, ".png", self.frame_path(k)))

    def mark_done(self, k: int) -> None:
        """Record frames 0..k as finished in state.json (called in frame order)."""
        self.state["frames_done"] = k + 1
        atomic_write(self.state_path, json.dumps(self.state, indent=1).encode("utf-8"))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def check_plan(self, plan: dict) -> None:
        """Record a render's chunk plan (plan.Plan.to_dict) in the state and write the state
        now, so runners elsewhere find the folder; ResumeError when an earlier run planned
        otherwise (a changed plan is refused like a changed setting), or when the folder holds
        a render in one piece."""
        fix = "; run again with --restart to discard it, or change the output name"
        old = self.state.get("plan")
        if old is None and self.created and (self.done or self.state.get("frames_done")):
            raise ResumeError(f"the work folder '{self.path}' holds a render in one piece, not in segments{fix}")
        if old is not None and old != plan:
            raise ResumeError(f"the work folder '{self.path}' was planned otherwise (shots or segments "
                              f"differ){fix}")
        self.state["plan"] = plan
        make_folder(self.path)
        self.created = True
        atomic_write(self.state_path, json.dumps(self.state, indent=1).encode("utf-8"))

    def segment(self, index: int, first: int) -> SegmentFrames:
        """The frames of segment `index`, whose first frame is `first` (see SegmentFrames)."""
        return SegmentFrames(os.path.join(self.path, "segments", f"{index:05d}"), first)


class SegmentFrames:
    """The stored frames of one segment of a render in segments: `<work>/segments/NNNNN/`,
    frame k (the clip's index) as `k.png`, warm-up included, written atomically. Each segment
    has a folder of its own because two consecutive segments both render the frames they share.
    The same interface as Work's frames (save, mark_done, read, frame_path, done), so the frame
    loop and the Writer use either. `done`: frames first..first+done-1 present without a gap,
    what a resumed or retried segment continues after."""

    def __init__(self, path: str, first: int):
        self.path = self.frames_dir = path
        self.first = first
        k = first
        while os.path.isfile(self.frame_path(k)):
            k += 1
        self.done = k - first

    frame_path = Work.frame_path
    read = Work.read

    def save(self, k: int, frame: np.ndarray) -> None:
        if frame.dtype != np.uint8:
            frame = to_uint16(frame)
        try:
            os.makedirs(self.frames_dir, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create '{self.frames_dir}' ({e}); the work folder must be on storage "
                              f"every node can write (a shared file system)") from e
        atomic_write(self.frame_path(k), encode_image(frame, ".png", self.frame_path(k)))

    def mark_done(self, k: int) -> None:
        """Nothing to record: a segment's progress is the frames present."""
