"""A tiny scripted exchange on loopback for tests that need the exchange to say
something the simulator never says (hostile text, unreadable records)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from websockets.asyncio.server import serve


@contextlib.asynccontextmanager
async def scripted_exchange(
    open_orders: Callable[[str | None], dict[str, Any]],
    order_reply: Callable[[dict[str, Any]], dict[str, Any] | None] = lambda data: None,
    auth_error: str | None = None,
) -> AsyncIterator[str]:
    """Serves ``op:auth`` logins (``auth_error``: refuse with that text), the order
    subscription, pings, open-orders queries (``open_orders(symbol)`` gives the reply
    without ``id``) and other requests (``order_reply(request)``; None: no answer).
    Yields the URL (use ``--auth-mode op``)."""

    async def handler(ws: Any) -> None:
        await ws.send('{"m":"connected","type":"unauth"}')
        async for message in ws:
            data = orjson.loads(message)
            reply: dict[str, Any] | None = None
            if data.get("op") == "auth":
                reply = {"m": "auth", "id": data.get("id"), "code": 0}
                if auth_error is not None:
                    reply.update(code=200006, err=auth_error)
            elif data.get("op") == "sub":
                reply = {"m": "sub", "id": data["id"], "ch": data["ch"], "code": 0}
            elif data.get("op") == "ping":
                reply = {"m": "pong", "code": 0, "hp": 3}
            elif data.get("action") == "futures-open-orders":
                reply = {
                    "m": "futures-open-orders",
                    "id": data["id"],
                    "ac": "FUTURES",
                    **open_orders((data.get("args") or {}).get("symbol")),
                }
            elif data.get("op") == "req":
                reply = order_reply(data)
            if reply is not None:
                await ws.send(orjson.dumps(reply).decode())

    async with serve(handler, "127.0.0.1", 0) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/1/api/pro/v2/stream"


def record(order_id: str, **over: Any) -> dict[str, Any]:
    """A long-form open order record, as the open-orders reply carries it."""
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
