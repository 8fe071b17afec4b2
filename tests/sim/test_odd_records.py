"""Odd records from the exchange, end to end: the simulator's ``odd_records`` fault, a
real desk (and the real ``blotter orders`` command) on loopback. Every order the
exchange lists is counted open, the unreadable ones included, and shown as such."""

from __future__ import annotations

from blotter.core.text import has_unsafe
from blotter.sim.odd import ODDITIES
from tests.cli.test_headless import blotter
from tests.helpers import eventually, running_desk, running_sim


async def test_every_record_the_exchange_lists_is_an_open_order_in_the_store():
    async with running_sim(initial_orders=30, odd_records=list(ODDITIES)) as sim:
        listed = len(sim.open_orders()) + 1  # and the twin of one order on another symbol
        async with running_desk(sim) as desk:
            await eventually(lambda: desk.snapshot_count > 0, 10)
            store = desk.store
            assert store.open_count() == listed == len(store.open_by_symbol())
            unreadable = store.unreadable()
            assert len(unreadable) == len(ODDITIES) - 1  # all but the same id on two symbols, which is readable
            assert {e.order.symbol for e in store.conflicts()} and len(store.conflicts()) == 2
            lines = [line.text for line in desk.log.lines()]
            assert sum("record unreadable" in t for t in lines) == len(unreadable)
            assert sum("two symbols" in t for t in lines) == 1
            assert not any(has_unsafe(t) for t in lines)
            # a cancel-all: spoiled cancel confirmations are unreadable too, so the orders stay open
            # until a snapshot that no longer lists them (asked for by the store: a re-snapshot is due)
            await desk.cancel_all()
            await eventually(lambda: not sim.open_orders(), 10)
            await eventually(lambda: store.open_count() == 0, 15)
            assert store.unreadable() == []


async def test_blotter_orders_lists_and_counts_the_unreadable_ones(tmp_path):
    oddities = ["nan-avg-price", "zero-width-status", "huge-exponent", "full-width-digits", "lone-surrogate"]
    async with running_sim(initial_orders=8, odd_records=oddities) as sim:
        code, out, err = await blotter(tmp_path, "orders", "--url", sim.url, "--no-journal")
    assert code == 0, out + err
    assert "8 open order(s)" in out
    assert out.count("Unreadable") == len(oddities)
    assert "1e999999999999999999" not in out and "Traceback" not in out + err


async def test_cancel_of_a_row_without_a_readable_id_sends_nothing_and_of_a_conflict_row_sends_the_exchange_id():
    async with running_sim(initial_orders=6, odd_records=["no-order-id", "same-id-other-symbol"]) as sim:
        async with running_desk(sim) as desk:
            await eventually(lambda: desk.snapshot_count > 0, 10)
            (no_id,) = desk.store.unreadable()
            assert no_id.order_id.startswith("?")
            assert await desk.cancel_order(no_id.order_id) is None
            assert any("no readable order id" in line.text for line in desk.log.lines())
            assert not sim.requests("cancel-order")
            twin = next(e for e in desk.store.conflicts() if "@" in e.order_id)
            tracked = await desk.cancel_order(twin.order_id)
            assert tracked is not None
            frame = await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "cancel-order")
            assert frame.data["args"]["orderId"] == twin.order.order_id and "@" not in frame.data["args"]["orderId"]
            assert frame.data["args"]["symbol"] == twin.order.symbol
