"""The weights dreamvid downloads itself: googlenet's inception5h archive, fetched once into the
cache folder (`download`: a temporary file beside the target, verified by SHA-256, then renamed)
and its frozen graph unpacked there (`googlenet_pb`), or taken from a copy fetched elsewhere
(`--weights`, the .zip or the .pb inside it). It hands `dreamvid.engine.models` a file path and
knows nothing of networks, Keras or layers; the Keras applications' weights go through Keras'
own cache, PyTorch's through torchvision's and timm's, and vgg16-hed's are bundled, never
downloaded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from dreamvid.core import files
from dreamvid.core.errors import ModelError, reason
from dreamvid.core.files import cache_dir

GOOGLENET_URL = "https://storage.googleapis.com/download.tensorflow.org/models/inception5h.zip"
# SHA-256 of inception5h.zip as published; the same digest TensorFlow's own build files pin.
GOOGLENET_SHA256 = "d13569f6a98159de37e92e9c8ec4dae8f674fbf475f69fe6199b514f756d4364"
GOOGLENET_PB = "tensorflow_inception_graph.pb"
OFFLINE_MODEL = "vgg16-hed"  # the network a failed download points to: its weights are bundled




def download(url: str, dest: Path, sha256: str, progress: Callable[[int, int], None] | None = None) -> Path:
    """Fetch `url` to `dest` once: into a temporary file beside it, verified, then renamed.

    Raises ModelError when offline or when the checksum differs (the partial file is removed).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as resp:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        digest = files.sha256(Path(tmp))
        if digest != sha256:
            raise ModelError(f"download of {url} is corrupt (SHA-256 {digest[:12]}..., "
                             f"expected {sha256[:12]}...); try again")
        os.replace(tmp, dest)
        return dest
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise ModelError(f"cannot download {url} ({reason(exc)})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def googlenet_pb(weights: str | None = None, progress: Callable[[int, int], None] | None = None) -> Path:
    """The inception5h graph file: from `weights` (.zip or .pb), the cache, or a one-time download."""
    target = cache_dir() / "inception5h" / GOOGLENET_PB
    if weights:
        src = Path(weights)
        if not src.is_file():
            raise ModelError(f"weights file '{weights}' does not exist; "
                             f"pass the inception5h.zip or {GOOGLENET_PB} you downloaded")
        if src.suffix == ".pb":
            return src
        zip_path = src
    elif target.is_file():
        return target
    else:
        zip_path = cache_dir() / "inception5h.zip"
        if not zip_path.is_file() or files.sha256(zip_path) != GOOGLENET_SHA256:
            try:
                download(GOOGLENET_URL, zip_path, GOOGLENET_SHA256, progress)
            except ModelError as exc:
                raise ModelError(
                    f"weights for 'googlenet' are not cached and the download failed ({exc}); "
                    f"download {GOOGLENET_URL} elsewhere and pass --weights inception5h.zip, "
                    f"or use --model {OFFLINE_MODEL} (works offline)") from None
    try:
        with zipfile.ZipFile(zip_path) as z:
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(GOOGLENET_PB) as src_f, tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as dst:
                shutil.copyfileobj(src_f, dst)
            os.replace(dst.name, target)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(f"'{zip_path}' is not the inception5h.zip archive ({reason(exc)}); "
                         "download it again") from None
    return target


