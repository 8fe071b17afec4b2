"""The account (collateral, positions) in the desk, against the simulator: snapshot at
connect, then updates after fills, folded with sn ordering (ADDENDUM §3.2–§3.3)."""

from __future__ import annotations

from decimal import Decimal

from blotter.desk import Desk
from tests.helpers import eventually, running_desk, running_sim


def sim_positions(sim) -> dict[str, Decimal]:
    return {s: p.position for s, p in sim.book.account.positions.items() if p.position}


def desk_positions(desk: Desk) -> dict[str, Decimal]:
    return {s: p.position for s, p in desk.account_state.positions.items() if p.position}


async def test_the_desk_keeps_the_account_from_snapshot_and_updates():
    async with running_sim(rate=0, initial_orders=40) as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        # at connect: subscribed to the account channel, and the snapshot asked for
        subs = {f.data["ch"] for f in sim.received if isinstance(f.data, dict) and f.data.get("op") == "sub"}
        assert subs == {"futures-order", "futures-account-update"}
        await eventually(lambda: desk.account_state.loaded, 5)
        assert len(sim.requests("futures-account-snapshot")) == 1
        state = desk.account_state
        assert state.account_id == sim.config.account_id
        assert state.collaterals["USDT"].balance == sim.book.account.balances["USDT"]
        assert desk_positions(desk) == sim_positions(sim) and desk_positions(desk)
        # fills move positions: the updates keep the desk in step, exactly
        await sim.emit_updates(400)
        await eventually(lambda: desk_positions(desk) == sim_positions(sim), 10)
        await eventually(lambda: state.collaterals["USDT"].balance == sim.book.account.balances["USDT"], 10)
        assert state.stats.updates > 0 and state.stats.stale == 0
        for symbol, pos in state.positions.items():
            mine = sim.book.account.positions[symbol]
            assert (pos.reference_cost, pos.avg_open_price, pos.realized_pnl) == (
                mine.reference_cost,
                mine.avg_open_price,
                mine.realized_pnl,
            )
        assert not [line.text for line in desk.log.lines() if "account" in line.text]  # nothing odd to say
