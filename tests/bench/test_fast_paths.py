"""The fast paths added for speed give exactly what the reference paths give.

``parse`` builds ``futures-order`` records without the pydantic validator when they
look like what the exchange sends — from the decoded dict, and straight from the
frame's bytes; here generated and hostile records go through the fast paths and
``Order.model_validate``: whenever a fast path answers, its ``Order`` must be
identical (every field's type and exact value — ``Decimal('1.50')`` is not
``Decimal('1.5')``), and whenever the validator rejects a record the fast paths must
not answer at all (then ``parse`` keeps it as an unreadable order, as the validator's
path does)."""

from __future__ import annotations

import json
from decimal import Decimal

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from blotter.protocol import UNREADABLE, BadFrame, InvalidMessage, Order, OrderUpdate, parse
from blotter.protocol.parse import _channel_order, _reply_order, order_frame, parse_value, snapshot_frame

BASE = {
    "m": "futures-order",
    "sn": 1234,
    "e": "ExecutionReport",
    "a": "futACCOUNT",
    "ac": "FUTURES",
    "t": 1_700_000_000_123,
    "ct": 1_700_000_000_000,
    "orderId": "s18bcfc6a800U4183920571abcdefghi",
    "sd": "Buy",
    "ot": "Limit",
    "ei": "NULL_VAL",
    "q": "0.5000",
    "p": "64250.0",
    "sp": "0",
    "spb": "",
    "s": "BTC-PERP",
    "st": "New",
    "err": "",
    "lp": "0",
    "lq": "0",
    "ap": "0",
    "cfq": "0",
    "f": "-0.0012",
    "cf": "0",
    "fa": "USDT",
}

REPLY = {
    "ac": "FUTURES",
    "accountId": "futACCOUNT",
    "time": 1_700_000_000_000,
    "orderId": "s18bcfc6a800U4183920571abcdefghi",
    "seqNum": 77,
    "orderType": "Limit",
    "execInst": "NULL_VAL",
    "side": "Sell",
    "symbol": "ETH-PERP",
    "price": "3120.55",
    "orderQty": "1.250",
    "stopPrice": "0",
    "stopBy": "",
    "status": "PartiallyFilled",
    "lastExecTime": 1_700_000_000_500,
    "lastQty": "0.25",
    "lastPx": "3120.55",
    "avgFilledPx": "3120.55",
    "cumFilledQty": "0.25",
    "fee": "0.156",
    "cumFee": "0.156",
    "feeAsset": "USDT",
    "errorCode": "",
    "posStopLossPrice": "0",
    "posStopLossTrigger": "market",
    "posTakeProfitPrice": "0",
    "posTakeProfitTrigger": "market",
}
REPLY_AMOUNT_KEYS = ["price", "orderQty", "stopPrice", "lastQty", "lastPx", "avgFilledPx", "cumFilledQty", "fee"]
REPLY_TEXT_KEYS = ["orderId", "symbol", "side", "status", "orderType", "accountId", "execInst", "feeAsset", "errorCode"]
REPLY_INT_KEYS = ["seqNum", "lastExecTime", "time"]
REPLY_OTHER_KEYS = ["s", "q", "p", "st", "sd", "sn", "order_id", "ct", "f", "x", "orderPrice", "lastExecTime"]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=80),
)
numberish = st.one_of(
    st.sampled_from(
        [
            "0",
            "1",
            "1.50",
            "00012.5",
            "1.",
            ".5",
            ".",
            "",
            " ",
            " 1",
            "1 ",
            "-0",
            "-1.5",
            "+1",
            "1e5",
            "1E-3",
            "NaN",
            "Infinity",
            "-Infinity",
            "1_000",
            "١٢",
            "²",
            "0x10",
            "1.2.3",
            "-",
            "--1",
            "9" * 70,
            "0." + "1" * 70,
            "\t",
            "\u00a0",
            "\u2003",
        ]
    ),
    st.from_regex(r"-?[0-9]{0,20}(\.[0-9]{0,20})?", fullmatch=True),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    json_scalars,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
texty = st.one_of(
    json_scalars,
    st.sampled_from(["", "x" * 64, "x" * 65, "Buy", "é" * 64, "é" * 65]),
    st.lists(st.integers(), max_size=2),
)
intish = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), json_scalars, st.sampled_from(["12", "", "1.0"]))

