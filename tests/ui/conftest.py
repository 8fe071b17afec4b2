"""UI test helpers: the real simulator and the real Desk on loopback, built with make_app."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from blotter.desk import Desk, DeskSettings
from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET, SimConfig, SimServer
from blotter.ui.app import BlotterApp, make_app
from blotter.ui.settings import UiSettings
from tests.helpers import sim_in_thread  # noqa: F401 - used by the snapshot tests

FIXED_MS = 1_700_000_000_000
"""Simulator time for deterministic order times (2023-11-14 22:13:20 UTC)."""


def sim_config(**kw: Any) -> SimConfig:
    base: dict[str, Any] = dict(seed=1, initial_orders=20, rate=0, fixed_time_ms=FIXED_MS, ping_interval=0)
    base.update(kw)
    return SimConfig(**base)


def desk_for(url: str, **kw: Any) -> Desk:
    return Desk(DeskSettings(url=url, api_key=DEMO_API_KEY, api_secret=DEMO_API_SECRET, **kw))


async def until(pilot: Any, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Let the app run until ``predicate()`` holds (fails the test after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.02)


@asynccontextmanager
async def running(
    config: SimConfig | None = None,
    ui: UiSettings | None = None,
    size: tuple[int, int] = (120, 40),
    wait_orders: int | None = None,
    notifications: bool = False,
    threaded: bool = False,
    **desk_kw: Any,
) -> AsyncIterator[tuple[SimServer, Desk, BlotterApp, Any]]:
    """Simulator + desk + app (same wiring as the CLI), with the first snapshot shown.
    ``threaded``: the desk on a thread of its own, started before the app, as the CLI
    runs it."""
    config = config or sim_config()
    async with SimServer(config, port=0) as sim:
        desk = desk_for(sim.url, **desk_kw)
        if threaded:
            desk.start_thread()  # (the app's unmount stops it and waits for its thread)
        app = make_app(desk, ui or UiSettings(clock="utc"), threaded=threaded)
        async with app.run_test(size=size, notifications=notifications) as pilot:
            expected = len(sim.open_orders()) if wait_orders is None else wait_orders
            await until(pilot, lambda: desk.snapshot_count > 0 and len(app.view) >= expected, what="first snapshot")
            await pilot.pause(0.05)
            yield sim, desk, app, pilot
