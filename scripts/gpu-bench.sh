#!/usr/bin/env bash
# The GPU measurement: `python -m dreamvid.bench` at 1280x720 on the GPU, for each Keras backend
# the machine has, project and reference side by side in each run.
#
# Made for a machine with PyTorch, JAX, NumPy, SciPy and OpenCV but no Keras and no network: the
# missing pure-Python packages travel as wheels in .whl/ (keras, namex, optree) and imageio-ffmpeg's
# Python part in .whl/imageio_ffmpeg (its 170 MB ffmpeg left behind: the system's ffmpeg is used
# when there is one, else the bench reads and writes PNG frames). Prepare them once, here:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl keras==3.15.1 namex optree
#   mkdir -p .whl/imageio_ffmpeg/binaries && cp "$(python3 -c 'import imageio_ffmpeg,os;print(os.path.dirname(imageio_ffmpeg.__file__))')"/{*.py,binaries/__init__.py} ...
# Then run `bash scripts/gpu-bench.sh [FRAMES] [BACKENDS]` on the GPU machine from the repository
# root; reports go to $OUT (or /tmp/dreamvid-gpu). PARTS="dream" runs the dream alone only
# (default "pipeline dream").
set -uo pipefail
cd "$(dirname "$0")/.."
frames=${1:-48}
backends=${2:-"jax torch tensorflow"}
out=${OUT:-/tmp/dreamvid-gpu}
parts=${PARTS:-"pipeline dream"}
mkdir -p "$out"
site=/tmp/dreamvid-site
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl || exit 1
  [ -d .whl/imageio_ffmpeg ] && cp -r .whl/imageio_ffmpeg "$site/"
fi
export PYTHONPATH="$site:$PWD" PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
export DREAMVID_CACHE=/tmp/dreamvid-cache  # JAX's persistent compilation cache lives here
io=png
command -v ffmpeg >/dev/null && io=mp4
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; KERAS_BACKEND=jax python3 -c \
  'import numpy, cv2, keras; print("numpy", numpy.__version__, "opencv", cv2.__version__, "keras", keras.__version__)'; } \
  2>&1 | tee "$out/machine.txt"
# 1) the whole pipeline, project and reference, for each backend (PyTorch on fewer frames: slower)
for b in $backends; do
  [[ " $parts " == *" pipeline "* ]] || break
  python3 -c "import $b" 2>/dev/null || { echo "$b: not installed, skipped" | tee -a "$out/machine.txt"; continue; }
  n=$frames; [ "$b" = torch ] && n=$(( frames / 2 ))
  timeout 240 python3 -m dreamvid.bench --backend "$b" --device gpu --model vgg16 --width 1280 --height 720 \
    --frames "$n" --io "$io" --sheet "$out/sheet-$b.jpg" 2>&1 | grep -v "^WARNING\|^I0000\|^W0000" | tee "$out/bench-$b.txt"
  if [ "$b" = jax ]; then
    # what the chain kept on the device gains: the same render fetching each dream before the
    # next frame is queued; a new process, so its compile time is that of loops loaded from
    # JAX's persistent compilation cache
    timeout 120 python3 -m dreamvid.bench --backend jax --device gpu --model vgg16 --width 1280 --height 720 \
      --frames "$n" --io "$io" --only project --no-chain 2>&1 | grep -v "^WARNING" | tee "$out/bench-jax-no-chain.txt"
  fi
done
# 2) the dream alone, nothing around it: the engine per call and queued as a render's chain
#    queues it, beside its per-octave calls, its step count passed in and the plainest loop;
#    then in float32 (JAX)
for b in $backends; do
  [[ " $parts " == *" dream "* ]] || break
  python3 -c "import $b" 2>/dev/null || continue
  for p in auto float32; do
    [ "$p" = float32 ] && [ "$b" != jax ] && continue
    timeout 240 python3 -m dreamvid.bench --backend "$b" --device gpu --model vgg16 --width 1280 --height 720 \
      --dream-only 20 --precision "$p" 2>&1 | grep "^dream only" | tee -a "$out/dream-only.txt"
  done
done
