"""Fixtures for the simulator tests: servers that always stop, and a tiny test client.

The client is plain ``websockets`` on purpose: the simulator is tested against the
wire, not against the blotter's own session code (which is tested against it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from blotter.protocol.signing import auth_headers, now_ms, sign
from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET, SimConfig, SimServer

FAST = {"rate": 0, "ping_interval": 60, "seed": 7, "initial_orders": 12}
"""Quiet defaults for tests: no background flow, no pings, a small seeded book."""


@pytest.fixture
async def make_sim() -> AsyncIterator[Callable[..., Awaitable[SimServer]]]:
    """``await make_sim(**config_fields)`` -> a started server, stopped after the test."""
    servers: list[SimServer] = []

    async def factory(**fields: Any) -> SimServer:
        sim = SimServer(SimConfig(**{**FAST, **fields}))
        await sim.start()
        servers.append(sim)
        return sim

    yield factory
    for sim in servers:
        await sim.stop()


@pytest.fixture
async def sim(make_sim: Callable[..., Awaitable[SimServer]]) -> SimServer:
    return await make_sim()


class Client:
    """A test client: JSON in, JSON out, with helpers to wait for a matching message."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: Any) -> None:
        await self.ws.send(message if isinstance(message, str) else orjson.dumps(message).decode())

    async def recv(self, timeout: float = 5.0) -> Any:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw

    async def recv_until(self, predicate: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        """The next message matching ``predicate`` (others are skipped)."""

        async def loop() -> Any:
            while True:
                message = await self.recv(timeout)
                if predicate(message):
                    return message

        return await asyncio.wait_for(loop(), timeout)

    async def request(self, action: str, args: dict[str, Any] | None = None, rid: str = "t1", **extra: Any) -> None:
        message: dict[str, Any] = {"op": "req", "action": action, "ac": "futures", "id": rid, **extra}
        if args is not None:
            message["args"] = args
        await self.send(message)

    async def subscribe(self, channel: str = "futures-order") -> Any:
        await self.send({"op": "sub", "id": "sub1", "ch": channel})
        return await self.recv_until(lambda m: isinstance(m, dict) and m.get("m") == "sub")


@pytest.fixture
async def open_client() -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    """``await open_client(sim, auth="headers"|"op"|None)`` -> a connected :class:`Client`
    (the ``connected`` message already read, op:auth already answered); closed after the test."""
    sockets: list[ClientConnection] = []

    async def factory(sim: SimServer, auth: str | None = "headers", **connect_kw: Any) -> Client:
        cfg = sim.config
        headers = auth_headers(cfg.api_key, cfg.api_secret, cfg.secret_encoding) if auth == "headers" else None
        ws = await connect(sim.url, additional_headers=headers, open_timeout=5, **connect_kw)
        sockets.append(ws)
        client = Client(ws)
        connected = await client.recv()
        assert connected == {"m": "connected", "type": "auth" if auth == "headers" else "unauth"}
        if auth == "op":
            t = now_ms()
            await client.send(
                {
                    "op": "auth",
                    "id": "a1",
                    "t": t,
                    "key": cfg.api_key,
                    "sig": sign(cfg.api_secret, t, cfg.secret_encoding),
                }
            )
            assert await client.recv() == {"m": "auth", "id": "a1", "code": 0}
        return client

    yield factory
    for ws in sockets:
        await ws.close()


__all__ = ["Client", "DEMO_API_KEY", "DEMO_API_SECRET", "FAST"]
