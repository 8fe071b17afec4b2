"""Command line: ``blotter`` (the TUI), ``demo``, ``sim``, and the headless commands.

Every user error is one line on stderr and a non-zero exit, never a traceback.
Textual is imported only by the commands that draw a screen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import select
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .. import __version__
from ..net.endpoints import EndpointError
from .settings import (
    ConfigError,
    UserError,
    add_options,
    demo_journal_path,
    desk_settings,
    flags_of,
    load,
    load_config,
    open_journal,
    ui_settings,
    user_themes_dir,
)

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_CONNECT = 4
EXIT_PIPE = 141
"""128 + SIGPIPE: what a shell reports for a command whose reader went away."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, then exit 2
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _LazyParser(_Parser):
    """A subcommand whose options are added the first time it parses or prints its
    help (``options``: a function of the parser). The ``sim`` and ``demo`` options
    come from the simulator's settings, and importing the simulator takes tens of
    milliseconds that ``blotter`` itself, connecting to the exchange, has no use for."""

    options: Callable[[argparse.ArgumentParser], None] | None = None

    def _add_options(self) -> None:
        options, self.options = self.options, None
        if options is not None:
            options(self)

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        self._add_options()
        return super().parse_known_args(*args, **kwargs)

    def format_help(self) -> str:
        self._add_options()
        return super().format_help()

    def format_usage(self) -> str:
        self._add_options()
        return super().format_usage()


def _connection_options() -> _LazyParser:
    p = _LazyParser(add_help=False, argument_default=argparse.SUPPRESS)
    add_options(
        p,
        "connection",
        "exchange connection (credentials come from ASCENDEX_API_KEY / ASCENDEX_API_SECRET "
        "or the config file, never from flags)",
    )
    return p


def _screen_options() -> _LazyParser:
    p = _LazyParser(add_help=False, argument_default=argparse.SUPPRESS)
    add_options(p, "screen", "screen")
    return p


def _demo_options(demo: argparse.ArgumentParser) -> None:
    """The simulator's options that the demo offers: defaults and help from SimConfig."""
    from ..sim import SimConfig

    g = demo.add_argument_group("simulator")
    for flag, name, metavar in (
        ("--seed", "seed", "N"),
        ("--orders", "initial_orders", "N"),
        ("--rate", "rate", "R"),
        ("--dialect", "dialect", None),
    ):
        info = SimConfig.model_fields[name]
        default = "random" if info.default is None else info.default
        kwargs: dict[str, Any] = {
            "dest": name,
            "default": argparse.SUPPRESS,
            "help": f"{(info.description or '').rstrip('.')} (default {default})",
        }
        if name == "dialect":
            kwargs["choices"] = ["current", "2021"]
        else:
            kwargs.update(metavar=metavar, type=_sim_type(name, flag))
        g.add_argument(flag, **kwargs)
    g = demo.add_argument_group("audit journal")
    g.add_argument(
        "--journal",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help=f"the demo's audit journal (default {demo_journal_path()}, never your real one)",
    )
    g.add_argument(
        "--no-journal", action="store_true", default=argparse.SUPPRESS, help="do not write the audit journal"
    )


def _sim_options(sim: argparse.ArgumentParser) -> None:
    from ..sim import cli as sim_cli

    sim_cli.add_arguments(sim)


def _sim_type(name: str, flag: str) -> Any:
    from pydantic import TypeAdapter, ValidationError

    from ..sim import SimConfig
    from .settings import _annotated, allowed

    info = SimConfig.model_fields[name]
    adapter = TypeAdapter(_annotated(info))

    def convert(text: str) -> Any:
        try:
            value = adapter.validate_python(text)
        except ValidationError:
            raise argparse.ArgumentTypeError(f"must be {allowed(info)} (got {text!r})") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {allowed(info)} (got {text!r})")
        return value

    return convert


