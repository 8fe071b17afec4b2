"""The simulator against the wire: authentication, requests, channel, keep-alive."""

from __future__ import annotations

import ssl
import subprocess
from decimal import Decimal

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from blotter.protocol import parse
from blotter.protocol.signing import auth_headers, now_ms, sign
from blotter.sim import DEMO_API_SECRET

RAW_SECRET = "hV8FgjyJtpvVeAcMAgzgAFQCN36wmbWuN7o3WPcYcYhFd8qvE43gzFGVsFcCqMNk"


def is_m(kind):
    return lambda m: isinstance(m, dict) and m.get("m") == kind


def is_update(order_id=None, status=None):
    def check(m):
        return (
            isinstance(m, dict)
            and m.get("m") == "futures-order"
            and (order_id is None or m["orderId"] == order_id)
            and (status is None or m["st"] == status)
        )

    return check


# --- authentication ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding,secret", [("base64", DEMO_API_SECRET), ("raw", RAW_SECRET)])
async def test_auth_by_headers(make_sim, open_client, encoding, secret):
    sim = await make_sim(secret_encoding=encoding, api_secret=secret)
    await open_client(sim, auth="headers")  # asserts {"m":"connected","type":"auth"}
    assert sim.authenticated_count == 1


@pytest.mark.parametrize("encoding,secret", [("base64", DEMO_API_SECRET), ("raw", RAW_SECRET)])
async def test_auth_by_op(make_sim, open_client, encoding, secret):
    sim = await make_sim(secret_encoding=encoding, api_secret=secret)
    await open_client(sim, auth="op")  # asserts unauth, then auth code 0
    assert sim.authenticated_count == 1


async def test_wrong_secret_by_headers_is_http_401(sim):
    headers = auth_headers(sim.config.api_key, "d3Jvbmc=")
    with pytest.raises(InvalidStatus) as info:
        await connect(sim.url, additional_headers=headers)
    assert info.value.response.status_code == 401
    assert sim.connection_count == 0


async def test_other_key_form_by_headers_is_http_401(make_sim):
    """A client signing with the raw form while the account expects base64 is refused."""
    sim = await make_sim()
    headers = auth_headers(sim.config.api_key, sim.config.api_secret, "raw")
    with pytest.raises(InvalidStatus) as info:
        await connect(sim.url, additional_headers=headers)
    assert info.value.response.status_code == 401


async def test_wrong_secret_by_op_auth(sim, open_client):
    client = await open_client(sim, auth=None)
    t = now_ms()
    await client.send({"op": "auth", "id": "a2", "t": t, "key": sim.config.api_key, "sig": sign("d3Jvbmc=", t)})
    assert await client.recv() == {"m": "auth", "id": "a2", "code": 200006, "err": "Unable to find User Account Data"}
    assert sim.authenticated_count == 0


async def test_stale_timestamp_is_refused(sim, open_client):
    cfg = sim.config
    stale = now_ms() - 60_000
    with pytest.raises(InvalidStatus) as info:
        await connect(sim.url, additional_headers=auth_headers(cfg.api_key, cfg.api_secret, timestamp_ms=stale))
    assert info.value.response.status_code == 401
    assert b"INVALID_TIMESTAMP" in info.value.response.body

    client = await open_client(sim, auth=None)
    await client.send({"op": "auth", "id": "a3", "t": stale, "key": cfg.api_key, "sig": sign(cfg.api_secret, stale)})
    reply = await client.recv()
    assert reply["m"] == "auth" and reply["code"] == 100011 and "timestamp" in reply["err"].lower()


async def test_unknown_path_is_http_404(sim):
    with pytest.raises(InvalidStatus) as info:
        await connect(sim.url.replace("/1/api", "/2/api"))
    assert info.value.response.status_code == 404


async def test_requests_before_auth_are_refused(sim, open_client):
    client = await open_client(sim, auth=None)
    await client.request("futures-open-orders", {})
    reply = await client.recv()
    assert reply["m"] == "error" and reply["code"] == 100009 and reply["reason"] == "AUTHORIZATION_NEEDED"
    await client.send({"op": "sub", "id": "s9", "ch": "futures-order"})
    assert (await client.recv())["code"] == 100009


