"""What an output may be, checked before any work: containers, codecs and their pixel formats,
the encoders the ffmpeg in use has, a frame folder's format."""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass

from dreamvid.config.settings import DEFAULTS
from dreamvid.core.errors import OutputError
from dreamvid.core.ffmpeg import ffmpeg_exe
from dreamvid.core.files import check_folder

VIDEO_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}  # extension -> ffmpeg muxer
CONTAINER_CODECS = {".webm": "vp9"}  # a container's codec when none is given (WebM holds only VP8/VP9/AV1); else H.264
AUDIO_BITRATE = "192k"  # AAC at 192 kb/s is transparent for most stereo sources
OPUS_BITRATE = "128k"  # Opus is transparent for stereo music from about 128 kb/s (its developers' listening tests)
X264_PRESET = "medium"  # x264's (and x265's) default: the usual balance of speed and size
PCM_AUDIO = "pcm_s24le"  # beside ProRes: uncompressed, so an editor's export is the only lossy step
AAC = ("aac", "-b:a", AUDIO_BITRATE)  # the sound beside H.264/H.265: what every player decodes
# libvpx-vp9's speed: "good" with cpu-used 4 (0 slowest, 5 fastest) and its rows in parallel: the
# writer sits behind the dream, so the encoder must keep up; on the sample's dream 2.2-2.4x the speed
# of cpu-used 2 (5x cpu-used 1, libvpx's default) for 0.4-0.6 dB of PSNR (README, Output for editors)
VP9_ARGS = ("-deadline", "good", "-cpu-used", "4", "-row-mt", "1")


@dataclass(frozen=True)
class Codec:
    """One `--codec`: the ffmpeg encoder, its default pixel format, the containers it goes in, the
    sound's encoder beside it."""

    encoder: str
    pix_fmt: str  # default; H.264/H.265/VP9 at crf 0 use yuv444p instead (lossless keeps the chroma)
    containers: tuple[str, ...]  # ffmpeg muxers (VIDEO_FORMATS' values)
    args: tuple[str, ...] = ()  # encoder options besides quality and pixel format
    label: str = ""
    audio: tuple[str, ...] = AAC  # the sound's encoder and its options (-c:a ...)


CODECS = {
    # yuv420p: what every player and browser decodes
    "h264": Codec("libx264", "yuv420p", ("mp4", "mov", "matroska"), ("-preset", X264_PRESET), "H.264"),
    # hvc1: the tag Apple's players and editors need to open H.265 in .mp4/.mov (ffmpeg writes hev1)
    "h265": Codec("libx265", "yuv420p", ("mp4", "mov", "matroska"), ("-preset", X264_PRESET), "H.265"),
    # profile 3 = 422 HQ, the usual editing intermediate; vendor apl0 as Apple's own files say,
    # which some editors check. MP4 has no ProRes tag (ffmpeg: "codec not currently supported")
    "prores": Codec("prores_ks", "yuv422p10le", ("mov", "matroska"), ("-profile:v", "3", "-vendor", "apl0"),
                    "ProRes 422 HQ", (PCM_AUDIO,)),
    # profile 4 = 4444: full chroma; yuva444p10le adds an (opaque) alpha plane for editors that want one
    "prores4444": Codec("prores_ks", "yuv444p10le", ("mov", "matroska"), ("-profile:v", "4", "-vendor", "apl0"),
                        "ProRes 4444", (PCM_AUDIO,)),
    # WebM for the web: VP9 in 4:2:0 plays in every current browser, with Opus sound (WebM takes
    # no AAC); also in .mkv and .mp4, where browsers play it too
    "vp9": Codec("libvpx-vp9", "yuv420p", ("webm", "matroska", "mp4"), VP9_ARGS, "VP9",
                 ("libopus", "-b:a", OPUS_BITRATE)),
}
FRAME_FORMATS = {"png": ".png", "tiff": ".tiff"}  # folder outputs: frame_000001.png / .tiff


