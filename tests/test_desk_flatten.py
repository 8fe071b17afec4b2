"""Flatten against the simulator over loopback: each position closed by a reduce-only
market order of exactly its size, each under its own request id, and VERIFIED flat
from the account channel (or REST); never opens or flips a position; refused in
read-only. Also the mark prices from REST ``futures/position``."""

from __future__ import annotations

from decimal import Decimal

from blotter.desk import Desk, Outcome
from tests.helpers import eventually, running_desk, running_sim


def sim_positions(sim) -> dict[str, Decimal]:
    return {s: p.position for s, p in sim.book.account.positions.items() if p.position}


def place_frames(sim) -> list[dict]:
    return [f.data for f in sim.received if isinstance(f.data, dict) and f.data.get("action") == "place-order"]


async def _loaded(desk: Desk) -> None:
    assert await desk.wait_live(5)
    await eventually(lambda: desk.account_state.loaded, 5)


async def test_flatten_all_with_two_positions_is_verified_flat():
    async with running_sim(rate=0, initial_orders=40) as sim, running_desk(sim) as desk:
        await _loaded(desk)
        before = sim_positions(sim)
        assert len(before) >= 2, before
        verdict = await desk.flatten_and_verify()
        assert verdict.outcome is Outcome.VERIFIED, verdict.reason
        assert verdict.source == "account channel"
        assert sorted(verdict.closed) == sorted(before) and verdict.left == {}
        assert sim_positions(sim) == {}
        frames = place_frames(sim)
        assert len(frames) == len(before)
        assert len({f["id"] for f in frames}) == len(frames)  # each under its own request id
        for f in frames:
            args = f["args"]
            size = before[args["symbol"]]
            assert args["execInst"] == "ReduceOnly" and args["orderType"] == "market"
            assert Decimal(args["orderQty"]) == abs(size)  # exactly its size
            assert args["side"] == ("sell" if size > 0 else "buy")  # the opposite side
            assert "orderPrice" not in args  # a market order has no price
        texts = [line.text for line in desk.log.lines()]
        for symbol in before:
            assert f"flatten: {symbol} position is 0 (account channel)" in texts
        assert all(t.state.name == "CONFIRMED" for t in verdict.requests)


async def test_flatten_one_symbol_leaves_the_others_and_never_flips():
    async with running_sim(rate=0, initial_orders=40) as sim, running_desk(sim) as desk:
        await _loaded(desk)
        before = sim_positions(sim)
        symbol = sorted(before)[0]
        verdict = await desk.flatten_and_verify(symbol)
        assert verdict.verified and verdict.closed == [symbol]
        after = sim_positions(sim)
        assert symbol not in after
        assert after == {s: q for s, q in before.items() if s != symbol}
        # a second flatten finds nothing to close: sends nothing, is still verified flat
        again = await desk.flatten_and_verify(symbol)
        assert again.verified and again.requests == []
        assert len(place_frames(sim)) == 1
        # and a reduce-only order can never open one: a direct flatten of a flat symbol sends nothing
        assert await desk.flatten(symbol) is None
        assert sim_positions(sim).get(symbol) is None


async def test_read_only_refuses_to_flatten():
    async with running_sim(rate=0, initial_orders=40) as sim, running_desk(sim, read_only=True) as desk:
        await _loaded(desk)
        before = sim_positions(sim)
        verdict = await desk.flatten_and_verify()
        assert verdict.outcome is Outcome.NOT_SENT and "read-only" in verdict.reason
        assert await desk.flatten(sorted(before)[0]) is None
        assert place_frames(sim) == [] and sim_positions(sim) == before


async def test_marks_come_from_rest_positions():
    async with running_sim(rate=0, initial_orders=40) as sim, running_desk(sim) as desk:
        await _loaded(desk)
        await eventually(lambda: bool(desk.marks), 5)
        assert set(desk.marks) >= set(sim_positions(sim))
        assert all(isinstance(m, Decimal) and m > 0 for m in desk.marks.values())
