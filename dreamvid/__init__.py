"""dreamvid: DeepDream videos and infinite-zoom animations."""

import os as _os

__version__ = "0.1.0"

# TensorFlow's oneDNN kernels make the network's gradient faster on AVX2 CPUs (the README's
# benchmark figures), but TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI or
# BF16, or AMX. The switch is read when TensorFlow is imported, so it is set here, before any
# stage imports it; a value the user set wins, and DREAMVID_TF_DEFAULTS=1 leaves TensorFlow's
# own choice (the benchmark's reference runs that way).
if _os.environ.get("DREAMVID_TF_DEFAULTS") != "1":
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
