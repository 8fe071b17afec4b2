"""The simulator's REST side, tested against the documentation (ADDENDUM §1–§3), not
against the blotter's client: requests are signed here by hand, from the doc's rule
``base64(HMAC-SHA256(key, "<timestamp>+<api-path>"))``, and the replies are compared
with the documented samples' shapes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import ValidationError
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET, SimConfig, SimServer
from blotter.sim.rest import RestApi, RestFaults, rest_connection, serve_rest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "protocol" / "rest"


def sample(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def sign(secret: str, timestamp: int, api_path: str, raw: bool = False) -> str:
    key = secret.encode() if raw else base64.b64decode(secret)
    return base64.b64encode(hmac.new(key, f"{timestamp}+{api_path}".encode(), hashlib.sha256).digest()).decode()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def make(**config: Any) -> tuple[SimServer, RestApi, list[Any]]:
    sim = SimServer(SimConfig(**{"seed": 7, "rate": 0, "initial_orders": 30, **config}))
    published: list[Any] = []
    return sim, RestApi(sim.book, sim.config, publish=published.append), published


def call(
    api: RestApi,
    method: str,
    api_path: str,
    query: dict[str, str] | None = None,
    body: Any = None,
    *,
    group: int | None = 1,
    t: int | None = None,
    secret: str = DEMO_API_SECRET,
    raw: bool = False,
    key: str = DEMO_API_KEY,
    signed_path: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One signed request straight into ``api.handle``: (HTTP status, decoded JSON or text)."""
    t = now_ms() if t is None else t
    path = (f"/{group}" if group is not None else "") + f"/api/pro/{api_path}"
    if headers is None:
        headers = {
            "x-auth-key": key,
            "X-Auth-Timestamp": str(t),
            "x-auth-signature": sign(secret, t, signed_path or api_path, raw),
        }
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    status, _, reply = api.handle(method, path, urlencode(query or {}), headers, data)
    try:
        return status, json.loads(reply)
    except ValueError:
        return status, reply.decode()


def keys_of(value: Any) -> Any:
    """The shape of a JSON value: nested key sets, list shapes from their first element."""
    if isinstance(value, dict):
        return {k: keys_of(v) for k, v in value.items()}
    if isinstance(value, list):
        return [keys_of(value[0])] if value else []
    return type(value).__name__


# --- authentication (§1.2–§1.4) -----------------------------------------------------------------------------------


def test_a_correctly_signed_request_is_answered():
    sim, api, _ = make()
    status, reply = call(api, "GET", "v2/futures/order/open")
    assert status == 200 and reply["code"] == 0 and len(reply["data"]) == 30


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"secret": "h" + DEMO_API_SECRET[1:]}, 200006),  # another secret
        ({"raw": True}, 200006),  # the other key form
        ({"key": "someone-else"}, 200006),
        ({"signed_path": "1/api/pro/v2/futures/order/open"}, 200006),  # group in the prehash
        ({"signed_path": "v2/futures/order/open?symbol=BTC-PERP"}, 200006),  # query in the prehash
        ({"t_offset": -31_000}, 100011),  # more than 30 s old
        ({"t_offset": 31_000}, 100011),
        ({"headers": {}}, 100009),
        ({"headers": {"x-auth-key": DEMO_API_KEY, "x-auth-timestamp": "soon", "x-auth-signature": "x"}}, 100011),
    ],
)
def test_bad_credentials_are_refused_with_a_code_and_http_200(kwargs, code):
    sim, api, _ = make()
    kwargs = dict(kwargs)
    if "t_offset" in kwargs:  # the time is taken when the test runs, not when it is collected
        kwargs["t"] = now_ms() + kwargs.pop("t_offset")
    status, reply = call(api, "GET", "v2/futures/order/open", **kwargs)
    assert status == 200 and reply["code"] == code and reply["reason"] and reply["message"]
    assert "data" not in reply


