"""The session's delivery of frames, against a scripted server over loopback."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from pydantic import SecretStr
from websockets.asyncio.server import ServerConnection, serve

from blotter.net.session import ConnState, Session, SessionSettings
from blotter.protocol import OpenOrders, OrderUpdate
from blotter.protocol.parse import PAUSE_PARTS, SLICED_BYTES, SnapshotSlices
from tests.helpers import eventually
from tests.helpers.exchange import record


def channel_update(order_id: str, sn: int) -> dict[str, Any]:
    return {
        "m": "futures-order",
        "orderId": order_id,
        "s": "BTC-PERP",
        "sd": "Buy",
        "st": "PartiallyFilled",
        "ot": "Limit",
        "p": "64000.5",
        "q": "0.25",
        "cfq": "0.1",
        "ap": "64000.5",
        "sp": "",
        "lp": "64000.5",
        "lq": "0.1",
        "sn": sn,
        "t": 1_700_000_000_001,
        "ct": 1_700_000_000_000,
        "a": "futACCOUNT",
        "ei": "",
        "f": "0",
        "fa": "USDT",
        "err": "",
    }


async def _exchange(n: int):
    """Logs in anyone; answers the open-orders query with ``n`` records, then sends an order update."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send('{"m":"connected","type":"auth"}')
        async for message in ws:
            data = orjson.loads(message)
            if data.get("action") == "futures-open-orders":
                records = [record(f"o{i:06d}", seqNum=100 + i) for i in range(n)]
                reply = {"m": "futures-open-orders", "code": 0, "id": data["id"], "ac": "FUTURES", "data": records}
                await ws.send(orjson.dumps(reply).decode())
                await ws.send(orjson.dumps(channel_update("o000001", 10_000)).decode())

    return serve(handler, "127.0.0.1", 0)


@pytest.mark.parametrize("read_ahead", [False, True], ids=["checked", "read-ahead"])
@pytest.mark.parametrize("n", [10, 5000])
async def test_a_big_snapshot_is_handed_over_unread_and_the_frames_after_it_still_come(n, read_ahead):
    seen: list[Any] = []
    asked: list[int] = []
    paused: list[int] = []

    def ahead() -> Any:
        asked.append(1)
        return (lambda: paused.append(1)) if read_ahead else None

    async with await _exchange(n) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/1/api/pro/v2/stream"
        settings = SessionSettings(
            url=url, api_key=SecretStr("k" * 32), api_secret=SecretStr("c2VjcmV0"), account_snapshot_on_connect=False
        )
        session = Session(
            settings,
            on_frame=lambda event, raw, ns: seen.append(event),
            on_orders=lambda orders, raws, ns: seen.extend(OrderUpdate(o) for o in orders),
            on_snapshot=lambda slices, raw, ns: seen.append((slices, len(raw))),
            read_ahead=ahead,
        )
        task = asyncio.create_task(session.run())
        try:
            await eventually(lambda: any(isinstance(e, OrderUpdate) for e in seen), timeout=20)
            assert session._ws is not None and session._ws._big_watched is None  # (taken: not held on)
        finally:
            await session.stop()
            await asyncio.wait_for(task, 5)
    snapshots = [e for e in seen if isinstance(e, (OpenOrders, tuple))]
    assert len(snapshots) == 1
    first = snapshots[0]
    if n == 10:  # small: parsed, as every frame
        assert isinstance(first, OpenOrders) and len(first.orders) == 10
    else:  # big: handed over unread, to be read a slice at a time
        assert isinstance(first, tuple) and isinstance(first[0], SnapshotSlices) and first[1] > SLICED_BYTES
        assert first[0].request_id is not None
        # checked while it arrived, in more than one read: folding starts with most of it checked
        assert 0 < first[0].prechecked < first[1]
        # and read too when the desk asked for it (its pause called every few parts)
        ready = first[0]._ready
        assert asked == [1] and (ready is not None) is read_ahead
        assert len(paused) == (len(ready) // PAUSE_PARTS if ready is not None else 0)
        assert bool(paused) is read_ahead
        orders, _ = _read_all_slices(first[0])
        assert len(orders) == n
    # in the order they came: the update after the snapshot
    assert seen.index(first) < next(i for i, e in enumerate(seen) if isinstance(e, OrderUpdate))


def _read_all_slices(slices: SnapshotSlices) -> tuple[list[Any], int]:
    while (ok := slices.check()) is None:
        pass
    assert ok is True
    orders: list[Any] = []
    parts = 0
    while (part := slices.read()) is not None:
        orders.extend(part)
        parts += 1
    return orders, parts


async def test_stop_does_not_wait_for_a_server_that_never_answers_the_upgrade():
    """A server that accepts the TCP connection and never answers the WebSocket upgrade:
    stop() ends the session at once, not when open_timeout (30 s here) runs out."""
    held: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = SessionSettings(
        url=f"ws://127.0.0.1:{port}/1/api/pro/v2/stream",
        api_key=SecretStr("k" * 32),
        api_secret=SecretStr("c2VjcmV0"),
        open_timeout=30,
    )
    session = Session(settings, on_frame=lambda *a: None)
    run = asyncio.create_task(session.run())
    try:
        while not held:
            await asyncio.sleep(0.01)
        assert session.state is ConnState.CONNECTING
        await session.stop()
        await asyncio.wait_for(run, 10)  # (before the fix: 30 s, the open_timeout)
        assert session.state is ConnState.STOPPED
    finally:
        run.cancel()
        for writer in held:
            writer.close()
        server.close()
