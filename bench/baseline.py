"""The baseline: the least a client can do with the same stream — plain ``websockets``
and ``orjson.loads`` of every frame, nothing else (no validation, no store, no screen)."""

from __future__ import annotations

import time

import orjson
from websockets.asyncio.client import ClientConnection, connect

from blotter.protocol.signing import auth_headers, now_ms

from .common import DEMO_API_KEY, DEMO_API_SECRET, SimProcess


async def ingest(orders: int, updates: int, seed: int, marker: bool = False, via_tap: bool = False) -> dict[str, float]:
    """Seconds from the simulator starting the burst to the last update parsed. With
    ``marker``, the stream the terminal benchmark uses (it ends on a new order); with
    ``via_tap``, through the wire tap, recording every update, as the blotter's terminal
    runs do (so both sides pay the relay)."""
    async with SimProcess(orders, seed) as sim:
        tap = None
        url = sim.url
        if via_tap:
            from .terminal_runs import TapProcess

            tap = TapProcess(sim.url)
            url = tap.url
            tap.call(cmd="track", ids=None)
        try:
            return await _ingest(sim, url, updates, marker)
        finally:
            if tap is not None:
                tap.close()


async def connect_bare(url: str) -> ClientConnection:
    """Connected, logged in (the upgrade's headers) and subscribed to the order channel;
    the open orders asked for (their reply is the caller's to read)."""
    ws = await connect(
        url,
        additional_headers=auth_headers(DEMO_API_KEY, DEMO_API_SECRET),
        compression=None,
        ping_interval=None,
        max_size=None,
        max_queue=4096,
    )
    assert orjson.loads(await ws.recv()).get("m") == "connected"
    await ws.send(orjson.dumps({"op": "sub", "id": "sb1", "ch": "futures-order"}).decode())
    request = {"op": "req", "action": "futures-open-orders", "ac": "futures", "id": "oo1", "args": {"time": now_ms()}}
    await ws.send(orjson.dumps(request).decode())
    return ws


async def _ingest(sim: SimProcess, url: str, updates: int, marker: bool) -> dict[str, float]:
    prepared = sim.call("prepare", n=updates, marker=marker)
    ws = await connect_bare(url)
    try:
        t0 = time.perf_counter()
        while True:
            data = orjson.loads(await ws.recv())
            if isinstance(data, dict) and data.get("m") == "futures-open-orders":
                snapshot = time.perf_counter() - t0
                break
        updates = (await prepared)["frames"]
        if updates <= 0:
            return {"ingest_s": 0.0, "snapshot_s": snapshot}
        started_ns, done = await sim.burst()
        seen = 0
        async for raw in ws:
            data = orjson.loads(raw)
            if data.get("m") == "futures-order":
                seen += 1
                if seen >= updates:
                    break
        end_ns = time.time_ns()
        await done
    finally:
        await ws.close()
    return {"ingest_s": (end_ns - started_ns) / 1e9, "snapshot_s": snapshot}
