"""Fuzzing the wire boundary: ``parse`` never raises, ``request_from_wire`` raises only
``RequestFormatError``. Example counts are moderate so the file stays well under 15 s."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blotter.protocol import (
    BadFrame,
    Event,
    InvalidMessage,
    OpenOrders,
    OrderUpdate,
    Request,
    RequestFormatError,
    encode,
    parse,
    request_from_wire,
)
from tests.helpers import PROTOCOL_FIXTURES

EVENT_TYPES = Event.__args__  # type: ignore[attr-defined]

_COMMON = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ = settings(max_examples=200, **_COMMON)
FUZZ_SMALL = settings(max_examples=60, **_COMMON)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", " ", "0", "-1", "1e5", "NaN", "Infinity", "abc", "32400", "0.12", "New", "Canceled"])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
# Field values for order-like records: any scalar, or a small flat container.
field_values = scalars | st.lists(scalars, max_size=3) | st.dictionaries(st.text(max_size=5), scalars, max_size=3)

# Every wire key an order record may carry, short (channel) and long (reply) forms.
ORDER_KEYS = [
    "m",
    "sn",
    "e",
    "a",
    "ac",
    "t",
    "ct",
    "orderId",
    "sd",
    "ot",
    "q",
    "p",
    "sp",
    "spb",
    "s",
    "st",
    "err",
    "lp",
    "lq",
    "ap",
    "cfq",
    "f",
    "cf",
    "fa",
    "ei",
    "psl",
    "pslt",
    "ptp",
    "ptpt",
    "accountId",
    "time",
    "seqNum",
    "orderType",
    "execInst",
    "side",
    "symbol",
    "price",
    "orderPrice",
    "orderQty",
    "stopPrice",
    "stopBy",
    "status",
    "lastExecTime",
    "lastQty",
    "lastPx",
    "avgFilledPx",
    "cumFilledQty",
    "fee",
    "cumFee",
    "feeAsset",
    "errorCode",
    "action",
    "id",
    "code",
    "info",
    "reason",
]
order_like = st.fixed_dictionaries(
    {"m": st.sampled_from(["futures-order", "order", "futures-open-orders"]) | scalars},
    optional={key: field_values for key in ORDER_KEYS if key != "m"},
)


def check_event(event) -> None:
    assert isinstance(event, EVENT_TYPES), type(event)
    if isinstance(event, (InvalidMessage, BadFrame)):
        assert "\n" not in event.error


@FUZZ
@given(st.binary(max_size=300))
def test_parse_never_raises_on_bytes(frame):
    check_event(parse(frame))


@FUZZ
@given(st.text(max_size=300))
def test_parse_never_raises_on_text(frame):
    check_event(parse(frame))


@FUZZ
@given(json_values)
def test_parse_never_raises_on_json(value):
    check_event(parse(orjson.dumps(value)))


@FUZZ
@given(order_like)
def test_parse_never_raises_on_order_like_dicts(record):
    event = parse(orjson.dumps(record))
    check_event(event)
    if isinstance(event, OrderUpdate):
        assert event.order.order_id


@FUZZ_SMALL
@given(st.lists(order_like.map(lambda d: {**d, "m": "futures-order"}), max_size=4))
def test_parse_never_raises_on_open_orders_replies(records):
    for frame in (records, {"m": "futures-open-orders", "code": 0, "id": "oo-1", "data": records}):
        event = parse(orjson.dumps(frame))
        check_event(event)
        if isinstance(event, OpenOrders):
            # every record is either kept or reported, never silently lost
            assert len(event.orders) == len(records)  # every record: read, or kept as unreadable


@FUZZ_SMALL
@given(st.dictionaries(st.sampled_from(ORDER_KEYS), field_values, max_size=12))
def test_parse_never_raises_on_2021_replies_without_m(record):
    record.pop("m", None)
    check_event(parse(orjson.dumps(record)))


# -- request_from_wire ------------------------------------------------------------------

request_like = st.fixed_dictionaries(
    {"op": st.sampled_from(["req", "auth", "sub", "unsub", "ping", "pong"]) | json_values},
    optional={
        "id": json_values,
        "t": json_values,
        "key": json_values,
        "sig": json_values,
        "ch": json_values,
        "action": st.sampled_from(
            ["cancel-order", "cancel-all", "futures-open-orders", "futures-account-snapshot", "place-order"]
        )
        | json_values,
        "args": st.fixed_dictionaries(
            {},
            optional={
                key: json_values
                for key in [
                    "time",
                    "orderId",
                    "symbol",
                    "price",
                    "orderPrice",
                    "orderQty",
                    "orderType",
                    "side",
                    "id",
                    "postOnly",
                    "respInst",
                    "timeInForce",
                    "stopPrice",
                    "execInst",
                ]
            },
        )
        | json_values,
    },
)


def check_request_from_wire(value) -> None:
    try:
        request = request_from_wire(value)
    except RequestFormatError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(request, Request)
    encode(request)  # whatever was accepted can be sent


@FUZZ
@given(json_values)
def test_request_from_wire_only_raises_format_error(value):
    check_request_from_wire(value)


@FUZZ
@given(request_like)
def test_request_from_wire_only_raises_format_error_on_request_like(value):
    check_request_from_wire(orjson.loads(orjson.dumps(value)))


def _fixture_order() -> dict:

    return orjson.loads((PROTOCOL_FIXTURES / "order-update.json").read_bytes())


@FUZZ
@given(st.dictionaries(st.sampled_from(ORDER_KEYS), field_values, min_size=1, max_size=3))
def test_parse_never_raises_on_mutated_valid_orders(changes):
    """Near-valid records reach deep into validation (one or three bad fields)."""
    record = {**_fixture_order(), **changes, "m": "futures-order"}
    event = parse(orjson.dumps(record))
    check_event(event)
    assert isinstance(event, (OrderUpdate, InvalidMessage))


ARG_KEYS = [
    "time",
    "orderId",
    "symbol",
    "price",
    "orderPrice",
    "orderQty",
    "orderType",
    "side",
    "id",
    "postOnly",
    "respInst",
    "timeInForce",
    "stopPrice",
    "execInst",
]
req_frames = st.fixed_dictionaries(
    {
        "op": st.just("req"),
        "action": st.sampled_from(
            ["cancel-order", "cancel-all", "futures-open-orders", "futures-account-snapshot", "place-order"]
        ),
        "args": st.fixed_dictionaries(
            {k: st.sampled_from(["BTC-PERP", "1", "buy"]) | field_values for k in ("symbol", "orderQty", "side")},
            optional={key: field_values for key in ARG_KEYS if key not in ("symbol", "orderQty", "side")},
        ),
    },
    optional={"id": field_values},
)


@FUZZ
@given(req_frames)
def test_request_from_wire_only_raises_format_error_on_req_frames(value):
    check_request_from_wire(orjson.loads(orjson.dumps(value)))
