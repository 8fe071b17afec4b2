"""REST, sans I/O: signing against the documented vectors, building every request,
parsing every documented REST sample (tests/fixtures/protocol/rest/v2-rest-*.json)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import Decimal
from urllib.parse import parse_qsl

import orjson
import pytest
from pydantic import ValidationError

from blotter.protocol import Order, rest
from blotter.protocol.signing import SigningError
from tests.conftest import fixture_bytes, fixture_json
from tests.helpers import PROTOCOL_FIXTURES

DOC_SECRET = "hV8FgjyJtpvVeAcMAgzgAFQCN36wmbWuN7o3WPcYcYhFd8qvE43gzFGVsFcCqMNk"


# --- signing (ADDENDUM §1.3, §1.4) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "api_path", "raw", "decoded"),
    [
        # the shell and python examples, and the Java example (§1.4), in both key forms
        (
            1608133910000,
            "info",
            "/pwaAgWZQ1Xd/J4yZ4ReHSPQxd3ORP/YR8TvAttqqYM=",
            "iT09ogK94xN6wScfMs0CXbE4jsYkQJpJ5egMfIo1U4I=",
        ),
        (
            1562952827927,
            "user/info",
            "vBZf8OQuiTJIVbNpNHGY3zcUsK5gJpwb5lgCgarpxYI=",
            "yyBYygeATY3mgiR+zPkgDJDl4CEebYb4S5Zn26xvfb8=",
        ),
    ],
)
def test_signature_matches_both_documented_vectors_in_both_key_forms(timestamp, api_path, raw, decoded):
    assert rest.prehash(timestamp, api_path) == f"{timestamp}+{api_path}"
    assert rest.signature(DOC_SECRET, timestamp, api_path, "raw") == raw
    assert rest.signature(DOC_SECRET, timestamp, api_path, "base64") == decoded


def test_signed_headers_sign_the_api_path_without_group_or_query_with_the_sent_timestamp():
    request = rest.order_status(7, ["a177c29e4064U0123456789dVeUxlVyA", "a177c29e4064U0123456789dVeUxlVyB"])
    headers = rest.signed_headers(request, "KEY", DOC_SECRET, "raw", timestamp_ms=1613877922641)
    assert headers["x-auth-key"] == "KEY"
    assert headers["x-auth-timestamp"] == "1613877922641"
    want = base64.b64encode(
        hmac.new(DOC_SECRET.encode(), b"1613877922641+v2/futures/order/status", hashlib.sha256).digest()
    ).decode()
    assert headers["x-auth-signature"] == want
    assert headers["Accept"] == "application/json" and "Content-Type" not in headers  # GET: no body
    assert request.path == "/7/api/pro/v2/futures/order/status"


def test_place_and_cancel_share_one_prehash_and_differ_by_method_only():
    cancel = rest.cancel_order(
        1, rest.CancelItem("a177c29e4064U0123456789dVeUxlVyA", "BTC-PERP", "abcd1234abcd1234", 1)
    )
    assert cancel.method == "DELETE" and cancel.api_path == "v2/futures/order"
    headers = rest.signed_headers(cancel, "KEY", DOC_SECRET, "base64", timestamp_ms=5)
    assert headers["x-auth-signature"] == rest.signature(DOC_SECRET, 5, "v2/futures/order", "base64")
    assert headers["Content-Type"] == "application/json"


def test_a_secret_that_is_not_base64_is_a_typed_error_that_names_the_other_form_and_hides_the_secret():
    secret = "not base64 at all!"
    with pytest.raises(SigningError) as info:
        rest.signed_headers(rest.position(1), "KEY", secret, "base64", timestamp_ms=1)
    assert "raw" in str(info.value) and secret not in str(info.value)


def test_api_path_of_strips_group_and_query():
    assert rest.api_path_of("/4/api/pro/v2/futures/order/status?orderId=x") == "v2/futures/order/status"
    assert rest.api_path_of("/api/pro/v2/account/info") == "v2/account/info"
    assert rest.api_path_of("/4/v2/futures/order") is None


# --- building requests (§1.6, §2) ------------------------------------------------------------------------------------


def test_order_status_sends_several_ids_comma_separated_in_the_query_as_the_sample():
    sample = fixture_json("rest/v2-rest-order-status-multi-req")
    ids = sample["orderId"].split(",")
    request = rest.order_status(3, ids)
    assert request.method == "GET" and request.body is None and request.body_bytes() is None
    assert dict(parse_qsl(request.target.split("?", 1)[1])) == sample
    assert request.target.startswith("/3/api/pro/v2/futures/order/status?orderId=")
    single = rest.order_status(3, [fixture_json("rest/v2-rest-order-status-single-req")["orderId"]])
    assert dict(single.query) == fixture_json("rest/v2-rest-order-status-single-req")


@pytest.mark.parametrize("bad", ["a,b", "", "has space", "x" * 65, "é"])
def test_an_order_id_that_would_change_the_query_is_refused(bad):
    with pytest.raises(rest.RestInputError):
        rest.order_status(1, [bad])


def test_order_status_chunks_split_and_deduplicate():
    ids = [f"order{i:02d}" for i in range(23)] + ["order00"]
    chunks = rest.order_status_chunks(1, ids)
    assert [len(dict(c.query)["orderId"].split(",")) for c in chunks] == [10, 10, 3]
    assert ",".join(dict(c.query)["orderId"] for c in chunks).split(",") == ids[:23]
    with pytest.raises(rest.RestInputError):
        rest.order_status(1, ids[:11])
    with pytest.raises(rest.RestInputError):
        rest.order_status(1, [])


def test_order_hist_current_query_matches_the_sample():
    sample = fixture_json("rest/v2-rest-order-hist-current-req")
    request = rest.order_hist_current(2, symbol=sample["symbol"], n=sample["n"], executed_only=sample["executedOnly"])
    assert request.path == "/2/api/pro/v2/futures/order/hist/current"
    assert dict(request.query) == {"symbol": "BTC-PERP", "n": "20", "executedOnly": "True"}
    assert rest.order_hist_current(2).query == ()
    with pytest.raises(rest.RestInputError):
        rest.order_hist_current(2, n=0)


def test_open_orders_and_position_and_account_info_paths():
    assert rest.open_orders(5).target == "/5/api/pro/v2/futures/order/open"
    assert rest.open_orders(5, "ETH-PERP").target == "/5/api/pro/v2/futures/order/open?symbol=ETH-PERP"
    assert rest.position(5).target == "/5/api/pro/v2/futures/position"
    info = rest.account_info()
    assert info.target == "/api/pro/v2/account/info" and info.api_path == "v2/account/info"
    for group in (-1, "1", True, 1.5):
        with pytest.raises(rest.RestInputError):
            rest.open_orders(group)  # type: ignore[arg-type]


def test_cancel_one_body_and_id_rules():
    item = rest.CancelItem("a177c29e4064U0123456789dVeUxlVyA", "BTC-PERP", "abcd1234abcd1234", 1605677683714)
    request = rest.cancel_order(9, item)
    assert request.emergency and request.kind == "cancel_order"
    assert json.loads(request.body_bytes()) == {
        "id": "abcd1234abcd1234",
        "orderId": "a177c29e4064U0123456789dVeUxlVyA",
        "symbol": "BTC-PERP",
        "time": 1605677683714,
    }
    for bad_id in ("short", "has-dash-in-it", "x" * 33):
        with pytest.raises(rest.RestInputError):
            rest.cancel_order(9, rest.CancelItem("oid", "BTC-PERP", bad_id, 1))
    fresh = rest.new_cancel_id()
    assert fresh.isalnum() and 9 <= len(fresh) <= 32 and fresh != rest.new_cancel_id()


def test_cancel_all_with_and_without_symbol():
    assert json.loads(rest.cancel_all(1, "BTC-PERP").body_bytes()) == {"symbol": "BTC-PERP"}
    everything = rest.cancel_all(1)
    assert everything.method == "DELETE" and json.loads(everything.body_bytes()) == {}
    assert everything.path == "/1/api/pro/v2/futures/order/all" and everything.emergency
    with pytest.raises(rest.RestInputError):
        rest.cancel_all(1, "BTC PERP;")


def test_batch_cancel_body_matches_the_sample_and_refuses_more_than_ten():
    sample = fixture_json("rest/v2-rest-order-cancel-batch-req")
    items = [rest.CancelItem(o["orderId"], o["symbol"], o["id"], o["time"]) for o in sample["orders"]]
    request = rest.batch_cancel(1, items)
    assert request.path == "/1/api/pro/v2/futures/order/batch" and request.method == "DELETE"
    assert json.loads(request.body_bytes()) == sample
    many = [rest.CancelItem(f"order{i:02d}", "BTC-PERP") for i in range(23)]
    with pytest.raises(rest.RestInputError):
        rest.batch_cancel(1, many[:11])
    with pytest.raises(rest.RestInputError):
        rest.batch_cancel(1, [])
    chunks = rest.batch_cancel_chunks(1, many)
    sizes = [len(json.loads(c.body_bytes())["orders"]) for c in chunks]
    assert sizes == [10, 10, 3]
    sent = [o["orderId"] for c in chunks for o in json.loads(c.body_bytes())["orders"]]
    assert sent == [i.order_id for i in many]


# --- parsing every documented REST sample -------------------------------------------------------------------------------

PARSERS = {
    "v2-rest-account-info.json": rest.parse_account_info,
    "v2-rest-balance-history.json": rest.parse_balance_history,
    "v2-rest-order-cancel-all.json": rest.parse_cancel_all,
    "v2-rest-order-cancel-batch.json": rest.parse_batch_cancel,
    "v2-rest-order-cancel.json": rest.parse_order_action,
    "v2-rest-order-hist-current.json": rest.parse_order_list,
    "v2-rest-order-new.json": rest.parse_order_action,
    "v2-rest-order-open.json": rest.parse_order_list,
    "v2-rest-order-status-multi.json": rest.parse_order_status,
    "v2-rest-order-status-single.json": rest.parse_order_status,
    "v2-rest-position.json": rest.parse_position,
    "v2-rest-risk-limit-info-v1.json": rest.parse_risk_limit_info,
    "v2-rest-risk-limit-info-v2.json": rest.parse_risk_limit_info,
    "v2-rest-order-new-error.json": rest.parse_order_action,
    "v2-rest-order-new-batch-error.json": rest.parse_order_action,
}


def test_every_rest_reply_sample_has_a_parser():
    replies = {p.name for p in (PROTOCOL_FIXTURES / "rest").glob("v2-rest-*.json") if not p.name.endswith("-req.json")}
    assert replies == set(PARSERS)


@pytest.mark.parametrize("name", sorted(n for n in PARSERS if "error" not in n))
def test_every_success_sample_parses(name):
    reply = PARSERS[name](fixture_bytes(f"rest/{name}"))
    assert reply is not None


def test_status_single_is_one_full_long_record():
    reply = rest.parse_order_status(fixture_bytes("rest/v2-rest-order-status-single"))
    assert reply.single and reply.account_id == "sampleFuturesAccountId" and len(reply.orders) == 1
    order = reply.orders[0]
    assert order.order_id == "a177c29e4064U0123456789dVeUxlVyA" and order.status == "New" and order.is_complete
    assert order.price == Decimal("34000") and order.qty == Decimal("0.1") and order.seq_num == 18586710
    assert order.pos_stop_loss_trigger == "None" and order.stop_by == "" and order.error_code == ""
    assert order.create_time_ms == 1613877922641 and order.exec_time_ms == 1613877923408 and not order.is_final


def test_status_multi_is_a_list_of_possibly_elided_records():
    reply = rest.parse_order_status(fixture_bytes("rest/v2-rest-order-status-multi"))
    assert not reply.single
    assert [o.order_id for o in reply.orders] == [
        "a177c29e4064U0123456789dVeUxlVyA",
        "a177c29e4064U0123456789dVeUxlVyB",
    ]
    assert not any(o.is_complete for o in reply.orders) and reply.orders[0].status is None


def test_history_record_is_exact():
    order = rest.parse_order_list(fixture_bytes("rest/v2-rest-order-hist-current")).orders[0]
    assert order.is_final and order.status == "Filled"
    assert (order.filled_qty, order.avg_price, order.cum_fee) == (
        Decimal("0.001"),
        Decimal("58501"),
        Decimal("0.058501"),
    )
    assert str(order.cum_fee) == "0.058501" and order.fee_asset == "USDT"


def test_open_orders_sample_lacks_exec_inst_and_pos_fields():
    order = rest.parse_order_list(fixture_bytes("rest/v2-rest-order-open")).orders[0]
    assert order.order_id == "sample-order-id" and order.exec_inst is None and order.pos_take_profit_price is None


def test_cancel_reply_meta_and_record():
    reply = rest.parse_order_action(fixture_bytes("rest/v2-rest-order-cancel"))
    assert (reply.meta.action, reply.meta.request_id, reply.meta.resp_inst) == (
        "cancel-order",
        "abcd1234abcd1234",
        "ACCEPT",
    )
    assert reply.order is not None and reply.order.status == "Canceled"


def test_cancel_all_documented_and_live_forms():
    assert rest.parse_cancel_all(fixture_bytes("rest/v2-rest-order-cancel-all")).symbol is None
    live = {
        "code": 0,
        "data": {"ac": "FUTURES", "accountId": "fut2ODPh", "action": "cancel-all", "info": {"symbol": "BTC-PERP"}},
    }
    reply = rest.parse_cancel_all(json.dumps(live).encode())
    assert (reply.action, reply.symbol, reply.account_id) == ("cancel-all", "BTC-PERP", "fut2ODPh")


def test_batch_cancel_ack_echoes_each_item():
    reply = rest.parse_batch_cancel(fixture_bytes("rest/v2-rest-order-cancel-batch"))
    assert reply.meta.action == "batch-cancel-order" and reply.meta.resp_inst == "ACK"
    assert [i.request_id for i in reply.orders] == ["sampleRequestId1", "sampleRequestId2"]
    assert reply.orders[1].timestamp_ms == 1613900544168 and reply.orders[0].order_type == ""


def test_position_every_field_signed_and_exact():
    reply = rest.parse_position(fixture_bytes("rest/v2-rest-position"))
    assert [c.asset for c in reply.collaterals] == ["ETH", "BTC", "USDT"]
    assert reply.collaterals[0].reference_price == Decimal("481.79793092")
    contract = reply.contracts[0]
    assert contract.reference_cost == Decimal("-16800") and contract.mark_price == Decimal("-1")
    assert contract.margin_type == "cross" and contract.buy_open_order_notional == Decimal("1362.419625")
    sample = fixture_json("rest/v2-rest-position")["data"]["contracts"][0]
    assert len(type(contract).model_fields) == len(sample)  # every documented field, no more


def test_account_info_gives_the_account_group():
    info = rest.parse_account_info(fixture_bytes("rest/v2-rest-account-info"))
    assert (
        info.account_group == 0 and info.futures_accounts == ("sample-futures-account-id",) and info.limit_quota == 1000
    )


def test_risk_limit_info_both_shapes():
    v2 = rest.parse_risk_limit_info(fixture_bytes("rest/v2-rest-risk-limit-info-v2"))
    assert v2.status.is_banned is False and v2.level1["cancel_order"] == 8000 and v2.level2["sub"] == 200
    assert v2.max_sessions_per_ip_account_group == 20
    v1 = rest.parse_risk_limit_info(fixture_bytes("rest/v2-rest-risk-limit-info-v1"))
    assert v1.status.is_banned and v1.status.violation_code == 100014 and v1.window_minutes == 5


def test_balance_history_events():
    history = rest.parse_balance_history(fixture_bytes("rest/v2-rest-balance-history"))
    assert [e.sn for e in history.balance] == [18591022051, 18590550015]
    assert history.order[0].data[2].delta_qty == Decimal("-0.003726") and history.account_id.startswith("fut")


def test_single_error_sample_is_a_typed_refusal():
    with pytest.raises(rest.RestRefusal) as info:
        rest.parse_order_action(fixture_bytes("rest/v2-rest-order-new-error"))
    refusal = info.value
    assert (refusal.code, refusal.reason, refusal.action) == (300014, "TICK_SIZE_VIOLATION", "place-order")
    assert refusal.message == "Order price doesn't conform to the required tick size: 1"
    assert "tick size" in str(refusal) and not refusal.is_auth


def test_batch_error_sample_lists_each_order():
    with pytest.raises(rest.RestRefusal) as info:
        rest.parse_batch_cancel(fixture_bytes("rest/v2-rest-order-new-batch-error"))
    items = info.value.items
    assert [(i.code, i.reason, i.request_id) for i in items] == [
        (300013, "INVALID_BATCH_ORDER", "sampleRequestId1"),
        (320008, "FUTURES_TOO_RISKY", "sampleRequestId2"),
    ]


def test_wire_text_never_reaches_the_exception_message():
    hostile = {"code": 300006, "reason": "\x1b[2J", "message": "\u202eevil\x07"}
    with pytest.raises(rest.RestRefusal) as info:
        rest.parse_order_list(json.dumps(hostile).encode())
    assert info.value.message == "\u202eevil\x07"  # kept as data
    assert "\x1b" not in str(info.value) and "evil" not in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>502</html>",
        b"[1,2]",
        b'{"data": []}',
        b'{"code": 0, "data": {"x": 1}}',
        b'{"code":0,"data":[{"orderId":5}]}',
        b'{"code":0,"data":[{"orderId":"x","price":"abc"}]}',
        b"[" * 100_000,
    ],
)
def test_malformed_replies_are_typed_format_errors(body):
    with pytest.raises(rest.RestError) as info:
        rest.parse_order_list(body)
    assert isinstance(info.value, rest.RestFormatError)


def test_code_as_string_and_message_without_code():
    assert rest.parse_cancel_all(b'{"code":"0"}').code == 0
    with pytest.raises(rest.RestRefusal) as info:
        rest.parse_cancel_all(b'{"message":"ApiKeyFailure"}')
    assert info.value.code is None
    with pytest.raises(rest.RestRefusal) as info:
        rest.parse_cancel_all(b'{"code":2100,"message":"ApiKeyFailure"}')
    assert info.value.is_auth


def test_json_numbers_become_exact_decimals_never_floats():
    body = b'{"code":0,"data":[{"orderId":"x","price":0.30000000000000004,"cumFee":-0.1}]}'
    order = rest.parse_order_list(body).orders[0]
    assert order.price == Decimal("0.30000000000000004") and order.cum_fee == Decimal("-0.1")
    with pytest.raises(ValidationError):
        rest.RestOrder.model_validate({"orderId": "x", "price": 0.1})  # a float handed in directly


# --- error codes (§3.7) --------------------------------------------------------------------------------------------------


def test_the_whole_spot_table_and_the_futures_codes_are_known():
    table = [c for c in rest.ERROR_CODES.values() if c.source == "table"]
    assert len(table) == 52
    for code in (300014, 320008, 100014, 300019, 60060, 2100):
        assert code in rest.ERROR_CODES
    assert rest.code_text(100011).startswith("INVALID_TIMESTAMP: ")
    assert "clock" in rest.code_text(100011)
    assert rest.code_text(319999) == "undocumented margin error"
    assert rest.code_text(7) == "undocumented error code" and rest.code_text(None) == "no error code given"
    assert all(c.text and c.text == c.text.strip() for c in rest.ERROR_CODES.values())


# --- the request counter (§3.6) -------------------------------------------------------------------------------------------


def test_counter_holds_housekeeping_near_the_threshold_but_never_an_emergency():
    counter = rest.RequestCounter({"open_orders": rest.Threshold("futures_open_orders", 10, 12)}, hold_at=0.8)
    for i in range(8):
        assert counter.allows("open_orders", now=i * 0.1)
        counter.record("open_orders", now=i * 0.1)
    assert not counter.allows("open_orders", now=1.0)
    assert counter.allows("open_orders", now=1.0, emergency=True)
    usage = counter.usage(now=1.0)["open_orders"]
    assert (usage.last_minute, usage.level1, usage.level2, usage.share) == (8, 10, 12, 0.8)
    assert counter.allows("open_orders", now=60.75)  # the first calls left the window
    assert counter.count("open_orders", now=60.75) == 0 and counter.totals["open_orders"] == 8


def test_counter_counts_types_without_threshold_and_default_thresholds_are_documented_ones():
    counter = rest.RequestCounter()
    counter.record("order_status", now=0.0)
    usage = counter.usage(now=1.0)
    assert usage["order_status"].last_minute == 1 and usage["order_status"].level1 is None
    assert usage["cancel_order"].level1 == 8000 and usage["cancel_order"].level2 == 10000
    assert usage["batch_cancel"].level1 == 10000
    with pytest.raises(rest.RestInputError):
        rest.RequestCounter(hold_at=0)


# -- REST records as the blotter's orders ---------------------------------------------------------
def test_a_rest_record_becomes_the_same_order_as_its_stream_record():
    record = rest.parse_order_status(fixture_bytes("rest/v2-rest-order-status-single")).orders[0]
    order = rest.order_from_rest(record)
    stream = Order.read(fixture_json("rest/v2-rest-order-status-single")["data"])
    assert order.status == "New" and order.problem is None
    for name in ("order_id", "symbol", "side", "status", "order_type", "price", "qty", "filled_qty", "seq"):
        assert getattr(order, name) == getattr(stream, name), name
    assert order.price == Decimal("34000") and order.qty == Decimal("0.1")


def test_every_complete_record_of_every_rest_sample_is_readable():
    seen = 0
    for name in ("rest/v2-rest-order-open", "rest/v2-rest-order-hist-current", "rest/v2-rest-order-status-single"):
        reply = (
            rest.parse_order_list(fixture_bytes(name))
            if "status" not in name
            else rest.parse_order_status(fixture_bytes(name))
        )
        for record in reply.orders:
            if record.is_complete:
                seen += 1
                assert rest.order_from_rest(record).problem is None, (name, record.order_id)
    assert seen >= 3


def test_an_amount_out_of_bounds_makes_the_order_unreadable_without_formatting_it():
    data = dict(fixture_json("rest/v2-rest-order-status-single")["data"], price="1e999999999")
    body = orjson.dumps({"code": 0, "data": data})
    record = rest.parse_order_status(body).orders[0]
    order = rest.order_from_rest(record)  # returns at once: nothing is formatted digit by digit
    assert order.status == "Unreadable" and order.problem and "price" in order.problem