AMOUNT_KEYS = ["q", "p", "sp", "lp", "lq", "ap", "cfq", "f"]
TEXT_KEYS = ["orderId", "s", "sd", "st", "ot", "a", "ei", "fa", "err"]
INT_KEYS = ["sn", "t", "ct"]
OTHER_KEYS = ["symbol", "order_id", "orderQty", "price", "status", "side", "seqNum", "time", "fee", "x", "extra"]


@st.composite
def records(draw, base=BASE, amounts=AMOUNT_KEYS, texts=TEXT_KEYS, ints=INT_KEYS, others=OTHER_KEYS):
    record = dict(base)
    for key in draw(st.lists(st.sampled_from(amounts + texts + ints), max_size=6, unique=True)):
        if key in amounts:
            record[key] = draw(numberish)
        elif key in texts:
            record[key] = draw(texty)
        else:
            record[key] = draw(intish)
    for key in draw(st.lists(st.sampled_from(list(base)), max_size=3, unique=True)):
        record.pop(key, None)
    for key in draw(st.lists(st.sampled_from(others), max_size=2, unique=True)):
        record[key] = draw(st.one_of(numberish, texty))
    if draw(st.booleans()):
        items = list(record.items())
        draw(st.randoms(use_true_random=False)).shuffle(items)
        record = dict(items)
    return record


def same(fast: Order, slow: Order) -> None:
    assert type(fast) is Order and type(slow) is Order
    for name in Order.model_fields:
        a, b = getattr(fast, name), getattr(slow, name)
        assert type(a) is type(b), (name, a, b)
        assert repr(a) == repr(b), (name, a, b)
    assert fast == slow
    assert fast.model_dump() == slow.model_dump()


def check(record: dict) -> None:
    try:
        slow = Order.model_validate(record)
    except ValidationError:
        slow = None
    fast = _channel_order(record)
    if fast is not None:
        assert slow is not None, f"fast path accepted what the validator rejects: {record}"
        same(fast, slow)
    if record.get("m") != "futures-order":
        return
    event = parse_value(record)  # what parse() does after orjson.loads
    assert isinstance(event, OrderUpdate)
    if slow is None:
        assert event.order.status == UNREADABLE and event.order == Order.read(record)
    else:
        same(event.order, slow)
    check_frame(record)


def check_frame(record: dict) -> None:
    """The frame's bytes (``m`` first, as the exchange writes it): the fastest path
    answers only when the general path (orjson, then the checks or the validator)
    reads the same order."""
    raw = json.dumps({"m": record["m"], **record}, separators=(",", ":")).encode()
    fast = order_frame(raw)
    general = parse_general(raw)
    if fast is not None:
        assert isinstance(general, OrderUpdate), (record, general)
        same(fast, general.order)
    assert type(parse(raw)) is type(general)
    if isinstance(general, OrderUpdate):
        assert parse(raw).order == general.order


def parse_general(raw: bytes):
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return BadFrame(text="", error="not JSON")
    try:
        return parse_value(data)
    except ValidationError:
        return InvalidMessage(type="futures-order", error="invalid")


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_fast_order_path_matches_the_validator(record):
    check(record)


def check_reply(record: dict) -> None:
    try:
        slow = Order.model_validate(record)
    except ValidationError:
        slow = None
    fast = _reply_order(record)
    if fast is not None:
        assert slow is not None, f"fast path accepted what the validator rejects: {record}"
        same(fast, slow)
    event = parse_value({"m": "futures-open-orders", "code": 0, "id": "oo1", "data": [record]})
    assert len(event.orders) == 1
    if slow is None:
        assert event.orders[0].status == UNREADABLE and event.orders[0] == Order.read(record)
    else:
        same(event.orders[0], slow)
    check_snapshot_frame([REPLY, record, REPLY])


def check_snapshot_frame(records: list[dict]) -> None:
    """The whole reply's bytes: the fast reader answers only when the general path
    reads the same orders and none is unreadable."""
    raw = json.dumps(
        {"m": "futures-open-orders", "code": 0, "id": "oo1", "ac": "FUTURES", "data": records}, separators=(",", ":")
    ).encode()
    fast = snapshot_frame(raw)
    general = parse_general(raw)
    if fast is not None:
        assert general.kind == "open-orders", (records, general)
        assert not any(o.status == UNREADABLE for o in general.orders), (records, general)
        assert fast.request_id == general.request_id and fast.code == 0 and fast.dialect == general.dialect
        assert len(fast.orders) == len(general.orders)
        for a, b in zip(fast.orders, general.orders, strict=False):
            same(a, b)
    parsed = parse(raw)
    assert parsed.kind == general.kind
    if general.kind == "open-orders":
        assert parsed.orders == general.orders


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records(REPLY, REPLY_AMOUNT_KEYS, REPLY_TEXT_KEYS, REPLY_INT_KEYS, REPLY_OTHER_KEYS))
def test_fast_snapshot_record_path_matches_the_validator(record):
    check_reply(record)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records(), min_size=1, max_size=3))
