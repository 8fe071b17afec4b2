"""Headless commands for scripts and runbooks: ``cancel``, ``cancel-all``,
``orders``, ``journal``. Same desk (session, store, tracker, journal) as the TUI,
no screen.

Exit codes: 0 done and verified; 1 refused, still open or not confirmed;
2 usage or configuration error; 3 timed out; 4 could not connect or authenticate.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, TextIO

import orjson

from ..core import State
from ..core.text import safe
from ..core.log import LogLine

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_TIMEOUT, EXIT_CONNECT = 0, 1, 2, 3, 4
CONNECT_TIMEOUT = 15.0


def add_parsers(sub: Any, conn: argparse.ArgumentParser) -> None:
    epilog = "exit codes: 0 done and verified, 1 refused/still open, 2 usage or config error, 3 timed out, 4 cannot connect or authenticate"
    p = sub.add_parser("cancel", parents=[conn], help="cancel one order and wait for the order channel to confirm it",
                       description="Send one cancel-order, wait for the ACK (or refusal) and for the order channel to "
                       "confirm Canceled (or a timeout). Prints one line per event with the request id.", epilog=epilog)
    p.add_argument("--symbol", required=True, help="symbol of the order, e.g. BTC-PERP")
    p.add_argument("--order-id", required=True, help="the exchange order id (32 characters)")
    p.add_argument("--json", action="store_true", help="JSON lines instead of text")
    p.set_defaults(handler=lambda args: _run(cmd_cancel, args))

    p = sub.add_parser("cancel-all", parents=[conn], help="cancel all open orders (on a symbol) and verify nothing is left",
                       description="Send cancel-all, wait for the confirmations, then verify with a fresh open-orders "
                       "snapshot that nothing (on that symbol) is left open, retrying cancel-all up to --retries times. "
                       "Prints what is left, if anything, and exits non-zero then.", epilog=epilog)
    p.add_argument("--symbol", default=None, help="only this symbol's orders")
    p.add_argument("--retries", type=int, default=2, help="extra cancel-all rounds while orders are left open (default 2)")
    p.add_argument("--json", action="store_true", help="JSON lines instead of text")
    p.set_defaults(handler=lambda args: _run(cmd_cancel_all, args))

    p = sub.add_parser("orders", parents=[conn], help="print the open orders",
                       description="Print the open orders from a fresh snapshot: a table, or JSON lines with --json.", epilog=epilog)
    p.add_argument("--symbol", default=None, help="only this symbol's orders")
    p.add_argument("--json", action="store_true", help="one JSON object per order (decimals as strings)")
    p.set_defaults(handler=lambda args: _run(cmd_orders, args))

    p = sub.add_parser("journal", help="show the audit journal: each request, what came back, and when",
                       description="Show the request history from the audit journal: for each request what was sent, "
                       "when, what came back and how long each step took.")
    p.add_argument("--since", default=None, metavar="AGE", help="only requests newer than this: 30s, 10m, 2h, 1d")
    p.add_argument("--request-id", default=None, help="only this request")
    p.add_argument("--order-id", default=None, help="only requests about this order")
    p.add_argument("--journal", default=argparse.SUPPRESS, metavar="PATH", help="journal file (default: the user data dir)")
    p.add_argument("--config", default=argparse.SUPPRESS, metavar="PATH", help="config file")
    p.add_argument("--json", action="store_true", help="one JSON object per request")
    p.set_defaults(handler=cmd_journal)


def _run(command: Callable[..., Any], args: argparse.Namespace) -> int:
    return asyncio.run(command(args))


class Printer:
    """Prints the desk's log lines as they arrive (text or JSON lines)."""

    def __init__(self, desk: Any, as_json: bool, out: TextIO | None = None) -> None:
        self.desk = desk
        self.as_json = as_json
        self.out = out or sys.stdout
        self.seen = 0

    def line(self, line: LogLine) -> None:
        if self.as_json:
            self.emit({"ts_ms": line.wall_ms, "level": line.level, "request_id": line.request_id,
                       "order_id": line.order_id, "event": line.text})
        else:
            stamp = datetime.fromtimestamp(line.wall_ms / 1000).strftime("%H:%M:%S.%f")[:-3]
            self.out.write(f"{stamp} {line.text}\n")
            self.out.flush()

    def emit(self, obj: dict[str, Any]) -> None:
        self.out.write(orjson.dumps(obj, default=str).decode() + "\n")
        self.out.flush()

    def pump(self) -> None:
        for line in self.desk.log.lines(since=self.seen):
            self.seen = line.seq
            self.line(line)

    def result(self, outcome: str, code: int, **extra: Any) -> int:
        self.pump()
        if self.as_json:
            self.emit({"result": outcome, "exit": code, **extra})
        else:
            more = "".join(f" {k}={v}" for k, v in extra.items() if v not in (None, [], ""))
            self.out.write(f"result: {outcome}{more} (exit {code})\n")
            self.out.flush()
        return code