def test_the_signed_timestamp_must_be_the_sent_one():
    sim, api, _ = make()
    t = now_ms()
    headers = {
        "x-auth-key": DEMO_API_KEY,
        "x-auth-timestamp": str(t + 1),
        "x-auth-signature": sign(DEMO_API_SECRET, t, "v2/futures/position"),
    }
    assert call(api, "GET", "v2/futures/position", headers=headers)[1]["code"] == 200006


def test_the_raw_key_form_is_checked_when_configured():
    sim, api, _ = make(
        secret_encoding="raw", api_secret="hV8FgjyJtpvVeAcMAgzgAFQCN36wmbWuN7o3WPcYcYhFd8qvE43gzFGVsFcCqMNk"
    )
    secret = sim.config.api_secret
    assert call(api, "GET", "v2/futures/position", secret=secret, raw=True)[1]["code"] == 0
    assert call(api, "GET", "v2/futures/position", secret=secret, raw=False)[1]["code"] == 200006


def test_place_and_cancel_share_a_prehash_only_the_method_differs():
    sim, api, _ = make()
    order = sim.book.open_orders()[0]
    body = {"orderId": order.order_id, "symbol": order.symbol, "time": now_ms()}
    status, reply = call(api, "DELETE", "v2/futures/order", body=body, signed_path="v2/futures/order")
    assert reply["code"] == 0
    assert call(api, "GET", "v2/futures/order", body=body)[0] == 405


def test_other_account_groups_and_paths_do_not_exist():
    sim, api, _ = make()
    assert call(api, "GET", "v2/futures/order/open", group=2)[0] == 404
    assert call(api, "GET", "v2/futures/nothing")[0] == 404
    assert call(api, "GET", "v2/account/info", group=1)[0] == 404  # account info has no group
    status, reply = call(api, "GET", "v2/account/info", group=None)
    assert status == 200 and reply["data"]["accountGroup"] == 1
    assert set(reply["data"]) == set(sample("v2-rest-account-info")["data"])
    status, _, _ = api.handle("POST", "/1/api/pro/v2/futures/order/all", "", {}, b"")
    assert status == 405


# --- order status (§2.2) ----------------------------------------------------------------------------------------------------


def test_status_single_id_is_an_object_several_ids_a_list():
    sim, api, _ = make()
    a, b = (o.order_id for o in sim.book.open_orders()[:2])
    status, single = call(api, "GET", "v2/futures/order/status", {"orderId": a})
    doc = sample("v2-rest-order-status-single")
    assert keys_of(single) == keys_of(doc) and single["data"]["orderId"] == a
    _, several = call(api, "GET", "v2/futures/order/status", {"orderId": f"{a},{b}"})
    assert isinstance(several["data"], list) and [r["orderId"] for r in several["data"]] == [a, b]
    assert set(several) == set(sample("v2-rest-order-status-multi"))
    _, trailing = call(api, "GET", "v2/futures/order/status", {"orderId": f"{a},"})
    assert isinstance(trailing["data"], list) and len(trailing["data"]) == 1  # the documented trick


def test_status_of_unknown_ids_and_too_many_ids():
    sim, api, _ = make()
    a = sim.book.open_orders()[0].order_id
    assert call(api, "GET", "v2/futures/order/status", {"orderId": "nope"})[1]["code"] == 300006
    _, mixed = call(api, "GET", "v2/futures/order/status", {"orderId": f"nope,{a}"})
    assert [r["orderId"] for r in mixed["data"]] == [a]
    ids = ",".join(o.order_id for o in sim.book.open_orders()[:11])
    assert call(api, "GET", "v2/futures/order/status", {"orderId": ids})[1]["code"] == 100004
    assert call(api, "GET", "v2/futures/order/status")[1]["code"] == 100004


def test_get_parameters_are_read_from_the_query_only():
    sim, api, _ = make()
    a = sim.book.open_orders()[0].order_id
    assert call(api, "GET", "v2/futures/order/status", body={"orderId": a})[1]["code"] == 100004


# --- history and open orders (§2.3, §2.4) --------------------------------------------------------------------------------


