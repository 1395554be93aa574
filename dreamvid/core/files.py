"""Files every stage writes the same way: atomic writes (all or nothing under the final name),
images, the checks of an output path before any work, and the user's cache folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from dreamvid.core.errors import OutputError

IMAGE_FORMATS = {".png": ".png", ".jpg": ".jpg", ".jpeg": ".jpg"}  # a still's name -> the encoder's extension


def cache_dir() -> Path:
    """`$DREAMVID_CACHE`, else ~/.cache/dreamvid: downloaded weights, compiled loops, machine facts."""
    return Path(os.environ.get("DREAMVID_CACHE") or Path.home() / ".cache" / "dreamvid")


def check_folder(path: str) -> None:
    """OutputError naming the fix unless the folder that will hold `path` exists and is writable."""
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


def check_output(output_path: str, input_path: str | None) -> None:
    """OutputError when the output's folder is missing or read-only, or the output is the input."""
    check_folder(output_path)
    if input_path is not None and os.path.exists(output_path) and os.path.exists(input_path):
        if os.path.samefile(output_path, input_path):
            raise OutputError(f"the output '{output_path}' is the input; choose another output path "
                              f"so the input is not overwritten")
    elif input_path is not None and os.path.abspath(output_path.rstrip("/")) == os.path.abspath(input_path.rstrip("/")):
        raise OutputError(f"the output '{output_path}' is the input; choose another output path")


def check_image_output(path: str, input_path: str) -> None:
    """OutputError unless `path` names a .png/.jpg/.jpeg that may be written (see check_output)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in IMAGE_FORMATS:
        raise OutputError(f"cannot write '{path}': unknown image format '{ext}'; use .png, .jpg or .jpeg")
    check_output(path, input_path)


def atomic_write(path: str, data: bytes) -> None:
    """Write under a temporary name in the same folder, then rename: all or nothing."""
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.partial")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise OutputError(f"cannot write '{path}' ({e}); check that the disk has space and the "
                          f"folder is writable") from e


def remove(path: str) -> None:
    """Remove a file, or a folder with what it holds (never through a link); a missing one is fine."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    except FileNotFoundError:
        pass


def make_folder(path: str) -> None:
    """os.makedirs(path, exist_ok=True), an OSError (a full disk, a vanished or read-only folder)
    turned into the one-line OutputError naming the folder and the fix."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the folder '{path}' ({e.strerror}); check that the disk has space "
                          f"and the folder above it exists and is writable") from e


def encode_image(frame: np.ndarray, ext: str, path: str) -> bytes:
    """RGB uint8 (H, W, 3) -> PNG or JPEG bytes (`ext` ".png" or ".jpg"; JPEG at quality 95).
    `path` only names the file in an error."""
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OutputError(f"OpenCV could not encode '{path}'; reinstall opencv-python-headless")
    return buf.tobytes()


def write_image(path: str, image: np.ndarray) -> None:
    """RGB uint8 (H, W, 3) -> `path` (.png, .jpg or .jpeg by its name), atomically."""
    atomic_write(path, encode_image(image, IMAGE_FORMATS[os.path.splitext(path)[1].lower()], path))


__all__ = ["IMAGE_FORMATS", "cache_dir", "check_folder", "check_output", "check_image_output", "atomic_write", "remove",
           "make_folder", "encode_image", "write_image"]


def sha256(path) -> str:
    """The SHA-256 of a file's bytes, as hex, read a MiB at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
