"""The live job: a camera or a stream dreamed as it happens, out to one or more sinks.

    source (livesources: newest frame only) ─▶ look.push (api.VideoDreamer: flow carry, cuts
    reset) ─▶ every sink's show (livesinks) ─▶ status (progress) ... until the time is up, the
    source ends, a quit command, or `cancel` (Ctrl-C, SIGTERM in the CLI)

1) The source starts; its first frame fixes the size. 2) Every look (the settings, then each
`looks` entry: a preset or a layer spec) is made and dreams that frame twice (a shot's first
frame and a next one), so each look's compiled loops exist before the show starts: switching
looks never stalls on a compile. 3) The sinks open. 4) The loop: the newest frame is dreamed
next (the rest are dropped by the source and counted), its dream shown; with `fps` the
governor sets the steps, then the octaves, for the next frame. Commands (`Commands`: the
window's keys and the CLI's standard input) act between frames. 5) Every exit closes the
sinks, so a recording is complete and playable.

Frame numbers are the source's (its frames at its rate, dropped ones included): schedules and
seeds follow time. Latency: from a frame's arrival to its dream handed to the sinks. A setting
written "audio:source:MIN:MAX[:MODE]" (step, octaves, iterations_next) follows the source's own
sound as it plays (livesources: a file's track at the frame played, a stream's heard live).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from dreamvid.config.settings import RULES, Config, LiveSettings
from dreamvid.core.errors import ConfigError
from dreamvid.core.files import write_image
from dreamvid.live.sinks import LiveSink, check_live_sink, open_live_sink
from dreamvid.live.sources import open_live_source
from dreamvid.media.formats import sink_options

STATUS_EVERY = 0.5  # seconds between status updates
WINDOW = 2.0  # seconds of frames the status's rates and latencies are taken over
STEP_FACTOR = 1.25  # stronger / weaker: the step times or divided by this
CARRY_STEP = 0.05  # more / less carry: the blend plus or minus this

# what `Commands.set` takes, with its bounds (None: a look's name or number): the step's factor, the
# settings' own rules for the blend and the carry limit
VALUES = {"strength": (0.01, 100.0), "carry": RULES["blend"], "carry_limit": RULES["carry_limit"], "look": None}
GLIDE = 0.5  # share of the distance to a control's target closed each frame: 97% there after 5 frames

# commands, by name, one-letter key and the window's key (the same letters)
COMMANDS = {"next": "n", "prev": "p", "stronger": "+", "weaker": "-", "more": "]", "less": "[",
            "reset": "r", "pause": " ", "snapshot": "s", "quit": "q"}
KEYS = {ord(k): name for name, k in COMMANDS.items()} | {ord("="): "stronger", 27: "quit"}  # '=' beside '+', Esc
HELP = ("keys / commands: n next look, p previous, + stronger, - weaker, ] more carry, [ less, r reset, "
        "space pause, s snapshot, q quit")


class Commands:
    """Commands for a live run from anywhere (a thread reading standard input, OSC, a UI), thread
    safe: `put(text)` takes a name (`next`, `stronger`, ...) or its key letter; `set(name, value)`
    a control with its value (VALUES: `strength` the step factor, `carry` the blend, `carry_limit`,
    `look` by name or number); `notice(text)` a line for the status. What cannot be taken is
    refused with ConfigError in one line. The live loop takes them between frames (`take`)."""

    def __init__(self) -> None:
        self._q: queue.Queue[tuple[str, Any]] = queue.Queue()

    def put(self, text: str) -> str:
        word = text.strip().lower()
        if word in ("", "space"):
            word = "pause" if text == " " or word == "space" else ""
        name = word if word in COMMANDS else next((n for n, k in COMMANDS.items() if k == word), None)
        if name is None:
            raise ConfigError(f"unknown live command {text.strip()!r}; {HELP}")
        self._q.put((name, None))
        return name

    def set(self, name: str, value: Any) -> Any:
        """Queue control `name` at `value` (checked here: a number within VALUES' bounds, or for
        `look` a name or a number); returns the value taken."""
        if name not in VALUES:
            raise ConfigError(f"unknown live control {name!r}; use one of {', '.join(VALUES)}")
        bounds = VALUES[name]
        if bounds is None:  # look: a name, or a number (an integral float from a fader is a number)
            if isinstance(value, float) and value.is_integer() or isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
                raise ConfigError(f"look takes a look's name or number, got {value!r}")
        else:
            lo, hi = bounds
            try:
                if isinstance(value, bool):
                    raise TypeError
                value = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{name} takes a number between {lo:g} and {hi:g}, got {value!r}") from None
            if not lo <= value <= hi:  # (NaN fails too)
                raise ConfigError(f"{name} must be between {lo:g} and {hi:g}, got {value:g}")
        self._q.put((name, value))
        return value

    def notice(self, text: str) -> None:
        """A line for the status (Status.message), as a command's notice is."""
        self._q.put(("notice", str(text)))

    def take(self) -> list[tuple[str, Any]]:
        """What came since the last call, in order: (name, value), value None for a plain command."""
        out = []
        while True:
            try:
                out.append(self._q.get_nowait())
            except queue.Empty:
                return out


