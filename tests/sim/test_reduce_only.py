"""The simulator honours reduce-only (``execInst`` ``ReduceOnly``): it only ever shrinks a
position. The docs say nothing of a reduce-only order larger than the position; the
simulator trims it to the position's size (issue 15), and refuses one with no position
to reduce (or on the side that would grow it) with 300008 INVALID_ORDER_PARAMETER."""

from __future__ import annotations

from decimal import Decimal

from blotter.protocol.signing import now_ms


def held(sim, symbol: str) -> Decimal:
    pos = sim.book.account.positions.get(symbol)
    return pos.position if pos is not None else Decimal(0)


def a_position(sim) -> tuple[str, Decimal]:
    for symbol, pos in sorted(sim.book.account.positions.items()):
        if pos.position:
            return symbol, pos.position
    raise AssertionError("the simulator holds no position")


async def place(client, symbol: str, side: str, qty: str, rid: str, exec_inst: str = "ReduceOnly") -> None:
    await client.request(
        "place-order",
        {
            "time": now_ms(),
            "symbol": symbol,
            "orderQty": qty,
            "orderType": "market",
            "side": side,
            "execInst": exec_inst,
        },
        rid=rid,
    )


async def test_reduce_only_market_closes_exactly_and_sends_the_account_update(sim, open_client):
    symbol, size = a_position(sim)
    client = await open_client(sim)
    await client.subscribe("futures-account-update")
    await place(client, symbol, "sell" if size > 0 else "buy", str(abs(size)), "ro1")
    reply = await client.recv_until(lambda m: m.get("id") == "ro1")
    assert reply["code"] == 0
    update = await client.recv_until(
        lambda m: (
            m.get("m") == "futures-account-update"
            and any(p["s"] == symbol and Decimal(p["pos"]) == 0 for p in m["pos"])
        )
    )
    assert next(p for p in update["pos"] if p["s"] == symbol)["sd"] == "NULL_VAL"
    assert held(sim, symbol) == 0


async def test_reduce_only_larger_than_the_position_is_trimmed_never_flips(sim, open_client):
    symbol, size = a_position(sim)
    client = await open_client(sim)
    await place(client, symbol, "sell" if size > 0 else "buy", str(abs(size) * 3), "ro2")
    reply = await client.recv_until(lambda m: m.get("id") == "ro2")
    assert reply["code"] == 0
    order = sim.orders[reply["info"]["orderId"]]
    assert order.qty == abs(size) and order.filled_qty == abs(size)
    assert held(sim, symbol) == 0


async def test_reduce_only_with_no_position_or_on_the_growing_side_is_refused(sim, open_client):
    symbol, size = a_position(sim)
    client = await open_client(sim)
    await place(client, symbol, "buy" if size > 0 else "sell", "1", "ro3")  # would grow it
    reply = await client.recv_until(lambda m: m.get("id") == "ro3")
    assert reply["code"] == 300008 and reply["info"]["reason"] == "INVALID_ORDER_PARAMETER"
    assert held(sim, symbol) == size
    flat = next(s for s in sim.config.symbols if not held(sim, s))
    await place(client, flat, "sell", "1", "ro4", exec_inst="ReduceOnlyMarket")
    reply = await client.recv_until(lambda m: m.get("id") == "ro4")
    assert reply["code"] == 300008
    assert held(sim, flat) == 0
