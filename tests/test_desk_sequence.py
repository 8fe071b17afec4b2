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


async def test_lost_updates_are_not_seen_from_sn_and_a_snapshot_settles_them():
    """``drop_updates_every``: the exchange's book moves, the client never hears. No ``sn``
    rule can tell (a jump is normal); asking the exchange again does."""
    async with (
        running_sim(rate=0, initial_orders=40, drop_updates_every=5) as sim,
        running_desk(sim, resnapshot_min_interval=0.1) as desk,
    ):
        assert await desk.wait_live(5)
        await sim.emit_updates(200)
        await eventually(lambda: desk.store.stats.updates == 200 - len(sim.dropped_updates), 10)
        assert len(sim.dropped_updates) == 40
        assert len(open_orders_queries(sim)) == 1  # nothing asked for on its own
        assert desk_state(desk) != sim_state(sim)  # the lost updates left the desk behind
        rid = await desk.refresh()
        await eventually(lambda: desk.queries.get(rid).state.name == "ANSWERED", 5)
        assert desk_state(desk) == sim_state(sim)
