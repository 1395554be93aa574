#!/usr/bin/env bash
# The GPU measurement of dreaming live (issue 20's "Done when"): 1280x720 at >= 25 frames/s out,
# latency (a frame's arrival to its dream handed to the sinks) <= 120 ms, the governor holding
# --fps 25. Made for the same machine as scripts/gpu-bench.sh (PyTorch, JAX, NumPy, SciPy, OpenCV;
# no Keras, no network): prepare .whl/ as its header says, then, from the repository root,
#   bash scripts/gpu-live.sh [SECONDS] [BACKEND]
# (default 20 s on jax). Reports go to $OUT (or /tmp/dreamvid-gpu-live): machine.txt, one log per
# run with its summary line (frames dreamed and dropped, fps out, latency median and p95, the
# governor's range), and the recordings' first seconds.
#
# Runs: 1) a file source played live at its own rate (samples/pan.mp4 upscaled to 1280x720, 25 fps,
# looped), with the dream of the engine's GPU benchmark (vgg16 random weights: a trained network's
# cost without a download; 3 octaves, 5 steps after the first frame), no governor; 2) the same
# with --fps 25 (the governor's choice in the log); 3) with a system ffmpeg: the clip sent over
# UDP on the loopback at 25 frames/s, dreamed to a recording and a UDP sink.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
backend=${2:-jax}
out=${OUT:-/tmp/dreamvid-gpu-live}
mkdir -p "$out"
site=/tmp/dreamvid-site
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl || exit 1
  [ -d .whl/imageio_ffmpeg ] && cp -r .whl/imageio_ffmpeg "$site/"
fi
export PYTHONPATH="$site:$PWD" PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2 KERAS_BACKEND="$backend"
export DREAMVID_CACHE=/tmp/dreamvid-cache  # JAX's persistent compilation cache lives here
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; python3 -c \
  'import numpy, cv2, keras; print("numpy", numpy.__version__, "opencv", cv2.__version__, "keras", keras.__version__)'; } \
  2>&1 | tee "$out/machine.txt"

# the source: 1280x720 frames at 25 fps, as a PNG sequence (OpenCV decodes the sample: no ffmpeg needed)
clip=/tmp/dreamvid-live-720p
if [ ! -d "$clip" ]; then
  python3 - "$clip" <<'EOF' || exit 1
import os, sys, cv2
os.makedirs(sys.argv[1])
cap, k = cv2.VideoCapture("samples/pan.mp4"), 0
while True:
    ok, bgr = cap.read()
    if not ok:
        break
    cv2.imwrite(os.path.join(sys.argv[1], f"{k:05d}.png"), cv2.resize(bgr, (1280, 720), interpolation=cv2.INTER_CUBIC))
    k += 1
print(k, "frames at 1280x720")
EOF
fi
dream=(--backend "$backend" --device gpu --model vgg16 --weights random --layers block4_conv3 --width 1280
       --octaves 3 --iterations 10 --iterations-next 5 --seed 1 --no-stdin)
live() {  # name, then the live command's own arguments
  local name=$1; shift
  timeout $(( seconds + 300 )) python3 -m dreamvid.cli live "$@" "${dream[@]}" --seconds "$seconds" 2>&1 \
    | grep -v "^WARNING\|^I0000\|^W0000\|^E0000" | tee "$out/$name.txt"
  grep "frames dreamed of" "$out/$name.txt" | tail -1 | sed "s/^/$name: /" >> "$out/summary.txt"
}
# the PNG sequence played at 25 fps (an image sequence's rate); recorded as MP4 where ffmpeg is, else PNGs
rec=mp4; command -v ffmpeg >/dev/null || python3 -c 'import imageio_ffmpeg; imageio_ffmpeg.get_ffmpeg_exe()' 2>/dev/null || rec=png
sink() { [ "$rec" = mp4 ] && echo "$out/$1.mp4" || echo "$out/$1/"; }
live file "$clip/" -o "$(sink file)" --loop
live governor "$clip/" -o "$(sink governor)" --loop --fps 25 --min-steps 1 --max-steps 8 --iterations-next 8
if command -v ffmpeg >/dev/null; then
  port=51234
  ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -framerate 25 -i "$clip/%05d.png" -an \
    -c:v libx264 -preset ultrafast -tune zerolatency -g 25 -bf 0 -f mpegts "udp://127.0.0.1:$port?pkt_size=1316" &
  sender=$!
  live udp "udp://127.0.0.1:$port" -o "$out/udp.mp4" -o "udp://127.0.0.1:$(( port + 1 ))"
  kill "$sender"; wait "$sender" 2>/dev/null
else
  echo "udp: no system ffmpeg here, skipped (the file source above is the measurement)" | tee -a "$out/summary.txt"
fi
echo; cat "$out/summary.txt"
echo "pass: fps out >= 25 and latency median <= 120 ms in file/udp; the governor's line says what it chose"
