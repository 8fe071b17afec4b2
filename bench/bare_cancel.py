"""The cancel key's baseline: the least a Python client can do between a key and the
socket, in the same flood, on the same machine, measured the same way.

``python -m bench.bare_cancel --url URL --orders ID,ID,…`` runs in a pseudo-terminal
(raw mode, so a key is read the moment it is typed). It connects and logs in as the
bare ingest client does (plain ``websockets``; every frame read with ``orjson.loads``,
nothing kept), asks for the open orders, writes ``READY`` once they came, then reads
the stream. A thread of its own reads the keyboard; for each ``c`` it hands a
``cancel-order`` request for the next order of ``--orders`` to the event loop
(``run_coroutine_threadsafe``), which writes it to the socket. It draws nothing.

What it shares with the blotter: CPython (one interpreter for its threads), asyncio and
websockets, the simulator, the wire tap and the harness on the same 2 cores. What it
does not do: parse and check each frame, fold it into a book, draw, journal. Its key →
wire is therefore the floor of this machine and this language for the blotter's.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import threading
import tty

import orjson
from websockets.asyncio.client import ClientConnection

from blotter.protocol.signing import now_ms

from .baseline import connect_bare


def _keys(loop: asyncio.AbstractEventLoop, ws: ClientConnection, orders: list[str]) -> None:
    """The keyboard thread: one cancel per ``c``, for the next order in line."""
    line = iter(orders)
    ids = itertools.count(1)
    while True:
        try:
            data = os.read(0, 64)
        except OSError:
            return
        if not data:
            return
        for _ in range(data.count(b"c")):
            order_id = next(line, None)
            if order_id is None:
                continue
            request = {
                "op": "req",
                "action": "cancel-order",
                "ac": "FUTURES",
                "id": f"bare-{next(ids)}",
                "args": {"time": now_ms(), "orderId": order_id, "symbol": "BTC-PERP"},
            }
            asyncio.run_coroutine_threadsafe(ws.send(orjson.dumps(request).decode()), loop)


async def main(url: str, orders: list[str]) -> None:
    ws = await connect_bare(url)
    try:
        while True:
            data = orjson.loads(await ws.recv())
            if isinstance(data, dict) and data.get("m") == "futures-open-orders":
                break
        loop = asyncio.get_running_loop()
        threading.Thread(target=_keys, args=(loop, ws, orders), name="keys", daemon=True).start()
        sys.stdout.write("READY\r\n")
        sys.stdout.flush()
        async for raw in ws:
            orjson.loads(raw)
    finally:
        await ws.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--orders", required=True, help="comma-separated order ids, cancelled one per c")
    args = parser.parse_args()
    if os.isatty(0):
        tty.setraw(0)
    try:
        asyncio.run(main(args.url, args.orders.split(",")))
    except KeyboardInterrupt:
        pass