async def test_malformed_requests(sim, open_client):
    client = await open_client(sim)
    await client.send("this is not json")
    reply = await client.recv()
    assert reply["m"] == "error" and reply["code"] == 150001 and reply["reason"] == "INVALID_JSON_FORMAT"
    await client.send({"op": "req", "action": "cancel-order", "id": "bad1"})
    reply = await client.recv()
    assert reply == {**reply, "m": "error", "id": "bad1", "code": 100005, "reason": "INVALID_WS_REQUEST_DATA"}
    assert reply["info"]
    await client.send({"op": "req", "action": "fly-to-moon", "id": "bad2", "args": {}})
    assert (await client.recv())["code"] == 100005


# --- snapshot, cancel, cancel-all, place ---------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["current", "2021"])
async def test_open_orders_snapshot(make_sim, open_client, dialect):
    sim = await make_sim(dialect=dialect)
    client = await open_client(sim)
    assert (await client.subscribe()) == {"m": "sub", "id": "sub1", "ch": "futures-order", "code": 0}
    await client.request("futures-open-orders", {}, rid="oo1")
    reply = await client.recv()
    event = parse(reply if isinstance(reply, str) else orjson.dumps(reply))
    assert event.kind == "open-orders" and event.dialect == dialect and not any(o.problem for o in event.orders)
    if dialect == "current":
        assert reply["m"] == "futures-open-orders" and reply["id"] == "oo1" and reply["code"] == 0
    else:
        assert isinstance(reply, list) and all(r["m"] == "futures-order" for r in reply)
    expected = {o["orderId"]: o["seqNum"] for o in sim.open_orders()}
    assert {o.order_id: o.seq for o in event.orders} == expected
    assert len(expected) == 12


async def test_open_orders_for_one_symbol(sim, open_client):
    client = await open_client(sim)
    await client.request("futures-open-orders", {"symbol": "BTC-PERP"})
    reply = await client.recv()
    assert reply["data"] and {r["symbol"] for r in reply["data"]} == {"BTC-PERP"}


@pytest.mark.parametrize("dialect", ["current", "2021"])
async def test_cancel_order_ack_then_canceled(make_sim, open_client, dialect):
    sim = await make_sim(dialect=dialect)
    client = await open_client(sim)
    await client.subscribe()
    target = sim.open_orders()[0]
    oid, symbol = target["orderId"], target["symbol"]
    await client.request("cancel-order", {"time": now_ms(), "orderId": oid, "symbol": symbol}, rid="c1")
    ack = await client.recv()
    if dialect == "current":
        assert ack == {
            "m": "order",
            "action": "cancel-order",
            "ac": "FUTURES",
            "id": "c1",
            "code": 0,
            "info": {"orderId": oid, "symbol": symbol},
        }
    else:
        assert ack["orderId"] == oid and ack["status"] == target["status"] and "id" not in ack
        assert ack["seqNum"] == target["seqNum"]
    assert parse(orjson.dumps(ack)).kind == "ack"
    update = await client.recv()
    assert is_update(oid, "Canceled")(update)
    assert update["sn"] > target["seqNum"]
    assert oid not in {o["orderId"] for o in sim.open_orders()}
    assert sim.orders[oid].status == "Canceled"


@pytest.mark.parametrize("dialect", ["current", "2021"])
async def test_cancel_unknown_order_is_300006(make_sim, open_client, dialect):
    sim = await make_sim(dialect=dialect)
    client = await open_client(sim)
    bogus = "s177bab1b474U5051470287bbtcpKiOR"
    await client.request("cancel-order", {"time": now_ms(), "orderId": bogus, "symbol": "BTC-PERP"}, rid="c2")
    reply = await client.recv()
    if dialect == "current":
        assert reply["m"] == "order" and reply["code"] == 300006 and reply["id"] == "c2"
        assert reply["info"]["reason"] == "INVALID_ORDER_ID" and bogus in reply["info"]["errorMsg"]
    else:
        assert reply["status"] == "Err" and reply["action"] == "cancel-order"
        assert reply["info"]["code"] == 300006 and reply["info"]["reason"] == "INVALID_ORDER_ID"
        assert reply["info"]["id"] == "c2" and reply["info"]["message"]
    event = parse(orjson.dumps(reply))
    assert event.kind == "error" and event.code == 300006 and event.reason == "INVALID_ORDER_ID"


