"""Command line: ``blotter`` (the TUI), ``demo``, ``sim``, and the headless commands.

Every user error is one line on stderr and a non-zero exit, never a traceback.
Textual is imported only by the commands that draw a screen.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

from .. import __version__
from ..net.endpoints import EndpointError
from .settings import (
    ConfigError,
    FileConfig,
    UserError,
    _user_themes_dir,
    default_config_path,
    default_journal_path,
    desk_settings,
    load_config,
    open_journal,
    ui_settings,
)

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, then exit 2
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _connection_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    g = p.add_argument_group("exchange connection (credentials come from ASCENDEX_API_KEY / ASCENDEX_API_SECRET or the config file, never from flags)")
    g.add_argument("--url", metavar="URL", help="full WebSocket URL, e.g. wss://ascendex.com:443/<grp>/api/pro/v2/stream (ws:// only for loopback)")
    g.add_argument("--env", choices=["mainnet", "testnet"], help="build the URL for this environment (with --account-group)")
    g.add_argument("--account-group", metavar="N", type=int, help="account group of your API key (with --env)")
    g.add_argument("--config", metavar="PATH", type=Path, help=f"config file (default {default_config_path()})")
    g.add_argument("--secret-encoding", choices=["base64", "raw"], help="HMAC key form of the secret: base64-decoded (default) or raw bytes")
    g.add_argument("--auth-mode", choices=["headers", "op"], help="authenticate with upgrade headers (default) or an op:auth message")
    g.add_argument("--ca-file", metavar="PEM", help="extra CA certificates to trust for wss://")
    g.add_argument("--timeout", metavar="SEC", type=float, help="seconds for a request to be confirmed before TIMEOUT (default 5)")
    g.add_argument("--journal", metavar="PATH", help=f"audit journal file (default {default_journal_path()})")
    g.add_argument("--no-journal", action="store_true", help="do not write the audit journal")
    return p


def _screen_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    g = p.add_argument_group("screen")
    g.add_argument("--theme", metavar="NAME", help="colour theme (see --list-themes)")
    g.add_argument("--read-only", action="store_true", help="disable every cancel key (monitoring screens)")
    g.add_argument("--cancel-on-hangup", action="store_true",
                   help="dead man's switch: cancel all open orders (and verify) on SIGHUP or SIGTERM")
    g.add_argument("--stale-after", metavar="SEC", type=float, help="mark the table STALE after this many seconds without data (default 10)")
    g.add_argument("--final-linger", metavar="SEC", type=float, help="seconds final orders stay visible, dimmed (default 30)")
    return p


def build_parser() -> argparse.ArgumentParser:
    conn, screen = _connection_options(), _screen_options()
    parser = _Parser(
        prog="blotter",
        description="A terminal order blotter for the AscendEX futures exchange: live orders, one-key cancels, "
        "and every request's fate in a log keyed by request id. Without a command, opens the blotter.",
        parents=[conn, screen],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="keys in the blotter: c cancel order, s cancel symbol, X cancel ALL, / filter, f final orders, "
        "l log filter, r refresh, ? help, q quit.\nSee README.md for the config file, themes and the emergency runbook.",
    )
    parser.add_argument("--version", action="version", version=f"blotter {__version__}")
    parser.add_argument("--list-themes", action="store_true", default=False, help="list the available themes and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    demo = sub.add_parser("demo", parents=[screen], help="open the blotter against an embedded simulator with live order flow",
                          description="Start the exchange simulator in-process on a free loopback port with demo credentials "
                          "and live order flow, and open the blotter against it.")
    demo.add_argument("--seed", type=int, default=None, help="order-flow seed (default: random)")
    demo.add_argument("--orders", type=int, default=40, help="initial open orders (default 40)")
    demo.add_argument("--rate", type=float, default=4.0, help="order lifecycle events per second (default 4)")
    demo.add_argument("--dialect", choices=["current", "2021"], default="current", help="response dialect of the simulator")
    demo.add_argument("--no-journal", action="store_true", default=argparse.SUPPRESS, help="do not write the audit journal")
    demo.add_argument("--journal", metavar="PATH", default=argparse.SUPPRESS, help="audit journal file")

    sim = sub.add_parser("sim", help="run the exchange simulator (a WebSocket server on loopback)",
                         description="Run the exchange simulator: a real WebSocket server on loopback that speaks the "
                         "AscendEX futures protocol, with an order-flow generator and fault switches for tests and drills.")
    from ..sim import cli as sim_cli

    sim_cli.add_arguments(sim)

    _add_headless(sub, conn)
    return parser


def _add_headless(sub: Any, conn: argparse.ArgumentParser) -> None:
    from . import headless

    headless.add_parsers(sub, conn)


# -- commands --------------------------------------------------------------------------
def cmd_list_themes() -> int:
    from ..ui.themes import list_themes

    for name in list_themes(_user_themes_dir()):
        print(name)
    return EXIT_OK


def cmd_tui(args: argparse.Namespace) -> int:
    file = load_config(args)
    settings = desk_settings(args, file)
    ui = ui_settings(args, file)
    warnings: list[str] = []
    journal = open_journal(args, file, warnings, settings.api_key, settings.api_secret)
    return _run_tui(settings, ui, journal, warnings)


def _run_tui(settings: Any, ui: Any, journal: Any, warnings: list[str], before: Any = None) -> int:
    from ..desk import Desk
    from .hangup import arm_hangup
    from ..ui.app import make_app

    async def main() -> int:
        cleanup = None
        if before is not None:
            cleanup = await before()
        try:
            desk = Desk(settings if cleanup is None else cleanup[0], journal=journal)
            for line in warnings:
                desk.log.add(line, "warn")
            app = make_app(desk, ui)
            disarm = arm_hangup(desk, app) if desk.cancel_on_hangup else None
            try:
                await app.run_async()
            finally:
                if disarm is not None:
                    disarm()
                await desk.stop()
            return app.return_code or 0
        finally:
            if journal is not None:
                journal.close()
            if cleanup is not None:
                await cleanup[1]()

    return asyncio.run(main())


def cmd_demo(args: argparse.Namespace) -> int:
    from pydantic import SecretStr

    from ..desk import DeskSettings
    from ..sim import DEMO_API_KEY, DEMO_API_SECRET, SimConfig, SimServer

    file = FileConfig()  # the demo never reads your real config or credentials
    ui = ui_settings(args, file)
    warnings: list[str] = []
    journal = open_journal(args, file, warnings, DEMO_API_KEY, DEMO_API_SECRET)
    holder: dict[str, Any] = {}

    async def start_sim():
        cfg = SimConfig(seed=args.seed, initial_orders=args.orders, rate=args.rate, dialect=args.dialect)
        server = SimServer(cfg, host="127.0.0.1", port=0)
        await server.start()
        holder["sim"] = server
        settings = DeskSettings(
            url=server.url,
            api_key=SecretStr(DEMO_API_KEY),
            api_secret=SecretStr(DEMO_API_SECRET),
            read_only=bool(getattr(args, "read_only", False)),
            cancel_on_hangup=bool(getattr(args, "cancel_on_hangup", False)),
            stale_after=getattr(args, "stale_after", 10.0),
        )
        return settings, server.stop

    return _run_tui(None, ui, journal, warnings, before=start_sim)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.list_themes:
            return cmd_list_themes()
        if args.command is None:
            return cmd_tui(args)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "sim":
            from ..sim import cli as sim_cli

            return asyncio.run(sim_cli.run(args))
        return args.handler(args)
    except _user_errors() as exc:
        print(f"blotter: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - never a traceback to the user
        if os.environ.get("BLOTTER_DEBUG"):
            raise
        print(f"blotter: internal error: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''} "
              "(run with BLOTTER_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return EXIT_FAIL


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
