"""Reconciliation over real loopback sockets against the simulator (issue 13 items 3 and 5):
orders that end during an outage, REST down, a stream that silently misses updates, an
UNKNOWN cancel, and the client's own request counts against the documented thresholds."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest

from blotter.core import NOT_OPEN, State
from blotter.desk import ConnState, Desk
from blotter.protocol.rest import Threshold
from blotter.sim.book import spec_for
from tests.helpers import eventually, running_desk, running_sim


def open_ids(sim) -> list[str]:
    return sorted(o["orderId"] for o in sim.open_orders())


def texts(desk: Desk) -> list[str]:
    return [line.text for line in desk.log.lines()]


def status_calls(sim) -> list[list[str]]:
    """The ids of every REST order/status call the simulator received."""
    return [
        dict(parse_qsl(c.query))["orderId"].split(",")
        for c in sim.rest.calls
        if c.path.endswith("/futures/order/status")
    ]


def snapshot_requests(sim) -> int:
    return len(sim.requests("futures-open-orders"))


def not_open_rows_rest_knows(desk: Desk, sim) -> list[str]:
    return [e.order_id for e in desk.store.entries() if e.status == NOT_OPEN and e.order_id in sim.orders]


async def outage(sim, desk: Desk) -> None:
    """The stream goes down (REST stays up) and the desk notices."""
    await sim.refuse_websocket()
    await eventually(lambda: desk.state is not ConnState.LIVE, 5)


async def test_orders_that_end_during_an_outage_show_the_exchanges_truth_after_reconnect():
    async with running_sim(initial_orders=15) as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        unfilled = [o for o in open_ids(sim) if not sim.orders[o].filled_qty]
        filled, cancelled, partly, rejected = unfilled[:4]
        await outage(sim, desk)
        sim.end_order(filled, "Filled")
        sim.end_order(cancelled, "Canceled")
        step = spec_for(sim.orders[partly].symbol).qty_step
        sim.end_order(partly, "Canceled", fill_qty=step * 3)
        sim.end_order(rejected, "Rejected", error="Insufficient margin.")
        calls_before = len(status_calls(sim))
        await sim.refuse_websocket(False)
        four = (filled, cancelled, partly, rejected)

        def settled() -> bool:
            return all(desk.store.get(o).status == sim.orders[o].status for o in four)

        await eventually(settled, 10)
        for oid in four:
            row, truth = desk.store.get(oid).order, sim.orders[oid]
            assert (row.filled_qty, row.avg_price, row.fee) == (truth.filled_qty, truth.avg_price, truth.cum_fee), oid
        assert sim.orders[partly].filled_qty == step * 3 and desk.store.get(partly).order.filled_qty == step * 3
        assert not_open_rows_rest_knows(desk, sim) == []
        # several ids per call: the four asked in one order/status call
        assert [sorted(ids) for ids in status_calls(sim)[calls_before:]] == [sorted(four)]
        f = sim.orders[filled]
        log = texts(desk)
        assert (
            f"{filled} ended while disconnected: Filled {Decimal(f.qty):f} @ {f.avg_price:f}, fee {f.cum_fee:f} USDT"
            in log
        )
        assert f"{cancelled} ended while disconnected: Canceled, nothing filled" in log
        assert any(
            t.startswith(f"{partly} ended while disconnected: Canceled after {step * 3:f} filled @ ") for t in log
        )
        assert f"{rejected} ended while disconnected: Rejected, nothing filled (Insufficient margin.)" in log


async def test_rest_down_during_the_reconnect_leaves_not_open_with_the_reason_then_settles():
    async with running_sim(initial_orders=6) as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        victim, forgotten = open_ids(sim)[:2]
        await outage(sim, desk)
        sim.end_order(victim, "Filled")
        sim.end_order(forgotten, "Canceled")
        del sim.book.orders[forgotten]  # beyond what REST remembers: the exchange cannot say
        sim.rest.faults.drop_connections = True
        await sim.refuse_websocket(False)
        await eventually(lambda: desk.store.get(victim).status == NOT_OPEN, 10)
        await eventually(lambda: (desk.not_open_reason(victim) or "").startswith("REST could not answer"), 10)
        assert any(t.startswith(f"{victim} stays NOT OPEN: REST could not answer: ") for t in texts(desk))
        sim.rest.faults.drop_connections = False  # REST is back: asked again (backoff), settled
        await eventually(lambda: desk.store.get(victim).status == "Filled", 15)
        assert desk.not_open_reason(victim) is None
        await eventually(
            lambda: desk.not_open_reason(forgotten) is not None and "unknown" in desk.not_open_reason(forgotten), 5
        )
        assert desk.store.get(forgotten).status == NOT_OPEN
        assert desk.not_open_reason(forgotten) == "unknown to REST (order/status does not list it)"
        assert f"{forgotten} stays NOT OPEN: unknown to REST (order/status does not list it)" in texts(desk)
        assert not_open_rows_rest_knows(desk, sim) == []


async def test_the_periodic_reconcile_catches_updates_the_stream_never_delivered():
    async with running_sim(initial_orders=8) as sim, running_desk(sim, reconcile_every=0.3) as desk:
        assert await desk.wait_live(5)
        ended, filled, partly = open_ids(sim)[:3]
        snapshots = snapshot_requests(sim)
        sim.end_order(ended, "Canceled", publish=False)  # the stream stays up but says nothing
        sim.end_order(filled, "Filled", publish=False)
        order = sim.orders[partly]
        order.fill(spec_for(order.symbol).qty_step, order.price, sim.clock.now())
        sim.book.refresh(order)
        order.seq = sim.book.next_sn()
        unseen = sim.flow.make_order(sim.clock.now())
        unseen.seq = sim.book.next_sn()
        sim.book.add(unseen)

        def truth() -> bool:
            return all(
                (e := desk.store.get(o)) is not None
                and e.status == sim.orders[o].status
                and e.order.filled_qty == sim.orders[o].filled_qty
                for o in (ended, filled, partly, unseen.order_id)
            )

        await eventually(truth, 10)
        log = texts(desk)
        assert f"drift: {ended} was open here, Canceled, nothing filled on the exchange" in log
        assert any(t.startswith(f"drift: {filled} was open here, Filled ") for t in log)
        assert any(t.startswith(f"drift: {partly} PartiallyFilled, ") and t.endswith("New, 0 filled here") for t in log)
        assert any(t.startswith(f"drift: {unseen.order_id} open on the exchange, missing here") for t in log)
        assert desk.session.connections == 1 and snapshot_requests(sim) == snapshots  # REST, not snapshots
        assert desk.reconciler.stats.runs >= 1


async def test_an_unknown_cancel_is_settled_by_one_rest_status_call_and_no_snapshot():
    async with (
        running_sim(ack_delay=30) as sim,
        running_desk(sim, request_timeout=0.4, resnapshot_min_interval=0) as desk,
    ):
        assert await desk.wait_live(5)
        target = open_ids(sim)[0]
        snapshots = snapshot_requests(sim)
        tracked = await desk.cancel_order(target)
        await eventually(lambda: tracked.state is State.TIMED_OUT, 5)
        await eventually(lambda: tracked.final_status is not None, 5)
        assert tracked.final_status == "Open"  # the exchange still has it open: not UNKNOWN
        assert f"{tracked.request_id} REST order status: order is STILL OPEN" in texts(desk)
        await asyncio.sleep(0.3)  # (would a snapshot follow? none may)
        assert status_calls(sim) == [[target]]
        assert snapshot_requests(sim) == snapshots


async def test_an_unknown_cancel_that_took_effect_unheard_is_confirmed_through_rest():
    async with running_sim() as sim, running_desk(sim, request_timeout=0.4) as desk:
        assert await desk.wait_live(5)
        target = open_ids(sim)[0]
        snapshots = snapshot_requests(sim)
        sim.set_silent(True)  # the cancel reaches the exchange; its ACK and update are lost
        tracked = await desk.cancel_order(target)
        await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("id") == tracked.request_id)
        await eventually(lambda: tracked.state is State.CONFIRMED, 5)
        sim.set_silent(False)
        assert tracked.final_status == "Canceled" and desk.store.get(target).status == "Canceled"
        assert any(
            t.startswith(f"{tracked.request_id} confirmed Canceled") and "after timeout" in t for t in texts(desk)
        )
        assert status_calls(sim) == [[target]] and snapshot_requests(sim) == snapshots


# -- rate limits (issue 13 item 5) ---------------------------------------------------------------------


async def test_the_websocket_requests_are_counted_per_type():
    async with running_sim() as sim, running_desk(sim, auth_mode="op") as desk:
        assert await desk.wait_live(5)
        await desk.cancel_order(open_ids(sim)[0])
        now = desk.clock()
        assert desk.limits.count("admin", now) >= 2  # auth + our first ping
        assert desk.limits.count("sub", now) == 2  # futures-order and futures-account-update
        assert desk.limits.count("open_orders", now) == 1
        assert desk.limits.count("cancel_order", now) == 1
        assert desk.rate_warnings == []


async def test_near_a_threshold_snapshots_and_reconciles_wait_and_cancels_do_not():
    from blotter.ui.themes import load_theme
    from blotter.ui.widgets.status_bar import build_status

    async with running_sim(initial_orders=6) as sim, running_desk(sim, reconcile_every=0.2) as desk:
        assert await desk.wait_live(5)
        desk.limits.thresholds["open_orders"] = Threshold("futures_open_orders", 4, 5)
        for _ in range(3):  # the trader refreshes: 1 + 3 = 4 in the last minute, at the threshold
            await desk.refresh()
        before_ws, before_rest = snapshot_requests(sim), len(sim.rest.calls)
        header = build_status(desk, load_theme("dark"), desk.clock(), 0).plain
        assert "RATE open_orders 4/4 a minute" in header
        await sim.drop_connections()  # the reconnect's snapshot is housekeeping: it waits
        await eventually(lambda: desk.session.connections >= 2 and desk.state is ConnState.LIVE, 10)
        await eventually(lambda: any(t.startswith("snapshot postponed: ") for t in texts(desk)), 5)
        target = open_ids(sim)[0]
        tracked = await desk.cancel_order(target)  # never held back
        await eventually(lambda: tracked.state is State.CONFIRMED, 5)
        await asyncio.sleep(0.5)  # periodic reconciles are due meanwhile: they wait too
        assert snapshot_requests(sim) == before_ws
        assert not [c for c in sim.rest.calls[before_rest:] if c.path.endswith("/order/open")]
        desk.limits.thresholds["open_orders"] = Threshold("futures_open_orders", 10000, 10000)  # room again
        await eventually(lambda: snapshot_requests(sim) > before_ws, 5)
        assert await desk.wait_live(5)


@pytest.mark.parametrize("share", [0.4, 0.6])
async def test_the_header_shows_a_type_close_to_its_threshold(share):
    from blotter.ui.themes import load_theme
    from blotter.ui.widgets.status_bar import build_status

    async with running_sim() as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        desk.limits.thresholds["cancel_order"] = Threshold("cancel_order", 10, 12)
        now = desk.clock()
        for _ in range(int(10 * share)):
            desk.limits.record("cancel_order", now)
        header = build_status(desk, load_theme("dark"), now, 0).plain
        assert ("RATE cancel_order" in header) is (share >= 0.5)