async def test_cancel_final_or_wrong_symbol_is_300006(sim, open_client):
    client = await open_client(sim)
    target = sim.open_orders()[0]
    other = next(s for s in sim.config.symbols if s != target["symbol"])
    await client.request("cancel-order", {"time": now_ms(), "orderId": target["orderId"], "symbol": other}, rid="c3")
    assert (await client.recv())["code"] == 300006
    await client.request(
        "cancel-order", {"time": now_ms(), "orderId": target["orderId"], "symbol": target["symbol"]}, rid="c4"
    )
    assert (await client.recv())["code"] == 0
    await client.request(
        "cancel-order", {"time": now_ms(), "orderId": target["orderId"], "symbol": target["symbol"]}, rid="c5"
    )
    reply = await client.recv()
    assert reply["code"] == 300006 and "Canceled" in reply["info"]["errorMsg"]


@pytest.mark.parametrize("dialect", ["current", "2021"])
async def test_cancel_all_empties_the_book(make_sim, open_client, dialect):
    sim = await make_sim(dialect=dialect)
    client = await open_client(sim)
    await client.subscribe()
    before = {o["orderId"] for o in sim.open_orders()}
    await client.request("cancel-all", {"time": now_ms()}, rid="ca1")
    ack = await client.recv()
    if dialect == "current":
        assert ack == {
            "m": "order",
            "code": 0,
            "action": "cancel-all",
            "ac": "FUTURES",
            "id": "ca1",
            "info": {"symbol": ""},
        }
    else:
        assert ack["status"] == "Ack" and ack["info"]["id"] == "ca1" and ack["info"]["orderType"] == "NULL_VAL"
    canceled = set()
    while len(canceled) < len(before):
        update = await client.recv()
        assert update["st"] == "Canceled"
        canceled.add(update["orderId"])
    assert canceled == before and sim.open_orders() == []


async def test_cancel_all_for_one_symbol(sim, open_client):
    client = await open_client(sim)
    await client.subscribe()
    btc = {o["orderId"] for o in sim.open_orders("BTC-PERP")}
    others = {o["orderId"] for o in sim.open_orders()} - btc
    assert btc and others
    await client.request("cancel-all", {"time": now_ms(), "symbol": "BTC-PERP"}, rid="ca2")
    assert (await client.recv())["info"] == {"symbol": "BTC-PERP"}
    for _ in btc:
        assert (await client.recv())["orderId"] in btc
    assert {o["orderId"] for o in sim.open_orders()} == others


async def test_cancel_all_unknown_symbol(sim, open_client):
    client = await open_client(sim)
    await client.request("cancel-all", {"time": now_ms(), "symbol": "NOPE-PERP"}, rid="ca3")
    reply = await client.recv()
    assert reply["code"] == 300012 and reply["info"] == {
        "symbol": "NOPE-PERP",
        "reason": "INVALID_PRODUCT",
        "errorMsg": "Invalid Product Symbol",
    }
    assert len(sim.open_orders()) == 12


@pytest.mark.parametrize("age_ms", [60_000, -60_000])
async def test_request_time_out_of_window_is_refused(sim, open_client, age_ms):
    client = await open_client(sim)
    target = sim.open_orders()[0]
    await client.request(
        "cancel-order",
        {"time": now_ms() - age_ms, "orderId": target["orderId"], "symbol": target["symbol"]},
        rid="old1",
    )
    reply = await client.recv()
    assert reply["m"] == "order" and reply["code"] == 100011 and reply["info"]["reason"] == "INVALID_TIMESTAMP"
    assert reply["info"]["errorMsg"]
    await client.request("futures-open-orders", {"time": now_ms() - age_ms}, rid="old2")
    reply = await client.recv()
    assert reply["m"] == "error" and reply["code"] == 100011 and reply["id"] == "old2"
    assert target["orderId"] in {o["orderId"] for o in sim.open_orders()}


