"""Hostile input at the desk level: a tiny custom exchange that says whatever we want.

Strings from the wire are data: Rich markup, ANSI/OSC escapes, CR, NUL and bidi
overrides must reach the store verbatim (the screen escapes them) but never a log
line raw; huge values must not make huge log lines; numbers that are not numbers,
negative quantities, missing fields and wrong types make a record UNREADABLE — kept
as an open order, one log line each; the desk keeps running and every other order
stays intact. Frames over
``max_frame_bytes`` are refused by the client, which reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import orjson
from pydantic import SecretStr
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from blotter.core import State
from blotter.desk import ConnState, Desk, DeskSettings
from tests.helpers import eventually

BIG = "A" * 100_000
HOSTILE_STRINGS = [
    "[bold red]x[/]",
    "[link=http://x]click[/link]",
    "[@click=app.quit]quit[/]",
    "\x1b[2J\x1b[H",
    "\x1b]52;c;aGk=\x07",
    "\x1b]8;;http://x\x07link\x1b]8;;\x07",
    "line\rover",
    "nul\x00byte",
    "\u202egnp.exe",
    "\x9b31m",  # C1 CSI
    BIG,
]
MAX_LINE = 1000
"""No log line may be longer than this, whatever came over the wire."""
UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

GOOD_1 = "s18f1a2b3c4dU1234567890goodAAAA1"
GOOD_2 = "s18f1a2b3c4dU1234567890goodAAAA2"


def record(order_id: str, **over: Any) -> dict[str, Any]:
    """A long-form order record (snapshot/ACK form)."""
    base = {
        "orderId": order_id,
        "symbol": "BTC-PERP",
        "side": "Buy",
        "orderType": "Limit",
        "price": "64000.5",
        "orderQty": "0.25",
        "cumFilledQty": "0",
        "avgFilledPx": "0",
        "status": "New",
        "seqNum": 100,
        "accountId": "futACCOUNT",
        "lastExecTime": 1_700_000_000_000,
        "time": 1_700_000_000_000,
    }
    base.update(over)
    return base


def update(order_id: str | None, **over: Any) -> dict[str, Any]:
    """A short-form ``futures-order`` channel message."""
    base = {
        "m": "futures-order",
        "orderId": order_id,
        "s": "BTC-PERP",
        "sd": "Buy",
        "ot": "Limit",
        "p": "64000.5",
        "q": "0.25",
        "cfq": "0",
        "ap": "0",
        "st": "New",
        "sn": 101,
        "a": "futACCOUNT",
        "t": 1_700_000_000_001,
    }
    if order_id is None:
        del base["orderId"]
    base.update(over)
    return base


class HostileExchange:
    """Answers the handshake, the subscription and open-orders queries (with
    ``snapshot``), replies to other requests with ``on_request``, and lets the test
    push any frame to the connected desk."""

    def __init__(self, snapshot: list[Any], on_request: Callable[[dict[str, Any]], list[Any]] | None = None) -> None:
        self.snapshot = snapshot
        self.on_request = on_request or (lambda data: [])
        self.clients: list[ServerConnection] = []
        self.connections = 0
        self.received: list[dict[str, Any]] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/1/api/pro/v2/stream"

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.clients.append(ws)
        try:
            await ws.send('{"m":"connected","type":"auth"}')
            async for message in ws:
                data = orjson.loads(message)
                self.received.append(data)
                op = data.get("op")
                if op == "sub":
                    await ws.send(orjson.dumps({"m": "sub", "id": data["id"], "ch": data["ch"], "code": 0}).decode())
                elif op == "ping":
                    await ws.send('{"m":"pong","code":0,"hp":3}')
                elif op == "req" and data.get("action") == "futures-open-orders":
                    await ws.send(
                        orjson.dumps(
                            {
                                "m": "futures-open-orders",
                                "code": 0,
                                "id": data["id"],
                                "ac": "FUTURES",
                                "data": self.snapshot,
                            }
                        ).decode()
                    )
                elif op == "req":
                    for reply in self.on_request(data):
                        await self.push(reply, ws)
        except ConnectionClosed:
            pass
        finally:
            self.clients.remove(ws)

    async def push(self, frame: Any, ws: ServerConnection | None = None) -> None:
        text = frame if isinstance(frame, (str, bytes)) else orjson.dumps(frame).decode()
        for client in [ws] if ws is not None else list(self.clients):
            await client.send(text)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[HostileExchange]:
        async with serve(self._handler, "127.0.0.1", 0, ping_interval=None, max_size=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            yield self


@contextlib.asynccontextmanager
async def desk_on(exchange: HostileExchange, **settings: Any) -> AsyncIterator[Desk]:
    desk = Desk(
        DeskSettings(
            url=exchange.url, api_key=SecretStr("k" * 32), api_secret=SecretStr("c2VjcmV0"), backoff_max=0.3, **settings
        )
    )
    task = asyncio.create_task(desk.run())
    try:
        assert await desk.wait_live(5), desk.detail
        yield desk
    finally:
        await desk.stop()
        await asyncio.wait_for(task, 5)


async def settle(exchange: HostileExchange, desk: Desk, marker_id: str) -> None:
    """Push a harmless marker update after the frames under test and wait until it is folded:
    frames are handled in order, so everything before it has been handled too."""
    await exchange.push(update(marker_id, sn=10**9 + len(marker_id)))
    await eventually(lambda: marker_id in desk.store, 5)


def assert_log_safe(desk: Desk) -> None:
    for line in desk.log.lines():
        assert len(line.text) <= MAX_LINE, f"log line of {len(line.text)} chars: {line.text[:120]!r}…"
        assert not UNSAFE.search(line.text), f"raw control/bidi character in log line: {line.text[:200]!r}"
        assert BIG[:2000] not in line.text


def lines_with(desk: Desk, text: str) -> list[str]:
    return [line.text for line in desk.log.lines() if text in line.text]


BAD_FIELDS: list[tuple[str, dict[str, Any]]] = [
    ("price not a number", {"price": "abc"}),
    ("price NaN", {"price": "NaN"}),
    ("price Infinity", {"price": "Infinity"}),
    ("negative qty", {"orderQty": "-1"}),
    ("negative filled", {"cumFilledQty": "-0.5"}),
    ("qty object", {"orderQty": {"x": 1}}),
    ("qty list", {"orderQty": [1, 2]}),
    ("seq not a number", {"seqNum": "x"}),
    ("seq float", {"seqNum": 1.5}),
    ("side int", {"side": 12}),
    ("status null", {"status": None}),
    ("status empty", {"status": ""}),
    ("symbol missing", {"symbol": None}),
    ("huge price", {"price": "9" * 5000 + "x"}),
    ("hostile number", {"price": "\x1b[2J1"}),
]


async def test_hostile_snapshot_records(loop_errors, handler_failures):
    snapshot: list[Any] = [record(GOOD_1), record(GOOD_2, symbol="ETH-PERP", side="Sell", seqNum=99)]
    bad = []
    for n, (_, over) in enumerate(BAD_FIELDS):
        bad.append(record(f"s18f1a2b3c4dU1234567890bad{n:06d}", **over))
    bad.append({k: v for k, v in record("x").items() if k != "orderId"})  # missing id
    bad.append(record(BIG, price="abc"))  # 100 kB id and a bad price
    bad.append(record("\x1b]52;c;aGk=\x07" + "\u202e", orderQty="-3"))
    bad.extend(["just a string", 42, None, [1, 2]])  # not records at all
    snapshot.extend(bad)
    # Hostile but well-formed strings: kept as data, verbatim.
    for n, text in enumerate(HOSTILE_STRINGS):
        snapshot.append(
            record(f"s18f1a2b3c4dU1234567890hst{n:06d}", symbol=text, orderType=text, accountId=text, seqNum=200 + n)
        )
    async with HostileExchange(snapshot).running() as ex, desk_on(ex) as desk:
        assert desk.state is ConnState.LIVE
        await eventually(lambda: desk.snapshot_count > 0, 5)
        assert desk.store.get(GOOD_1).order.price == Decimal("64000.5")
        assert desk.store.get(GOOD_2).order.side == "Sell"
        for n, text in enumerate(HOSTILE_STRINGS):
            entry = desk.store.get(f"s18f1a2b3c4dU1234567890hst{n:06d}")
            assert entry is not None
            if len(text) > 64:  # no symbol is that long: unreadable, kept open, with a log line
                assert entry.unreadable and entry.is_open and entry.order.symbol == ""
                assert any(f"hst{n:06d}" in line for line in lines_with(desk, "record unreadable"))
                continue
            assert entry.order.symbol == text and entry.order.order_type == text and not entry.unreadable
        for n in range(len(BAD_FIELDS)):  # each bad record: an open, unreadable order
            entry = desk.store.get(f"s18f1a2b3c4dU1234567890bad{n:06d}")
            assert entry is not None and entry.unreadable and entry.is_open, BAD_FIELDS[n]
        unreadable = lines_with(desk, "record unreadable")
        too_long = sum(len(text) > 64 for text in HOSTILE_STRINGS)
        assert len(unreadable) == len(bad) + too_long, unreadable
        assert len(desk.store) == 2 + len(HOSTILE_STRINGS) + len(bad)  # every record the exchange listed
        assert desk.store.open_count() == len(snapshot) and len(desk.store.unreadable()) == len(bad) + too_long
        assert_log_safe(desk)
        assert not handler_failures()
    loop_errors.assert_none()


async def test_hostile_order_updates(loop_errors, handler_failures):
    async with HostileExchange([record(GOOD_1), record(GOOD_2, seqNum=99)]).running() as ex, desk_on(ex) as desk:
        before = len(desk.log.lines())
        sent_bad = 0
        for n, (_, over) in enumerate(BAD_FIELDS):
            short = {
                {
                    "price": "p",
                    "orderQty": "q",
                    "cumFilledQty": "cfq",
                    "seqNum": "sn",
                    "side": "sd",
                    "status": "st",
                    "symbol": "s",
                }[k]: v
                for k, v in over.items()
            }
            # Aimed at a good order: a bad update must not change it.
            await ex.push(update(GOOD_1, **{"sn": 500 + n, **short}))
            sent_bad += 1
        await ex.push(update(None, sn=600))  # missing order id
        await ex.push(update(BIG, q="-1", sn=601))  # 100 kB id, negative qty
        await ex.push(update("\x1b]52;c;aGk=\x07", p="1e", sn=602))
        await ex.push({"m": "futures-order"})  # nothing at all
        sent_bad += 4
        # Well-formed updates with hostile strings: data.
        for n, text in enumerate(HOSTILE_STRINGS):
            await ex.push(update(f"s18f1a2b3c4dU1234567890upd{n:06d}", s=text, err=text, sn=700 + n))
        # And a good update to a good order still applies.
        await ex.push(update(GOOD_2, st="PartiallyFilled", cfq="0.1", sn=800))
        await settle(ex, desk, "s18f1a2b3c4dU1234567890marker01")

        assert desk.state is ConnState.LIVE and desk.session.connections == 1
        unreadable = [l.text for l in desk.log.lines()[before:] if "record unreadable" in l.text]
        sent_bad += sum(len(text) > 64 for text in HOSTILE_STRINGS)  # no symbol is that long: unreadable
        # GOOD_1's bad updates all land on GOOD_1 (one notice each); the others are rows of their own
        assert len(unreadable) == sent_bad, unreadable
        g1 = desk.store.get(GOOD_1)
        # the last update aimed at GOOD_1 could not be read: it is UNREADABLE, still open, never taken as ended
        assert g1.unreadable and g1.is_open and g1.order.order_id == GOOD_1
        g2 = desk.store.get(GOOD_2).order
        assert (g2.status, g2.filled_qty) == ("PartiallyFilled", Decimal("0.1"))
        for n, text in enumerate(HOSTILE_STRINGS):
            entry = desk.store.get(f"s18f1a2b3c4dU1234567890upd{n:06d}")
            if len(text) > 64:
                assert entry.unreadable and entry.is_open
                continue
            assert entry.order.symbol == text and entry.order.error == text
        assert_log_safe(desk)
        assert not handler_failures()
    loop_errors.assert_none()


async def test_hostile_acks_errors_and_other_messages(loop_errors, handler_failures):
    def answer(data: dict[str, Any]) -> list[Any]:
        rid = data["id"]
        if data["action"] == "cancel-order" and data["args"]["orderId"] == GOOD_1:
            # A hostile error: huge reason and message with escapes; then junk acks.
            return [
                {
                    "m": "order",
                    "action": "cancel-order",
                    "id": rid,
                    "ac": "FUTURES",
                    "code": 300006,
                    "info": {
                        "symbol": BIG,
                        "reason": "\x1b]52;c;aGk=\x07" + BIG,
                        "errorMsg": "[@click=app.quit]\r\x00" + BIG,
                    },
                },
                {"m": "order", "action": BIG, "id": BIG, "code": 0, "info": {"orderId": BIG}},
                {"m": "order", "action": "cancel-order", "id": rid, "code": "zero", "info": "not a dict"},
            ]
        if data["action"] == "cancel-order":
            return [
                {
                    "m": "order",
                    "action": "cancel-order",
                    "id": rid,
                    "ac": "FUTURES",
                    "code": 0,
                    "info": {"orderId": "\u202e" + BIG, "symbol": ["x"]},
                },
                update(GOOD_2, st="Canceled", sn=900),
            ]
        return []

    async with (
        HostileExchange([record(GOOD_1), record(GOOD_2, seqNum=99)], answer).running() as ex,
        desk_on(ex) as desk,
    ):
        refused = await desk.cancel_order(GOOD_1)
        await eventually(lambda: refused.state is State.REFUSED)
        assert refused.code == 300006
        confirmed = await desk.cancel_order(GOOD_2)
        await eventually(lambda: confirmed.state is State.CONFIRMED)
        # Unknown types (huge, escaped), generic errors, disconnected, auth/sub replies, non-JSON.
        for text in HOSTILE_STRINGS:
            await ex.push({"m": text, "data": text})
            await ex.push({"m": "error", "id": text, "code": text, "reason": text, "info": text})
            await ex.push({"m": "error", "id": None, "code": 100005, "reason": text, "info": {"message": text}})
            await ex.push({"m": "disconnected", "code": 100005, "reason": text, "info": text})
            await ex.push({"m": "sub", "id": "x", "ch": text, "code": 1, "err": text})
            await ex.push(text)  # not JSON
            await ex.push(orjson.dumps(text).decode())  # a JSON string
        for n in range(300):  # a flood of distinct unknown types must not grow state or the log unboundedly
            await ex.push({"m": f"type-{n}-" + "x" * 1000})
        await ex.push("[" * 5000)  # deep nesting, not even complete
        await ex.push("[" * 2000 + "]" * 2000)  # too deep for the JSON parser
        await ex.push(b"\xff\xfe binary \x00")
        await settle(ex, desk, "s18f1a2b3c4dU1234567890marker02")

        assert desk.state is ConnState.LIVE and desk.session.connections == 1
        assert desk.store.get(GOOD_1).is_open
        assert desk.store.get(GOOD_2).status == "Canceled"
        unknown_lines = lines_with(desk, "unknown type")
        assert len(unknown_lines) <= 100, len(unknown_lines)
        assert len(desk._unknown_types) <= 100
        assert_log_safe(desk)
        assert not handler_failures()
    loop_errors.assert_none()


async def test_frame_over_max_frame_bytes_is_refused_and_the_desk_reconnects(loop_errors, handler_failures):
    async with HostileExchange([record(GOOD_1), record(GOOD_2, seqNum=99)]).running() as ex:
        async with desk_on(ex, max_frame_bytes=64 * 1024) as desk:
            assert desk.session.connections == 1
            await ex.push(update(GOOD_1, err="x" * 200_000, sn=300))
            await eventually(lambda: desk.session.connections == 2 and desk.state is ConnState.LIVE, 5)
            await eventually(lambda: desk.snapshot_count >= 2, 5)
            why = [l.text for l in desk.log.lines() if "reconnecting" in l.text]
            assert why and any("too big" in t or "exceeds" in t or "max_frame_bytes" in t for t in why), why
            assert "x" * 100 not in " ".join(why)
            assert desk.store.get(GOOD_1).order.seq == 100  # the big update was not applied
            assert desk.store.get(GOOD_1).is_open and desk.store.get(GOOD_2).is_open
            # And the desk keeps working on the new connection.
            await ex.push(update(GOOD_1, st="Filled", cfq="0.25", sn=301))
            await eventually(lambda: desk.store.get(GOOD_1).status == "Filled")
            assert_log_safe(desk)
            assert not handler_failures()
    loop_errors.assert_none()
