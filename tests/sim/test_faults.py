"""Each fault switch, shown to work. Faults are flipped while the server runs, as tests
of the blotter do (``sim.config.x = ...``)."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from blotter.protocol.signing import auth_headers, now_ms
from blotter.sim import SimConfig, SimServer


def cancel_args(order):
    return {"time": now_ms(), "orderId": order["orderId"], "symbol": order["symbol"]}


async def test_ack_delay_holds_the_ack(sim, open_client):
    client = await open_client(sim)
    await client.subscribe()
    sim.config.ack_delay = 0.3
    target = sim.open_orders()[0]
    sent = time.monotonic()
    await client.request("cancel-order", cancel_args(target), rid="d1")
    ack = await client.recv()
    # A lower bound only: the ACK cannot come sooner than ack_delay (never flaky).
    assert time.monotonic() - sent >= 0.29
    assert ack["code"] == 0
    assert (await client.recv())["st"] == "Canceled"


async def test_ack_delay_keeps_the_order_open_meanwhile(sim, open_client):
    client = await open_client(sim)
    sim.config.ack_delay = 30
    target = sim.open_orders()[0]
    await client.request("cancel-order", cancel_args(target), rid="d2")
    await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("id") == "d2")
    await client.send({"op": "ping"})
    assert (await client.recv())["m"] == "pong"  # not the ACK
    assert target["orderId"] in {o["orderId"] for o in sim.open_orders()}


async def test_refuse_cancels(sim, open_client):
    client = await open_client(sim)
    sim.config.refuse_cancels = 300009
    target = sim.open_orders()[0]
    await client.request("cancel-order", cancel_args(target), rid="r1")
    reply = await client.recv()
    assert reply["code"] == 300009 and reply["info"]["reason"] == "TRADING_VIOLATION"
    await client.request("cancel-all", {"time": now_ms()}, rid="r2")
    reply = await client.recv()
    assert reply["code"] == 300009 and reply["action"] == "cancel-all"
    assert len(sim.open_orders()) == 12
    sim.config.refuse_cancels = None
    await client.request("cancel-order", cancel_args(target), rid="r3")
    assert (await client.recv())["code"] == 0


async def test_refuse_cancels_rejects_unknown_codes(sim):
    with pytest.raises(ValueError):
        sim.config.refuse_cancels = 123


async def test_drop_every(make_sim, open_client):
    sim = await make_sim(drop_every=3)
    client = await open_client(sim)  # message 1: connected
    await client.send({"op": "ping"})
    await client.send({"op": "ping"})
    assert (await client.recv())["m"] == "pong"  # 2
    assert (await client.recv())["m"] == "pong"  # 3, then the connection is aborted
    with pytest.raises(ConnectionClosed):
        await client.recv()
    second = await open_client(sim)  # a reconnect works, and counts afresh
    await second.send({"op": "ping"})
    assert (await second.recv())["m"] == "pong"


async def test_drop_connections(sim, open_client):
    client = await open_client(sim)
    await sim.drop_connections()
    assert sim.connection_count == 0
    with pytest.raises(ConnectionClosed):
        await client.recv()


async def test_malformed_every(make_sim, open_client):
    sim = await make_sim(malformed_every=2)
    client = await open_client(sim)  # message 1
    await client.send({"op": "ping"})
    junk = await client.recv()
    assert isinstance(junk, str)  # not JSON
    assert (await client.recv())["m"] == "pong"  # message 2 still arrives


async def test_sn_is_a_large_counter_that_jumps(make_sim, open_client):
    """ADDENDUM §3.1: one counter around 1.9e10 that jumps by thousands to millions
    between two events of one account; ``seqNum`` in records is the same counter."""
    sim = await make_sim()
    client = await open_client(sim)
    await client.subscribe()
    await sim.emit_updates(200)
    updates = [await client.recv() for _ in range(200)]
    sns = [u["sn"] for u in updates]
    steps = [b - a for a, b in zip(sns, sns[1:], strict=False)]
    assert 1.8e10 < sns[0] < 2.0e10
    # thousands to millions (an account update after a fill takes a number in between)
    assert min(steps) >= 1_000 and max(steps) <= 2 * 2_000_000 and max(steps) > 100_000
    assert len(set(steps)) > 150  # random, not a fixed stride
    await client.request("futures-open-orders", {})
    reply = await client.recv_until(lambda m: isinstance(m, dict) and m.get("m") == "futures-open-orders")
    by_id = {u["orderId"]: u["sn"] for u in updates}
    for record in reply["data"]:
        if record["orderId"] in by_id:
            assert record["seqNum"] == by_id[record["orderId"]]  # the record's seqNum: its last update's sn


def test_the_counter_is_seeded_and_shared():
    from blotter.sim.book import Book, Clock, SequenceCounter

    a, b = SimServer(SimConfig(seed=5, initial_orders=3)), SimServer(SimConfig(seed=5, initial_orders=3))
    assert a.sn.last == b.sn.last and [a.sn.next() for _ in range(5)] == [b.sn.next() for _ in range(5)]
    counter = SequenceCounter(seed=1)
    one, two = Book("acc1", "U0000000001", Clock(), counter), Book("acc2", "U0000000002", Clock(), counter)
    first = one.next_sn()
    second = two.next_sn()
    assert second > first and one.last_sn == two.last_sn == second  # one timeline for both accounts


async def test_skip_sn_every(make_sim, open_client):
    sim = await make_sim(skip_sn_every=4)
    client = await open_client(sim)
    await client.subscribe()
    await sim.emit_updates(12)
    sns = [(await client.recv())["sn"] for _ in range(12)]
    steps = [b - a for a, b in zip(sns, sns[1:], strict=False)]
    far = [i + 1 for i, step in enumerate(steps) if step > 1_000_000_000]
    assert far == [3, 7, 11]  # updates 4, 8 and 12 came after a jump of over a billion
    assert all(step > 0 for step in steps)  # still only forward: nothing lost, nothing repeated


async def test_drop_updates_every(make_sim, open_client):
    sim = await make_sim(drop_updates_every=3)
    client = await open_client(sim)
    await client.subscribe()
    await sim.emit_updates(9)
    await client.send({"op": "ping"})
    messages = [await client.recv() for _ in range(7)]
    assert [m["m"] for m in messages] == ["futures-order"] * 6 + ["pong"]  # 3 of the 9 never sent
    assert len(sim.dropped_updates) == 3
    heard = {m["orderId"]: m["sn"] for m in messages[:6]}
    for oid in sim.dropped_updates:
        order = sim.orders[oid]
        assert heard.get(oid) != order.seq  # the book moved on; the client never heard of that state


async def test_repeat_sn_every(make_sim, open_client):
    sim = await make_sim(repeat_sn_every=5)
    client = await open_client(sim)
    await client.subscribe()
    await sim.emit_updates(10)
    updates = [await client.recv() for _ in range(12)]
    sns = [u["sn"] for u in updates]
    assert len(sns) - len(set(sns)) == 2
    assert updates[4] == updates[5]


async def test_no_pong(sim, open_client):
    client = await open_client(sim)
    sim.config.no_pong = True
    await client.send({"op": "ping"})
    await client.send({"op": "req", "action": "futures-account-snapshot", "id": "n1"})
    assert (await client.recv())["m"] == "futures-account-snapshot"  # no pong before it
    sim.config.no_pong = False
    await client.send({"op": "ping"})
    assert (await client.recv())["m"] == "pong"


async def test_silent(sim, open_client):
    client = await open_client(sim)
    sim.set_silent(True)
    await client.send({"op": "ping", "id": "x1"})
    await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("id") == "x1")
    await sim.flush()  # the pong was dropped
    sim.set_silent(False)
    await client.request("futures-account-snapshot", rid="x2")
    assert (await client.recv())["id"] == "x2"


async def test_silent_sends_no_pings(make_sim, open_client):
    sim = await make_sim(ping_interval=0.05, silent=True)
    cfg = sim.config
    async with connect(sim.url, additional_headers=auth_headers(cfg.api_key, cfg.api_secret)) as ws:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.3)  # not even "connected" arrives, nor pings
        assert sim.connection_count == 1
        sim.set_silent(False)
        assert orjson.loads(await asyncio.wait_for(ws.recv(), 5))["m"] == "ping"  # "connected" was dropped


async def test_ignore_requests(sim, open_client):
    client = await open_client(sim)
    sim.config.ignore_requests = True
    await client.request("futures-open-orders", {}, rid="i1")
    await client.send({"op": "ping"})
    assert (await client.recv())["m"] == "pong"
    assert [f.data["id"] for f in sim.requests("futures-open-orders")] == ["i1"]


async def test_pause_and_resume_flow(make_sim, open_client):
    sim = await make_sim(rate=500)
    client = await open_client(sim)
    await client.subscribe()
    await client.recv_until(lambda m: m.get("m") == "futures-order")
    sim.pause_flow()
    await sim.flush()
    last = sim.book.last_sn
    await client.send({"op": "ping"})
    await client.recv_until(lambda m: m.get("m") == "pong")
    assert sim.book.last_sn == last
    sim.resume_flow()
    update = await client.recv_until(lambda m: m.get("m") == "futures-order")
    assert update["sn"] > last


async def test_odd_records_spoil_replies_and_updates_and_the_orders_stay_open(make_sim, open_client):
    from blotter.sim.odd import ODDITIES

    sim = await make_sim(initial_orders=30, odd_records=list(ODDITIES))
    client = await open_client(sim)
    await client.subscribe()
    await client.request("futures-open-orders", {}, rid="oo1")
    raw = await asyncio.wait_for(client.ws.recv(), 5)
    assert '"\\udc80"' in raw  # a lone surrogate escape, written as such
    reply = orjson.loads(raw.replace('"\\udc80"', '"?"'))
    records = reply["data"]
    open_ids = sorted(o["orderId"] for o in sim.open_orders())
    assert len(open_ids) == 30 and len(records) == 31  # every open order, and a twin on another symbol
    by_id: dict[str, list[dict]] = {}
    for r in records:
        by_id.setdefault(r.get("orderId", "?"), []).append(r)
    spoiled = dict(zip(open_ids, ODDITIES, strict=False))
    first = {oid: rs[0] for oid, rs in by_id.items()}
    assert first[next(k for k, v in spoiled.items() if v == "nan-avg-price")]["avgFilledPx"] == "NaN"
    assert first[next(k for k, v in spoiled.items() if v == "zero-width-status")]["status"] == "Canceled\u200b"
    assert first[next(k for k, v in spoiled.items() if v == "huge-exponent")]["price"] == "1e999999999999999999"
    assert len(first[next(k for k, v in spoiled.items() if v == "long-symbol")]["symbol"]) > 64
    assert next(k for k, v in spoiled.items() if v == "no-order-id") not in by_id and "?" in by_id
    twins = by_id[next(k for k, v in spoiled.items() if v == "same-id-other-symbol")]
    assert len(twins) == 2 and twins[0]["symbol"] != twins[1]["symbol"]
    assert len(sim.open_orders()) == 30  # the book is untouched: they are all still open
    # an update about a spoiled order is spoiled too
    target = next(k for k, v in spoiled.items() if v == "negative-stop")
    await client.request(
        "cancel-order", {"time": now_ms(), "orderId": target, "symbol": sim.orders[target].symbol}, rid="c1"
    )
    update = await client.recv_until(lambda m: isinstance(m, dict) and m.get("m") == "futures-order")
    assert update["orderId"] == target and update["st"] == "Canceled" and update["sp"] == "-5"


async def test_odd_records_off_by_default(sim, open_client):
    client = await open_client(sim)
    await client.request("futures-open-orders", {}, rid="oo1")
    reply = await client.recv()
    assert len(reply["data"]) == 12 and all(r["avgFilledPx"] != "NaN" for r in reply["data"])


def test_odd_records_names_are_checked():
    from pydantic import ValidationError

    from blotter.sim import SimConfig

    with pytest.raises(ValidationError):
        SimConfig(odd_records=["not-an-oddity"])