def end_some(sim: SimServer) -> tuple[Any, Any]:
    """Fill one order completely and cancel another (directly on the book)."""
    filled, canceled = sim.book.open_orders()[:2]
    sim.clock.advance(5)
    filled.fill(filled.remaining, filled.price or Decimal(1), sim.clock.now() + 10)
    sim.book.refresh(filled)
    canceled.cancel(sim.clock.now())
    sim.book.refresh(canceled)
    return filled, canceled


def test_history_lists_ended_orders_newest_first_with_filters():
    sim, api, _ = make()
    filled, canceled = end_some(sim)
    status, reply = call(api, "GET", "v2/futures/order/hist/current")
    assert [r["orderId"] for r in reply["data"]] == [filled.order_id, canceled.order_id]
    assert keys_of(reply["data"][0]) == keys_of(sample("v2-rest-order-hist-current")["data"][0])
    assert len(call(api, "GET", "v2/futures/order/hist/current", {"n": "1"})[1]["data"]) == 1
    _, executed = call(api, "GET", "v2/futures/order/hist/current", {"executedOnly": "True"})
    assert [r["orderId"] for r in executed["data"]] == [filled.order_id]
    other = next(s for s in sim.config.symbols if s not in (filled.symbol, canceled.symbol))
    assert call(api, "GET", "v2/futures/order/hist/current", {"symbol": other})[1]["data"] == []
    for bad in ({"n": "0"}, {"n": "x"}, {"executedOnly": "maybe"}):
        assert call(api, "GET", "v2/futures/order/hist/current", bad)[1]["code"] == 100004
    assert call(api, "GET", "v2/futures/order/hist/current", {"symbol": "NOPE"})[1]["code"] == 300012


def test_open_orders_have_the_documented_record_and_the_symbol_filter():
    sim, api, _ = make()
    _, reply = call(api, "GET", "v2/futures/order/open")
    doc = sample("v2-rest-order-open")["data"][0]
    assert set(doc) <= set(reply["data"][0])  # plus execInst and pos* as the other records carry
    _, btc = call(api, "GET", "v2/futures/order/open", {"symbol": "BTC-PERP"})
    assert btc["data"] and all(r["symbol"] == "BTC-PERP" for r in btc["data"])
    assert all(isinstance(r["price"], str) and isinstance(r["orderQty"], str) for r in reply["data"])


# --- cancels (§2.5–§2.7) -----------------------------------------------------------------------------------------------------


def test_cancel_one_answers_the_ack_form_and_publishes_the_cancel():
    sim, api, published = make()
    order = sim.book.open_orders()[0]
    status_before = order.status
    body = {"id": "abcd1234abcd1234", "orderId": order.order_id, "symbol": order.symbol, "time": now_ms()}
    _, reply = call(api, "DELETE", "v2/futures/order", body=body)
    assert keys_of(reply)["data"]["meta"] == keys_of(sample("v2-rest-order-cancel"))["data"]["meta"]
    assert reply["data"]["meta"] == {"action": "cancel-order", "id": "abcd1234abcd1234", "respInst": "ACK"}
    assert reply["data"]["order"]["status"] == status_before  # the state when the cancel was accepted
    assert set(sample("v2-rest-order-cancel")["data"]["order"]) <= set(reply["data"]["order"])
    assert sim.book.orders[order.order_id].status == "Canceled" and published == [order]


def test_cancel_with_accept_answers_the_outcome():
    sim, api, _ = make()
    order = sim.book.open_orders()[0]
    body = {"orderId": order.order_id, "symbol": order.symbol, "time": now_ms(), "respInst": "ACCEPT"}
    _, reply = call(api, "DELETE", "v2/futures/order", body=body)
    assert reply["data"]["order"]["status"] == "Canceled" and reply["data"]["meta"]["respInst"] == "ACCEPT"