class Glide:
    """Continuous controls (an OSC fader on `strength` or `carry`) reach their target over a few
    frames rather than at once: before each frame the value closes GLIDE of the distance left,
    so a fader's sweep comes out as a smooth change and a jump in the dream never shows."""

    def __init__(self) -> None:
        self.targets: dict[str, float] = {}

    def step(self, chain, sched) -> None:
        """Move the current look's strength (the step's factor) and carry (the blend) one frame on."""
        for name, target in list(self.targets.items()):
            now = sched["step"].factor if name == "strength" else chain.blend
            value = now + GLIDE * (target - now)
            if abs(target - value) <= 0.01 * max(abs(target), 0.01):  # within 1%: there
                value = self.targets.pop(name)
            if name == "strength":
                sched["step"].factor = value
            else:
                chain.blend = value


class Governed:
    """A schedule (`.at(k)`) the live run can override: the governor's value where set, else the
    user's schedule, or the source's sound (`follow`: "audio:source:MIN:MAX"), times `factor`
    (stronger/weaker scale the step this way)."""

    def __init__(self, base) -> None:
        self.base, self.value, self.factor = base, None, 1.0
        self.sound = self.level = None

    def follow(self, spec, level: Callable[[int, str], float]) -> None:
        """Follow the source's sound: spec.lo at silence to spec.hi at its loudest (level(k, mode))."""
        self.sound, self.level = spec, level

    def at(self, k):
        if self.value is not None:
            return self.value
        if self.sound is not None:
            return (self.sound.lo + (self.sound.hi - self.sound.lo) * self.level(k, self.sound.mode)) * self.factor
        return self.base.at(k) * self.factor


class Governor:
    """Holds a target rate by the steps per octave, then the octaves: after each frame, with the
    measured seconds between dreams (smoothed), too slow lowers the steps (in proportion) down to
    `steps[0]`, then the octaves down to `octaves[0]`; room to spare (under 80% of the frame's
    time) raises the octaves back first, then the steps up to `steps[1]`. A change waits
    `hold` frames before the next, so each is measured before it is judged."""

    def __init__(self, fps: float, steps: tuple[int, int], octaves: tuple[int, int], hold: int = 3):
        self.budget = 1.0 / fps
        self.steps_range, self.octaves_range = steps, octaves
        self.steps, self.octaves = steps[1], octaves[1]
        self.hold, self.wait, self.pace = hold, hold, None
        self.changes = 0

    def update(self, seconds: float) -> None:
        self.pace = seconds if self.pace is None else 0.6 * self.pace + 0.4 * seconds
        if self.wait > 0:
            self.wait -= 1
            return
        lo_s, hi_s = self.steps_range
        lo_o, hi_o = self.octaves_range
        before = (self.steps, self.octaves)
        if self.pace > 1.05 * self.budget:
            if self.steps > lo_s:
                self.steps = max(lo_s, min(self.steps - 1, int(self.steps * self.budget / self.pace)))
            elif self.octaves > lo_o:
                self.octaves -= 1
        elif self.pace < 0.8 * self.budget:
            if self.octaves < hi_o:
                self.octaves += 1
            elif self.steps < hi_s:
                self.steps += 1
        if (self.steps, self.octaves) != before:
            self.changes += 1
            self.wait = self.hold


