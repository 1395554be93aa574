"""What a job reports while it runs and what it returns: the `Progress` callbacks a caller
passes (the CLI's progress bar, the API's callback) and the `RenderResult` it gets back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

from dreamvid.core.notebook import result_html, still_bytes


def _noop(*_args) -> None:
    pass


@dataclass
class Progress:
    """Callbacks a job calls; every one is optional (the CLI's bar, the API's callback).

    start(total, done): once, before the first frame: total frames (None when a video does not
        say) and frames already done by an earlier, interrupted run.
    frame(index, stats): after each frame is written; stats holds "cut" (bool, a new shot
        starts here), "amount" (mean |dream - its start image| on 0..255) and "seconds".
    info(message): one-line messages (device, scene cuts, resume, fallbacks).
    check(): a safe point between the others (the network loaded, the encoder about to close):
        raises errors.Cancelled once the caller asked to stop (`start` and `frame` check too).
    """

    start: Callable[[int | None, int], None] = _noop
    frame: Callable[[int, dict], None] = _noop
    info: Callable[[str], None] = _noop
    check: Callable[[], None] = _noop


@dataclass
class RenderResult:
    path: str  # the final output
    frames: int  # frames in it (including those taken from an earlier run)
    seconds: float  # wall time of this call
    fps: Fraction  # exact frame rate of the output; Fraction(0) for a still
    cuts: list[int] = field(default_factory=list)  # frame indices where a new shot starts
    resumed_from: int = 0  # first frame this call dreamed (0 = a fresh render)
    # seconds per stage, each summed over the thread it runs in: "decode", "flow" (cut test,
    # flow, occlusion, warp), "dream", "store" (work-folder PNGs), "encode"; and "wait", the
    # time the dream's thread spent waiting for the other stages (what concurrency did not hide)
    stages: dict = field(default_factory=dict)
    record: str = ""  # the record of the settings beside the output (workfolder.record_path); "" for a sheet

    # In a notebook the result shows as the output itself (played, or as an image) over a table of
    # its frames, time and settings (core.notebook); nothing else calls these.
    def _repr_html_(self) -> str:
        return result_html(self)

    def _repr_png_(self) -> bytes | None:
        return still_bytes(self.path).get("png")

    def _repr_jpeg_(self) -> bytes | None:
        return still_bytes(self.path).get("jpeg")


__all__ = ["Progress", "RenderResult"]