def test_cancels_that_are_refused():
    sim, api, published = make()
    order, other = sim.book.open_orders()[:2]
    ok = {"orderId": order.order_id, "symbol": order.symbol, "time": now_ms()}
    cases = [
        ({**ok, "time": now_ms() - 31_000}, 100011),  # "We do not process request sent more than 30 seconds ago"
        ({**ok, "id": "short"}, 100004),  # id is >= 9 letters and digits
        ({**ok, "id": "has-a-dash-1"}, 100004),
        ({k: v for k, v in ok.items() if k != "symbol"}, 100004),
        ({k: v for k, v in ok.items() if k != "time"}, 100004),
        ({**ok, "symbol": "NOPE-PERP"}, 300012),
        ({**ok, "orderId": "unknown"}, 300006),
        ({**ok, "symbol": other.symbol if other.symbol != order.symbol else "ETH-PERP"}, 300006),
        ({**ok, "respInst": "NOW"}, 100004),
        (b"{not json", 150001),
        (None, 100004),
    ]
    for body, code in cases:
        _, reply = call(api, "DELETE", "v2/futures/order", body=body)
        assert reply["code"] == code, (body, reply)
        assert reply["action"] == "cancel-order" and reply["reason"] and reply["message"]
    assert order.is_open and published == []
    call(api, "DELETE", "v2/futures/order", body=ok)
    _, again = call(api, "DELETE", "v2/futures/order", body={**ok, "time": now_ms()})
    assert again["code"] == 300006 and "non-open" in again["message"]


def test_refuse_cancels_fault_applies_to_rest_too():
    sim, api, _ = make(refuse_cancels=300009)
    order = sim.book.open_orders()[0]
    _, reply = call(
        api, "DELETE", "v2/futures/order", body={"orderId": order.order_id, "symbol": order.symbol, "time": now_ms()}
    )
    assert reply["code"] == 300009 and order.is_open
    assert call(api, "DELETE", "v2/futures/order/all", body={})[1]["code"] == 300009 and sim.book.open_count() == 30


def test_cancel_all_documented_reply_and_symbol_filter():
    sim, api, published = make()
    n_btc = len(sim.book.open_orders("BTC-PERP"))
    _, reply = call(api, "DELETE", "v2/futures/order/all", body={"symbol": "BTC-PERP"})
    assert reply == sample("v2-rest-order-cancel-all")
    assert sim.book.open_orders("BTC-PERP") == [] and sim.book.open_count() == 30 - n_btc == 30 - len(published)
    assert call(api, "DELETE", "v2/futures/order/all", body={"symbol": "NOPE"})[1]["code"] == 300012
    assert call(api, "DELETE", "v2/futures/order/all", body={"symbol": None})[1] == {"code": 0}  # as the demo sends it
    assert sim.book.open_count() == 0
    assert call(api, "DELETE", "v2/futures/order/all")[1] == {"code": 0}  # no body at all


def test_batch_cancel_ack_shape_and_effect():
    sim, api, published = make()
    orders = sim.book.open_orders()[:3]
    items = [
        {"id": f"sampleRequestId{i}", "orderId": o.order_id, "symbol": o.symbol, "time": now_ms()}
        for i, o in enumerate(orders)
    ]
    gone = sim.book.open_orders()[3]
    gone.cancel(sim.clock.now())
    sim.book.refresh(gone)
    items.append({"id": "sampleRequestIdX", "orderId": gone.order_id, "symbol": gone.symbol, "time": now_ms()})
    _, reply = call(api, "DELETE", "v2/futures/order/batch", body={"orders": items})
    assert keys_of(reply) == keys_of(sample("v2-rest-order-cancel-batch"))
    assert [a["id"] for a in reply["data"]["orders"]] == [i["id"] for i in items]  # an ACK for each, no outcome
    assert all(o.status == "Canceled" for o in orders) and published == orders


def test_batch_cancel_is_all_or_nothing_and_at_most_ten():
    sim, api, published = make()
    orders = sim.book.open_orders()[:11]
    items = [
        {"id": f"req{i:06d}", "orderId": o.order_id, "symbol": o.symbol, "time": now_ms()} for i, o in enumerate(orders)
    ]
    _, eleven = call(api, "DELETE", "v2/futures/order/batch", body={"orders": items})
    assert eleven["code"] == 300013 and "10" in eleven["message"]
    bad = items[:3]
    bad[1] = {**bad[1], "symbol": "NOPE-PERP"}
    _, reply = call(api, "DELETE", "v2/futures/order/batch", body={"orders": bad})
    doc = sample("v2-rest-order-new-batch-error")
    assert set(reply) == set(doc) and reply["action"] == "batch-cancel-order" and reply["code"] == 300013
    assert [e["code"] for e in reply["info"]] == [300013, 300012, 300013]
    assert set(reply["info"][0]) == set(doc["info"][0])
    assert all(o.is_open for o in orders) and published == []
    for body in ({"orders": []}, {"orders": "x"}, {}):
        assert call(api, "DELETE", "v2/futures/order/batch", body=body)[1]["code"] == 100004


