"""Sequence numbers as the exchange sends them (ADDENDUM §3.1), end to end.

The simulator's counter behaves like the live one: around 1.9e10, jumping by thousands
to millions between two updates. A jump is not a lost message, so a long, fault-free
run must never make the desk ask for the open orders again after the first snapshot
(on a real account that would be a snapshot every 2 s for as long as orders move)."""

from __future__ import annotations

import pytest
from blotter.desk import Desk

from tests.helpers import eventually, running_desk, running_sim


def open_orders_queries(sim) -> list:
    return [f for f in sim.requests() if f.data.get("action") == "futures-open-orders"]


def desk_state(desk: Desk) -> dict[str, tuple[str, int | None]]:
    return {e.order_id: (e.status, e.order.seq) for e in desk.store.open_entries()}


def sim_state(sim) -> dict[str, tuple[str, int | None]]:
    return {o["orderId"]: (o["status"], o["seqNum"]) for o in sim.open_orders()}


@pytest.mark.timeout(90)
async def test_a_long_run_with_the_real_counter_asks_for_one_snapshot_only():
    updates = 3000
    async with (
        running_sim(rate=1000, initial_orders=60) as sim,
        running_desk(sim, resnapshot_min_interval=0.2) as desk,
    ):
        assert await desk.wait_live(5)
        await eventually(lambda: desk.store.stats.updates >= updates, 60)
        sim.pause_flow()
        await sim.flush()
        # Every update arrived: the desk agrees with the exchange without asking again.
        await eventually(lambda: desk_state(desk) == sim_state(sim), 10)
        queries = open_orders_queries(sim)
        stats = desk.store.stats
        print(
            f"\nrealistic counter: {stats.updates} updates, sn {min(s for _, s in desk_state(desk).values())}…"
            f"{sim.sn.last}, open-orders snapshots asked: {len(queries)}, stale/repeated dropped: {stats.stale}"
        )
        assert len(queries) == 1, f"{len(queries)} open-orders queries in a fault-free run (a jump is not a gap)"
        assert desk.snapshot_count == 1
        assert stats.stale == 0 and sim.sn.last > 1.8e10
