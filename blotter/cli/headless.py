"""Headless commands for scripts and runbooks: ``cancel``, ``cancel-all``,
``orders``, ``positions``, ``flatten``, ``journal``. Same desk (session, store, tracker, journal) as the TUI,
no screen.

With the WebSocket not live within a short time (refused, unreachable) the commands
go on over REST on the same host (:mod:`blotter.roads`): the open orders, the cancels,
their confirmation and the verdict all come from REST then.

Exit codes: 0 done and verified; 1 refused, still open or not confirmed;
2 usage or configuration error; 3 timed out (something was not answered within
``--timeout``); 4 could not connect or authenticate.

Output: results on stdout, errors on stderr (error lines of the log and a failing
``result:`` line), one line at a time even into a pipe; a reader that goes away
(``| head -1``) ends the output quietly, never the command. Every string that came
over the wire passes through :func:`blotter.core.text.safe` before it is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

from ..core import State
from ..core.log import LogLine
from ..core.text import has_unsafe, json_safe, safe
from ..core.tracker import QueryState
from ..protocol.messages import ID_PATTERN

EXIT_OK, EXIT_FAIL, EXIT_TIMEOUT, EXIT_CONNECT = 0, 1, 3, 4
MAX_SYMBOL = 40
WS_GRACE = 2.0
"""Seconds the commands give the stream to go live before they go on over REST
(the REST road answers when the WebSocket is refused)."""


def symbol_arg(value: str) -> str:
    """``--symbol``: taken in upper case, as the exchange lists its symbols
    (``btc-perp`` is BTC-PERP); whether it exists is the exchange's answer."""
    symbol = value.strip().upper()
    if not symbol or len(symbol) > MAX_SYMBOL or has_unsafe(symbol) or any(c.isspace() for c in symbol):
        raise argparse.ArgumentTypeError(f"not a symbol: {safe(value, 60)!r} (e.g. BTC-PERP)")
    return symbol


def order_id_arg(value: str) -> str:
    """``--order-id``: an exchange order id as it documents them (letters, digits,
    ``_.:-``, 1 to 64 characters); anything else is refused here, not sent."""
    order_id = value.strip()
    if not re.fullmatch(ID_PATTERN, order_id):
        raise argparse.ArgumentTypeError(
            f"not an order id: {safe(value, 60)!r} (letters, digits and _.:- only, as blotter orders prints them)"
        )
    return order_id


def nonempty_arg(value: str) -> str:
    """A filter's text (the journal keeps unreadable records' ids too, ``?…``): not blank."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value.strip()


def count_arg(value: str) -> int:
    """A count of extra rounds: a whole number, 0 or more."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {safe(value, 30)!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {n}")
    return n


