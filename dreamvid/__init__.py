"""dreamvid: DeepDream videos and infinite-zoom animations.

The Python API (dreamvid.api): `dream` a still, `render_video` a clip, `render_zoom` an
infinite zoom, `VideoDreamer` a chain fed one frame at a time, `load_model` a network to reuse;
the typed errors every call raises (`DreamvidError` and its subclasses).
"""

import os as _os

# TensorFlow's oneDNN kernels make the network's gradient faster on AVX2 CPUs (the README's
# benchmark figures), but TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI or
# BF16, or AMX. The switch is read when TensorFlow is imported, so it is set here, before any
# stage imports it; a value the user set wins, and DREAMVID_TF_DEFAULTS=1 leaves TensorFlow's
# own choice (the benchmark's reference runs that way).
if _os.environ.get("DREAMVID_TF_DEFAULTS") != "1":
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from dreamvid.api import (Update, VideoDreamer, dream, load_model, render_gallery, render_image, render_sheet,  # noqa: E402
                          render_live, render_video, render_zoom, settings)
from dreamvid.errors import (BusyError, Cancelled, ConfigError, DreamvidError, InputError, LayerError, ModelError,  # noqa: E402
                             OutputError, ResumeError)
from dreamvid.progress import RenderResult  # noqa: E402
from dreamvid.version import VERSION as __version__  # noqa: E402

__all__ = ["dream", "render_image", "render_video", "render_zoom", "render_gallery", "render_sheet", "render_live", "VideoDreamer", "load_model", "settings", "Update", "RenderResult",
           "DreamvidError", "ConfigError", "InputError", "OutputError", "BusyError", "ModelError", "LayerError", "ResumeError",
           "Cancelled", "__version__"]
