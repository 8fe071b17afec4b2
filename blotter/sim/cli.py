"""``blotter sim`` / ``python -m blotter.sim``: run the simulated exchange until Ctrl-C.

The project's main CLI calls :func:`add_arguments` on its ``sim`` subparser and then
:func:`run` (or :func:`main`) with the parsed namespace; ``python -m blotter.sim``
uses :func:`main` directly. Bad input is one line on stderr and exit status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import re
import signal
import sys
from typing import Any, NoReturn

from pydantic import ValidationError

from ..protocol.signing import mask_key
from .config import DEFAULT_SYMBOLS, DEMO_API_KEY, DEMO_API_SECRET, SimConfig
from .odd import ODDITIES
from .server import SimServer

PROG = "blotter sim"

# argparse dest -> SimConfig field, for options that map one to one.
_FIELDS = {
    "api_key": "api_key",
    "api_secret": "api_secret",
    "secret_encoding": "secret_encoding",
    "dialect": "dialect",
    "seed": "seed",
    "orders": "initial_orders",
    "rate": "rate",
    "account_group": "account_group",
    "ping_interval": "ping_interval",
    "client_ping_quiet": "client_ping_quiet",
    "max_time_skew": "max_time_skew",
    "fixed_time_ms": "fixed_time_ms",
    "ack_delay": "ack_delay",
    "refuse_cancels": "refuse_cancels",
    "drop_every": "drop_every",
    "malformed_every": "malformed_every",
    "skip_sn_every": "skip_sn_every",
    "repeat_sn_every": "repeat_sn_every",
    "drop_updates_every": "drop_updates_every",
    "open_orders_fault": "open_orders_fault",
    "rest_delay": "rest_delay",
    "rest_error": "rest_error",
    "tls_cert": "tls_cert",
    "tls_key": "tls_key",
}
_FLAGS = {field: "--" + dest.replace("_", "-") for dest, field in _FIELDS.items()}
_FLAGS.update(
    {
        "symbols": "--symbols",
        "initial_orders": "--orders",
        "no_pong": "--no-pong",
        "silent": "--silent",
        "odd_records": "--odd-records",
        "rest_down": "--rest-down",
        "ws_refused": "--ws-refused",
    }
)


class _BadInput(Exception):
    """One line for stderr."""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9_.\-]{0,39}")
"""A symbol as --symbols takes it (the config itself takes any text: hostile-symbol tests)."""
_PATTERN_WORDS = {
    "symbols": "give symbols separated by commas, e.g. BTC-PERP,ETH-PERP (letters, digits, - _ .)",
    "api_key": "printable ASCII without spaces (it travels in a header)",
}
"""What to do, for a value that does not match its field's pattern (not the pattern)."""


def _loopback_host(text: str) -> str:
    """``--host``: a loopback address or ``localhost`` only. The simulator is a drill
    exchange with published demo credentials: it is not served to other machines."""
    host = text.strip()
    if host.lower() == "localhost":
        return host
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise argparse.ArgumentTypeError(
            f"not a loopback address: {host[:60]!r} (the simulator listens on 127.0.0.1, ::1 or localhost only)"
        )
    return host.strip("[]")