def test_2021_bare_array_matches_the_validator(items):
    items = [{**r, "m": "futures-order"} for r in items]
    event = parse_value(items)
    expected = [Order.read(r) for r in items]
    assert len(event.orders) == len(expected)
    for a, b in zip(event.orders, expected, strict=False):
        if b.status == UNREADABLE:
            assert a == b
        else:
            same(a, b)


def test_the_common_record_takes_the_fast_path_and_matches():
    assert _reply_order(REPLY) is not None
    check_reply(REPLY)
    assert _channel_order(BASE) is not None
    check(BASE)
    order = _channel_order(BASE)
    assert order.price == Decimal("64250.0") and str(order.qty) == "0.5000" and order.fee == Decimal("-0.0012")
    frame = orjson.dumps(BASE)
    assert frame.startswith(b'{"m":"futures-order"')
    fast = order_frame(frame)
    assert fast is not None
    same(fast, Order.model_validate(BASE))


def test_parse_of_a_hostile_frame_says_unreadable():
    event = parse(orjson.dumps({**BASE, "q": "-1"}))
    assert isinstance(event, OrderUpdate) and event.order.status == UNREADABLE
    assert event.order.order_id == BASE["orderId"] and event.order.problem.startswith("q: ")


def test_hostile_values_are_rejected_as_before():
    for key in AMOUNT_KEYS:
        for bad in (
            "-1",
            "NaN",
            "1e999999",
            "1e999999999999999999",
            "1_000",
            "0x10",
            "１２",
            "١٢",
            "-0",
            "-0.00",
            "9" * 25,
            "0." + "1" * 31,
            12,
            1.5,
            "abc",
            [],
            {},
            True,
        ):
            if key == "f" and bad == "-1":
                continue
            record = {**BASE, key: bad}
            check(record)
            assert _channel_order(record) is None
            assert order_frame(orjson.dumps(record)) is None
    for bad in ("", "x" * 65, None, 5, [], {}):
        check({**BASE, "orderId": bad})
        assert _channel_order({**BASE, "orderId": bad}) is None
    for key, bad in (
        ("st", "Canceled\u200b"),
        ("st", "canceled"),
        ("st", "Unreadable"),
        ("st", " New"),
        ("sd", "Buy\u200b"),
        ("sd", "buy"),
        ("cfq", "0.6"),
        ("sn", "12"),
        ("sn", True),
        ("t", 1.0),
    ):
        record = {**BASE, key: bad}
        check(record)
        assert _channel_order(record) is None and order_frame(orjson.dumps(record)) is None
        assert parse(orjson.dumps(record)).order.status == UNREADABLE


def test_sorted_keys_behaves_like_a_sorted_list():
    import random
    from bisect import bisect_left, insort

    from blotter.core.view import SortedKeys

    rng = random.Random(3)
    SortedKeys.LOAD, load = 4, SortedKeys.LOAD  # tiny blocks: splits and empty blocks happen
    try:
        start = sorted({(rng.randint(0, 1), -rng.randint(0, 500), f"o{i}") for i in range(60)})
        keys, ref = SortedKeys(list(start)), list(start)
        for _ in range(3000):
            if ref and rng.random() < 0.5:
                k = rng.choice(ref)
                ref.remove(k)
                keys.remove(k)
            else:
                k = (rng.randint(0, 1), -rng.randint(0, 500), f"n{rng.randint(0, 10**9)}")
                insort(ref, k)
                keys.add(k)
            assert len(keys) == len(ref)
            probe = (rng.randint(0, 1), -rng.randint(0, 500), "")
            assert keys.bisect_left(probe) == bisect_left(ref, probe)
            if ref:
                i = rng.randrange(len(ref))
                assert keys[i] == ref[i] and keys[-1] == ref[-1]
        assert list(keys) == ref
    finally:
        SortedKeys.LOAD = load