def add_parsers(sub: Any, conn: argparse.ArgumentParser) -> None:
    epilog = (
        "exit codes: 0 done and verified, 1 refused/still open, 2 usage or config error, 3 timed out "
        "(--timeout: each step, connecting and every request, has that long), 4 cannot connect or authenticate. "
        "Results on stdout, errors on stderr."
    )
    symbol_help = "symbol, e.g. BTC-PERP (taken in upper case: btc-perp is BTC-PERP)"
    p = sub.add_parser(
        "cancel",
        parents=[conn],
        help="cancel one order and wait for the order channel to confirm it",
        description="Send one cancel-order, wait for the ACK (or refusal) and for the order channel to "
        "confirm Canceled (or a timeout). Prints one line per event with the request id.",
        epilog=epilog,
    )
    p.add_argument("--symbol", required=True, type=symbol_arg, help=symbol_help)
    p.add_argument("--order-id", required=True, type=order_id_arg, help="the exchange order id (32 characters)")
    p.add_argument("--json", action="store_true", help="JSON lines instead of text (the last one is the result)")
    p.set_defaults(handler=lambda args: _run(cmd_cancel, args))

    p = sub.add_parser(
        "cancel-all",
        parents=[conn],
        help="cancel all open orders (on a symbol) and verify nothing is left",
        description="Send cancel-all, wait for the confirmations, then verify with a fresh open-orders "
        "query for the same scope that the exchange answered: nothing (on that symbol) is left open. "
        "Retries cancel-all up to --retries times. A refused cancel-all or query is exit 1 with the "
        "exchange's reason; one not answered in time exit 3.",
        epilog=epilog,
    )
    p.add_argument("--symbol", default=None, type=symbol_arg, help="only this symbol's orders; " + symbol_help)
    p.add_argument(
        "--retries", type=count_arg, default=2, help="extra cancel-all rounds while orders are left open (default 2)"
    )
    p.add_argument("--json", action="store_true", help="JSON lines instead of text (the last one is the result)")
    p.set_defaults(handler=lambda args: _run(cmd_cancel_all, args))

    p = sub.add_parser(
        "orders",
        parents=[conn],
        help="print the open orders",
        description="Print the open orders from a fresh snapshot the exchange answered: a table, or "
        "JSON lines with --json (one per order, then the result).",
        epilog=epilog,
    )
    p.add_argument("--symbol", default=None, type=symbol_arg, help="only this symbol's orders; " + symbol_help)
    p.add_argument(
        "--json", action="store_true", help="one JSON object per order (decimals as strings), then the result"
    )
    p.set_defaults(handler=lambda args: _run(cmd_orders, args))

    p = sub.add_parser(
        "positions",
        parents=[conn],
        help="print the positions and the collateral",
        description="Print the futures positions and collateral from the account snapshot the exchange "
        "answered, with mark prices from REST futures/position when it answers. Exact decimals. Flat "
        "positions are left out unless --all.",
        epilog=epilog,
    )
    p.add_argument("--symbol", default=None, type=symbol_arg, help="only this symbol; " + symbol_help)
    p.add_argument("--all", action="store_true", help="also the flat positions (size 0)")
    p.add_argument("--json", action="store_true", help="one JSON object per collateral and position, then the result")
    p.set_defaults(handler=lambda args: _run(cmd_positions, args))

    p = sub.add_parser(
        "flatten",
        parents=[conn],
        help="close every position (on a symbol) with reduce-only market orders and verify it is flat",
        description="For each open position (on --symbol), send a reduce-only MARKET order of exactly its "
        "size on the opposite side, each under its own request id, then verify that the account channel (or "
        "REST futures/position) shows it at zero. Reduce-only: it never opens or flips a position. In an "
        "emergency run cancel-all first, then flatten (open orders could otherwise fill and re-open a "
        "position). Exit 0 verified flat, 1 refused or something left, 3 timed out, 4 connection.",
        epilog=epilog,
    )
    p.add_argument("--symbol", default=None, type=symbol_arg, help="only this symbol's position; " + symbol_help)
    p.add_argument(
        "--retries", type=count_arg, default=1, help="extra rounds while a position is left open (default 1)"
    )
    p.add_argument("--json", action="store_true", help="JSON lines instead of text (the last one is the result)")
    p.set_defaults(handler=lambda args: _run(cmd_flatten, args))

    p = sub.add_parser(
        "journal",
        help="show the audit journal: each request, what came back, and when",
        description="Show the request history from the audit journal: for each request what was sent, "
        "when, what came back and how long each step took.",
    )
    p.add_argument("--since", default=None, metavar="AGE", help="only requests newer than this: 30s, 10m, 2h, 1d")
    p.add_argument("--request-id", default=None, help="only this request")
    p.add_argument("--order-id", default=None, type=nonempty_arg, help="only requests about this order")
    p.add_argument(
        "--journal", default=argparse.SUPPRESS, metavar="PATH", help="journal file (default: the user data dir)"
    )
    p.add_argument("--config", default=argparse.SUPPRESS, metavar="PATH", help="config file")
    p.add_argument("--json", action="store_true", help="one JSON object per request")
    p.set_defaults(handler=cmd_journal)


def _run(command: Callable[..., Any], args: argparse.Namespace) -> int:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    try:
        return asyncio.run(command(args))
    finally:
        _quiet_if_closed(sys.stdout)


def _quiet_if_closed(stream: TextIO) -> None:
    """After the reader of a pipe went away, point the stream at /dev/null so the
    interpreter's final flush does not report a BrokenPipeError."""
    try:
        stream.flush()
    except (BrokenPipeError, ValueError):
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)


