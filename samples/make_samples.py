"""Rebuild the media in samples/ from public-domain / CC0 photographs shipped with scikit-image.

    pip install scikit-image          # only to run this script; dreamvid does not need it
    python samples/make_samples.py    # writes samples/coffee.jpg and samples/pan.mp4

or, without installing it: `pip download --no-deps scikit-image`, unzip the wheel, and pass
`--skimage-data path/to/skimage/data`. See samples/README.md for the sources and licences.

pan.mp4: 120 frames at 30000/1001 fps (4.004 s), 320x180, H.264 + AAC.
- frames 0-59: a slow pan to the right with a gentle zoom-in over `chelsea.png` (a cat);
- frame 60: a hard scene cut;
- frames 60-119: a pan upwards with a zoom-out over `rocket.jpg` (a launch);
- audio: a synthesised chord per scene (A3+E4, then C4+G4), changing exactly at the cut,
  with short fades, so audio/video sync and range muxing can be checked by ear.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import wave
from fractions import Fraction

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from anywhere inside the repo

from dreamvid.media.sinks import AudioSpec, open_sink  # noqa: E402
from dreamvid.media.sources import read_image  # noqa: E402

FPS = Fraction(30000, 1001)  # NTSC rate, to exercise exact frame rates end to end
SIZE = (320, 180)  # (width, height): small, even, 16:9
N_FRAMES = 120  # 4.004 s
CUT = 60  # first frame of the second scene
SAMPLE_RATE = 44100


def skimage_data_dir(arg: str | None) -> str:
    if arg:
        return arg
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("scikit-image is not installed: pip install scikit-image, or pass "
                 "--skimage-data DIR (the skimage/data folder of an unzipped wheel)")
    return os.path.join(list(spec.submodule_search_locations)[0], "data")


def pan_frame(img: np.ndarray, t: float, cx0, cy0, cx1, cy1, w0, w1) -> np.ndarray:
    """One output frame: a window of width w (pixels of img) centred at (cx, cy), where the
    centre and width move linearly from (cx0, cy0, w0) at t=0 to (cx1, cy1, w1) at t=1."""
    ease = 0.5 - 0.5 * np.cos(np.pi * t)  # smooth start and stop
    cx = cx0 + (cx1 - cx0) * ease
    cy = cy0 + (cy1 - cy0) * ease
    w = w0 + (w1 - w0) * ease
    s = SIZE[0] / w  # output pixels per image pixel
    # affine map image -> output: scale about the window centre, then move it to the middle
    m = np.array([[s, 0, SIZE[0] / 2 - s * cx], [0, s, SIZE[1] / 2 - s * cy]], np.float64)
    return cv2.warpAffine(img, m, SIZE, flags=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)


def chord(freqs: list[float], seconds: float) -> np.ndarray:
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)  # 20 ms fades: no clicks
    return 0.4 * x * fade


def write_wav(path: str, mono: np.ndarray) -> None:
    pcm = (np.clip(mono, -1, 1) * 32767).astype("<i2")
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SAMPLE_RATE)
        f.writeframes(pcm.tobytes())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skimage-data", help="skimage/data folder (default: the installed one)")
    ap.add_argument("--out", default=HERE, help="output folder (default: samples/)")
    args = ap.parse_args()
    data = skimage_data_dir(args.skimage_data)

    # 1) the still: coffee.png (600x400, CC0) as a JPEG, kept at its own size
    coffee = read_image(os.path.join(data, "coffee.png"))
    cv2.imwrite(os.path.join(args.out, "coffee.jpg"), cv2.cvtColor(coffee, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 90])

    # 2) the clip's pictures
    cat = read_image(os.path.join(data, "chelsea.png"))  # (300, 451, 3)
    rocket = read_image(os.path.join(data, "rocket.jpg"))  # (427, 640, 3)

    # 3) the audio: one chord per scene, the change on the cut's exact time
    cut_s = float(CUT / FPS)
    total_s = float(N_FRAMES / FPS)
    audio = np.concatenate([chord([220.0, 329.63], cut_s), chord([261.63, 392.0], total_s - cut_s)])
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "tones.wav")
        write_wav(wav, audio)
        # 4) the frames: two pans, a hard cut between them
        out = os.path.join(args.out, "pan.mp4")
        with open_sink(out, fps=FPS, size=SIZE, audio=AudioSpec(wav, 0.0, None), crf=26) as sink:
            for i in range(N_FRAMES):
                if i < CUT:
                    t = i / (CUT - 1)
                    frame = pan_frame(cat, t, 170, 150, 290, 140, 300, 240)
                else:
                    t = (i - CUT) / (N_FRAMES - CUT - 1)
                    frame = pan_frame(rocket, t, 330, 300, 300, 160, 300, 420)
                sink.write(frame)
    print(f"wrote {os.path.join(args.out, 'coffee.jpg')} and {out}")


if __name__ == "__main__":
    main()
