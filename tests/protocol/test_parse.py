"""``parse``: every documented frame, both dialects, and the edge cases the protocol documentation names."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from blotter.protocol import (
    AccountSnapshot,
    AccountSnapshotQuery,
    AccountUpdate,
    Auth,
    AuthResult,
    BadFrame,
    CancelAll,
    CancelOrder,
    Connected,
    Disconnected,
    InvalidMessage,
    OpenOrders,
    OpenOrdersQuery,
    Order,
    OrderUpdate,
    Ping,
    PlaceOrder,
    Pong,
    PongReply,
    RequestAck,
    RequestError,
    ServerPing,
    SubAck,
    Subscribe,
    Unknown,
    parse,
    request_from_wire,
)
from blotter.protocol.messages import RAW_LIMIT, UNREADABLE
from blotter.protocol.parse import CARRY_LIMIT, SnapshotPrecheck, snapshot_slices
from tests.helpers import PROTOCOL_FIXTURES

FIXTURE_DIR = PROTOCOL_FIXTURES
ALL_FIXTURES = sorted(p.name for p in FIXTURE_DIR.glob("*.json"))

# Every fixture, and the event type ``parse`` must give it.
EXPECTED_TYPE = {
    "account-snapshot-reply.json": AccountSnapshot,
    "account-snapshot-request.json": Unknown,
    "account-update.json": AccountUpdate,
    "auth-error.json": AuthResult,
    "auth-ok.json": AuthResult,
    "auth-request.json": Unknown,
    "cancel-all-ack-2021.json": RequestAck,
    "cancel-all-ack.json": RequestAck,
    "cancel-all-error.json": RequestError,
    "cancel-all-request-symbol.json": Unknown,
    "cancel-all-request.json": Unknown,
    "cancel-order-ack-2021.json": RequestAck,
    "cancel-order-ack.json": RequestAck,
    "cancel-order-error-2021.json": RequestError,
    "cancel-order-error.json": RequestError,
    "cancel-order-request-2021.json": Unknown,
    "cancel-order-request.json": Unknown,
    "client-ping.json": ServerPing,  # the schema spells a server ping with ``op`` (ADDENDUM 3.4): answered too
    "client-pong.json": Unknown,
    "connected-auth-op-key.json": Connected,
    "connected-auth.json": Connected,
    "connected-unauth.json": Connected,
    "disconnected.json": Disconnected,
    "open-orders-reply-2021.json": OpenOrders,
    "open-orders-reply.json": OpenOrders,
    "open-orders-request.json": Unknown,
    "order-update-2021.json": OrderUpdate,
    "order-update.json": OrderUpdate,
    "place-order-ack-2021.json": RequestAck,
    "place-order-ack.json": RequestAck,
    "place-order-error.json": RequestError,
    "place-order-request-2021.json": Unknown,
    "place-order-request.json": Unknown,
    "request-error.json": RequestError,
    "server-ping.json": ServerPing,
    "server-pong.json": Pong,
    "sub-ok.json": SubAck,
    "sub-request.json": Unknown,
}

# Client frames: the server never sends them, so ``parse`` says Unknown, while
# ``request_from_wire`` (the simulator's side) reads them as these request models.
CLIENT_REQUESTS = {
    "account-snapshot-request.json": AccountSnapshotQuery,
    "auth-request.json": Auth,
    "cancel-all-request-symbol.json": CancelAll,
    "cancel-all-request.json": CancelAll,
    "cancel-order-request-2021.json": CancelOrder,
    "cancel-order-request.json": CancelOrder,
    "client-ping.json": Ping,
    "client-pong.json": PongReply,
    "open-orders-request.json": OpenOrdersQuery,
    "place-order-request-2021.json": PlaceOrder,
    "place-order-request.json": PlaceOrder,
    "sub-request.json": Subscribe,
}


def load(name: str) -> bytes:
    return (FIXTURE_DIR / name).read_bytes()


def parsed(name: str):
    return parse(load(name))


def test_every_fixture_has_an_expectation():
    assert ALL_FIXTURES, f"no fixtures found in {FIXTURE_DIR}"
    assert set(ALL_FIXTURES) == set(EXPECTED_TYPE)


@pytest.mark.parametrize("name", sorted(EXPECTED_TYPE))
def test_fixture_parses_to_expected_type(name):
    frame = load(name)
    for form in (frame, frame.decode("utf-8"), bytearray(frame), memoryview(frame)):
        event = parse(form)
        assert type(event) is EXPECTED_TYPE[name], (name, event)


# -- connection and keep-alive ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "authenticated"),
    [("connected-auth.json", True), ("connected-auth-op-key.json", True), ("connected-unauth.json", False)],
)
def test_connected(name, authenticated):
    event = parsed(name)
    assert isinstance(event, Connected)
    assert event.type == ("auth" if authenticated else "unauth")
    assert event.authenticated is authenticated


def test_disconnected():
    event = parsed("disconnected.json")
    assert isinstance(event, Disconnected)
    assert event.code == 100005
    assert event.reason == "INVALID_WS_REQUEST_DATA"
    assert "missing pong" in event.info


def test_server_ping_and_pong():
    ping = parsed("server-ping.json")
    assert isinstance(ping, ServerPing) and ping.hp == 3
    pong = parsed("server-pong.json")
    assert isinstance(pong, Pong)
    assert (pong.code, pong.ts, pong.hp) == (0, 1614164189, 2)


def test_auth_results():
    ok = parsed("auth-ok.json")
    assert isinstance(ok, AuthResult)
    assert ok.ok and ok.request_id == "abc123" and ok.code == 0
    err = parsed("auth-error.json")
    assert isinstance(err, AuthResult)
    assert not err.ok
    assert err.request_id == "abc123"
    assert err.code == 200006
    assert err.error == "Unable to find User Account Data"


def test_sub_ack():
    event = parsed("sub-ok.json")
    assert isinstance(event, SubAck)
    assert event.ok and event.request_id == "sample-id" and event.channel == "futures-order" and event.op == "sub"


def test_unsub_ack_keeps_op():
    event = parse(b'{"m":"unsub","id":"u-1","ch":"futures-order","code":0}')
    assert isinstance(event, SubAck) and event.op == "unsub" and event.request_id == "u-1"


def test_account_update_every_documented_field():
    """ADDENDUM §3.3, the documented sample (examples-v2/v2-account-update.json)."""
    event = parsed("account-update.json")
    assert isinstance(event, AccountUpdate)
    assert (event.event, event.time_ms, event.account_id, event.account_category) == (
        "ExecutionReport",
        1612508562129,
        "sample-futures-account-id",
        "FUTURES",
    )
    assert event.seq == 23128 and event.request_id == "r177710001cbU3813942147C5kbFGOan"
    (col,) = event.collaterals
    assert (col.asset, col.balance, col.discount_factor) == ("USDT", Decimal("1000000"), Decimal("1"))
    (pos,) = event.positions
    assert pos.model_dump() == {
        "symbol": "BTC-PERP",
        "side": "LONG",
        "position": Decimal("0.011"),
        "reference_cost": Decimal("-385.840455"),
        "unrealized_pnl": Decimal("18.436008668"),
        "realized_pnl": Decimal("0"),
        "avg_open_price": Decimal("35041.363636363"),
        "buy_open_order_notional": Decimal("0"),
        "sell_open_order_notional": Decimal("0"),
        "margin_type": "crossed",
        "isolated_margin": Decimal("0"),
        "leverage": Decimal("10"),
        "take_profit_price": Decimal("0"),
        "take_profit_trigger": "market",
        "stop_loss_price": Decimal("0"),
        "stop_loss_trigger": "market",
    }
    assert str(pos.avg_open_price) == "35041.363636363"  # exact, as sent


def test_account_snapshot_reply_is_read_without_a_data_wrapper():
    """ADDENDUM §3.2: no ``code``, no ``data``: ``col`` and ``pos`` at the top level
    (examples-v2/v2-account-snapshot-reply.json)."""
    event = parsed("account-snapshot-reply.json")
    assert isinstance(event, AccountSnapshot)
    assert (event.request_id, event.event, event.time_ms) == ("abc123456", "ClientRequest", 1613748277356)
    assert (event.account_id, event.account_category, event.seq) == (
        "futH9N59hR0BMVEjHnBleHLn0mfUl5lo",
        "FUTURES",
        9982,
    )
    assert [(c.asset, c.balance, c.discount_factor) for c in event.collaterals] == [
        ("ETH", Decimal("500"), Decimal("0.95")),
        ("BTC", Decimal("100"), Decimal("0.98")),
        ("USDT", Decimal("1000000"), Decimal("1")),
    ]
    (pos,) = event.positions
    assert (pos.symbol, pos.side, pos.position, pos.margin_type, pos.leverage) == (
        "BTC-PERP",
        "NULL_VAL",
        Decimal("0"),
        "crossed",
        Decimal("10"),
    )
    assert (pos.take_profit_trigger, pos.stop_loss_trigger, pos.isolated_margin) == ("market", "market", Decimal("0"))


def test_account_messages_read_either_category_key_and_short_positions():
    """The snapshot says ``ac``, the update ``at`` (§3.2); a short position is negative."""
    snap = parse(
        b'{"m":"futures-account-snapshot","id":"as-1","at":"FUTURES","sn":5,"col":[],'
        b'"pos":[{"s":"ETH-PERP","sd":"SHORT","pos":"-2.5","rc":"7800.25","up":"-12.5","rp":"-3"}]}'
    )
    assert isinstance(snap, AccountSnapshot) and snap.account_category == "FUTURES"
    (pos,) = snap.positions
    assert (pos.position, pos.reference_cost, pos.unrealized_pnl, pos.realized_pnl) == (
        Decimal("-2.5"),
        Decimal("7800.25"),
        Decimal("-12.5"),
        Decimal("-3"),
    )
    assert pos.avg_open_price is None and pos.leverage is None  # absent: None, never a made-up zero


@pytest.mark.parametrize(
    "frame",
    [
        b'{"m":"futures-account-update","sn":1,"col":[{"a":"USDT","b":1e3,"f":"1"}],"pos":[]}',  # a number, not text
        b'{"m":"futures-account-update","sn":1,"col":[],"pos":[{"s":"BTC-PERP","pos":"NaN"}]}',
        b'{"m":"futures-account-snapshot","sn":"x","col":[],"pos":[]}',
        b'{"m":"futures-account-update","sn":1,"col":{"a":"USDT"},"pos":[]}',
    ],
)
def test_an_account_message_with_wrong_fields_is_rejected_not_guessed(frame):
    event = parse(frame)
    assert isinstance(event, InvalidMessage) and event.type.startswith("futures-account")


# -- order channel ---------------------------------------------------------------------


def test_order_update_current():
    event = parsed("order-update.json")
    assert isinstance(event, OrderUpdate)
    o = event.order
    assert o.order_id == "a176010c4957U68469127074abcd1234"
    assert o.symbol == "BTC-PERP"
    assert o.side == "Buy"
    assert o.status == "New"
    assert o.order_type == "Limit"
    assert o.seq == 127
    assert o.price == Decimal("18000") and isinstance(o.price, Decimal)
    assert o.qty == Decimal("0.1") and str(o.qty) == "0.1"
    assert o.filled_qty == Decimal("0")
    assert o.exec_time_ms == 1606335352348
    assert o.create_time_ms == 1606335351541
    assert o.account_id == "sample-futures-account-id"
    assert o.fee_asset == "USDT"
    assert o.is_open and not o.is_final


def test_order_update_2021_with_position_fields():
    event = parsed("order-update-2021.json")
    assert isinstance(event, OrderUpdate)
    o = event.order
    assert o.order_id == "s177bab3b501U5051470287bc0d18f6c"
    assert (o.symbol, o.side, o.status, o.seq) == ("BTC-PERP", "Buy", "New", 553)
    assert o.price == Decimal("32400")
    assert str(o.price) == "32400"
    assert o.qty == Decimal("0.12") and str(o.qty) == "0.12"


@pytest.mark.parametrize("status", ["Filled", "Canceled", "Rejected"])
def test_final_statuses(status):
    data = orjson.loads(load("order-update.json"))
    data["st"] = status
    event = parse(orjson.dumps(data))
    assert isinstance(event, OrderUpdate)
    assert event.order.is_final and not event.order.is_open


def test_order_decimal_strings_stay_exact():
    data = orjson.loads(load("order-update.json"))
    data["p"] = "0.1000000000000000000000000001"
    data["q"] = "12345678901234567890.123456789"
    event = parse(orjson.dumps(data))
    assert isinstance(event, OrderUpdate)
    assert event.order.price == Decimal("0.1000000000000000000000000001")
    assert event.order.qty == Decimal("12345678901234567890.123456789")


def test_blank_amount_is_absent():
    data = orjson.loads(load("order-update.json"))
    data["sp"] = ""
    data["ap"] = "  "
    data["p"] = None
    data["f"] = ""
    event = parse(orjson.dumps(data))
    assert isinstance(event, OrderUpdate), event
    o = event.order
    assert o.stop_price is None and o.avg_price is None and o.price is None and o.fee is None
    assert o.qty == Decimal("0.1")


def test_fee_may_be_negative_but_quantities_may_not():
    data = orjson.loads(load("order-update.json"))
    data["f"] = "-0.0125"  # a maker rebate
    event = parse(orjson.dumps(data))
    assert isinstance(event, OrderUpdate) and event.order.fee == Decimal("-0.0125")
    data["lq"] = "-0.0125"
    event = parse(orjson.dumps(data))
    assert isinstance(event, OrderUpdate) and event.order.status == UNREADABLE
    assert event.order.problem.startswith("lq: ") and event.order.last_qty is None


# -- open-orders snapshots ------------------------------------------------------------


def test_open_orders_current():
    event = parsed("open-orders-reply.json")
    assert isinstance(event, OpenOrders)
    assert event.dialect == "current"
    assert event.request_id == "abc123456"
    assert event.code == 0
    assert len(event.orders) == 1 and event.orders[0].problem is None
    o = event.orders[0]
    assert o.order_id == "r1782f04c58aU3792951278sbtcp7EbA"
    assert (o.symbol, o.side, o.status, o.seq) == ("BTC-PERP", "Sell", "New", 13)
    assert o.price == Decimal("66000")
    assert o.qty == Decimal("0.0001")
    assert o.order_type == "Limit"
    assert o.exec_time_ms == 1615696544851


def test_open_orders_2021_bare_array():
    event = parsed("open-orders-reply-2021.json")
    assert isinstance(event, OpenOrders)
    assert event.dialect == "2021"
    assert event.request_id is None
    assert [o.order_id for o in event.orders] == ["s177bab3b501U5051470287bc0d18f6c"]
    assert event.orders[0].price == Decimal("32400")
    assert event.orders[0].seq == 553


def test_open_orders_empty():
    event = parse(b'{"m":"futures-open-orders","code":0,"id":"oo-1","data":[]}')
    assert isinstance(event, OpenOrders) and event.orders == [] and event.request_id == "oo-1"
    event = parse(b"[]")
    assert isinstance(event, OpenOrders) and event.orders == [] and event.dialect == "2021"


def _bad_record_reply(bad: dict) -> bytes:
    data = orjson.loads(load("open-orders-reply.json"))
    good = data["data"][0]
    second = {**good, "orderId": "r1782f04c58aU3792951278sbtcp7Good2", "seqNum": 14}
    data["data"] = [good, bad, second]
    return orjson.dumps(data)


def test_open_orders_bad_record_keeps_good_ones():
    data = orjson.loads(load("open-orders-reply.json"))
    bad = {**data["data"][0], "orderId": "r1782f04c58aU3792951278sbtcpBAD1", "price": "abc"}
    event = parse(_bad_record_reply(bad))
    assert isinstance(event, OpenOrders)
    assert [o.order_id for o in event.orders] == [
        "r1782f04c58aU3792951278sbtcp7EbA",
        "r1782f04c58aU3792951278sbtcpBAD1",
        "r1782f04c58aU3792951278sbtcp7Good2",
    ]
    assert [o.status for o in event.orders] == ["New", UNREADABLE, "New"]
    kept = event.orders[1]
    assert kept.is_open and kept.price is None and kept.symbol == "BTC-PERP" and kept.problem.startswith("price: ")
    assert '"price":"abc"' in kept.raw


def test_open_orders_bad_record_without_id():
    data = orjson.loads(load("open-orders-reply.json"))
    bad = {k: v for k, v in data["data"][0].items() if k != "orderId"}
    event = parse(_bad_record_reply(bad))
    assert isinstance(event, OpenOrders)
    assert len(event.orders) == 3
    kept = event.orders[1]
    assert kept.status == UNREADABLE and kept.order_id.startswith("?") and kept.problem == "orderId: Field required"
    again = parse(_bad_record_reply(bad))
    assert again.orders[1].order_id == kept.order_id  # the same record keeps its row


def test_open_orders_2021_bad_record_keeps_good_ones():
    records = orjson.loads(load("open-orders-reply-2021.json"))
    bad = {**records[0], "orderId": "s177bab3b501U5051470287bcBADBAD1", "q": "-1"}
    event = parse(orjson.dumps([records[0], bad]))
    assert isinstance(event, OpenOrders) and event.dialect == "2021"
    assert [o.order_id for o in event.orders] == [
        "s177bab3b501U5051470287bc0d18f6c",
        "s177bab3b501U5051470287bcBADBAD1",
    ]
    assert [o.status for o in event.orders] == ["New", UNREADABLE]


def test_open_orders_error_code_is_request_error():
    event = parse(
        b'{"m":"futures-open-orders","code":100008,"id":"oo-9","reason":"SYMBOL_ERROR",'
        b'"info":{"errorMsg":"bad symbol"}}'
    )
    assert isinstance(event, RequestError)
    assert (event.request_id, event.code, event.reason, event.message) == ("oo-9", 100008, "SYMBOL_ERROR", "bad symbol")


def test_open_orders_data_not_a_list_is_invalid():
    event = parse(b'{"m":"futures-open-orders","code":0,"id":"x","data":{"a":1}}')
    assert isinstance(event, InvalidMessage)


# -- request replies: current dialect -------------------------------------------------


def test_cancel_order_ack_current():
    event = parsed("cancel-order-ack.json")
    assert isinstance(event, RequestAck)
    assert event.dialect == "current"
    assert event.request_id == "sampleRequestId"
    assert event.action == "cancel-order"
    assert event.order_id == "s177bab1b474U5051470287bbtcpKiOR"
    assert event.symbol == "BTC-PERP"
    assert event.order is None


def test_cancel_order_error_current():
    event = parsed("cancel-order-error.json")
    assert isinstance(event, RequestError)
    assert event.dialect == "current"
    assert event.request_id == "sampleRequestId"
    assert event.action == "cancel-order"
    assert event.code == 300006
    assert event.reason == "INVALID_ORDER_ID"
    assert event.message == "Client Order Id too Long: s177bab1b474U5051470287bbtcpKiOR1"
    assert event.symbol == "BTC-PERP"


def test_cancel_all_ack_current():
    event = parsed("cancel-all-ack.json")
    assert isinstance(event, RequestAck)
    assert (event.request_id, event.action, event.dialect) == ("sampleRequestId", "cancel-all", "current")
    assert not event.order_id


def test_cancel_all_error_current():
    event = parsed("cancel-all-error.json")
    assert isinstance(event, RequestError)
    assert (event.request_id, event.action, event.code) == ("sampleRequestId", "cancel-all", 300012)
    assert event.reason == "INVALID_PRODUCT"
    assert event.message == "Invalid Product Symbol"


def test_place_order_ack_current():
    event = parsed("place-order-ack.json")
    assert isinstance(event, RequestAck)
    assert (event.request_id, event.action) == ("sampleRequestID", "place-order")
    assert event.order_id == "s177bbb671b7U1234567890leOrderId"
    assert event.symbol == "BTC-PERP"


def test_place_order_error_current():
    event = parsed("place-order-error.json")
    assert isinstance(event, RequestError)
    assert (event.request_id, event.action, event.code, event.reason) == (
        "sampleRequestID",
        "place-order",
        300001,
        "INVALID_PRICE",
    )
    assert event.message == "Order price is too low from market price."


def test_generic_error():
    event = parsed("request-error.json")
    assert isinstance(event, RequestError)
    assert event.request_id == "abc123456"
    assert event.code == 100005
    assert event.reason == "INVALID_WS_REQUEST_DATA"
    assert event.message == "Missing required parameter: args"


def test_generic_error_with_info_object():
    event = parse(b'{"m":"error","id":"e-1","code":100006,"reason":"INVALID_ARGUMENT","info":{"message":"bad arg"}}')
    assert isinstance(event, RequestError)
    assert (event.request_id, event.code, event.message) == ("e-1", 100006, "bad arg")


# -- request replies: 2021 dialect ----------------------------------------------------


def test_cancel_order_ack_2021_is_the_order_record():
    event = parsed("cancel-order-ack-2021.json")
    assert isinstance(event, RequestAck)
    assert event.dialect == "2021"
    assert event.request_id is None
    assert event.order_id == "s177bab1b474U5051470287bbtcpKiOR"
    assert event.symbol == "BTC-PERP"
    assert isinstance(event.order, Order)
    assert event.order.order_id == event.order_id
    assert event.order.price == Decimal("32400")
    assert event.order.qty == Decimal("0.12")
    assert event.order.seq == 552
    assert event.order.status == "New"


def test_place_order_ack_2021():
    event = parsed("place-order-ack-2021.json")
    assert isinstance(event, RequestAck)
    assert event.dialect == "2021"
    assert event.order_id == "s177ba912263U5051470287bc0d18f6c"
    assert event.order is not None and event.order.price == Decimal("32500")


def test_cancel_order_error_2021_status_ack_but_info_code():
    """The documented sample says ``status: Ack`` while ``info`` carries the error."""
    raw = orjson.loads(load("cancel-order-error-2021.json"))
    assert raw["status"] == "Ack"  # the point of this test
    event = parse(orjson.dumps(raw))
    assert isinstance(event, RequestError)
    assert event.dialect == "2021"
    assert event.request_id == "x@fabs"  # from info.id
    assert event.action == "cancel-order"
    assert event.code == 300006
    assert event.reason == "INVALID_ORDER_ID"
    assert event.message == "Invalid Client Order Id: x@fabs"
    assert event.symbol == "BTC-PERP"


def test_2021_error_with_status_err():
    raw = orjson.loads(load("cancel-order-error-2021.json"))
    raw["status"] = "Err"
    event = parse(orjson.dumps(raw))
    assert isinstance(event, RequestError) and event.code == 300006


def test_2021_error_reason_only():
    raw = orjson.loads(load("cancel-order-error-2021.json"))
    del raw["info"]["code"]
    event = parse(orjson.dumps(raw))
    assert isinstance(event, RequestError)
    assert event.reason == "INVALID_ORDER_ID"


def test_2021_error_id_at_top_level():
    raw = orjson.loads(load("cancel-order-error-2021.json"))
    del raw["info"]["id"]
    raw["id"] = "co-top-1"
    event = parse(orjson.dumps(raw))
    assert isinstance(event, RequestError) and event.request_id == "co-top-1"


def test_top_level_id_wins_over_info_id():
    raw = orjson.loads(load("cancel-order-error-2021.json"))
    raw["id"] = "co-top-2"
    event = parse(orjson.dumps(raw))
    assert isinstance(event, RequestError) and event.request_id == "co-top-2"


def test_cancel_all_ack_2021_id_in_info():
    event = parsed("cancel-all-ack-2021.json")
    assert isinstance(event, RequestAck)
    assert event.dialect == "2021"
    assert event.request_id == "69c482a3f29540a0b0d83e00551bb623"
    assert event.action == "cancel-all"
    assert not event.order_id  # "" on the wire: no order
    assert not event.symbol


# -- client frames ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(set(CLIENT_REQUESTS) - {"client-ping.json"}))
def test_client_frames_are_unknown_to_parse(name):
    assert isinstance(parsed(name), Unknown)


def test_op_ping_from_the_server_is_a_server_ping():
    # ADDENDUM 3.4: the schema names the server ping's key ``op``; it is answered like ``m:"ping"``.
    assert isinstance(parsed("client-ping.json"), ServerPing)


@pytest.mark.parametrize("name", sorted(CLIENT_REQUESTS))
def test_client_frames_become_requests(name):
    request = request_from_wire(orjson.loads(load(name)))
    assert type(request) is CLIENT_REQUESTS[name]


def test_client_request_fields():
    co = request_from_wire(orjson.loads(load("cancel-order-request.json")))
    assert isinstance(co, CancelOrder)
    assert (co.request_id, co.order_id, co.symbol, co.time_ms) == (
        "sampleRequestId",
        "s177bab1b474U5051470287bbtcpKiOR",
        "BTC-PERP",
        1613744943323,
    )
    co21 = request_from_wire(orjson.loads(load("cancel-order-request-2021.json")))
    assert isinstance(co21, CancelOrder) and co21.order_id == co.order_id and co21.request_id  # generated

    ca = request_from_wire(orjson.loads(load("cancel-all-request.json")))
    assert isinstance(ca, CancelAll) and ca.symbol is None and ca.request_id == "sampleRequestId"
    cas = request_from_wire(orjson.loads(load("cancel-all-request-symbol.json")))
    assert isinstance(cas, CancelAll) and cas.symbol == "BTC-PERP"

    oo = request_from_wire(orjson.loads(load("open-orders-request.json")))
    assert isinstance(oo, OpenOrdersQuery) and oo.symbol == "BTC-PERP" and oo.request_id == "abc123456"

    po = request_from_wire(orjson.loads(load("place-order-request.json")))
    assert isinstance(po, PlaceOrder)
    assert (po.symbol, po.side, po.order_type, po.post_only, po.resp_inst) == ("BTC-PERP", "buy", "limit", False, "ACK")
    assert po.price == Decimal("30000") and po.qty == Decimal("0.12")
    assert po.request_id == "sampleRequestID" and po.time_ms == 1613753879921

    po21 = request_from_wire(orjson.loads(load("place-order-request-2021.json")))
    assert isinstance(po21, PlaceOrder)
    assert po21.price == Decimal("32500")  # from the older ``orderPrice``
    assert po21.client_order_id == "11eb9a8355fc41bd9bf5b08bc0d18f6c"

    au = request_from_wire(orjson.loads(load("auth-request.json")))
    assert isinstance(au, Auth)
    assert au.request_id == "abc123" and au.time_ms == 1608133910000
    assert au.api_key.get_secret_value() == "BclE7dBGbS1AP3VnOuq6s8fJH0fWbH7r"

    sb = request_from_wire(orjson.loads(load("sub-request.json")))
    assert isinstance(sb, Subscribe) and sb.channel == "futures-order" and sb.request_id == "sample-id"

    snap = request_from_wire(orjson.loads(load("account-snapshot-request.json")))
    assert isinstance(snap, AccountSnapshotQuery) and snap.request_id == "abc123456"


# -- unknown and malformed input --------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [b'{"m":"futures-something-new","x":1}', b'{"foo":"bar"}', b"42", b'"text"', b"null", b"true", b"[1,2]"],
)
def test_unknown_types(frame):
    assert isinstance(parse(frame), Unknown)


def test_unknown_m_keeps_its_name():
    event = parse(b'{"m":"futures-something-new","x":1}')
    assert isinstance(event, Unknown) and event.type == "futures-something-new"


@pytest.mark.parametrize(
    "frame",
    [b"", b"{", b"not json", b'{"m":"ping",}', b"\xff\xfe\x00", "{'m': 'ping'}", b"\x00" * 10, b'{"m":"ping"} x'],
)
def test_malformed_json_is_bad_frame(frame):
    event = parse(frame)
    assert isinstance(event, BadFrame)
    assert event.error.startswith("not JSON")
    assert "\n" not in event.error


def test_bad_frame_excerpt_is_bounded():
    event = parse(b"x" * 100_000)
    assert isinstance(event, BadFrame)
    assert 0 < len(event.text) <= 1000
    event = parse("y" * 100_000)
    assert isinstance(event, BadFrame) and 0 < len(event.text) <= 1000


def test_lone_surrogate_text_is_bad_frame():
    event = parse('{"m":"ping","x":"\udc80"}')
    assert isinstance(event, BadFrame)


def _order_update(**changes) -> bytes:
    data = orjson.loads(load("order-update.json"))
    for key, value in changes.items():
        if value is _DELETE:
            del data[key]
        else:
            data[key] = value
    return orjson.dumps(data)


_DELETE = object()
ORDER_ID = "a176010c4957U68469127074abcd1234"


@pytest.mark.parametrize(
    ("changes", "field", "keeps_id"),
    [
        ({"p": "abc"}, "p", True),
        ({"q": "-0.1"}, "q", True),
        ({"cfq": "-1"}, "cfq", True),
        ({"p": "NaN"}, "p", True),
        ({"p": "Infinity"}, "p", True),
        ({"orderId": _DELETE}, "orderId", False),
        ({"orderId": ""}, "orderId", False),
        ({"orderId": 12345}, "orderId", False),
        ({"s": _DELETE}, "s", True),
        ({"st": None}, "st", True),
        ({"sd": ["Buy"]}, "sd", True),
        ({"sn": "abc"}, "sn", True),
        ({"sn": 1.5}, "sn", True),
        ({"p": {"v": 1}}, "p", True),
        ({"t": "yesterday"}, "t", True),
    ],
    ids=lambda v: repr(v) if not isinstance(v, dict) else ",".join(v),
)
def test_bad_order_update_is_an_unreadable_order(changes, field, keeps_id):
    event = parse(_order_update(**changes))
    assert isinstance(event, OrderUpdate), event
    order = event.order
    assert order.status == UNREADABLE and order.is_open and not order.is_final
    assert "\n" not in order.problem
    assert order.problem.startswith(f"{field}: ")
    if keeps_id:
        assert order.order_id == ORDER_ID
    else:
        assert order.order_id.startswith("?") and len(order.order_id) == 13


def test_unreadable_problem_names_the_field():
    event = parse(_order_update(p="abc"))
    assert isinstance(event, OrderUpdate)
    assert event.order.problem == "p: not a plain decimal of at most 24.30 digits"


def test_unreadable_problem_does_not_echo_hostile_value():
    hostile = "9" * 50_000 + "Z" * 50_000  # 100 kB, not a number
    order = parse(_order_update(p=hostile)).order
    assert order.status == UNREADABLE
    assert "\n" not in order.problem
    assert len(order.problem) < 500
    assert "ZZZZZZZZZZ" not in order.problem and "9999999999" not in order.problem
    assert len(order.raw) <= RAW_LIMIT + 1 and order.raw.endswith("…")  # the raw record, bounded


def test_unreadable_problem_with_long_values_is_bounded():
    hostile = {"m": "futures-order", "orderId": "x" * 100_000, "s": 5, "sd": 5, "st": 5, "sn": "z" * 100_000}
    order = parse(orjson.dumps(hostile)).order
    assert order.status == UNREADABLE and order.order_id.startswith("?")
    assert "\n" not in order.problem and len(order.problem) < 500
    assert "xxxxxxxxxx" not in order.problem and "zzzzzzzzzz" not in order.problem


def test_bad_2021_ack_record_is_invalid():
    raw = orjson.loads(load("cancel-order-ack-2021.json"))
    raw["price"] = "abc"
    event = parse(orjson.dumps(raw))
    assert isinstance(event, InvalidMessage)
    assert event.order_id == "s177bab1b474U5051470287bbtcpKiOR"


def test_disconnected_with_bad_code_is_invalid():
    event = parse(b'{"m":"disconnected","code":"soon","reason":"x"}')
    assert isinstance(event, InvalidMessage) and event.type == "disconnected"


def test_extra_fields_are_ignored():
    data = orjson.loads(load("order-update.json"))
    data["brandNewField"] = {"nested": [1, 2, 3]}
    event = parse(orjson.dumps(data))
    assert isinstance(event, OrderUpdate) and event.order.order_id == ORDER_ID


def test_unreadable_problem_does_not_echo_hostile_order_id():
    data = orjson.loads(load("open-orders-reply.json"))
    hostile_id = "H" * 100_000
    data["data"].append({**data["data"][0], "orderId": hostile_id, "price": "abc"})
    event = parse(orjson.dumps(data))
    assert isinstance(event, OpenOrders)
    assert len(event.orders) == 2
    kept = event.orders[1]
    assert kept.status == UNREADABLE and kept.order_id.startswith("?")  # no id that long is readable
    assert len(kept.problem) < 500 and "\n" not in kept.problem and "HHHHHHHHHH" not in kept.problem


# -- values the exchange does not send: the record is UNREADABLE, never read as something it resembles --

ODD_VALUES = [
    ("st", "Canceled\u200b"),
    ("st", "canceled"),
    ("st", "Canceled "),
    ("st", "Unreadable"),
    ("st", "Filled\u00a0"),
    ("sd", "Buy\u200b"),
    ("sd", "BUY"),
    ("p", "1e999999999999999999"),
    ("p", "1e99999999"),
    ("p", "1E5"),
    ("p", "9" * 25),
    ("p", "0." + "1" * 31),
    ("q", "\uff11\uff12"),
    ("q", "\u0661\u0662"),
    ("q", "1_000"),
    ("p", "0x10"),
    ("p", "-0"),
    ("f", "-0"),
    ("f", "-0.000"),
    ("f", "-"),
    ("p", "+1"),
    ("p", " 1"),
    ("p", 100),
    ("p", 1.5),
    ("p", True),
    ("cfq", "0.2"),  # above q = 0.1
    ("orderId", "a\u200bb"),
    ("orderId", "id with space"),
    ("orderId", "x@y"),
    ("orderId", "?x"),
    ("sn", "127"),
    ("sn", 1.0),
    ("t", True),
]


@pytest.mark.parametrize(("key", "value"), ODD_VALUES, ids=[f"{k}={v!r}" for k, v in ODD_VALUES])
def test_a_value_the_exchange_does_not_send_makes_the_record_unreadable(key, value):
    event = parse(_order_update(**{key: value}))
    assert isinstance(event, OrderUpdate)
    order = event.order
    assert order.status == UNREADABLE and order.is_open and not order.is_final
    assert order.problem and "\n" not in order.problem
    assert order.status not in ("Canceled", "Filled")
    for name in ("price", "qty", "filled_qty", "avg_price", "stop_price", "last_price", "last_qty", "fee"):
        amount = getattr(order, name)
        assert amount is None or (amount.is_finite() and abs(amount.adjusted()) <= 30)  # bounded, always


def test_documented_values_are_read():
    for status in ("New", "PartiallyFilled", "Filled", "Canceled", "Rejected", "PendingNew", "Ack"):
        assert parse(_order_update(st=status)).order.status == status
    for amount in ("0", "18000", "0.00000001", "123456789012345678901234.5", "-0.5"):
        if amount.startswith("-"):
            assert parse(_order_update(f=amount)).order.fee == Decimal(amount)
        else:
            assert parse(_order_update(p=amount)).order.price == Decimal(amount)
    assert parse(_order_update(q="1", cfq="1")).order.status == "New"  # filled may equal the quantity


def test_an_amount_beyond_the_bounds_cannot_be_made_in_python_either():
    with pytest.raises(ValueError):
        Order(order_id="a", symbol="BTC-PERP", side="Buy", status="New", price=Decimal("1e999999999999999999"))
    with pytest.raises(ValueError):
        Order(order_id="a", symbol="BTC-PERP", side="Buy", status="New", price=Decimal("NaN"))


# -- a big open-orders reply read a slice at a time ------------------------------------------------


def _big_reply(n: int, **envelope) -> tuple[bytes, list[dict]]:
    good = orjson.loads(load("open-orders-reply.json"))["data"][0]
    records = [{**good, "orderId": f"r1782f04c58aU3792951278sbtcp{i:05d}", "seqNum": 100 + i} for i in range(n)]
    head = {"m": "futures-open-orders", "code": 0, "id": "oo-big", "ac": "FUTURES", **envelope}
    return orjson.dumps({**head, "data": records}), records


def _read_all(slices) -> tuple[list, int]:
    checks = 0
    while (ok := slices.check()) is None:
        checks += 1
    assert ok is True
    orders, parts = [], 0
    while (part := slices.read()) is not None:
        orders.extend(part)
        parts += 1
    return orders, parts


def test_a_big_open_orders_reply_read_in_slices_gives_what_parse_gives():
    raw, records = _big_reply(3000)
    records[10]["execInst"] = 'x},{"orderId":"fake"}'  # a cut inside a string: the part is taken longer
    records[1500]["price"] = "abc"  # unreadable: its part is read the general way
    records[2000] = [1, 2]  # not even an object
    raw = orjson.dumps({"m": "futures-open-orders", "code": 0, "id": "oo-big", "ac": "FUTURES", "data": records})
    slices = snapshot_slices(raw, chunk=4096)
    assert slices is not None and slices.request_id == "oo-big"
    orders, parts = _read_all(slices)
    assert parts > 50  # a slice at a time
    whole = parse(raw)
    assert isinstance(whole, OpenOrders) and len(whole.orders) == 3000
    assert orders == whole.orders
    assert orders[1500].status == UNREADABLE and orders[2000].status == UNREADABLE
    assert orders[10].exec_inst == 'x},{"orderId":"fake"}'


def test_a_broken_big_reply_is_found_before_any_record_is_read():
    raw, _ = _big_reply(2000)
    broken = raw[: len(raw) // 2] + b"]}"  # cut in the middle of a record
    slices = snapshot_slices(broken, chunk=4096)
    assert slices is not None
    while (ok := slices.check()) is None:
        pass
    assert ok is False and slices.read() is None
    assert isinstance(parse(broken), BadFrame)  # the general path says what it is


def _fed(raw: bytes, seed: int, chunk: int = 4096, read_ahead: bool = False) -> SnapshotPrecheck:
    """A precheck given ``raw`` as a socket gives it: reads of any size, some of one byte."""
    import random

    rng = random.Random(seed)
    precheck = SnapshotPrecheck(len(raw), chunk, read_ahead=read_ahead)
    pos = 0
    while pos < len(raw):
        n = rng.choice([1, 2, 9, 300, 4096, 65536])
        piece = raw[pos : pos + n]
        precheck.feed(memoryview(piece) if rng.random() < 0.5 else piece)
        pos += n
    return precheck


def _odd_big_reply() -> bytes:
    raw, records = _big_reply(3000)
    records[10]["execInst"] = 'x},{"orderId":"fake"}'  # a cut inside a string: the part is taken longer
    records[11]["execInst"] = "},{" * 3000  # a string longer than a part, cuts all through it
    records[1500]["price"] = "abc"  # unreadable: its part is read the general way
    records[2000] = [1, 2]  # not even an object
    return orjson.dumps({"m": "futures-open-orders", "code": 0, "id": "oo-big", "ac": "FUTURES", "data": records})


@pytest.mark.parametrize("read_ahead", [False, True], ids=["checked", "read"])
@pytest.mark.parametrize("seed", range(6))
def test_a_reply_checked_while_it_arrives_is_cut_and_read_as_after_it_arrived(seed, read_ahead):
    """SnapshotPrecheck: the parts it checked (or read) as the reads came are the parts
    SnapshotSlices.check cuts, so the slices read (and the orders) are the same."""
    raw = _odd_big_reply()
    after = snapshot_slices(raw, chunk=4096)
    while after.check() is None:
        pass
    precheck = _fed(raw, seed, read_ahead=read_ahead)
    assert not precheck.idle and len(precheck.cuts) > 50
    if read_ahead:  # one list of orders per part checked, handed out as they are
        assert precheck.orders is not None and len(precheck.orders) == len(precheck.cuts)
        first_part = precheck.orders[0]
    else:
        assert precheck.orders is None
    during = snapshot_slices(raw, chunk=4096, checked=precheck)
    assert during is not None and during.prechecked > 0.9 * len(raw)
    checks = 0
    while (ok := during.check()) is None:
        checks += 1
    assert ok is True and checks <= 2  # what was left: the last part
    assert during._cuts == after._cuts
    read = _read_all(during)[0]
    assert read == _read_all(snapshot_slices(raw, chunk=4096))[0] == parse(raw).orders
    if read_ahead:
        assert read[0] is first_part[0]  # the very orders read while it arrived


@pytest.mark.parametrize("read_ahead", [False, True], ids=["checked", "read"])
@pytest.mark.parametrize("seed", range(3))
def test_a_broken_reply_checked_while_it_arrives_is_still_found_before_any_record_is_handed_out(seed, read_ahead):
    raw, _ = _big_reply(2000)
    broken = raw[: len(raw) // 2] + b"]}"
    precheck = _fed(broken, seed, read_ahead=read_ahead)
    slices = snapshot_slices(broken, chunk=4096, checked=precheck)
    assert slices is not None and 0 < slices.prechecked < len(broken)  # (the break is in the last record)
    while (ok := slices.check()) is None:
        pass
    assert ok is False and slices.read() is None


def test_a_precheck_leaves_what_is_not_a_plain_reply_and_a_part_that_never_checks_to_after_arrival():
    raw, _ = _big_reply(2000)
    for other in (
        b'{"m":"futures-order"' + b" " * 300_000,
        b" " + raw,
        b'{"m":"futures-open-orders","code":0' + b" " * 5000,
    ):
        precheck = _fed(other, 1)
        assert precheck.idle and precheck.cuts == []
    # a record that will not check (not JSON) early on: the carry is let go at CARRY_LIMIT
    raw, _ = _big_reply(16_000)  # (longer than CARRY_LIMIT)
    broken = raw.replace(b"},{", b"},#{", 1)  # not JSON in the first part
    precheck = SnapshotPrecheck(len(broken), 4096)
    for i in range(0, len(broken), 65536):
        precheck.feed(broken[i : i + 65536])
        assert len(precheck._carry) <= CARRY_LIMIT + 65536
    assert precheck.idle
    slices = snapshot_slices(broken, chunk=4096, checked=precheck)
    while (ok := slices.check()) is None:
        pass
    assert ok is False
    # a precheck of another chunk size, or of another frame, is not taken
    assert snapshot_slices(raw, chunk=8192, checked=_fed(raw, 2)).prechecked == 0
    assert snapshot_slices(raw, chunk=4096, checked=SnapshotPrecheck(len(raw), 4096)).prechecked == 0


@pytest.mark.parametrize(
    "frame",
    [
        b'{"m":"futures-open-orders","code":0,"id":"x","data":[]}',  # no records
        b'{"m":"futures-open-orders","code":300012,"id":"x","data":[{"orderId":"a"}]}',  # an error code
        b'{"m":"futures-open-orders","id":"x","code":0,"code":0,"data":[{"orderId":"a"}]}',  # a key twice
        b'{"m":"futures-open-orders","id":"x\\"","code":0,"data":[{"orderId":"a"}]}',  # an escape in the id
        b'{"m":"futures-open-orders","code":0,"data":[{"orderId":"a"}],"id":"x"}',  # data not last
        b'{"m":"futures-open-orders","code":0,"other":1,"data":[{"orderId":"a"}]}',  # an unknown key
        b'[{"orderId":"a"}]',  # the 2021 bare array
    ],
)
def test_only_a_plain_open_orders_reply_is_read_in_slices(frame):
    assert snapshot_slices(frame) is None
