"""Bounded memory: the event log, final orders, the receive queue, and a flood.

No timing assertions: only that nothing grows without bound.
"""

from __future__ import annotations

import asyncio
import gc
import os

import psutil
import pytest
from pydantic import SecretStr

from blotter.core import EventLog, OrderStore
from blotter.desk import ConnState
from blotter.net.session import Session, SessionSettings
from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET
from tests.helpers import eventually, running_desk, running_sim

MB = 1024 * 1024


def rss() -> int:
    gc.collect()
    return psutil.Process(os.getpid()).memory_info().rss


def test_event_log_keeps_the_last_lines_only():
    log = EventLog(max_lines=100)
    for n in range(10_000):
        log.add(f"line {n} " + "x" * 10_000)
    assert len(log) == 100 and log.last_seq == 10_000
    lines = log.lines()
    assert [l.seq for l in lines] == list(range(9_901, 10_001))
    assert all(len(l.text) <= 1000 for l in lines)  # a huge text is cut, too
    assert log.lines(since=9_990)[0].seq == 9_991


async def test_desk_log_pane_is_bounded_under_a_flood_of_events():
    async with running_sim(initial_orders=5) as sim, running_desk(sim, log_lines=300) as desk:
        assert await desk.wait_live(5)
        for n in range(3_000):
            await desk.cancel_order(f"s0000000000000U0000000000nope{n:04d}")  # unknown: one log line each, nothing sent
        assert len(desk.log) == 300
        assert desk.log.last_seq > 3_000
        assert sim.requests("cancel-order") == []


async def test_receive_queue_is_bounded_by_max_queue():
    async with running_sim(initial_orders=5) as sim:
        settings = SessionSettings(
            url=sim.url,
            api_key=SecretStr(DEMO_API_KEY),
            api_secret=SecretStr(DEMO_API_SECRET),
            max_queue=16,
            max_frame_bytes=1 * MB,
            backoff_max=0.3,
        )
        session = Session(settings, on_frame=lambda *a: None)
        task = asyncio.create_task(session.run())
        try:
            await asyncio.wait_for(session.live.wait(), 5)
            ws = session._ws
            assert ws is not None
            assert ws.protocol.max_message_size == 1 * MB
            assert ws.recv_messages.high == 16  # websockets pauses reading from the socket beyond this
        finally:
            await session.stop()
            await asyncio.wait_for(task, 5)
    # The desk's sessions use the (bounded) default.
    assert SessionSettings(url="ws://127.0.0.1/x", api_key=SecretStr("k"), api_secret=SecretStr("s")).max_queue <= 4096


def test_order_store_evicts_final_orders_beyond_max_final():
    from blotter.protocol.messages import Order

    store = OrderStore(max_final=1_000)
    for n in range(20_000):
        oid = f"s{n:031d}"
        store.apply_update(
            Order.model_validate({"orderId": oid, "s": "BTC-PERP", "sd": "Buy", "st": "New", "sn": 2 * n}), 0.0
        )
        if n % 10:  # nine in ten end final; the rest stay open
            store.apply_update(
                Order.model_validate({"orderId": oid, "s": "BTC-PERP", "sd": "Buy", "st": "Filled", "sn": 2 * n + 1}),
                0.0,
            )
    assert store.open_count() == 2_000
    assert len(store) == 2_000 + 1_000
    assert store.stats.evicted == 18_000 - 1_000
    # The newest final orders are the ones kept.
    assert f"s{19_999:031d}" in store and f"s{1:031d}" not in store


@pytest.mark.timeout(60)
async def test_flood_of_updates_does_not_grow_memory_without_bound():
    n_updates = 100_000
    async with (
        running_sim(initial_orders=200, seed=11) as sim,
        running_desk(sim, max_final_orders=1_000, log_lines=1_000) as desk,
    ):
        assert await desk.wait_live(5)
        # Warm up (imports, caches, first allocations) before the baseline.
        await sim.emit_updates(2_000)
        await eventually(lambda: desk.store.stats.updates >= 2_000, 30)
        before = rss()
        peak_orders = 0

        async def watch() -> None:
            nonlocal peak_orders
            while True:
                peak_orders = max(peak_orders, len(desk.store))
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        try:
            await sim.emit_updates(n_updates)
            await eventually(lambda: desk.store.stats.updates >= 2_000 + n_updates, 45)
        finally:
            watcher.cancel()
        after = rss()
        open_now = desk.store.open_count()
        assert desk.state is ConnState.LIVE
        assert desk.store.stats.evicted > 10_000
        assert len(desk.store) <= 1_000 + open_now
        assert peak_orders <= 1_000 + 2 * 200 + 100, peak_orders  # final cap + (roughly) the open book
        assert len(desk.log) <= 1_000
        growth = (after - before) / MB
        print(
            f"\nflood: {n_updates} updates, store peak {peak_orders} orders, now {len(desk.store)} "
            f"({open_now} open), evicted {desk.store.stats.evicted}, RSS growth {growth:.1f} MB "
            f"(sim book holds {len(sim.orders)} orders)"
        )
        assert growth < 150, f"RSS grew by {growth:.0f} MB"