def _default(field: str) -> str:
    """``(default: X)`` for a help text, from :class:`SimConfig` (never restated here)."""
    return f"(default: {SimConfig.model_fields[field].default})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every simulator option, on ``parser`` (the main CLI's ``sim`` subparser, or our own)."""
    net = parser.add_argument_group("network")
    net.add_argument(
        "--host",
        type=_loopback_host,
        default="127.0.0.1",
        help="loopback address to listen on: 127.0.0.1 (default), another 127.x, ::1 or localhost",
    )
    net.add_argument("--port", type=_port, default=0, help="TCP port; 0 picks a free one (default: 0)")
    net.add_argument(
        "--account-group",
        type=int,
        metavar="G",
        help="account group <grp> in the URL path " + _default("account_group"),
    )
    net.add_argument(
        "--tls-cert", metavar="FILE", help="PEM certificate: serve wss:// instead of ws:// (needs --tls-key)"
    )
    net.add_argument("--tls-key", metavar="FILE", help="PEM private key for --tls-cert")

    auth = parser.add_argument_group("authentication")
    auth.add_argument(
        "--api-key",
        metavar="K",
        help="the API key to accept (default: env ASCENDEX_API_KEY, else the built-in demo key)",
    )
    auth.add_argument(
        "--api-secret",
        metavar="S",
        help="the secret signatures are checked with (default: env ASCENDEX_API_SECRET, else the built-in demo secret)",
    )
    auth.add_argument(
        "--secret-encoding",
        choices=("base64", "raw"),
        help="HMAC key form: base64-decoded secret or its raw bytes " + _default("secret_encoding"),
    )
    auth.add_argument(
        "--max-time-skew",
        type=float,
        metavar="S",
        help="seconds a signature or request time may be off " + _default("max_time_skew"),
    )

    proto = parser.add_argument_group("protocol")
    proto.add_argument(
        "--dialect",
        choices=("current", "2021"),
        help="shape of request replies: current docs or the 2021 pages " + _default("dialect"),
    )
    proto.add_argument(
        "--ping-interval",
        type=float,
        metavar="S",
        help="seconds between server pings, 0 = none " + _default("ping_interval"),
    )
    proto.add_argument(
        "--client-ping-quiet",
        type=float,
        metavar="S",
        help="no server pings for this long after a client ping " + _default("client_ping_quiet"),
    )

    rest = parser.add_argument_group("REST (served on the WebSocket's port, as the exchange does)")
    rest.add_argument(
        "--rest-delay", type=float, metavar="S", help="answer every REST call after S seconds " + _default("rest_delay")
    )
    rest.add_argument(
        "--rest-error", type=int, metavar="STATUS", help="answer every REST call with this HTTP status (500-599)"
    )
    rest.add_argument("--rest-down", action="store_true", default=None, help="close REST connections without an answer")
    rest.add_argument(
        "--ws-refused",
        action="store_true",
        default=None,
        help="answer WebSocket upgrades with HTTP 503 while REST keeps answering (a stream outage)",
    )

    flow = parser.add_argument_group("order flow")
    flow.add_argument(
        "--seed", type=int, metavar="N", help="seed of the order flow; same seed, same orders (default: random)"
    )
    flow.add_argument("--orders", type=int, metavar="N", help="open orders at start " + _default("initial_orders"))
    flow.add_argument(
        "--rate",
        type=float,
        metavar="R",
        help="lifecycle events per second from other sessions, 0 = none " + _default("rate"),
    )
    flow.add_argument(
        "--symbols", metavar="A,B", help=f"comma-separated symbols (default: {','.join(DEFAULT_SYMBOLS)})"
    )
    flow.add_argument(
        "--fixed-time-ms",
        type=int,
        metavar="MS",
        help="derive all order times from this UTC ms instant (reproducible runs)",
    )

    faults = parser.add_argument_group("faults (all off by default)")
    faults.add_argument(
        "--ack-delay",
        type=float,
        metavar="S",
        help="hold cancel-order/cancel-all/place-order this many seconds before answering",
    )
    faults.add_argument(
        "--refuse-cancels",
        type=int,
        metavar="CODE",
        help="refuse every cancel-order/cancel-all with this error code, e.g. 300009 (TRADING_VIOLATION)",
    )
    faults.add_argument("--drop-every", type=int, metavar="N", help="abort the connection after every N messages sent")
    faults.add_argument(
        "--malformed-every", type=int, metavar="N", help="send a non-JSON frame before every Nth message"
    )
    faults.add_argument(
        "--skip-sn-every",
        type=int,
        metavar="N",
        help="every Nth order update, the sequence counter jumps a billion further than usual (not a lost message)",
    )
    faults.add_argument(
        "--repeat-sn-every", type=int, metavar="N", help="send every Nth order update twice (repeated sn)"
    )
    faults.add_argument(
        "--drop-updates-every",
        type=int,
        metavar="N",
        help="send every Nth order update to nobody: the order changes, the client never hears of it",
    )
    faults.add_argument("--no-pong", action="store_true", default=None, help="never answer client pings")
    faults.add_argument("--silent", action="store_true", default=None, help="send nothing at all (a stale connection)")
    faults.add_argument(
        "--ignore-requests",
        action="store_true",
        default=None,
        help="read requests but never answer them (provokes client timeouts)",
    )
    faults.add_argument(
        "--odd-records",
        metavar="A,B",
        help="spoil the records of open orders, one oddity each, e.g. nan-avg-price,zero-width-status "
        f"(all: {','.join(ODDITIES)})",
    )
    faults.add_argument(
        "--open-orders-fault",
        choices=["ignore", "garble"],
        default=None,
        help="open-orders queries only: never answer them, or answer with a frame that cannot be parsed",
    )


