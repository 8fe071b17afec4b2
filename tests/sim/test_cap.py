"""The cap on tracked orders, over loopback: a simulator with more open orders than the
desk's store may track. None is dropped silently: the count stays true and the log says so."""

from __future__ import annotations

from tests.helpers import eventually, running_desk, running_sim


async def test_more_open_orders_than_the_cap_are_counted_and_said():
    async with running_sim(initial_orders=12) as sim:
        async with running_desk(sim) as desk:
            desk.store.max_orders = 5  # before the first snapshot arrives (it is asked for once live)
            await eventually(lambda: desk.snapshot_count > 0, 10)
            store = desk.store
            assert len(store) == 5 and store.full and store.over_cap
            assert store.open_count() == len(sim.open_orders()) == 12  # 7 not tracked, still counted open
            errors = [line.text for line in desk.log.lines() if line.level == "error"]
            assert any("full of OPEN orders" in t for t in errors)
            # the exchange ends most of them: the next snapshot of all symbols recounts
            await desk.cancel_all()
            await eventually(lambda: not sim.open_orders(), 10)
            await desk.refresh()
            await eventually(lambda: store.open_count() == 0 and not store.over_cap, 10)