def build_parser() -> argparse.ArgumentParser:
    conn, screen = _connection_options(), _screen_options()
    parser = _Parser(
        prog="blotter",
        description="A terminal order blotter for the AscendEX futures exchange: live orders, one-key cancels, "
        "and every request's fate in a log keyed by request id. Without a command, opens the blotter.",
        parents=[conn, screen],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="keys in the blotter: c cancel order, s cancel symbol, X cancel ALL, F flatten position, "
        "Z flatten ALL (emergency: X, then Z), Tab next pane, / filter, f final orders, "
        "l log filter, r refresh, ? help, q quit (blotter --list-bindings: every binding id for [keymap]).\n"
        "Every option can also be set in the environment or the config file (named after it in its help); "
        "flags win over the environment, the environment over the file.\n"
        "See README.md for the config file, themes and the emergency runbook.",
    )
    parser.add_argument("--version", action="version", version=f"blotter {__version__}")
    parser.add_argument("--list-themes", action="store_true", default=False, help="list the available themes and exit")
    parser.add_argument(
        "--list-bindings",
        action="store_true",
        default=False,
        help="list every key binding (id, key, what it does) for the [keymap] section, and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_LazyParser)

    demo = sub.add_parser(
        "demo",
        parents=[screen],
        help="open the blotter against an embedded simulator with live order flow",
        description="Start the exchange simulator in-process on a free loopback port with demo credentials "
        "and live order flow, and open the blotter against it. The demo reads neither your config "
        "file nor your credentials, and writes its own journal, never your real one.",
    )
    demo.options = _demo_options

    sim = sub.add_parser(
        "sim",
        help="run the exchange simulator (a WebSocket server on loopback)",
        description="Run the exchange simulator: a real WebSocket server on loopback that speaks the "
        "AscendEX futures protocol, with an order-flow generator and fault switches for tests and drills.",
    )
    sim.options = _sim_options

    _add_headless(sub, conn)
    return parser


def _add_headless(sub: Any, conn: argparse.ArgumentParser) -> None:
    from . import headless

    headless.add_parsers(sub, conn)


# -- commands --------------------------------------------------------------------------
def cmd_list_themes() -> int:
    from ..ui.themes import list_themes

    for name in list_themes(user_themes_dir()):
        print(name)
    return EXIT_OK


def cmd_list_bindings() -> int:
    from .settings import bindings

    rows = bindings()
    width = max(len(r[0]) for r in rows)
    keys = max(len(r[1]) for r in rows)
    for binding_id, key, description in rows:
        print(f"{binding_id:<{width}}  {key:<{keys}}  {description}")
    return EXIT_OK


def cmd_tui(args: argparse.Namespace) -> int:
    settings = load_config(args)
    ui = ui_settings(args, settings)
    desk = desk_settings(args, settings)
    warnings: list[str] = []
    journal = open_journal(args, settings, warnings, desk.api_key, desk.api_secret, endpoint=desk.url)
    return _run_tui(desk, ui, journal, warnings)


def _run_tui(settings: Any, ui: Any, journal: Any, warnings: list[str], before: Any = None) -> int:
    """Run the screen. A login the exchange refused, or an exchange never reached, is
    shown on the screen while it is up; when the trader quits, it is one line on
    stderr and exit 4 (nothing was ever live, so nothing on screen can be trusted)."""
    from ..desk import Desk
    from ..net.session import ConnState
    from .hangup import arm_hangup, arm_quit_on_signal

    async def main() -> int:
        nonlocal settings, journal
        stop_before = None
        if before is not None:
            settings, stop_before, journal = await before()
        desk: Desk | None = None
        try:
            desk = Desk(settings, journal=journal)
            for line in warnings:
                desk.log.add(line, "warn")
            # The desk on a thread of its own (blotter/ui/keys.py), started before the screen
            # is even imported: connected, logged in and asking for the open orders while
            # Textual starts (a big account's table is complete that much sooner).
            desk.start_thread()
            # The REST road's libraries, imported here while the desk's thread connects: not
            # before (they are not on the way to the WebSocket), and not on that thread at its
            # first REST call (100 ms in which a cancel key would wait: blotter/net/rest.py).
            if desk.rest is not None:
                desk.rest.warm_up()
            from ..ui.app import make_app

            app = make_app(desk, ui, threaded=True)
            seen: dict[str, Any] = {"live": False, "state": None, "detail": "", "hangup": None, "attempt": 0}
            disarm = (
                arm_hangup(desk, app, on_fired=lambda name: seen.update(hangup=name))
                if desk.cancel_on_hangup
                else arm_quit_on_signal(desk, app)
            )

            async def watch() -> None:
                while True:
                    state = desk.state
                    if state is ConnState.LIVE:
                        seen["live"] = True
                    elif state in (
                        ConnState.AUTH_REFUSED,
                        ConnState.RECONNECTING,
                        ConnState.CONNECTING,
                        ConnState.AUTHENTICATING,  # a login the exchange never answers: not live either
                    ):
                        seen["state"], seen["attempt"] = state, desk.attempt
                        if desk.detail:  # (a retried login starts with none: keep the reason before it)
                            seen["detail"] = desk.detail
                    await asyncio.sleep(0.1)

            watcher = asyncio.create_task(watch())
            try:
                await app.run_async()
            finally:
                watcher.cancel()
                if disarm is not None:
                    disarm()
            code = app.return_code or 0
            if desk.hangup_verdict:  # the switch fired and quit: what it left, where the trader looks next
                with contextlib.suppress(OSError, ValueError):  # (after a hangup the terminal may be gone)
                    print(f"blotter: {desk.hangup_verdict}", file=sys.stderr, flush=True)
            if code == 0 and not seen["live"] and seen["state"] is not None and seen["hangup"] is None:
                if seen["state"] in (ConnState.CONNECTING, ConnState.AUTHENTICATING) and seen["attempt"] == 0:
                    # quit during the first attempt, which had not failed (yet): nothing was live
                    step = " (logging in)" if seen["state"] is ConnState.AUTHENTICATING else ""
                    print(f"blotter: quit while still connecting to {desk.endpoint_label}{step}", file=sys.stderr)
                    return EXIT_CONNECT
                refused = seen["state"] is ConnState.AUTH_REFUSED
                what = "login refused" if refused else f"could not connect to {desk.endpoint_label}"
                detail = f": {seen['detail']}" if seen["detail"] else ""
                print(f"blotter: {what}{detail}", file=sys.stderr)
                return EXIT_CONNECT
            return code
        finally:
            if desk is not None:
                await desk.stop()
                await asyncio.to_thread(desk.join, 5.0)
            if journal is not None:
                journal.close()
            if stop_before is not None:
                await stop_before()

    return asyncio.run(main())


def cmd_demo(args: argparse.Namespace) -> int:
    from pydantic import SecretStr

    from ..sim import DEMO_API_KEY, DEMO_API_SECRET, SimConfig, SimServer

    # The demo never reads your config file or your credentials: flags and defaults only.
    settings = load(flags_of(args), environ={}, use_file=False)
    ui = ui_settings(args, settings)
    cfg = SimConfig(**{k: getattr(args, k) for k in ("seed", "initial_orders", "rate", "dialect") if hasattr(args, k)})
    warnings: list[str] = []

    async def start_sim() -> tuple[Any, Any, Any]:
        server = SimServer(cfg, host="127.0.0.1", port=0)
        await server.start()
        desk = desk_settings(
            args, settings, url=server.url, key=SecretStr(DEMO_API_KEY), secret=SecretStr(DEMO_API_SECRET)
        )
        # Its own journal (never the trader's), opened once the endpoint is known.
        journal = open_journal(
            args, settings, warnings, DEMO_API_KEY, DEMO_API_SECRET, endpoint=server.url, default=demo_journal_path()
        )
        return desk, server.stop, journal

    return _run_tui(None, ui, None, warnings, before=start_sim)


def main(argv: Sequence[str] | None = None) -> int:
    _no_core_dumps()
    _line_buffered()
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:
            # --help: argparse swallows the write error of a reader that went away
            if exc.code == 0 and _reader_gone():
                return _pipe_closed()
            raise
        if args.list_themes:
            return cmd_list_themes()
        if args.list_bindings:
            return cmd_list_bindings()
        if args.command is None:
            return cmd_tui(args)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "sim":
            from ..sim import cli as sim_cli

            return asyncio.run(sim_cli.run(args))
        return args.handler(args)
    except BrokenPipeError:
        return _pipe_closed()
    except _user_errors() as exc:
        print(f"blotter: {_masked(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if _caused_by_closed_pipe(exc):
            return _pipe_closed()
        if os.environ.get("BLOTTER_DEBUG"):
            raise
        first = _masked(str(exc)).splitlines()[0][:200] if str(exc) else ""
        print(
            f"blotter: internal error: {type(exc).__name__}: {first} "
            "(run with BLOTTER_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_FAIL


def _masked(text: str) -> str:
    from .settings import masked

    return masked(text)


def _no_core_dumps() -> None:
    """A core dump of this process would hold the API secret: never write one."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not on this platform
        pass


def _line_buffered() -> None:
    """Piped output goes out line by line, so ``| tee`` shows progress as it happens."""
    try:
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    except (AttributeError, ValueError):  # pragma: no cover - a replaced stdout
        pass


def _caused_by_closed_pipe(exc: BaseException) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, BrokenPipeError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def _reader_gone() -> bool:
    """stdout is a pipe whose reader has closed it (poll says POLLERR)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return False


def _pipe_closed() -> int:
    """The reader of our output went away (``blotter orders | head -1``): end quietly.
    stdout is pointed at /dev/null so the interpreter's final flush cannot complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_PIPE


def _user_errors() -> tuple[type[BaseException], ...]:
    from ..protocol.signing import SigningError

    errors: list[type[BaseException]] = [UserError, ConfigError, EndpointError, SigningError]
    try:
        from ..ui.themes import ThemeFileError, UnknownTheme

        errors += [UnknownTheme, ThemeFileError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