@pytest.mark.parametrize("dialect", ["current", "2021"])
@pytest.mark.parametrize("price_key", ["orderPrice", "price"])  # both documented (ADDENDUM §3.5)
async def test_place_order(make_sim, open_client, dialect, price_key):
    sim = await make_sim(dialect=dialect)
    client = await open_client(sim)
    await client.subscribe()
    await client.request(
        "place-order",
        {
            "time": now_ms(),
            "symbol": "BTC-PERP",
            price_key: "60000.5",
            "orderQty": "0.12",
            "orderType": "limit",
            "side": "buy",
            "id": "11eb9a8355fc41bd9bf5b08bc0d18f6c",
        },
        rid="p1",
    )
    ack = await client.recv()
    oid = ack["info"]["orderId"] if dialect == "current" else ack["orderId"]
    assert len(oid) == 32 and oid.startswith("s") and oid.endswith("bc0d18f6c")
    if dialect == "2021":
        assert ack["status"] == "Ack" and ack["seqNum"] == -1
    update = await client.recv()
    assert is_update(oid, "New")(update) and update["p"] == "60000.5" and update["q"] == "0.12"
    assert oid in {o["orderId"] for o in sim.open_orders()}


@pytest.mark.parametrize(
    "args,code,reason",
    [
        ({"price": "0", "orderQty": "1", "side": "buy"}, 300001, "INVALID_PRICE"),
        ({"price": "60000.55", "orderQty": "1", "side": "buy"}, 300001, "INVALID_PRICE"),
        ({"price": "60000", "orderQty": "-1", "side": "buy"}, 300002, "INVALID_QTY"),
        ({"price": "60000", "orderQty": "1", "side": "up"}, 300003, "INVALID_SIDE"),
    ],
)
async def test_place_order_invalid(sim, open_client, args, code, reason):
    client = await open_client(sim)
    await client.request(
        "place-order", {"time": now_ms(), "symbol": "BTC-PERP", "orderType": "limit", **args}, rid="p2"
    )
    reply = await client.recv()
    assert reply["code"] == code and reply["info"]["reason"] == reason and reply["info"]["errorMsg"]


DOC_POSITION_KEYS = {
    "s",
    "sd",
    "pos",
    "rc",
    "up",
    "rp",
    "aop",
    "mt",
    "boon",
    "soon",
    "lev",
    "iw",
    "tp",
    "tpt",
    "sl",
    "slt",
}
"""Every key of a documented ``pos[]`` entry (ADDENDUM §3.2, §3.3)."""


def signed_fills(sim) -> dict[str, Decimal]:
    """Per symbol, what the account's orders filled: bought minus sold."""
    out: dict[str, Decimal] = {}
    for o in sim.orders.values():
        if o.filled_qty:
            out[o.symbol] = out.get(o.symbol, Decimal(0)) + (o.filled_qty if o.side == "Buy" else -o.filled_qty)
    return out


async def test_account_snapshot(sim, open_client):
    """The documented reply (§3.2): no ``code``, no ``data``; ``col``/``pos`` at the top
    level, positions kept from the account's own fills."""
    client = await open_client(sim)
    await client.send({"op": "req", "id": "abc123456", "action": "futures-account-snapshot"})
    reply = await client.recv()
    assert set(reply) == {"m", "id", "e", "t", "acc", "ac", "sn", "col", "pos"}
    assert (reply["m"], reply["id"], reply["e"], reply["ac"]) == (
        "futures-account-snapshot",
        "abc123456",
        "ClientRequest",
        "FUTURES",
    )
    assert reply["acc"] == sim.config.account_id and reply["sn"] > 1.8e10
    assert [c["a"] for c in reply["col"]] == ["USDT"] and set(reply["col"][0]) == {"a", "b", "f"}
    assert reply["pos"] and all(set(p) == DOC_POSITION_KEYS for p in reply["pos"])
    fills = signed_fills(sim)
    assert {p["s"]: Decimal(p["pos"]) for p in reply["pos"] if p["pos"] != "0"} == {s: q for s, q in fills.items() if q}
    for p in reply["pos"]:
        q = Decimal(p["pos"])
        assert p["sd"] == ("LONG" if q > 0 else "SHORT" if q < 0 else "NULL_VAL")
        assert q == 0 or Decimal(p["rc"]) * q < 0  # position and reference cost of opposite signs
        boon = sum(o.price * o.remaining for o in sim.book.open_orders(p["s"]) if o.side == "Buy")
        assert Decimal(p["boon"]) == boon


