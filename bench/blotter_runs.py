"""The blotter under load: the real Desk and the real app (``make_app``, as the CLI
builds it), run headless with ``App.run_test()``, against the simulator process."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from pydantic import SecretStr
from textual import events

from blotter.desk import Desk, DeskSettings
from blotter.journal import Journal
from blotter.protocol import OrderUpdate
from blotter.ui.app import BlotterApp, make_app
from blotter.ui.settings import UiSettings

from .common import DEMO_API_KEY, DEMO_API_SECRET, SimProcess, pct

SIZE = (160, 48)


def _desk(url: str, journal: Any = None) -> Desk:
    return Desk(
        DeskSettings(url=url, api_key=SecretStr(DEMO_API_KEY), api_secret=SecretStr(DEMO_API_SECRET)), journal=journal
    )


def _app(desk: Desk) -> BlotterApp:
    return make_app(desk, UiSettings(clock="utc"))


async def _until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark: timed out waiting for {what}")
        await asyncio.sleep(step)


class Renders:
    """Every draw of the orders table: (time_ns, store version the app's poll had folded)."""

    def __init__(self, app: BlotterApp) -> None:
        self.app = app
        self.log: list[tuple[int, int, str]] = []
        self.extra: Callable[[int, list[Any]], None] | None = None
        app.table.render_hook = self._on_render

    def _on_render(self, entries: list[Any]) -> None:
        now = time.time_ns()
        self.log.append((now, self.app._seen[0], self.app.view.filter))
        if self.extra is not None:
            self.extra(now, entries)

    async def drawn_after_sync(self, version: int, timeout: float = 30.0) -> tuple[int, str]:
        """When the table had drawn the store at ``version``: the first draw after the
        app's poll folded that version, or — when nothing on screen changed, so no draw
        was due — the moment the poll folded it."""
        app = self.app
        await _until(lambda: app._seen[0] >= version, timeout, "the poll to fold the last update", step=0.001)
        synced = time.time_ns()
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            for t, seen, _ in self.log:
                if seen >= version and t >= synced - 50_000_000:
                    return t, "draw"
            if not app.table._repaint_required and not any(seen >= version for _, seen, _ in self.log):
                # nothing visible changed in the last fold: the screen already shows the final state
                await asyncio.sleep(0.05)
                if not any(seen >= version for _, seen, _ in self.log):
                    return synced, "no draw needed"
            await asyncio.sleep(0.001)
        raise TimeoutError("benchmark: the table never drew the final state")


def _press(app: BlotterApp, key: str, char: str | None = None) -> int:
    """Deliver a key exactly as the terminal driver does; returns time.time_ns() of the key event."""
    event = events.Key(key, char if char is not None else key)
    event.set_sender(app)
    t = time.time_ns()
    app._driver.send_message(event)
    return t


async def _loaded(app: BlotterApp, desk: Desk, count: int, timeout: float = 120.0) -> None:
    await _until(
        lambda: desk.snapshot_count > 0 and len(app.view) >= count and app.table.row_count >= count,
        timeout,
        "the first snapshot",
        step=0.01,
    )


async def ingest(orders: int, updates: int, seed: int, journal: bool = False) -> dict[str, Any]:
    """Store applied every update and the table drew the final state, from burst start.
    With ``journal``, the audit journal records every frame, as ``blotter`` does by default."""
    with tempfile.TemporaryDirectory() as tmp:
        record = Journal.open(Path(tmp) / "journal.sqlite") if journal else None
        try:
            result = await _ingest(orders, updates, seed, record)
        finally:
            if record is not None:
                record.close()
        if record is not None:
            result["journal_rows"] = record.written
            result["journal_dropped"] = record.dropped
    return result


async def _ingest(orders: int, updates: int, seed: int, journal: Any) -> dict[str, Any]:
    async with SimProcess(orders, seed) as sim:
        prepared = asyncio.ensure_future(sim.call("prepare", n=updates))
        desk = _desk(sim.url, journal)
        app = _app(desk)
        async with app.run_test(size=SIZE):
            renders = Renders(app)
            await _loaded(app, desk, sim.open)
            await prepared
            await asyncio.sleep(0.3)
            base = desk.store.stats.updates
            started_ns, done = await sim.burst()
            await _until(lambda: desk.store.stats.updates - base >= updates, 600, "every update to be applied")
            applied_ns = time.time_ns()
            drawn_ns, how = await renders.drawn_after_sync(desk.store.version)
            await done
            result = {
                "ingest_s": (drawn_ns - started_ns) / 1e9,
                "applied_s": (applied_ns - started_ns) / 1e9,
                "final_draw": how,
                "applied": desk.store.stats.applied,
                "rate_per_s": updates / ((drawn_ns - started_ns) / 1e9),
            }
            await desk.stop()
    return result


async def fire(orders: int, updates: int, seed: int, cancels: int, interval: float) -> dict[str, Any]:
    """Cancel key → wire during the burst and at idle; freshness during the burst."""
    async with SimProcess(orders, seed) as sim:
        prepared = asyncio.ensure_future(sim.call("prepare", n=updates))
        desk = _desk(sim.url)
        app = _app(desk)
        async with app.run_test(size=SIZE):
            renders = Renders(app)
            await _loaded(app, desk, sim.open)
            await prepared
            await asyncio.sleep(0.3)

            # freshness: first not-yet-drawn arrival per order (session receive time) → the
            # draw that shows it. Updates to rows not on screen at the next draw are dropped.
            arrivals: dict[str, int] = {}
            fresh: list[float] = []
            on_frame = desk.session._on_frame
            burst_on = [False]

            def hooked(event: Any, raw: str, received_ns: int) -> None:
                if type(event) is OrderUpdate and burst_on[0]:
                    oid = event.order.order_id
                    if oid not in arrivals:
                        arrivals[oid] = received_ns
                on_frame(event, raw, received_ns)

            def drawn(now: int, entries: list[Any]) -> None:
                if arrivals:
                    for entry in entries:
                        t = arrivals.get(entry.order.order_id)
                        if t is not None:
                            fresh.append((now - t) / 1e6)
                    arrivals.clear()

            on_orders = desk.session._on_orders

            def hooked_orders(orders: list[Any], raws: list[bytes], received_ns: int) -> None:
                if burst_on[0]:
                    for order in orders:
                        if order.order_id not in arrivals:
                            arrivals[order.order_id] = received_ns
                on_orders(orders, raws, received_ns)

            desk.session._on_frame = hooked
            desk.session._on_orders = hooked_orders
            renders.extra = drawn

            used: set[str] = set()

            def pick() -> str | None:
                view, store, tracker = app.view, desk.store, desk.tracker
                top = max(0, round(app.table.scroll_y))
                for i in range(top, min(len(view), top + 30)):
                    oid = view[i]
                    e = store.get(oid)
                    if e is not None and e.is_open and oid not in used and tracker.pending_cancel(oid) is None:
                        return oid
                for i in range(min(len(view), 2000)):
                    oid = view[i]
                    e = store.get(oid)
                    if e is not None and e.is_open and oid not in used and tracker.pending_cancel(oid) is None:
                        return oid
                return None

            async def press_cancels(
                n: int, gap: float, phase: str, until_ns: Callable[[], int | None]
            ) -> list[tuple[str, int, str]]:
                out: list[tuple[str, int, str]] = []
                for _ in range(n):
                    await asyncio.sleep(gap)
                    oid = pick()
                    if oid is None:
                        continue
                    used.add(oid)
                    app.table.select(oid)
                    await asyncio.sleep(0.002)
                    t = _press(app, "c")
                    end = until_ns()
                    out.append((oid, t, phase if end is None or t < end else "after-burst"))
                return out

            base = desk.store.stats.updates
            burst_on[0] = True
            started_ns, done = await sim.burst()
            done_box: dict[str, int] = {}

            def applied_at() -> int | None:
                return done_box.get("applied")

            async def watch() -> None:
                await _until(lambda: desk.store.stats.updates - base >= updates, 600, "every update to be applied")
                done_box["applied"] = time.time_ns()

            watcher = asyncio.ensure_future(watch())
            presses = await press_cancels(cancels, interval, "burst", applied_at)
            await watcher
            burst_on[0] = False
            applied_ns = done_box["applied"]
            drawn_ns, _ = await renders.drawn_after_sync(desk.store.version)
            await done
            await asyncio.sleep(1.0)
            renders.extra = None
            presses += await press_cancels(cancels, 0.05, "idle", lambda: None)
            await asyncio.sleep(0.5)
            received = await sim.cancels()
            await desk.stop()

    def lat(phase: str) -> list[float]:
        return [(received[oid] - t) / 1e6 for oid, t, ph in presses if ph == phase and oid in received]

    burst, idle = lat("burst"), lat("idle")
    return {
        "cancel_burst_p50_ms": pct(burst, 50),
        "cancel_burst_p99_ms": pct(burst, 99),
        "cancel_burst_max_ms": max(burst) if burst else None,
        "cancel_burst_n": len(burst),
        "cancel_idle_p50_ms": pct(idle, 50),
        "cancel_idle_p99_ms": pct(idle, 99),
        "cancel_idle_n": len(idle),
        "cancel_unsent": sum(1 for oid, _, _ in presses if oid not in received),
        "cancel_after_burst": sum(1 for _, _, ph in presses if ph == "after-burst"),
        "fresh_p50_ms": pct(fresh, 50),
        "fresh_p99_ms": pct(fresh, 99),
        "fresh_max_ms": max(fresh) if fresh else None,
        "fresh_n": len(fresh),
        "fire_ingest_s": (drawn_ns - started_ns) / 1e9,
        "fire_applied_s": (applied_ns - started_ns) / 1e9,
    }


async def scale(orders: int, seed: int, text: str) -> dict[str, Any]:
    """100,000 open orders: first complete table, RSS, filter redraw."""
    async with SimProcess(orders, seed) as sim:
        proc = psutil.Process()
        rss_before = proc.memory_info().rss
        t0 = time.time_ns()
        desk = _desk(sim.url)
        app = _app(desk)
        async with app.run_test(size=SIZE) as pilot:
            renders = Renders(app)
            snap_at: dict[str, int] = {}
            on_frame = desk.session._on_frame

            def hooked(event: Any, raw: str, received_ns: int) -> None:
                if type(event).__name__ == "OpenOrders":
                    snap_at["received"] = received_ns
                on_frame(event, raw, received_ns)

            desk.session._on_frame = hooked
            await _loaded(app, desk, sim.open, timeout=300)
            full = desk.store.version
            first_ns, _ = await renders.drawn_after_sync(full)
            await asyncio.sleep(0.5)
            rss = proc.memory_info().rss

            async def filter_to(value: str) -> float:
                await pilot.press("slash")
                await _until(lambda: app.screen is not app.screen_stack[0], 10, "the filter box")
                await pilot.pause(0.1)
                app.screen.query_one("Input").value = value
                await pilot.pause(0.1)
                renders.log.clear()
                t = _press(app, "enter", "\r")
                await _until(lambda: app.view.filter == value, 30, "the filter to apply", step=0.001)
                await _until(
                    lambda: any(ts > t and f == value for ts, _, f in renders.log) and len(app.screen_stack) == 1,
                    30,
                    "the filtered table",
                    step=0.001,
                )
                drawn = min(ts for ts, _, f in renders.log if ts > t and f == value)
                return (drawn - t) / 1e6

            filter_ms = await filter_to(text)
            shown = len(app.view)
            clear_ms = await filter_to("")
            rss_peak = max(rss, proc.memory_info().rss)
            await desk.stop()
    return {
        "first_table_s": (first_ns - t0) / 1e9,
        "snapshot_to_table_s": (first_ns - snap_at.get("received", first_ns)) / 1e9,
        "rss_mb": rss / 2**20,
        "rss_peak_mb": rss_peak / 2**20,
        "rss_before_app_mb": rss_before / 2**20,
        "filter_ms": filter_ms,
        "filter_rows": shown,
        "filter_clear_ms": clear_ms,
        "orders": len(desk.store),
    }