@pytest.mark.parametrize("seed", range(4))
def test_sorted_keys_take_many_keys_at_once_like_a_sorted_list(seed):
    """``update``: runs before the first key, after the last, spread among them, empty
    and single — with removals between — keep the blocks what a sorted list holds."""
    import random
    from bisect import bisect_left

    from blotter.core.view import SortedKeys

    rng = random.Random(seed)
    SortedKeys.LOAD, load = 4, SortedKeys.LOAD
    try:
        keys, ref = SortedKeys(), []
        serial = 0
        for _ in range(400):
            shape = rng.choice(["before", "after", "spread", "spread", "remove", "empty", "one"])
            if shape == "remove" and ref:
                for k in rng.sample(ref, min(len(ref), rng.randint(1, 9))):
                    ref.remove(k)
                    keys.remove(k)
                continue
            if shape in ("before", "after") and ref:
                edge = ref[0][1] if shape == "before" else ref[-1][1]
                step = -1 if shape == "before" else 1
                times = [edge + step * rng.randint(1, 50) for _ in range(rng.randint(1, 40))]
            else:
                n = {"empty": 0, "one": 1}.get(shape, rng.randint(1, 40))
                times = [rng.randint(-500, 500) for _ in range(n)]
            run = []
            for t in times:
                serial += 1
                run.append((0, t, f"k{serial:06d}"))
            rng.shuffle(run)
            keys.update(run)
            ref.extend(run)
            ref.sort()
            assert len(keys) == len(ref)
            assert list(keys) == ref
            assert all(0 < len(block) <= 2 * SortedKeys.LOAD for block in keys._blocks)
            assert keys._maxes == [block[-1] for block in keys._blocks]
            if ref:
                i = rng.randrange(len(ref))
                assert keys[i] == ref[i] and keys.bisect_left(ref[i]) == bisect_left(ref, ref[i]) == i
    finally:
        SortedKeys.LOAD = load


def test_the_fastest_path_leaves_unusual_frames_to_the_general_path():
    base = orjson.dumps(BASE)[:-1]
    # a second "m" (the last one wins in JSON readers): a reply, not an order update
    assert order_frame(base + b',"m":"order"}') is None
    assert not isinstance(parse(base + b',"m":"order"}'), OrderUpdate)
    # a field missing, an amount with spaces, a number for an amount, not JSON
    assert order_frame(orjson.dumps({k: v for k, v in BASE.items() if k != "ap"})) is None
    assert order_frame(orjson.dumps({**BASE, "p": " 1"})) is None
    assert order_frame(orjson.dumps({**BASE, "p": 1.5})) is None
    assert order_frame(base) is None and isinstance(parse(base), BadFrame)
    # a blank amount is read as absent, like the validator does
    blank = order_frame(orjson.dumps({**BASE, "ap": ""}))
    assert blank is not None and blank.avg_price is None
    same(blank, Order.model_validate({**BASE, "ap": ""}))


def test_the_fast_snapshot_reader_leaves_unusual_replies_to_the_general_path():
    assert snapshot_frame(orjson.dumps({"m": "futures-open-orders", "code": 0, "id": "oo1", "data": [REPLY] * 3}))
    for envelope in (
        {"m": "futures-open-orders", "code": 300012, "id": "oo1", "data": []},  # an error reply
        {"m": "futures-open-orders", "id": "oo1", "data": [REPLY]},  # no code
        {"m": "futures-open-orders", "code": 0, "id": 7, "data": [REPLY]},  # a number for an id
        {"m": "futures-open-orders", "code": 0, "id": "oo1", "data": [REPLY, {**REPLY, "price": "-1"}]},
        {"m": "futures-open-orders", "code": 0, "id": "oo1", "data": [REPLY, {**REPLY, "s": "ETH-PERP"}]},
        {"m": "futures-open-orders", "code": 0, "id": "oo1", "data": [{k: v for k, v in REPLY.items() if k != "fee"}]},
        # a field missing and a short key in its place: as many keys as a complete record
        {
            "m": "futures-open-orders",
            "code": 0,
            "id": "oo1",
            "data": [{**{k: v for k, v in REPLY.items() if k != "orderQty"}, "s": "0"}],
        },
    ):
        raw = orjson.dumps(envelope)
        assert snapshot_frame(raw) is None
        general = parse_general(raw)
        parsed = parse(raw)
        assert parsed.kind == general.kind
        if general.kind == "open-orders":
            assert parsed.orders == general.orders