async def test_account_updates_follow_fills(make_sim, open_client):
    sim = await make_sim(initial_orders=30)
    client = await open_client(sim)
    await client.subscribe("futures-account-update")
    await client.send({"op": "req", "id": "snap1", "action": "futures-account-snapshot"})
    snap = await client.recv_until(lambda m: m.get("m") == "futures-account-snapshot")
    await sim.emit_updates(300)
    await client.send({"op": "ping"})
    updates = []
    while True:
        message = await client.recv()
        if message["m"] == "pong":
            break
        updates.append(message)
    assert updates and all(u["m"] == "futures-account-update" for u in updates)
    first = updates[0]
    assert set(first) == {"m", "e", "t", "acc", "at", "sn", "id", "col", "pos"} and first["e"] == "ExecutionReport"
    sns = [snap["sn"]] + [u["sn"] for u in updates]
    assert sns == sorted(set(sns))  # strictly increasing for the account
    positions: dict[str, Decimal] = {p["s"]: Decimal(p["pos"]) for p in snap["pos"]}
    for u in updates:
        assert all(set(p) == DOC_POSITION_KEYS for p in u["pos"]) and len(u["pos"]) >= 1
        positions.update({p["s"]: Decimal(p["pos"]) for p in u["pos"]})
    fills = signed_fills(sim)
    assert {s: q for s, q in positions.items() if q} == {s: q for s, q in fills.items() if q}


async def test_account_channel_subscribe(sim, open_client):
    client = await open_client(sim)
    assert (await client.subscribe("futures-account-update"))["code"] == 0


# --- channel ------------------------------------------------------------------------------------------------


async def test_sn_strictly_increasing_and_all_clients_see_the_stream(make_sim, open_client):
    sim = await make_sim(rate=200, initial_orders=40)
    first = await open_client(sim)
    second = await open_client(sim, auth="op")
    await first.subscribe()
    await second.subscribe()
    seen = {}
    for name, client in (("first", first), ("second", second)):
        sns = []
        while len(sns) < 30:
            message = await client.recv()
            assert message["m"] == "futures-order"
            sns.append(message["sn"])
        assert all(b > a for a, b in zip(sns, sns[1:], strict=False)), sns
        seen[name] = set(sns)
    assert seen["first"] & seen["second"]


async def test_unsub_stops_updates(sim, open_client):
    client = await open_client(sim)
    await client.subscribe()
    await client.send({"op": "unsub", "id": "u1", "ch": "futures-order"})
    assert await client.recv() == {"m": "unsub", "id": "u1", "ch": "futures-order", "code": 0}
    await sim.emit_updates(5)
    await client.send({"op": "ping"})
    assert (await client.recv())["m"] == "pong"  # nothing from the channel came before it


async def test_emit_updates(sim, open_client):
    client = await open_client(sim)
    await client.subscribe()
    await sim.emit_updates(50)
    updates = [await client.recv() for _ in range(50)]
    assert all(u["m"] == "futures-order" for u in updates)
    for u in updates:
        assert parse(orjson.dumps(u)).kind == "order-update"


# --- keep-alive -----------------------------------------------------------------------------------------------


async def test_client_ping_gets_pong_with_server_time(sim, open_client):
    client = await open_client(sim)
    before = now_ms()
    await client.send({"op": "ping"})
    pong = await client.recv()
    assert pong["m"] == "pong" and pong["code"] == 0 and pong["ts"] >= before and isinstance(pong["hp"], int)


async def test_client_ignoring_pings_is_disconnected(make_sim, open_client):
    sim = await make_sim(ping_interval=0.1)
    client = await open_client(sim)
    messages = []
    with pytest.raises(ConnectionClosed):
        while True:
            messages.append(await client.recv())
    assert [m["hp"] for m in messages if m.get("m") == "ping"] == [3, 2]
    assert messages[-1] == {
        "m": "disconnected",
        "code": 100005,
        "reason": "INVALID_WS_REQUEST_DATA",
        "info": "Session is disconnected due to missing pong message from the client",
    }


async def test_answering_pings_keeps_the_session(make_sim, open_client):
    sim = await make_sim(ping_interval=0.05)
    client = await open_client(sim)
    for _ in range(5):
        ping = await client.recv()
        assert ping == {"m": "ping", "hp": 3}
        await client.send({"op": "pong"})


async def test_tls(make_sim, open_client, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    try:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("openssl cannot make a test certificate here")
    sim = await make_sim(tls_cert=cert, tls_key=key)
    assert sim.url.startswith("wss://127.0.0.1:")
    context = ssl.create_default_context(cafile=str(cert))
    client = await open_client(sim, ssl=context)
    await client.send({"op": "ping"})
    assert (await client.recv())["m"] == "pong"