@functools.cache
def ffmpeg_encoders() -> frozenset[str]:
    """The encoders of the ffmpeg in use (`ffmpeg -encoders`), read once per process."""
    return frozenset(re.findall(r"^ [VAS][\w.]{5} (?!=)(\S+)", ffmpeg_text("-encoders"), re.MULTILINE))


@functools.cache
def encoder_pix_fmts(encoder: str) -> tuple[str, ...]:
    """The pixel formats `encoder` takes (`ffmpeg -h encoder=NAME`), read once per encoder;
    () when ffmpeg does not say."""
    found = re.search(r"Supported pixel formats: ([^\n]*)", ffmpeg_text("-h", f"encoder={encoder}"))
    return tuple(found.group(1).split()) if found else ()


def ffmpeg_text(*args: str) -> str:
    try:
        p = subprocess.run([ffmpeg_exe(), "-hide_banner", *args], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise OutputError(f"cannot ask ffmpeg what it can write ({e}); reinstall imageio-ffmpeg "
                          f"(pip install --force-reinstall imageio-ffmpeg)") from e
    return p.stdout.decode("utf-8", "replace")


def pix_fmt_bits(pix_fmt: str) -> int:
    """Bits per component of an ffmpeg pixel format name: 'yuv422p10le' 10, 'rgb48le' 16, 'yuv420p' 8."""
    m = re.search(r"(\d+)(le|be)$", pix_fmt)
    if m and pix_fmt.startswith(("rgb", "bgr")) and int(m.group(1)) >= 48:  # rgb48le, rgba64le: per pixel
        return 16
    return int(m.group(1)) if m else 8


def subsampled(pix_fmt: str) -> tuple[bool, bool]:
    """(width must be even, height must be even) for a chroma-subsampled pixel format."""
    if "420" in pix_fmt or pix_fmt in ("nv12", "nv21", "p010le", "p016le"):
        return True, True
    if "422" in pix_fmt or pix_fmt in ("nv16", "nv20le"):
        return True, False
    return False, False


def default_pix_fmt(codec: str, crf: int = DEFAULTS["crf"]) -> str:
    """The pixel format `codec` writes unless told: its table entry; yuv444p for H.264/H.265/VP9
    at crf 0, since lossless with half the chroma thrown away would not be."""
    if crf == 0 and codec in ("h264", "h265", "vp9"):
        return "yuv444p"
    return CODECS[codec].pix_fmt


def codec_for(path: str, codec: str | None = DEFAULTS["codec"]) -> str:
    """The codec a video at `path` is written with: `codec` where given, else its container's own
    (CONTAINER_CODECS: VP9 for .webm), else H.264."""
    ext = os.path.splitext(os.fspath(path).rstrip("/"))[1].lower()
    return codec or CONTAINER_CODECS.get(ext, "h264")


def sink_options(output) -> dict:
    """open_sink's / check_output_path's encoding keywords from a config.OutputSettings."""
    return {k: getattr(output, k) for k in ("crf", "codec", "pix_fmt", "bit_depth", "frame_format")}


# ----------------------------------------------------------------------------- entry point


def kind_of(path: str) -> str:
    """'frames' (a folder), 'gif' or 'video' by the output path."""
    ext = os.path.splitext(path.rstrip("/"))[1].lower()
    if path.endswith("/") or ext == "":
        return "frames"
    return "gif" if ext == ".gif" else "video"


def check_output_path(path: str, *, codec: str | None = DEFAULTS["codec"], pix_fmt: str | None = None,
                      crf: int = DEFAULTS["crf"], bit_depth: int = DEFAULTS["bit_depth"],
                      frame_format: str = DEFAULTS["frame_format"]) -> str | None:
    """OutputError unless open_sink could write `path` with these settings: its folder exists
    and is writable, the extension is a known format, and this ffmpeg has the codec's encoder
    and writes it, in that pixel format and bit depth, into that container. Each refusal is one
    line naming the fix. Cheap (ffmpeg's lists are read once), so a render calls it before
    loading a network. Returns the pixel format a video will have (None for GIFs and folders)."""
    path = os.fspath(path)
    check_folder(path)
    ext = os.path.splitext(path.rstrip("/"))[1].lower()
    kind = kind_of(path)
    if kind != "frames" and os.path.isdir(path):
        raise OutputError(f"cannot write '{path}': it is a folder; end the path with '/' to "
                          f"write PNG frames into it, or choose a file name")
    if kind == "video" and ext not in VIDEO_FORMATS:
        raise OutputError(f"cannot write '{path}': unknown output format '{ext}'; use .mp4, "
                          f".mov, .mkv, .webm, .gif, or a folder path ending in '/' for PNG frames")
    if codec is not None and codec not in CODECS:
        raise OutputError(f"cannot write '{path}': unknown codec '{codec}'; use --codec {'|'.join(CODECS)}")
    if bit_depth not in (8, 16):
        raise OutputError(f"cannot write '{path}' at {bit_depth} bits; use --bit-depth 8 or 16")
    if frame_format not in FRAME_FORMATS:
        raise OutputError(f"cannot write '{path}': unknown frame format '{frame_format}'; use "
                          f"--frame-format {'|'.join(FRAME_FORMATS)}")
    video_only = [flag for flag, given in ((f"--codec {codec}", codec not in (None, "h264")),
                                           (f"--pix-fmt {pix_fmt}", pix_fmt is not None)) if given]
    if kind == "frames":
        if video_only:
            raise OutputError(f"cannot write '{path}' with {video_only[0]}: a folder ending in '/' holds "
                              f"PNG or TIFF frames (--frame-format); write a .mov/.mkv/.mp4 for a codec")
        return None
    if frame_format != "png":
        raise OutputError(f"cannot write '{path}' with --frame-format {frame_format}: that is for frame "
                          f"folders; end the output path with '/' (e.g. '{stem_of(path)}/')")
    if kind == "gif":
        if video_only or bit_depth != 8:
            flag = video_only[0] if video_only else f"--bit-depth {bit_depth}"
            raise OutputError(f"cannot write '{path}' with {flag}: a GIF is 8-bit with its own palette; "
                              f"write a .mov/.mp4/.mkv, or a folder ending in '/' for 16-bit frames")
        return None
    codec = codec_for(path, codec)
    c = CODECS[codec]
    if VIDEO_FORMATS[ext] not in c.containers:
        exts = [e for e, muxer in VIDEO_FORMATS.items() if muxer in c.containers]
        fits = [name for name, k in CODECS.items() if VIDEO_FORMATS[ext] in k.containers]
        raise OutputError(f"cannot write '{path}': {c.label} does not go in {ext} files; use "
                          f"{' or '.join(exts)} (e.g. '{stem_of(path)}{exts[0]}'), or --codec {'|'.join(fits)}")
    for encoder in (c.encoder, c.audio[0]):  # the sound's too (libopus beside VP9): checked before any work
        if encoder not in ffmpeg_encoders():
            have = [name for name, k in CODECS.items() if k.encoder in ffmpeg_encoders()]
            raise OutputError(f"cannot write '{path}' with --codec {codec}: this ffmpeg has no {encoder} "
                              f"encoder; choose --codec {'|'.join(have) or '...'} or install an imageio-ffmpeg with it")
    fmt = pix_fmt or default_pix_fmt(codec, crf)
    takes = encoder_pix_fmts(c.encoder)
    if takes and fmt not in takes:
        raise OutputError(f"cannot write '{path}': {c.encoder} (--codec {codec}) has no pixel format "
                          f"'{fmt}'; use --pix-fmt {'|'.join(takes)}")
    if bit_depth == 16 and pix_fmt_bits(fmt) <= 8:
        deeper = [f for f in takes if pix_fmt_bits(f) > 8 and subsampled(f) == subsampled(fmt)]
        fix = f"--pix-fmt {deeper[0]}" if deeper else "--codec prores"
        raise OutputError(f"cannot write '{path}' at 16 bits: {fmt} keeps 8; use {fix}, or write "
                          f"16-bit PNG/TIFF frames to a folder ending in '/'")
    return fmt


def stem_of(path: str) -> str:
    return os.path.splitext(os.path.basename(path.rstrip("/")))[0] or "output"