# --- position (§2.8) --------------------------------------------------------------------------------------------------------------


def test_position_has_every_documented_field():
    sim, api, _ = make()
    _, reply = call(api, "GET", "v2/futures/position")
    doc = sample("v2-rest-position")
    assert set(reply["data"]) == set(doc["data"])
    assert set(reply["data"]["collaterals"][0]) == set(doc["data"]["collaterals"][0])
    assert reply["data"]["contracts"], "the seeded book has fills"
    assert all(set(c) == set(doc["data"]["contracts"][0]) for c in reply["data"]["contracts"])
    for c in reply["data"]["contracts"]:
        pos, cost = Decimal(c["position"]), Decimal(c["referenceCost"])
        assert pos == 0 or (pos > 0) == (cost < 0)  # "position and reference cost are of opposite signs"
        assert Decimal(c["unrealizedPnl"]) == Decimal(c["markPrice"]) * pos + cost


def test_without_a_publisher_a_change_still_takes_the_next_sn():
    sim = SimServer(SimConfig(seed=7, rate=0, initial_orders=5))
    api = RestApi(sim.book, sim.config)
    order = sim.book.open_orders()[0]
    last = sim.book.last_sn
    call(api, "DELETE", "v2/futures/order", body={"orderId": order.order_id, "symbol": order.symbol, "time": now_ms()})
    assert order.seq > last and sim.book.last_sn == order.seq


# --- over real sockets: the server and its faults -----------------------------------------------------------------------------


