"""Shared helpers for tests that run the real simulator over loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from blotter.desk import Desk, DeskSettings
from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET, SimConfig, SimServer


@contextlib.asynccontextmanager
async def running_sim(**config: Any) -> AsyncIterator[SimServer]:
    config.setdefault("seed", 7)
    config.setdefault("rate", 0)
    config.setdefault("initial_orders", 12)
    sim = SimServer(SimConfig(**config), host="127.0.0.1", port=0)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@contextlib.asynccontextmanager
async def running_desk(sim: SimServer, **settings: Any) -> AsyncIterator[Desk]:
    settings.setdefault("api_key", SecretStr(DEMO_API_KEY))
    settings.setdefault("api_secret", SecretStr(DEMO_API_SECRET))
    settings.setdefault("backoff_max", 0.5)
    desk = Desk(DeskSettings(url=sim.url, **settings))
    task = asyncio.create_task(desk.run())
    try:
        yield desk
    finally:
        await desk.stop()
        try:
            await asyncio.wait_for(task, 5)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()


async def eventually(predicate, timeout: float = 5.0, desk: Desk | None = None) -> None:
    """Wait until ``predicate()`` holds (fails the test after ``timeout``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@pytest.fixture
def sim_factory():
    return running_sim


@pytest.fixture
def desk_factory():
    return running_desk


@contextlib.contextmanager
def sim_in_thread(config: SimConfig):
    """A simulator on its own event loop in a thread, for tests that run something
    else on the main thread (a subprocess in a pty, snapshot tests with their own loop).
    Read its state only after the work is done (or through ``call``)."""
    import threading

    ready = threading.Event()
    box: dict[str, Any] = {}

    def main() -> None:
        async def serve() -> None:
            sim = SimServer(config, host="127.0.0.1", port=0)
            await sim.start()
            stop = asyncio.Event()
            box.update(sim=sim, loop=asyncio.get_running_loop(), stop=stop)
            ready.set()
            await stop.wait()
            await sim.stop()

        asyncio.run(serve())

    thread = threading.Thread(target=main, name="sim", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("simulator did not start")
    try:
        yield box["sim"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)


PROTOCOL_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "protocol"
"""The project's own copy of the documented protocol samples."""