@dataclass
class Status:
    """What a live run reports (the progress callback's argument, about twice a second, and at
    the end as LiveResult.status): rates over the last WINDOW seconds, latency in seconds."""

    seconds: float = 0.0
    received: int = 0
    dreamed: int = 0
    dropped: int = 0
    fps_in: float = 0.0
    fps_out: float = 0.0
    latency_median: float = 0.0
    latency_p95: float = 0.0
    steps: int | None = None
    octaves: int | None = None
    look: str = ""
    paused: bool = False
    message: str = ""  # a notice: a command done, a snapshot written

    def line(self) -> str:
        gov = f" steps {self.steps} octaves {self.octaves}" if self.steps is not None else ""
        return (f"{self.seconds:6.1f} s  in {self.fps_in:5.1f} fps  out {self.fps_out:5.1f} fps  dropped {self.dropped}"
                f"  latency {self.latency_median * 1000:.0f} ms (p95 {self.latency_p95 * 1000:.0f}){gov}"
                f"  {self.look}{'  PAUSED' if self.paused else ''}")


@dataclass
class LiveResult:
    """The summary of a live run: the last Status over the whole run, each dreamed frame's
    (time since start, latency, source index, steps, octaves, waited), the sinks' paths and late
    moments. `waited`: seconds from the frame's arrival to the start of its dream, what falling
    behind would grow (the rest of the latency is the dream's own time)."""

    status: Status
    frames: list[tuple[float, float, int, int | None, int | None, float]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    late: dict[str, int] = field(default_factory=dict)
    cuts: int = 0
    governor_changes: int = 0

    def summary(self) -> str:
        s = self.status  # its latencies over the whole run (run_live's end)
        gov = ""
        if s.steps is not None:
            steps = [f[3] for f in self.frames if f[3] is not None]
            octs = [f[4] for f in self.frames if f[4] is not None]
            gov = (f"; governor: steps {min(steps)}..{max(steps)} (last {s.steps}), octaves {min(octs)}..{max(octs)} "
                   f"(last {s.octaves}), {self.governor_changes} changes") if steps else ""
        return (f"{s.dreamed} frames dreamed of {s.received} received in {s.seconds:.1f} s "
                f"({s.dreamed / max(s.seconds, 1e-9):.2f} fps out), {s.dropped} dropped; "
                f"latency median {s.latency_median * 1000:.0f} ms, p95 {s.latency_p95 * 1000:.0f} ms{gov}")


def _percentile(values, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else 0.0


def check_sinks(cfg: Config, sinks: list[str]) -> None:
    """OutputError before anything starts, for a sink that cannot be written."""
    if not sinks:
        raise ConfigError("a live run needs at least one output: -o window, -o show.mp4, -o udp://HOST:PORT, "
                          "-o virtualcam")
    for spec in sinks:
        check_live_sink(spec, **sink_options(cfg.output))


def run_live(cfg: Config, live: LiveSettings, source_spec: str, sink_specs: list[str],
             make_look: Callable[[dict, Any], Any], looks: list[tuple[str, dict]], *,
             progress: Callable[[Status], Any] | None = None, cancel: threading.Event | None = None,
             commands: Commands | None = None, on_frame: Callable[[np.ndarray, np.ndarray, dict], Any] | None = None
             ) -> LiveResult:
    """The live job (module docstring). `make_look(overrides, fps)` makes a look's chain (an
    api.VideoDreamer: push/flush/reset) from the settings with `overrides`; `looks`: (name,
    overrides) for each, the first the plain settings. `progress(Status)` about twice a second;
    `on_frame(input, dream, stats)` after each dream. Returns LiveResult."""
    check_sinks(cfg, sink_specs)
    commands = commands or Commands()
    cancel = cancel or threading.Event()
    source = open_live_source(source_spec, width=cfg.output.width, loop=live.loop,
                              sound_modes={spec.mode for spec in live.sounds.values()}, pace=live.pace)
    sinks: list[LiveSink] = []
    chains = []
    result = LiveResult(Status())
    try:
        first = source.take(timeout=30.0)  # 1) the size of every frame
        if first is None:
            raise ConfigError(f"'{source_spec}' gave no frame within 30 s; check that it is sending")
        for name, over in looks:  # 2) every look compiled on the first frame before the show
            chain = make_look(over, source.fps)
            chain.push(first.frame, index=first.index)
            chain.push(first.frame, index=first.index + 1)
            chain.flush()
            chain.reset()
            schedules = {k: Governed(chain.schedule(k)) for k in ("step", "iterations", "octaves")}
            for key, spec in live.sounds.items():  # settings that follow the source's own sound
                schedules[key].follow(spec, source.level)
            for key, governed in schedules.items():  # the chain reads them each frame
                chain.set_schedule(key, governed)
            chains.append((name, chain, schedules))
        rate = live.fps or float(source.fps)
        fps = Fraction(rate).limit_denominator(1001)
        h, w = first.frame.shape[:2]
        for spec in sink_specs:  # 3) the sinks, once the size is known
            sinks.append(open_live_sink(spec, fps=fps, size=(w, h), fullscreen=live.fullscreen,
                                        **sink_options(cfg.output)))
        governor = None
        if live.fps:
            steps_hi = live.max_steps if live.max_steps is not None else cfg.video.iterations_next
            governor = Governor(live.fps, (min(live.min_steps, steps_hi), steps_hi),
                                (min(live.min_octaves, cfg.dream.octaves), cfg.dream.octaves))
        _loop(live, source, sinks, chains, governor, commands, cancel, progress, on_frame, result)
    finally:
        source.close()
        errors = []
        for sink in sinks:  # 5) every sink closed, whatever happened: the recording playable
            try:
                path = sink.close()
                if path:
                    result.outputs.append(path)
                result.late[sink.name] = sink.late
            except Exception as exc:  # noqa: BLE001 (every sink closed:) the first failure is raised once all are closed
                errors.append(exc)
        for _, chain, _ in chains:
            chain.close()
    if errors:
        raise errors[0]
    return result


def _loop(live, source, sinks, chains, governor, commands, cancel, progress, on_frame, result) -> None:
    """4) the frames, until the end (module docstring)."""
    status, current, paused = result.status, 0, False
    t_start = time.perf_counter()
    t_end = None if live.seconds is None else t_start + live.seconds
    pending: dict[int, Any] = {}  # source index -> (the Captured, when its dream began), until the dream comes back
    outs: deque[tuple[float, float]] = deque()  # (time, latency) of the dreams of the last WINDOW seconds
    last_out = last_status = None
    last_dream = None
    glide = Glide()
    base_in, base_drop = source.received, source.dropped  # what came during the warm-up is not the show's
    received_at = deque([(t_start, source.received)])  # (time, frames received then), the last WINDOW seconds

    def report(message: str = "") -> None:
        now = time.perf_counter()
        while outs and outs[0][0] <= now - WINDOW:
            outs.popleft()
        while len(received_at) > 1 and received_at[0][0] <= now - WINDOW:
            received_at.popleft()
        lats = [lat for _, lat in outs]
        status.seconds = now - t_start
        status.received, status.dropped = source.received - base_in, source.dropped - base_drop
        status.fps_out = len(outs) / min(WINDOW, max(status.seconds, 1e-9))
        t0, n0 = received_at[0]
        if now - t0 > 0.2:
            status.fps_in = (source.received - n0) / (now - t0)
        status.latency_median, status.latency_p95 = (float(np.median(lats)) if lats else 0.0), _percentile(lats, 95)
        status.look, status.paused, status.message = chains[current][0], paused, message
        if progress is not None:
            progress(status)

    report("show started")
    while not cancel.is_set() and (t_end is None or time.perf_counter() < t_end):
        # commands: the window's keys, then what came from elsewhere
        for sink in sinks:
            for key in sink.keys():  # noqa: SIM118 (a sink's pressed keys, not a dict)
                if key in KEYS:
                    commands.put(KEYS[key])
        messages = []  # each command's notice, in order (several may wait behind a slow frame)
        for cmd, value in commands.take():
            _, chain, sched = chains[current]
            if cmd == "notice":
                messages.append(value)
            elif cmd == "quit":
                cancel.set()
            elif cmd in ("next", "prev", "look"):
                names = [name for name, _, _ in chains]
                if cmd != "look":
                    current = (current + (1 if cmd == "next" else -1)) % len(chains)
                elif value in names or (isinstance(value, int) and 0 <= value < len(chains)):
                    current = names.index(value) if value in names else value
                else:
                    looks = ", ".join(f"{i} {n}" for i, n in enumerate(names))
                    messages.append(f"no look {value!r}: the looks are {looks} (add one with --look)")
                    continue
                chains[current][1].reset()  # a fresh shot in the new look (a fader's glide goes on in it)
                messages.append(f"look: {chains[current][0]}")
            elif cmd in ("strength", "carry"):
                glide.targets[cmd] = value
                messages.append(f"{cmd} -> {value:.2f}")
            elif cmd == "carry_limit":
                chain.carry_limit = value
                messages.append(f"carry limit {value:g}")
            elif cmd in ("stronger", "weaker"):
                sched["step"].factor *= STEP_FACTOR if cmd == "stronger" else 1 / STEP_FACTOR
                messages.append(f"step x{sched['step'].factor:.2f}")
            elif cmd in ("more", "less"):
                chain.blend += CARRY_STEP if cmd == "more" else -CARRY_STEP  # (kept within 0..1)
                messages.append(f"carry {chain.blend:.2f}")
            elif cmd == "reset":
                chain.reset()
                messages.append("chain reset")
            elif cmd == "pause":
                paused = not paused
                messages.append("paused" if paused else "playing")
            elif cmd == "snapshot" and last_dream is not None:
                os.makedirs(live.snapshots, exist_ok=True)
                path = os.path.join(live.snapshots, f"dreamvid-{time.strftime('%Y%m%d-%H%M%S')}-{status.dreamed}.png")
                write_image(path, last_dream)
                messages.append(f"snapshot {path}")
            elif cmd == "snapshot":
                messages.append("snapshot: nothing dreamed yet")
        for message in messages:
            report(message)
        if cancel.is_set() or (live.frames is not None and status.dreamed >= live.frames):
            break
        got = source.take(timeout=0.1)
        if got is None:
            if source.ended:
                break
            continue
        if paused:  # the status goes on (the operator sees PAUSED and the rates), nothing is dreamed
            if last_status is None or time.perf_counter() - last_status > STATUS_EVERY:
                report()
                last_status = time.perf_counter()
            continue
        _, chain, sched = chains[current]
        glide.step(chain, sched)
        if governor is not None:
            sched["iterations"].value, sched["octaves"].value = governor.steps, governor.octaves
        pending[got.index] = (got, time.perf_counter(), sched["step"].at(got.index))
        done = chain.push(got.frame, index=got.index)
        for k, out, stats in done:  # on a GPU the frame before, fetched once this one is queued
            cap, began, step = pending.pop(k, (None, None, None))
            for sink in sinks:
                sink.show(out)
            now = time.perf_counter()
            if cap is None:
                continue
            latency = now - cap.at
            outs.append((now, latency))
            status.dreamed += 1
            result.cuts += bool(stats.get("cut")) and status.dreamed > 1
            result.frames.append((now - t_start, latency, k, governor and governor.steps, governor and governor.octaves,
                                  began - cap.at))
            if governor is not None and last_out is not None:
                changes = governor.changes
                governor.update(now - last_out)
                status.steps, status.octaves = governor.steps, governor.octaves
                if governor.changes != changes:  # it says what it chose
                    report(f"governor: {governor.steps} steps, {governor.octaves} octaves for {live.fps:g} fps "
                           f"(measured {1 / governor.pace:.1f})")
            last_out, last_dream = now, out
            if on_frame is not None:
                on_frame(cap.frame, out, dict(stats, index=k, latency=latency, step=step))
        pending = {k: c for k, c in pending.items() if k >= got.index - 2}
        now = time.perf_counter()
        received_at.append((now, source.received))  # trimmed to the last WINDOW seconds by report()
        if last_status is None or now - last_status > STATUS_EVERY:
            report()
            last_status = now
    # the frame still queued on a device chain
    chain = chains[current][1]
    for _k, out, _stats in chain.flush():
        for sink in sinks:
            sink.show(out)
    status.seconds = time.perf_counter() - t_start
    lats = [f[1] for f in result.frames]
    status.latency_median = float(np.median(lats)) if lats else 0.0
    status.latency_p95 = _percentile(lats, 95)
    status.fps_out = status.dreamed / max(status.seconds, 1e-9)
    status.received, status.dropped = source.received - base_in, source.dropped - base_drop
    status.fps_in = status.received / max(status.seconds, 1e-9)
    result.governor_changes = governor.changes if governor else 0


__all__ = ["COMMANDS", "HELP", "KEYS", "VALUES", "Commands", "Glide", "Governed", "Governor", "LiveResult", "Status",
           "check_sinks", "run_live"]
