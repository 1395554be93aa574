"""OSC for live shows (`dreamvid live --osc [HOST:]PORT`): the show's commands as Open Sound
Control messages from a lighting desk, TouchOSC, Max/MSP, Ableton or a script, over UDP.

    OSC client ─UDP─▶ python-osc's server (its own thread) ─▶ Commands (a queue) ─▶ the live
    loop, between frames (live.show)

The server only reads, checks and queues: the dream never waits for the network, and a message
that cannot be taken (an unknown address, a wrong argument, a datagram that is no OSC) becomes a
line on the show's status (Status.message), never an exception in the show. python-osc (the `osc`
extra) parses and dispatches OSC as the specification says (bundles, type tags, padding): a
maintained library rather than a parser of our own.

Addresses (ADDRESSES), mirroring the keys and the standard-input commands of live.show:
    /dreamvid/next, /prev, /stronger, /weaker, /more, /less, /reset, /pause, /snapshot, /quit
        as the keys; no argument, or a button's press (a non-zero number: its release, 0, is ignored)
    /dreamvid/strength X      the step's factor (1: the settings' step), X in 0.01..100; glides there
    /dreamvid/carry X         the share of the last dream carried on (the blend), 0..1; glides there
    /dreamvid/carry_limit X   the per-pixel limit of the carried change (0: none)
    /dreamvid/look NAME|N     a look by its name (the preset or layers given to --look) or number
                              (0: the settings); /dreamvid/layer is the same for a layer spec
"""

from __future__ import annotations

import importlib.util
import threading

from dreamvid.core.errors import ConfigError
from dreamvid.live.show import COMMANDS, VALUES, Commands

PREFIX = "/dreamvid/"
LOOPBACK = "127.0.0.1"  # this machine only, unless the address names another (a desk on the network: 0.0.0.0)
ADDRESSES = [PREFIX + name for name in (*COMMANDS, *VALUES, "layer")]
INSTALL = "pip install 'dreamvid[osc]'"


def osc_address(spec) -> tuple[str, int]:
    """(host, port) of `--osc [HOST:]PORT` ("9000": 127.0.0.1; "0.0.0.0:9000": every interface;
    "[::1]:9000"). ConfigError in one line naming the fix for anything else."""
    text = str(spec).strip()
    host, sep, port = text.rpartition(":")
    host = host.strip("[]") if sep else ""
    if not port.isdigit() or not 1 <= int(port) <= 65535 or (sep and not host):
        raise ConfigError(f"--osc takes [HOST:]PORT with a port 1..65535, e.g. --osc 9000 or --osc 0.0.0.0:9000; "
                          f"got {text!r}")
    return host or LOOPBACK, int(port)


def check_osc(spec) -> tuple[str, int]:
    """osc_address(spec), and ConfigError in one line when python-osc is not installed."""
    address = osc_address(spec)
    if importlib.util.find_spec("pythonosc") is None:
        raise ConfigError(f"--osc needs python-osc; install it with {INSTALL}")
    return address


class OscControl:
    """python-osc's UDP server on `spec`'s address, in a daemon thread, turning each message into
    a command on `commands` (module docstring). `address`: (host, port) as bound. Close it to stop
    the thread and free the port; ConfigError in one line when the port cannot be bound."""

    def __init__(self, spec, commands: Commands):
        host, port = check_osc(spec)
        from pythonosc import dispatcher, osc_packet, osc_server  # the optional extra, checked above

        self.commands = commands
        outer = self

        class Dispatcher(dispatcher.Dispatcher):
            def call_handlers_for_packet(self, data, client_address):
                try:  # python-osc drops a packet it cannot parse in silence: the show says so
                    osc_packet.OscPacket(data)
                except osc_packet.ParseError as exc:
                    outer.say(f"a malformed OSC packet from {client_address[0]} ignored ({exc})")
                    return []
                return super().call_handlers_for_packet(data, client_address)

        class Server(osc_server.BlockingOSCUDPServer):
            def verify_request(self, request, client_address):
                ok = super().verify_request(request, client_address)
                if not ok:  # neither a message nor a bundle: python-osc would drop it unseen
                    outer.say(f"a datagram from {client_address[0]} that is no OSC ({len(request[0])} bytes) ignored")
                return ok

            def handle_error(self, request, client_address):  # socketserver would print a traceback
                outer.say(f"an OSC message from {client_address[0]} could not be handled; ignored")

        table = Dispatcher()
        for address in ADDRESSES:
            table.map(address, self.handle)
        table.set_default_handler(self.unknown)
        try:
            self.server = Server((host, port), table)
        except OSError as exc:
            raise ConfigError(f"cannot listen for OSC on {host}:{port} ({exc.strerror or exc}); choose another port "
                              f"with --osc PORT, or stop what uses it") from None
        self.address = self.server.server_address[:2]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="dreamvid OSC", daemon=True)
        self.thread.start()
        commands.notice(f"OSC: listening on udp {self.address[0]}:{self.address[1]} for {PREFIX}...")

    def say(self, text: str) -> None:
        self.commands.notice(f"OSC: {text}")

    def unknown(self, address: str, *args) -> None:
        self.say(f"unknown address {address}; use {', '.join(ADDRESSES)}")

    def handle(self, address: str, *args) -> None:
        """One message for the show: checked, queued; what cannot be taken is said, not raised."""
        name = address[len(PREFIX):]
        try:
            if name in COMMANDS:
                if len(args) > 1 or (args and not isinstance(args[0], (int, float))):
                    raise ConfigError(f"takes no argument or a button's 1/0, got {list(args)!r}")
                if not args or args[0]:  # a button's release (0) is no second press
                    self.commands.put(name)
                return
            if len(args) != 1:
                raise ConfigError(f"takes one argument, got {len(args)}")
            self.commands.set("look" if name == "layer" else name, args[0])
        except ConfigError as exc:
            self.say(f"{' '.join([address, *map(repr, args)])} ignored: {exc}")

    def close(self) -> None:
        self.server.shutdown()  # serve_forever returns within its poll interval
        self.server.server_close()
        self.thread.join(timeout=5)


__all__ = ["ADDRESSES", "OscControl", "check_osc", "osc_address"]
