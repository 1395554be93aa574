"""The ffmpeg that imageio-ffmpeg bundles: where it is, a probe of a file, and the line of its
stderr worth showing in an error. Every stage that runs ffmpeg (sources, sinks, audio) asks here.
"""

from __future__ import annotations

import subprocess

from dreamvid.core.errors import InputError


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    import imageio_ffmpeg  # imported here so that image sequences work without it

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_probe(path: str, extra_input: list[str], decode_one: bool) -> tuple[int, str]:
    """ffmpeg's (exit code, stderr) for `path`: its header, and with decode_one the first frame decoded."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", *extra_input, "-i", path]
    if decode_one:
        cmd += ["-map", "0:v:0", "-frames:v", "1", "-stats", "-f", "null", "-"]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=120)
    except subprocess.TimeoutExpired:
        raise InputError(f"cannot read '{path}': ffmpeg did not answer within 120 s; "
                         f"check that the file is a local, complete video") from None
    return p.returncode, p.stderr.decode("utf-8", errors="replace").replace("\r", "\n")


def complaint(text: str) -> str:
    """The last meaningful line of ffmpeg's stderr, for error messages."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    skip = ("At least one output file", "Press [q]", "frame=", "Stream mapping", "  Stream")
    for ln in reversed(lines):
        if not ln.startswith(skip) and not ln.startswith(("Input #", "Duration", "Metadata")):
            return ln[:200]
    return lines[-1][:200] if lines else "no message"


__all__ = ["ffmpeg_exe", "run_probe", "complaint"]
