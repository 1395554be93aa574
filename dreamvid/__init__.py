"""dreamvid: DeepDream videos and infinite-zoom animations.

The Python API (dreamvid.api): `dream` a still, `render_video` a clip, `render_zoom` an
infinite zoom, `VideoDreamer` a chain fed one frame at a time, `load_model` a network to reuse,
`show` a still or a video in a notebook;
the typed errors every call raises (`DreamvidError` and its subclasses).

The names are loaded when first used (PEP 562's module `__getattr__`): `import dreamvid` and the
command line start without OpenCV, SciPy or a framework, so the command line catches its stop
signals before anything slow runs.
"""

import importlib as _importlib
import os as _os

# TensorFlow's oneDNN kernels make the network's gradient faster on AVX2 CPUs (the README's
# benchmark figures), but TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI or
# BF16, or AMX. The switch is read when TensorFlow is imported, so it is set here, before any
# stage imports it; a value the user set wins, and DREAMVID_TF_DEFAULTS=1 leaves TensorFlow's
# own choice (the benchmark's reference runs that way).
if _os.environ.get("DREAMVID_TF_DEFAULTS") != "1":
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

_WHERE = {  # public name -> the module that defines it
    **dict.fromkeys(["dream", "render_image", "render_video", "render_zoom", "render_gallery", "render_sheet",
                     "render_live", "VideoDreamer", "load_model", "settings", "show", "Update"], "dreamvid.api"),
    **dict.fromkeys(["DreamvidError", "ConfigError", "InputError", "OutputError", "BusyError", "ModelError",
                     "LayerError", "ResumeError", "Cancelled"], "dreamvid.core.errors"),
    "RenderResult": "dreamvid.core.progress",
}
__all__ = [*_WHERE, "__version__"]


def __getattr__(name: str):
    if name == "__version__":
        from dreamvid.version import VERSION  # read when asked for (the names load lazily)

        return VERSION
    if name in _WHERE:
        value = getattr(_importlib.import_module(_WHERE[name]), name)
        globals()[name] = value  # once: later lookups are plain attribute reads
        return value
    raise AttributeError(f"module 'dreamvid' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)