class Printer:
    """Prints the desk's log lines as they arrive (text or JSON lines): results to
    ``out``, errors to ``err``. A closed ``out`` (the reader went away) is not an
    error: the command goes on to its verdict and exit code, printing nothing more."""

    def __init__(self, desk: Any, as_json: bool, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.desk = desk
        self.as_json = as_json
        self.out: TextIO | None = out or sys.stdout
        self.err: TextIO | None = err or sys.stderr
        self.seen = 0

    def write(self, text: str, error: bool = False) -> None:
        stream = self.err if error else self.out
        if stream is None:
            return
        try:
            stream.write(text + "\n")
            stream.flush()
        except (BrokenPipeError, ValueError):
            _quiet_if_closed(stream)
            if error:
                self.err = None
            else:
                self.out = None

    def line(self, line: LogLine) -> None:
        text = safe(line.text, 1000)  # already through the sanitiser: this only re-checks
        if self.as_json:
            self.emit(
                {
                    "ts_ms": line.wall_ms,
                    "level": line.level,
                    "request_id": safe(line.request_id, 64) or None,
                    "order_id": safe(line.order_id, 64) or None,
                    "event": text,
                }
            )
        else:
            stamp = datetime.fromtimestamp(line.wall_ms / 1000).strftime("%H:%M:%S.%f")[:-3]
            self.write(f"{stamp} {text}", error=line.level == "error")

    def emit(self, obj: dict[str, Any]) -> None:
        """One JSON line; every character the sanitiser would escape (controls, bidi,
        separators, zero-width…) is a JSON ``\\uXXXX`` escape (``core.text.json_safe``)."""
        self.write(json_safe(obj))

    def pump(self) -> None:
        for line in self.desk.log.lines(since=self.seen):
            self.seen = line.seq
            self.line(line)

    async def follow(self) -> None:
        """Print the log as it grows (started as a task for the command's life)."""
        while True:
            self.pump()
            await asyncio.sleep(0.05)

    def result(self, outcome: str, code: int, error: str | None = None, **extra: Any) -> int:
        """The last line: the outcome and the exit code (stdout when 0, else stderr;
        with --json always a JSON object on stdout with ``exit`` and ``error``, and
        the error on stderr as well)."""
        self.pump()
        outcome = safe(outcome, 300)
        error = safe(error, 500) if error else None
        clean = {k: _clean(v) for k, v in extra.items()}
        if self.as_json:
            self.emit({"result": outcome, "exit": code, "error": error, **clean})
            if code != EXIT_OK:
                self.write(f"blotter: {outcome}{': ' + error if error else ''} (exit {code})", error=True)
        else:
            more = "".join(f" {k}={v}" for k, v in clean.items() if v not in (None, [], ""))
            why = f": {error}" if error else ""
            self.write(f"result: {outcome}{why}{more} (exit {code})", error=code != EXIT_OK)
        return code


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return safe(value, 300)
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


async def _open_desk(args: argparse.Namespace) -> tuple[Any, Any, Printer, asyncio.Task]:
    from ..desk import Desk
    from .settings import desk_settings, load_config, open_journal

    file = load_config(args)
    settings = desk_settings(args, file).model_copy(update={"reconnect": True, "backoff_max": 2.0})
    warnings: list[str] = []
    journal = open_journal(args, file, warnings, settings.api_key, settings.api_secret)
    desk = Desk(settings, journal=journal)
    for w in warnings:
        desk.log.add(w, "warn")
        # every command says it, on stderr: one that prints only a table (orders,
        # positions, --json) would otherwise run without its audit trail unnoticed
        print(f"blotter: {w}", file=sys.stderr)
    printer = Printer(desk, getattr(args, "json", False))
    task = asyncio.create_task(desk.run())
    return desk, journal, printer, task


async def _close(desk: Any, journal: Any, task: asyncio.Task, follower: asyncio.Task | None = None) -> None:
    if follower is not None:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await follower
    await desk.stop()
    try:
        await asyncio.wait_for(task, 5)
    except (TimeoutError, asyncio.CancelledError, Exception):
        task.cancel()
    if journal is not None:
        journal.close()


async def _until(desk: Any, done: Callable[[], bool], timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done():
        left = deadline - loop.time()
        if left <= 0:
            return False
        await desk.wait_changed(min(0.05, left))
    return True


async def _connect(desk: Any, printer: Printer) -> int | None:
    """Connect, authenticate and load the open orders, each step within ``--timeout``.
    When the stream is not live within a short time (:data:`WS_GRACE`, or at once when
    its first attempt failed) and the desk has a REST road, the open orders are loaded
    over REST instead and the command goes on by REST. Returns an exit code (after
    printing the result) on failure."""
    from ..desk import SnapshotState
    from ..net.session import ConnState

    timeout = desk.settings.request_timeout
    rest = desk.rest is not None
    ws_wait = min(timeout, WS_GRACE) if rest else timeout

    def decided() -> bool:
        if desk.state in (ConnState.LIVE, ConnState.AUTH_REFUSED, ConnState.STOPPED):
            return True
        return rest and desk.state is ConnState.RECONNECTING  # the first attempt failed: REST at once

    live = await _until(desk, decided, ws_wait) and desk.state is ConnState.LIVE
    printer.pump()
    if desk.state is ConnState.AUTH_REFUSED:
        return printer.result("auth refused", EXIT_CONNECT, error=desk.detail)
    if desk.state is ConnState.STOPPED:
        return printer.result("not connected", EXIT_CONNECT, error=desk.detail or "the session stopped")
    if not live and rest:
        return await _load_via_rest(desk, printer, ws_wait)
    if not live and desk.detail:
        return printer.result("not connected", EXIT_CONNECT, error=desk.detail)
    if not live:
        return printer.result(
            "timed out", EXIT_TIMEOUT, error=f"no answer from the server in {timeout:g} s ({desk.state.value})"
        )
    loaded = await _until(
        desk, lambda: desk.snapshot_state is SnapshotState.LOADED or desk.state is not ConnState.LIVE, timeout
    )
    printer.pump()
    if loaded and desk.snapshot_state is SnapshotState.LOADED:
        return None
    if desk.state is ConnState.AUTH_REFUSED:
        return printer.result("auth refused", EXIT_CONNECT, error=desk.detail)
    if desk.state is not ConnState.LIVE:
        return printer.result("not connected", EXIT_CONNECT, error=desk.detail or desk.state.value)
    q = _last_book_query(desk)
    if q is not None and q.state is QueryState.REFUSED:
        return printer.result("open orders refused", EXIT_FAIL, error=f"{q.request_id} ERR {q.reason}")
    what = f"the open-orders query {q.request_id}" if q is not None else "the open orders"
    return printer.result("timed out", EXIT_TIMEOUT, error=f"{what} was not answered in {timeout:g} s")


async def _load_via_rest(desk: Any, printer: Printer, waited: float) -> int | None:
    """The stream is not live: load the open orders over REST (the command then goes on
    by REST; the desk picks the road). An exit code if REST could not answer either."""
    from ..core.tracker import REST

    detail = f": {desk.detail}" if desk.detail else ""
    stream = f"{desk.state.value}{detail}"
    desk.log.add(f"the stream is not live after {waited:g} s ({stream}); going on via REST", "warn")
    q = await desk.fetch_open_orders(None, road=REST)
    printer.pump()
    if q.state is QueryState.ANSWERED:
        return None
    why = f"{q.request_id} {safe(q.reason, 300)}"
    if q.state is QueryState.TIMED_OUT:
        return printer.result(
            "timed out", EXIT_TIMEOUT, error=f"no answer from the server in {waited:g} s ({stream}); REST: {why}"
        )
    if q.state is QueryState.REFUSED:
        return printer.result("open orders refused", EXIT_FAIL, error=f"{q.request_id} ERR {q.reason}")
    if q.state is QueryState.NOT_SENT:
        return printer.result("not connected", EXIT_CONNECT, error=why)
    return printer.result("not connected", EXIT_CONNECT, error=f"WebSocket {stream}; REST: {why}")


def _last_book_query(desk: Any) -> Any:
    queries = [q for q in desk.queries.all() if q.symbol is None]
    return queries[-1] if queries else None


async def _fetch(desk: Any, printer: Printer, symbol: str | None) -> tuple[Any, int | None]:
    """A fresh open-orders query for ``symbol`` that the exchange answered, or the
    exit code of the failure (refused: 1, not answered: 3, not sent: 4)."""
    q = await desk.fetch_open_orders(symbol)
    printer.pump()
    scope = symbol or "all symbols"
    if q.state is QueryState.ANSWERED:
        return q, None
    if q.state is QueryState.REFUSED:
        return q, printer.result(f"open orders on {scope} refused", EXIT_FAIL, error=f"{q.request_id} ERR {q.reason}")
    if q.state is QueryState.NOT_SENT or q.state is QueryState.LOST:
        return q, printer.result(
            f"open orders on {scope} not answered", EXIT_CONNECT, error=f"{q.request_id} {q.reason}"
        )
    return q, printer.result(
        "timed out", EXIT_TIMEOUT, error=f"the open-orders query {q.request_id} ({scope}) was not answered ({q.reason})"
    )


async def cmd_cancel(args: argparse.Namespace) -> int:
    desk, journal, printer, task = await _open_desk(args)
    follower = asyncio.create_task(printer.follow())
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
        await _until(desk, lambda: tracked.state.final, settle)
        printer.pump()
        if tracked.state is State.CONFIRMED:
            if tracked.final_status == "Canceled":
                return printer.result("cancelled", EXIT_OK, request_id=tracked.request_id, order_id=args.order_id)
            return printer.result(
                f"already final: {tracked.final_status}", EXIT_OK, request_id=tracked.request_id, order_id=args.order_id
            )
        if tracked.state is State.REFUSED:
            hint = (
                ""
                if entry is not None
                else " (the order is not among the open orders: already final, or a wrong id/symbol)"
            )
            return printer.result(
                "refused",
                EXIT_FAIL,
                error=f"ERR {tracked.code} {tracked.reason} {tracked.message}".rstrip() + hint,
                request_id=tracked.request_id,
                order_id=args.order_id,
            )
        if tracked.state is State.FAILED:
            return printer.result("not sent", EXIT_CONNECT, error=tracked.message, request_id=tracked.request_id)
        # Timed out: ask the exchange whether the order is still open.
        q = await desk.fetch_open_orders(args.symbol)
        printer.pump()
        if q.state is not QueryState.ANSWERED:
            state = f"unknown (the open-orders query {q.request_id} {q.state.value})"
        else:
            still = desk.store.get(args.order_id)
            state = "still OPEN" if still is not None and still.is_open else "not open (final status unknown)"
        return printer.result(
            f"timed out; order is {state}",
            EXIT_TIMEOUT,
            error=f"{tracked.request_id} cancel-order not confirmed in {desk.settings.request_timeout:g} s",
            request_id=tracked.request_id,
            order_id=args.order_id,
        )
    finally:
        await _close(desk, journal, task, follower)


async def cmd_cancel_all(args: argparse.Namespace) -> int:
    from ..desk import Outcome

    desk, journal, printer, task = await _open_desk(args)
    follower = asyncio.create_task(printer.follow())
    symbol = args.symbol
    try:
        failed = await _connect(desk, printer)
        if failed is not None:
            return failed
        verdict = await desk.cancel_all_and_verify(symbol, rounds=max(0, args.retries) + 1)
        printer.pump()
        rid = verdict.request_id
        if verdict.still_open and not printer.as_json:
            for e in verdict.still_open:
                o = e.order
                printer.write(
                    f"still open: {safe(o.symbol)} {safe(o.side)} {_dec(o.qty)} @ {_dec(o.price)} "
                    f"{safe(e.status)} {safe(o.order_id)}"
                )
        ids = [e.order_id for e in verdict.still_open]
        if verdict.outcome is Outcome.VERIFIED:
            return printer.result("nothing left open", EXIT_OK, symbol=symbol or "ALL", request_id=rid)
        if verdict.outcome is Outcome.STILL_OPEN:
            return printer.result(
                f"{len(ids)} order(s) still open", EXIT_FAIL, error=verdict.reason, still_open=ids, request_id=rid
            )
        if verdict.outcome is Outcome.REFUSED:
            return printer.result("refused", EXIT_FAIL, error=verdict.reason, still_open=ids, request_id=rid)
        if verdict.outcome is Outcome.NOT_SENT:
            code = EXIT_FAIL if desk.read_only else EXIT_CONNECT  # read-only: refused here, not a connection failure
            return printer.result("not sent", code, error=verdict.reason, request_id=rid)
        return printer.result("could not verify: timed out", EXIT_TIMEOUT, error=verdict.reason, request_id=rid)
    finally:
        await _close(desk, journal, task, follower)


def _dec(value: Decimal | None) -> str:
    return "" if value is None else safe(format(value, "f"), 60)


async def cmd_orders(args: argparse.Namespace) -> int:
    desk, journal, printer, task = await _open_desk(args)
    printer.seen = 10**18  # only the orders (or a failure result), not the connection log
    try:
        failed = await _connect(desk, printer)
        if failed is not None:
            return failed
        if args.symbol is not None:
            _, failed = await _fetch(desk, printer, args.symbol)
            if failed is not None:
                return failed
        entries = sorted(
            desk.store.open_by_symbol(args.symbol), key=lambda e: (e.order.symbol or "", -(e.order.create_time_ms or 0))
        )
        summary = f"{len(entries)} open order(s)" + (f" on {args.symbol}" if args.symbol else "")
        if args.json:
            for e in entries:
                o = e.order
                # wire text as the exchange sent it: json_safe escapes what a terminal must not see
                printer.emit(
                    {
                        "order_id": o.order_id,
                        "symbol": o.symbol,
                        "side": o.side,
                        "type": o.order_type,
                        "price": _dec(o.price),
                        "qty": _dec(o.qty),
                        "filled": _dec(o.filled_qty),
                        "avg_price": _dec(o.avg_price),
                        "status": e.status,
                        "seq": o.seq,
                        "create_time_ms": o.create_time_ms,
                        "exec_time_ms": o.exec_time_ms,
                    }
                )
            return printer.result(summary, EXIT_OK, open=len(entries))
        rows: list[tuple[str, ...]] = [("SYMBOL", "SIDE", "TYPE", "PRICE", "QTY", "FILLED", "STATUS", "ORDER ID")]
        for e in entries:
            o = e.order
            rows.append(
                tuple(
                    safe(v, 64)
                    for v in (
                        o.symbol,
                        (o.side or "").upper(),
                        o.order_type,
                        _dec(o.price),
                        _dec(o.qty),
                        _dec(o.filled_qty),
                        e.status,
                        o.order_id,
                    )
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        right = {3, 4, 5}
        for r in rows:
            printer.write(
                "  ".join(
                    c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=False))
                ).rstrip()
            )
        printer.write(summary)
        return EXIT_OK
    finally:
        await _close(desk, journal, task)


async def _account(desk: Any, printer: Printer) -> int | None:
    """Connect, then wait for the account snapshot (asked at connect) within ``--timeout``."""
    failed = await _connect(desk, printer)
    if failed is not None:
        return failed
    timeout = desk.settings.request_timeout
    if not await _until(desk, lambda: desk.account_state.loaded, timeout):
        return printer.result(
            "timed out", EXIT_TIMEOUT, error=f"the account snapshot was not answered in {timeout:g} s"
        )
    return None


POSITION_COLUMNS = (
    ("SYMBOL", "symbol"),
    ("SIDE", "side"),
    ("SIZE", "size"),
    ("AVG-OPEN", "avg_open_price"),
    ("MARK", "mark_price"),
    ("UPNL", "unrealized_pnl"),
    ("RPNL", "realized_pnl"),
    ("LEV", "leverage"),
    ("MARGIN", "margin_type"),
    ("ISO-MARGIN", "isolated_margin"),
    ("TP", "take_profit_price"),
    ("SL", "stop_loss_price"),
    ("BUY-OPEN", "buy_open_order_notional"),
    ("SELL-OPEN", "sell_open_order_notional"),
)


def position_record(pos: Any, mark: Decimal | None) -> dict[str, Any]:
    """One position as plain strings (exact decimals; wire text as sent: print it through safe/json_safe)."""
    return {
        "symbol": pos.symbol,
        "side": pos.side or "",
        "size": _dec(pos.position),
        "avg_open_price": _dec(pos.avg_open_price),
        "mark_price": _dec(mark),
        "unrealized_pnl": _dec(pos.unrealized_pnl),
        "realized_pnl": _dec(pos.realized_pnl),
        "leverage": _dec(pos.leverage),
        "margin_type": pos.margin_type or "",
        "isolated_margin": _dec(pos.isolated_margin),
        "take_profit_price": _dec(pos.take_profit_price),
        "take_profit_trigger": pos.take_profit_trigger or "",
        "stop_loss_price": _dec(pos.stop_loss_price),
        "stop_loss_trigger": pos.stop_loss_trigger or "",
        "buy_open_order_notional": _dec(pos.buy_open_order_notional),
        "sell_open_order_notional": _dec(pos.sell_open_order_notional),
    }


async def cmd_positions(args: argparse.Namespace) -> int:
    desk, journal, printer, task = await _open_desk(args)
    printer.seen = 10**18  # only the positions (or a failure result), not the connection log
    try:
        failed = await _account(desk, printer)
        if failed is not None:
            return failed
        if not await desk.poll_positions():  # the marks (REST only); without them the rest still stands
            printer.seen = 0
            printer.pump()
            printer.seen = 10**18
        state = desk.account_state
        positions = [
            p
            for s, p in sorted(state.positions.items())
            if (args.symbol is None or s == args.symbol) and (args.all or p.position)
        ]
        open_count = sum(1 for p in positions if p.position)
        summary = f"{open_count} open position(s)" + (f" on {args.symbol}" if args.symbol else "")
        collaterals = [(c.asset, _dec(c.balance)) for _, c in sorted(state.collaterals.items())]
        records = [position_record(p, desk.marks.get(p.symbol)) for p in positions]
        if args.json:
            for asset, balance in collaterals:
                printer.emit({"asset": asset, "balance": balance})
            for r in records:
                printer.emit(r)
            return printer.result(summary, EXIT_OK, positions=open_count)
        rows: list[tuple[str, ...]] = [tuple(h for h, _ in POSITION_COLUMNS)]
        for rec in records:
            rows.append(tuple(safe(rec[k], 64) for _, k in POSITION_COLUMNS))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        text = {0, 1, 8}
        for row in rows:
            printer.write(
                "  ".join(
                    c.ljust(w) if i in text else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False))
                ).rstrip()
            )
        for asset, balance in collaterals:
            printer.write(f"collateral: {safe(asset, 20)} {safe(balance, 60)}")
        if not desk.marks:
            printer.write("mark prices: none (REST futures/position did not answer)")
        printer.write(summary)
        return EXIT_OK
    finally:
        await _close(desk, journal, task)