async def request(port: int, raw: bytes, timeout: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def http_request(method: str, path: str, body: bytes = b"", api_path: str | None = None, close: bool = True) -> bytes:
    t = now_ms()
    api_path = api_path or path.split("/api/pro/", 1)[1].split("?")[0]
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"x-auth-key: {DEMO_API_KEY}",
        f"x-auth-timestamp: {t}",
        f"x-auth-signature: {sign(DEMO_API_SECRET, t, api_path)}",
        f"Content-Length: {len(body)}",
    ]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def test_serve_rest_answers_over_loopback_with_keep_alive():
    sim, api, _ = make()
    server = await serve_rest(api, "127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        for _ in range(2):
            writer.write(http_request("GET", "/1/api/pro/v2/futures/order/open", close=False))
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
            body = json.loads(await reader.readexactly(length))
            assert head.startswith(b"HTTP/1.1 200 ") and body["code"] == 0 and len(body["data"]) == 30
        writer.close()
        assert server.connections_accepted == 1
        body = json.dumps({"symbol": "BTC-PERP"}).encode()
        answer = await request(server.port, http_request("DELETE", "/1/api/pro/v2/futures/order/all", body))
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"code":0}')
        assert sim.book.open_orders("BTC-PERP") == []
        assert (await request(server.port, b"GARBAGE\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
        chunked = b"DELETE /1/api/pro/v2/futures/order/all HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        assert (await request(server.port, chunked)).startswith(b"HTTP/1.1 501 ")
    finally:
        await server.close()


async def test_fault_server_error_answers_5xx_and_acts_on_nothing():
    sim, api, _ = make()
    server = await serve_rest(api, "127.0.0.1", 0)
    try:
        api.faults.server_error = 502
        answer = await request(server.port, http_request("DELETE", "/1/api/pro/v2/futures/order/all", b"{}"))
        assert answer.startswith(b"HTTP/1.1 502 ") and sim.book.open_count() == 30
        api.faults.server_error = None
        answer = await request(server.port, http_request("DELETE", "/1/api/pro/v2/futures/order/all", b"{}"))
        assert answer.startswith(b"HTTP/1.1 200 ") and sim.book.open_count() == 0
    finally:
        await server.close()


async def test_fault_delay_holds_the_answer():
    sim, api, _ = make()
    server = await serve_rest(api, "127.0.0.1", 0)
    try:
        api.faults.delay = 60
        with pytest.raises(TimeoutError):
            await request(server.port, http_request("GET", "/1/api/pro/v2/futures/position"), timeout=0.3)
        assert len(api.calls) == 0  # not answered, not even handled yet
    finally:
        await server.close()  # ends the held handler too


async def test_fault_drop_connections_closes_without_answer():
    sim, api, _ = make()
    server = await serve_rest(api, "127.0.0.1", 0)
    try:
        api.faults.drop_connections = True
        assert await request(server.port, http_request("DELETE", "/1/api/pro/v2/futures/order/all", b"{}")) == b""
        assert sim.book.open_count() == 30 and len(api.calls) == 1
    finally:
        await server.close()


async def test_go_down_refuses_connections_and_come_up_uses_the_same_port():
    sim, api, _ = make()
    server = await serve_rest(api, "127.0.0.1", 0)
    try:
        port = server.port
        await server.go_down()
        assert not server.is_up
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        await server.come_up()
        assert server.port == port
        assert (await request(port, http_request("GET", "/1/api/pro/v2/futures/position"))).startswith(b"HTTP/1.1 200 ")
    finally:
        await server.close()


def test_fault_values_are_checked():
    faults = RestFaults()
    with pytest.raises(ValidationError):
        faults.server_error = 404
    with pytest.raises(ValidationError):
        faults.delay = -1


# --- REST on the WebSocket's port (the exchange serves both on one host and port) -------------------------------------


async def echo(ws) -> None:
    async for message in ws:
        await ws.send(f"echo:{message}")


async def test_rest_connection_serves_rest_and_websocket_on_one_port():
    sim, api, published = make()
    async with serve(echo, "127.0.0.1", 0, create_connection=rest_connection(api)) as server:
        port = server.sockets[0].getsockname()[1]
        answer = await request(port, http_request("GET", "/1/api/pro/v2/futures/order/open", close=False))
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in head  # one request per connection
        assert len(json.loads(body)["data"]) == 30
        delete = http_request("DELETE", "/1/api/pro/v2/futures/order/all", json.dumps({"symbol": "BTC-PERP"}).encode())
        for cut in (20, len(delete) - 3):  # the head, then the body, arriving in pieces
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(delete[:cut])
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(delete[cut:])
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"code":0}')
        assert sim.book.open_orders("BTC-PERP") == [] and published
        async with connect(f"ws://127.0.0.1:{port}/1/api/pro/v2/stream") as ws:
            await ws.send("hello")
            assert await asyncio.wait_for(ws.recv(), 5) == "echo:hello"


async def test_rest_connection_applies_the_faults():
    sim, api, _ = make()
    async with serve(echo, "127.0.0.1", 0, create_connection=rest_connection(api)) as server:
        port = server.sockets[0].getsockname()[1]
        api.faults.server_error = 503
        assert (await request(port, http_request("GET", "/1/api/pro/v2/futures/position"))).startswith(b"HTTP/1.1 503 ")
        api.faults.server_error = None
        api.faults.drop_connections = True
        assert await request(port, http_request("DELETE", "/1/api/pro/v2/futures/order/all", b"{}")) == b""
        assert sim.book.open_count() == 30
        assert (await request(port, b"NONSENSE\r\n\r\n")).startswith(b"HTTP/1.1 400 ")


async def test_why_not_process_request_websockets_refuses_a_request_with_a_body():
    """The reason for :func:`rest_connection`: ``process_request`` never sees a DELETE with a body."""
    seen = []

    def process_request(connection, req):
        seen.append(req.method)
        return connection.respond(200, "ok\n")

    async with serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        port = server.sockets[0].getsockname()[1]
        answer = await request(port, http_request("DELETE", "/1/api/pro/v2/futures/order/all", b"{}"))
        assert not answer.startswith(b"HTTP/1.1 200 ") and seen == []
