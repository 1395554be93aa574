"""Command line: arguments -> Config (command line over preset over defaults), progress bars,
one-line messages and exit codes. The only module that prints or exits; no stage logic here.

Exit codes: 0 done, 2 bad input or settings (one line, no traceback unless DREAMVID_DEBUG=1),
1 an unexpected failure; stopped by a signal, 128 + its number (the shells' convention): 130
Ctrl-C (SIGINT), 143 SIGTERM (job schedulers, `timeout`, `docker stop`), 129 SIGHUP (a closed
terminal).

Stopping is a flag, not an exception: the three signals only set `Stop.event` (the API's
`cancel=`), which the job honours at its next safe point (after the network loads, between
octaves of a still, between frames and tiles, before the encoder closes), through the same path a
cancelled API call takes: the finished frames kept, ffmpeg closed, nothing under the output's
name unless it is whole, one line saying how to resume. An exception raised from a signal handler
would be lost wherever the signal lands in a `finally`, a `__del__` or a garbage-collection
callback; a flag is never lost, and a second signal during the clean-up only sets it again. The
handlers are in place before anything slow is imported (this module imports only the settings at
its top; `dreamvid`'s own names load lazily), so a stop in the first second is honoured too.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from dreamvid.core.errors import Cancelled, DreamvidError

log = logging.getLogger("dreamvid")
DEBUG = os.environ.get("DREAMVID_DEBUG", "") not in ("", "0")


class Stop:
    """SIGINT, SIGTERM and SIGHUP as a flag (module docstring): `event` (a threading.Event, what
    the API takes as `cancel=`) is set by the first of them, and `signum` says which. Installed
    only in the main thread (where Python runs handlers), leaving a signal someone set to be
    ignored (nohup, a background job's SIGINT) ignored; `restore()` puts the handlers back (main
    is called in-process too)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self.before: dict = {}

    def _handle(self, signum, _frame) -> None:
        if self.signum is None:
            self.signum = signum
        self.event.set()  # nothing raised: the job sees it at its next safe point

    def install(self) -> Stop:
        if threading.current_thread() is threading.main_thread():
            self.before = {s: signal.getsignal(s) for s in self.SIGNALS}
            for s, handler in self.before.items():
                if handler is not signal.SIG_IGN:
                    signal.signal(s, self._handle)
        return self

    def restore(self) -> None:
        for s, handler in self.before.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)

    def check(self) -> None:
        """A safe point of the command line's own: Cancelled once a stop signal came."""
        if self.event.is_set():
            raise Cancelled("stopped before the work began")

    def code(self) -> int:
        """The exit code of a stop: 128 + the signal's number (130 where no signal was seen)."""
        return 128 + int(self.signum or signal.SIGINT)

    def how(self) -> str:
        signum = self.signum or signal.SIGINT
        return "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"


def _say(line: str) -> None:
    """A last line on stderr, which a closed terminal (SIGHUP) may no longer take."""
    try:
        print(line, file=sys.stderr)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    stop = Stop().install()  # first: a stop from here on is a flag the command honours
    try:
        return _main(argv, stop)
    finally:
        stop.restore()


def _main(argv: list[str] | None, stop: Stop) -> int:
    from dreamvid.cli.commands import COMMANDS  # once the signals are caught: OpenCV, SciPy, the settings
    from dreamvid.cli.parser import build_parser  # (the settings)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    # dreamvid's own notices at INFO; other libraries' only from WARNING (JAX, say, logs at INFO
    # that it found no TPU while it looks for a GPU)
    logging.basicConfig(format="dreamvid: %(message)s", level=logging.WARNING if not DEBUG else logging.DEBUG)
    log.setLevel(logging.INFO if not DEBUG else logging.DEBUG)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2, one line already printed)
        return exc.code if isinstance(exc.code, int) else 2
    resumable = args.command in ("video", "zoom", "gallery")
    try:
        code = COMMANDS[args.command](args, stop)
    except (Cancelled, KeyboardInterrupt):  # a stop honoured (KeyboardInterrupt: a SIGINT before main ran)
        kept = ": finished frames are kept; run the same command again to resume" if resumable else ""
        _say(f"{stop.how()}{kept}")
        return stop.code()
    except DreamvidError as exc:
        if DEBUG:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug or an environment failure: one line unless debugging
        if DEBUG:
            raise
        print(f"error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
              "(run with DREAMVID_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return 1
    if stop.event.is_set() and args.command != "live":  # the stop came after the last safe point: the work is whole
        _say(f"{stop.how()} after the work was complete")
        return stop.code()
    return code


if __name__ == "__main__":
    sys.exit(main())