def config_from_args(args: argparse.Namespace, environ: dict[str, str] | None = None) -> SimConfig:
    """The :class:`SimConfig` the options describe. Raises :class:`_BadInput` with one line."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for dest, field in _FIELDS.items():
        value = getattr(args, dest, None)
        if value is not None:
            values[field] = value
    for flag in ("no_pong", "silent", "ignore_requests", "rest_down", "ws_refused"):
        if getattr(args, flag, None):
            values[flag] = True
    if getattr(args, "symbols", None) is not None:  # (an empty --symbols is an error, not the default)
        values["symbols"] = [s.strip().upper() for s in args.symbols.split(",")]
        if not all(_SYMBOL.fullmatch(s) for s in values["symbols"]):
            raise _BadInput(f"--symbols: {_PATTERN_WORDS['symbols']}")
    if getattr(args, "odd_records", None):
        values["odd_records"] = [s.strip() for s in args.odd_records.split(",") if s.strip()]
    if "api_key" not in values and env.get("ASCENDEX_API_KEY"):
        values["api_key"] = env["ASCENDEX_API_KEY"]
    if "api_secret" not in values and env.get("ASCENDEX_API_SECRET"):
        values["api_secret"] = env["ASCENDEX_API_SECRET"]
    try:
        config = SimConfig(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        flag = _FLAGS.get(field, field)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "string_pattern_mismatch" and field in _PATTERN_WORDS:
            message = _PATTERN_WORDS[field]
        raise _BadInput(f"{flag}: {message}" if flag else message) from None
    for path in (config.tls_cert, config.tls_key):
        if path is not None and not path.is_file():
            raise _BadInput(f"TLS file not found: {path}")
    return config


def _banner(sim: SimServer) -> str:
    cfg = sim.config
    # The demo key is public (printed so the blotter can be pointed at the simulator);
    # a key of your own, taken from ASCENDEX_API_KEY or --api-key, is shown masked.
    key = cfg.api_key if cfg.api_key == DEMO_API_KEY else f"{mask_key(cfg.api_key)} (yours, masked)"
    line = f"blotter sim listening on {sim.url}  REST {sim.rest_url}  api key: {key}"
    if cfg.api_secret == DEMO_API_SECRET:
        line += f"  api secret: {cfg.api_secret} (demo, {cfg.secret_encoding})"
    return line


async def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM. 0 on a clean stop, 2 on bad input (one line on stderr)."""
    try:
        config = config_from_args(args)
    except _BadInput as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    sim = SimServer(config, host=getattr(args, "host", "127.0.0.1"), port=getattr(args, "port", 0))
    try:
        await sim.start()
    except OSError as exc:
        print(f"{PROG}: cannot listen on {sim.host}:{getattr(args, 'port', 0)}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"{PROG}: cannot start: {exc}", file=sys.stderr)
        await sim.stop()
        return 2
    # Handlers go in before the banner: whoever reads the banner may signal at once.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
            pass
    print(_banner(sim), flush=True)
    try:
        await stop.wait()
    except asyncio.CancelledError:
        pass
    finally:
        for installed_signal in installed:
            loop.remove_signal_handler(installed_signal)
        await sim.stop()
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description=(
            "Run a local AscendEX futures exchange: a WebSocket server that authenticates like the real one, "
            "streams a seeded order flow on futures-order, answers cancel/place/open-orders requests in the "
            "current or 2021 dialect, and injects faults on request. Without --api-key/--api-secret it accepts "
            "the built-in demo credentials, which it prints."
        ),
    )
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0


__all__ = ["add_arguments", "build_parser", "config_from_args", "main", "run"]