async def cmd_flatten(args: argparse.Namespace) -> int:
    from ..desk import Outcome

    desk, journal, printer, task = await _open_desk(args)
    follower = asyncio.create_task(printer.follow())
    symbol = args.symbol
    try:
        failed = await _connect(desk, printer)
        if failed is not None:
            return failed
        verdict = await desk.flatten_and_verify(symbol, rounds=max(0, args.retries) + 1)
        printer.pump()
        rids = [t.request_id for t in verdict.requests]
        left = {s: _dec(q) for s, q in verdict.left.items()}
        extra: dict[str, Any] = {"closed": verdict.closed, "request_ids": rids}
        if verdict.outcome is Outcome.VERIFIED:
            return printer.result("flat", EXIT_OK, symbol=symbol or "ALL", source=verdict.source, **extra)
        if printer.as_json:
            extra["left"] = [f"{s} {q}" for s, q in sorted(left.items())]
        if verdict.outcome in (Outcome.STILL_OPEN, Outcome.REFUSED):
            outcome = "refused" if verdict.outcome is Outcome.REFUSED else f"{len(left)} position(s) still open"
            return printer.result(outcome, EXIT_FAIL, error=verdict.reason, **extra)
        if verdict.outcome is Outcome.NOT_SENT:
            code = EXIT_FAIL if desk.read_only else EXIT_CONNECT
            return printer.result("not sent", code, error=verdict.reason, **extra)
        return printer.result("could not verify: timed out", EXIT_TIMEOUT, error=verdict.reason, **extra)
    finally:
        await _close(desk, journal, task, follower)


def cmd_journal(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..journal import (
        JournalError,
        format_history,
        history_json,
        parse_since,
        read_history,
    )
    from .settings import UserError, default_journal_path, load_config

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