async def _open_desk(args: argparse.Namespace) -> tuple[Any, Any, Printer, asyncio.Task]:
    from .settings import desk_settings, load_config, open_journal
    from ..desk import Desk

    file = load_config(args)
    settings = desk_settings(args, file).model_copy(update={"reconnect": True, "backoff_max": 2.0})
    warnings: list[str] = []
    journal = open_journal(args, file, warnings, settings.api_key, settings.api_secret)
    desk = Desk(settings, journal=journal)
    for w in warnings:
        desk.log.add(w, "warn")
    printer = Printer(desk, getattr(args, "json", False))
    task = asyncio.create_task(desk.run())
    return desk, journal, printer, task


async def _close(desk: Any, journal: Any, task: asyncio.Task) -> None:
    await desk.stop()
    try:
        await asyncio.wait_for(task, 5)
    except (TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
        task.cancel()
    if journal is not None:
        journal.close()


async def _connect(desk: Any, printer: Printer) -> int | None:
    """Wait for live + first snapshot. Returns an exit code on failure."""
    from ..net.session import ConnState

    ok = await desk.wait_live(CONNECT_TIMEOUT)
    printer.pump()
    if ok:
        return None
    if desk.state is ConnState.AUTH_REFUSED:
        return printer.result("auth refused", EXIT_CONNECT, detail=desk.detail)
    return printer.result("not connected", EXIT_CONNECT, detail=desk.detail or f"no snapshot within {CONNECT_TIMEOUT:g} s")


async def _wait(desk: Any, printer: Printer, done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        await desk.wait_changed(0.05)
        printer.pump()
    printer.pump()
    return True


async def cmd_cancel(args: argparse.Namespace) -> int:
    desk, journal, printer, task = await _open_desk(args)
    try:
        failed = await _connect(desk, printer)
        if failed is not None:
            return failed
        entry = desk.store.get(args.order_id)
        tracked = await desk.cancel_order(args.order_id, symbol=args.symbol)
        printer.pump()
        if tracked is None:
            return printer.result("not sent", EXIT_FAIL, order_id=args.order_id)
        settle = desk.settings.request_timeout + 0.5
        await _wait(desk, printer, lambda: tracked.state.final, settle)
        if tracked.state is State.CONFIRMED:
            if tracked.final_status == "Canceled":
                return printer.result("cancelled", EXIT_OK, request_id=tracked.request_id, order_id=args.order_id)
            return printer.result(f"already final: {tracked.final_status}", EXIT_OK,
                                  request_id=tracked.request_id, order_id=args.order_id)
        if tracked.state is State.REFUSED:
            hint = "" if entry is not None else " (the order is not among the open orders: already final, or a wrong id/symbol)"
            return printer.result(f"refused {tracked.code} {tracked.reason}{hint}", EXIT_FAIL,
                                  request_id=tracked.request_id, order_id=args.order_id)
        if tracked.state is State.FAILED:
            return printer.result("not sent: " + tracked.message, EXIT_CONNECT, request_id=tracked.request_id)
        # Timed out: ask the exchange whether the order is still open.
        await desk.refresh()
        before = desk.snapshot_count
        await _wait(desk, printer, lambda: desk.snapshot_count > before, desk.settings.request_timeout)
        still = desk.store.get(args.order_id)
        state = "still OPEN" if still is not None and still.is_open else "not open (final status unknown)"
        return printer.result(f"timed out; order is {state}", EXIT_TIMEOUT, request_id=tracked.request_id,
                              order_id=args.order_id)
    finally:
        await _close(desk, journal, task)


async def cmd_cancel_all(args: argparse.Namespace) -> int:
    desk, journal, printer, task = await _open_desk(args)
    symbol = args.symbol
    try:
        failed = await _connect(desk, printer)
        if failed is not None:
            return failed
        rounds = max(0, args.retries) + 1
        last = None
        for _ in range(rounds):
            if not desk.store.open_by_symbol(symbol) and last is not None:
                break
            last = await desk.cancel_all(symbol)
            printer.pump()
            if last is None:
                return printer.result("not sent", EXIT_FAIL)
            wait = desk.settings.request_timeout * 2 + desk.settings.resnapshot_min_interval + 2
            await _wait(desk, printer, lambda: last.verdict is not None or last.state in (State.REFUSED, State.FAILED), wait)
            if last.state is State.FAILED:
                return printer.result("not sent: " + last.message, EXIT_CONNECT, request_id=last.request_id)
            if last.verdict is not None and not last.still_open and not desk.store.open_by_symbol(symbol):
                break
        # The final word: a fresh snapshot.
        before = desk.snapshot_count
        await desk.refresh(symbol)
        if not await _wait(desk, printer, lambda: desk.snapshot_count > before, desk.settings.request_timeout + 2):
            return printer.result("could not verify: no snapshot", EXIT_TIMEOUT, request_id=last.request_id if last else None)
        left = desk.store.open_by_symbol(symbol)
        if left:
            ids = [e.order_id for e in left]
            if not printer.as_json:
                for e in left:
                    o = e.order
                    printer.out.write(f"still open: {safe(o.symbol)} {safe(o.side)} {_dec(o.qty)} @ {_dec(o.price)} {safe(o.order_id)}\n")
            return printer.result(f"{len(left)} order(s) still open", EXIT_FAIL, still_open=ids,
                                  request_id=last.request_id if last else None)
        return printer.result("nothing left open", EXIT_OK, symbol=symbol or "ALL", request_id=last.request_id if last else None)
    finally:
        await _close(desk, journal, task)


def _dec(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")


async def cmd_orders(args: argparse.Namespace) -> int:
    desk, journal, printer, task = await _open_desk(args)
    printer.seen = 10**18  # only the orders (or a failure result), not the connection log
    try:
        failed = await _connect(desk, printer)
        if failed is not None:
            return failed
        entries = sorted(desk.store.open_by_symbol(args.symbol), key=lambda e: (e.order.symbol, -(e.order.create_time_ms or 0)))
        out = sys.stdout
        if args.json:
            for e in entries:
                o = e.order
                printer.emit({"order_id": o.order_id, "symbol": o.symbol, "side": o.side, "type": o.order_type,
                              "price": _dec(o.price), "qty": _dec(o.qty), "filled": _dec(o.filled_qty),
                              "avg_price": _dec(o.avg_price), "status": o.status, "seq": o.seq,
                              "create_time_ms": o.create_time_ms, "exec_time_ms": o.exec_time_ms})
            return EXIT_OK
        rows = [("SYMBOL", "SIDE", "TYPE", "PRICE", "QTY", "FILLED", "STATUS", "ORDER ID")]
        for e in entries:
            o = e.order
            rows.append(tuple(safe(v) for v in (o.symbol, o.side.upper(), o.order_type, _dec(o.price), _dec(o.qty),
                                                 _dec(o.filled_qty), o.status, o.order_id)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        right = {3, 4, 5}
        for r in rows:
            out.write("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip() + "\n")
        out.write(f"{len(entries)} open order(s)\n")
        return EXIT_OK
    finally:
        await _close(desk, journal, task)


def cmd_journal(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .settings import UserError, load_config
    from .settings import default_journal_path
    from ..core.text import json_safe
    from ..journal import JournalError, format_history, history_json, parse_since, read_history

    file = load_config(args)
    path = Path(getattr(args, "journal", None) or file.journal or default_journal_path())
    try:
        since = parse_since(args.since) if args.since else None
        histories = read_history(path, since_ms=since, request_id=args.request_id, order_id=args.order_id)
    except JournalError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        for item in history_json(histories):
            sys.stdout.write(json_safe(item) + "\n")  # exchange text: escaped, never raw
    else:
        for line in format_history(histories):
            sys.stdout.write(line + "\n")
        if not histories:
            sys.stdout.write("no requests recorded" + (f" in the last {args.since}" if args.since else "") + "\n")
    return EXIT_OK
