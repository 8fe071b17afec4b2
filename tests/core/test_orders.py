"""OrderStore: snapshot + stream folding, sequence numbers, marking, eviction, change tracking."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from blotter.core import NOT_OPEN, OrderStore
from blotter.protocol import UNREADABLE, OpenOrders, Order, OrderUpdate, parse
from tests.helpers import PROTOCOL_FIXTURES

FIXTURE_DIR = PROTOCOL_FIXTURES


def order(oid: str, seq: int | None, status: str = "New", symbol: str = "BTC-PERP", **extra) -> Order:
    data = {"orderId": oid, "s": symbol, "sd": "Buy", "st": status, "ot": "Limit", "p": "100", "q": "1", **extra}
    if seq is not None:
        data["sn"] = seq
    return Order.model_validate(data)


def test_fixtures_fold_snapshot_then_update():
    store = OrderStore()
    snap = parse((FIXTURE_DIR / "open-orders-reply.json").read_bytes())
    assert isinstance(snap, OpenOrders)
    gone = store.apply_snapshot(snap.orders, now=1.0)
    assert gone == []
    assert len(store) == 1 and "r1782f04c58aU3792951278sbtcp7EbA" in store

    upd = orjson.loads((FIXTURE_DIR / "order-update-2021.json").read_bytes())
    event = parse(orjson.dumps(upd))
    assert isinstance(event, OrderUpdate)
    result = store.apply_update(event.order, now=2.0)
    assert result.applied
    assert len(store) == 2
    entry = store.get("s177bab3b501U5051470287bc0d18f6c")
    assert entry is not None and entry.order.price == Decimal("32400") and entry.is_open

    upd["sn"] += 1
    upd["st"] = "Canceled"
    event = parse(orjson.dumps(upd))
    assert store.apply_update(event.order, now=3.0).applied
    entry = store.get("s177bab3b501U5051470287bc0d18f6c")
    assert entry.status == "Canceled" and not entry.is_open and entry.final_at == 3.0
    assert store.open_count() == 1


def test_update_replaces_record():
    store = OrderStore()
    store.apply_update(order("A", 1), now=1.0)
    store.apply_update(order("A", 2, status="PartiallyFilled", cfq="0.4"), now=2.0)
    entry = store.get("A")
    assert entry.status == "PartiallyFilled" and entry.order.filled_qty == Decimal("0.4")
    assert entry.changed_at == 2.0
    assert entry.is_open


def test_stale_and_duplicate_updates_are_dropped():
    store = OrderStore()
    assert store.apply_update(order("A", 5, status="PartiallyFilled"), now=1.0).applied
    dup = store.apply_update(order("A", 5, status="Canceled"), now=2.0)
    assert not dup.applied and dup.reason == "duplicate"
    stale = store.apply_update(order("A", 4, status="Canceled"), now=3.0)
    assert not stale.applied and stale.reason == "stale"
    entry = store.get("A")
    assert entry.status == "PartiallyFilled" and entry.changed_at == 1.0
    assert store.stats.stale == 2 and store.stats.repeated == 1
    newer = store.apply_update(order("A", 6, status="Filled"), now=4.0)
    assert newer.applied and store.get("A").status == "Filled"


def test_updates_without_sn_always_apply():
    store = OrderStore()
    store.apply_update(order("A", None), now=1.0)
    assert store.apply_update(order("A", None, status="Canceled"), now=2.0).applied
    assert store.get("A").status == "Canceled"


LIVE_SN = 19_399_927_636
"""A live ``sn`` (ADDENDUM §3.1): the counter is shared, so it jumps between updates."""


def test_a_jump_in_sn_is_not_a_gap():
    store = OrderStore()
    jumps = [order("A", LIVE_SN), order("B", LIVE_SN + 4_330_427), order("A", LIVE_SN + 4_330_427 + 165_633)]
    finals, resnapshot = store.apply_updates(jumps, now=1.0)
    assert not resnapshot  # nothing is due: a jump is never a lost message
    assert store.stats.applied == 3 and store.stats.stale == 0
    assert store.apply_update(order("C", LIVE_SN + 10**12), now=2.0).applied


def test_sn_orders_each_order_on_its_own():
    store = OrderStore()
    store.apply_update(order("A", LIVE_SN + 100), now=1.0)
    store.apply_update(order("B", LIVE_SN + 900), now=1.0)
    # older than B's, newer than A's: A's update, in order for A
    late = store.apply_update(order("A", LIVE_SN + 500, status="PartiallyFilled", cfq="0.5"), now=2.0)
    assert late.applied and store.get("A").status == "PartiallyFilled"


def test_stale_and_repeated_sn_never_overwrite_newer_data():
    store = OrderStore()
    newest = order("A", LIVE_SN + 3_000, status="PartiallyFilled", cfq="0.7")
    finals, resnapshot = store.apply_updates(
        [
            order("A", LIVE_SN),
            newest,
            order("A", LIVE_SN + 2_000, status="Canceled"),  # stale: arrived after a newer one
            order("A", LIVE_SN + 3_000, status="Filled", cfq="1"),  # repeated sn: dropped
        ],
        now=1.0,
    )
    assert finals == [] and not resnapshot
    assert store.get("A").order is newest
    assert store.stats.stale == 2 and store.stats.repeated == 1 and store.stats.applied == 2


def test_an_unreadable_update_still_asks_for_a_snapshot():
    store = OrderStore()
    store.apply_update(order("A", LIVE_SN), now=1.0)
    bad = Order.unreadable({"orderId": "A", "sn": LIVE_SN + 50, "st": "canceled"}, "status: not a status")
    _, resnapshot = store.apply_updates([bad], now=2.0)
    assert resnapshot  # what the order is now is unknown: a content problem, not sn


def test_snapshot_records_and_stream_keep_the_newer():
    """``seqNum`` of a snapshot record and ``sn`` of the stream are one counter
    (ADDENDUM §3.1, inference): whichever is newer wins, in both directions."""
    store = OrderStore()
    store.apply_update(order("A", LIVE_SN + 10, status="PartiallyFilled", cfq="0.2"), now=1.0)
    store.apply_snapshot([order("A", LIVE_SN + 10, status="PartiallyFilled", cfq="0.2"), order("B", LIVE_SN)], now=2.0)
    assert store.get("A").changed_at == 1.0  # the same state: nothing redrawn
    store.apply_snapshot([order("A", LIVE_SN + 20, status="PartiallyFilled", cfq="0.6")], now=3.0)
    assert store.get("A").order.filled_qty == Decimal("0.6")  # the snapshot is newer
    stale = store.apply_update(order("A", LIVE_SN + 15, status="PartiallyFilled", cfq="0.4"), now=4.0)
    assert not stale.applied and store.get("A").order.filled_qty == Decimal("0.6")  # older than the snapshot


def test_snapshot_marks_missing_open_orders_without_deleting():
    store = OrderStore()
    store.apply_update(order("B", 1), now=1.0)
    store.apply_update(order("A", 2), now=1.0)
    store.take_changes()
    gone = store.apply_snapshot([order("A", 2)], now=5.0)
    assert gone == ["B"]
    b = store.get("B")
    assert b is not None  # still present
    assert b.status == NOT_OPEN == "NotOpen"
    assert b.missing and not b.is_open
    assert b.order.status == "New"  # the last thing the exchange said is kept
    assert b.changed_at == 5.0
    assert store.get("A").is_open
    assert store.open_count() == 1
    changed, structural = store.take_changes()
    assert "B" in changed and structural


def test_marked_order_comes_back_with_final_status():
    store = OrderStore()
    store.apply_update(order("B", 2), now=1.0)
    store.apply_snapshot([], now=2.0)
    assert store.get("B").status == NOT_OPEN
    store.apply_update(order("B", 3, status="Canceled"), now=3.0)
    b = store.get("B")
    assert not b.missing and b.status == "Canceled"


def test_marked_order_listed_again_is_open_again():
    store = OrderStore()
    store.apply_update(order("B", 2), now=1.0)
    store.apply_snapshot([], now=2.0)
    store.apply_snapshot([order("B", 2)], now=3.0)
    b = store.get("B")
    assert b.is_open and b.status == "New"


def test_final_orders_are_not_marked():
    store = OrderStore()
    store.apply_update(order("A", 1, status="Filled"), now=1.0)
    assert store.apply_snapshot([], now=2.0) == []
    assert store.get("A").status == "Filled"


def test_symbol_scoped_snapshot_only_affects_that_symbol():
    store = OrderStore()
    store.apply_update(order("BTC1", 1, symbol="BTC-PERP"), now=1.0)
    store.apply_update(order("ETH1", 2, symbol="ETH-PERP"), now=1.0)
    gone = store.apply_snapshot([], now=2.0, symbol="ETH-PERP")
    assert gone == ["ETH1"]
    assert store.get("BTC1").is_open
    assert store.get("ETH1").status == NOT_OPEN


def test_order_changed_after_the_snapshot_request_is_not_marked():
    store = OrderStore()
    store.apply_update(order("A", 10), now=1.0)
    store.apply_update(order("OLD", 11), now=1.5)  # last heard of before the request
    store.apply_update(order("NEW", 12), now=2.5)  # arrived while the snapshot was being built
    gone = store.apply_snapshot([order("A", 10)], now=3.0, requested_at=2.0)
    assert gone == ["OLD"]
    assert store.get("NEW").is_open and store.get("OLD").status == "NotOpen"


def test_closed_order_with_the_highest_seq_is_still_marked():
    """An order whose own seq is higher than every listed order's, closed unseen."""
    store = OrderStore()
    store.apply_update(order("A", 3), now=1.0)
    store.apply_update(order("B", 90, status="PartiallyFilled"), now=1.0)
    gone = store.apply_snapshot([order("A", 3)], now=3.0, requested_at=2.0)
    assert gone == ["B"]


def test_order_older_than_snapshot_is_marked():
    store = OrderStore()
    store.apply_update(order("OLD", 9), now=1.0)
    gone = store.apply_snapshot([order("A", 10)], now=2.0)
    assert gone == ["OLD"]


def _reply(*records: dict) -> bytes:
    data = orjson.loads((FIXTURE_DIR / "open-orders-reply.json").read_bytes())
    good = data["data"][0]
    data["data"] = [{**good, **r} for r in records]
    return orjson.dumps(data)


GOOD_ID = "r1782f04c58aU3792951278sbtcp7EbA"
ODD_RECORDS = [
    ("avgFilledPx NaN", {"orderId": "ODD1", "avgFilledPx": "NaN"}),
    ("symbol too long", {"orderId": "ODD2", "symbol": "X" * 65}),
    ("negative stop price", {"orderId": "ODD3", "stopPrice": "-5"}),
    ("status that only looks known", {"orderId": "ODD4", "status": "Canceled\u200b"}),
    ("lowercase status", {"orderId": "ODD5", "status": "canceled"}),
    ("side that only looks known", {"orderId": "ODD6", "side": "Buy\u200b"}),
    ("price with a huge exponent", {"orderId": "ODD7", "price": "1e999999999999999999"}),
    ("price 1e99999999", {"orderId": "ODD8", "price": "1e99999999"}),
    ("full-width digits", {"orderId": "ODD9", "orderQty": "\uff11\uff12"}),
    ("Arabic-Indic digits", {"orderId": "ODD10", "orderQty": "\u0661\u0662"}),
    ("underscore", {"orderId": "ODD11", "orderQty": "1_000"}),
    ("hex", {"orderId": "ODD12", "price": "0x10"}),
    ("negative zero", {"orderId": "ODD13", "price": "-0"}),
    ("filled above qty", {"orderId": "ODD14", "orderQty": "1", "cumFilledQty": "1.5"}),
    ("a number, not a string", {"orderId": "ODD15", "price": 100.5}),
    ("too many digits", {"orderId": "ODD16", "price": "9" * 25}),
]


@pytest.mark.parametrize(("why", "odd"), ODD_RECORDS, ids=[w for w, _ in ODD_RECORDS])
def test_an_unreadable_snapshot_record_is_an_open_order(why, odd):
    store = OrderStore()
    snap = parse(_reply({}, odd))
    store.apply_snapshot(snap.orders, now=1.0)
    # the exchange lists two open orders: the blotter must count two, whatever it can read
    assert store.open_count() == 2 and len(store.open_by_symbol()) == 2
    entry = store.get(odd["orderId"])
    assert entry is not None and entry.is_open and entry.unreadable and entry.status == UNREADABLE
    assert [e.order_id for e in store.unreadable()] == [odd["orderId"]]
    assert entry.order.problem and entry.order.raw
    assert store.get(GOOD_ID).status == "New" and not store.get(GOOD_ID).unreadable
    notices = store.take_notices()
    assert len(notices) == 1 and "ODD" in notices[0] and "UNREADABLE" in notices[0]


def test_a_lone_surrogate_escape_spoils_one_record_not_the_snapshot():
    store = OrderStore()
    frame = _reply({}, {"orderId": "SURR1", "accountId": "x"}).replace(b'"accountId":"x"', b'"accountId":"\\ud800"')
    assert b"\\ud800" in frame
    snap = parse(frame)
    assert isinstance(snap, OpenOrders), snap
    store.apply_snapshot(snap.orders, now=1.0)
    assert store.open_count() == 2
    entry = store.get("SURR1")
    assert entry.unreadable and entry.order.account_id is None and "\\ud800" in entry.order.raw
    entry.order.raw.encode("utf-8")  # writable anywhere: the surrogate is kept as its escape


def test_unreadable_readable_fields_are_kept():
    snap = parse(_reply({"orderId": "ODD1", "avgFilledPx": "NaN", "price": "66000", "symbol": "ETH-PERP"}))
    order = snap.orders[0]
    assert order.status == UNREADABLE and order.avg_price is None
    assert (order.order_id, order.symbol, order.side, order.price) == ("ODD1", "ETH-PERP", "Sell", 66000)


def test_a_record_without_a_readable_id_keeps_one_row_until_a_snapshot_no_longer_lists_it():
    store = OrderStore()
    record = {"orderId": None, "avgFilledPx": "NaN"}
    snap = parse(_reply({}, record))
    store.apply_snapshot(snap.orders, now=1.0, requested_at=1.0)
    assert store.open_count() == 2
    (entry,) = store.unreadable()
    assert entry.order_id.startswith("?")
    store.apply_snapshot(parse(_reply({}, record)).orders, now=2.0, requested_at=2.0)
    assert store.open_count() == 2 and len(store) == 2  # the same record: the same row
    assert store.apply_snapshot(parse(_reply({})).orders, now=3.0, requested_at=3.0) == [entry.order_id]
    assert store.open_count() == 1 and store.unreadable() == []


def test_an_unreadable_update_keeps_the_order_open_and_asks_for_a_snapshot():
    store = OrderStore()
    store.apply_update(order("A", 1), now=1.0)
    event = parse(
        orjson.dumps(
            {
                "m": "futures-order",
                "orderId": "A",
                "s": "BTC-PERP",
                "sd": "Buy",
                "st": "Canceled\u200b",
                "sn": 2,
                "q": "1",
                "p": "100",
            }
        )
    )
    assert isinstance(event, OrderUpdate)
    finals, due = store.apply_updates([event.order], now=2.0)
    assert finals == [] and due  # never taken as a cancel; what the order is now is unknown
    entry = store.get("A")
    assert entry.is_open and entry.unreadable and store.open_count() == 1
    assert store.unreadable() == [entry]
    store.apply_update(order("A", 3, status="PartiallyFilled", cfq="0.5"), now=3.0)  # readable again
    assert not store.get("A").unreadable and store.unreadable() == [] and store.open_count() == 1
    store.apply_update(order("A", 4, status="Canceled"), now=4.0)
    assert store.open_count() == 0


def test_an_unreadable_order_without_a_symbol_is_open_on_every_symbol():
    store = OrderStore()
    store.apply_snapshot(parse(_reply({"orderId": "NOSYM", "symbol": "Y" * 65})).orders, now=1.0, requested_at=1.0)
    assert store.get("NOSYM").order.symbol == ""
    assert [e.order_id for e in store.open_by_symbol("ETH-PERP")] == ["NOSYM"]
    # a snapshot of one symbol cannot say it is gone
    assert store.apply_snapshot([], now=2.0, symbol="ETH-PERP", requested_at=2.0) == []
    assert store.open_count() == 1


def test_one_id_on_two_symbols_keeps_both_and_flags_the_conflict():
    store = OrderStore()
    store.apply_update(order("DUP", 1, symbol="BTC-PERP"), now=1.0)
    store.apply_update(order("DUP", 2, symbol="ETH-PERP"), now=1.0)
    assert store.open_count() == 2 and len(store) == 2  # neither vanished
    btc, eth = store.get("DUP"), store.get("DUP@ETH-PERP")
    assert (btc.order.symbol, eth.order.symbol) == ("BTC-PERP", "ETH-PERP")
    assert btc.conflict and eth.conflict and store.conflicts() == [btc, eth]
    assert eth.order.order_id == "DUP"  # the exchange's id, for a cancel
    assert any("two symbols" in n and "CONFLICT" in n for n in store.take_notices())
    # updates go to the order on their symbol
    store.apply_update(order("DUP", 3, symbol="ETH-PERP", status="Canceled"), now=2.0)
    assert store.get("DUP@ETH-PERP").status == "Canceled" and store.get("DUP").status == "New"
    assert store.open_count() == 1
    # a snapshot listing both keeps both
    store.apply_update(order("DUP", 4, symbol="ETH-PERP"), now=3.0)
    snap = [order("DUP", 5, symbol="BTC-PERP"), order("DUP", 6, symbol="ETH-PERP")]
    assert store.apply_snapshot(snap, now=4.0, requested_at=4.0) == []
    assert store.open_count() == 2
    assert [store.key_of(o) for o in snap] == ["DUP", "DUP@ETH-PERP"]


def test_one_id_on_two_symbols_in_one_snapshot():
    snap = parse(_reply({"orderId": "DUP", "symbol": "BTC-PERP"}, {"orderId": "DUP", "symbol": "ETH-PERP"}))
    store = OrderStore()
    store.apply_snapshot(snap.orders, now=1.0)
    assert store.open_count() == 2 and {e.order.symbol for e in store.conflicts()} == {"BTC-PERP", "ETH-PERP"}


def test_the_cap_forgets_final_orders_first_and_never_drops_an_open_one_silently():
    store = OrderStore(max_orders=3)
    store.apply_update(order("F1", 1, status="Filled"), now=1.0)
    store.apply_update(order("A", 2), now=1.0)
    store.apply_update(order("B", 3), now=1.0)
    assert store.full and not store.over_cap
    store.apply_update(order("C", 4), now=2.0)  # room made: the final order goes
    assert "F1" not in store and store.open_count() == 3 and not store.over_cap
    assert any("cap of 3" in n for n in store.take_notices())
    store.apply_update(order("D", 5), now=3.0)  # every tracked order is open: D cannot be tracked
    assert "D" not in store and len(store) == 3
    assert store.open_count() == 4 and store.untracked == 1 and store.over_cap
    assert any("full of OPEN orders" in n for n in store.take_notices())
    store.apply_update(order("E", 6), now=3.0)
    assert store.open_count() == 5 and store.take_notices() == []  # said once
    # a snapshot of all symbols recounts: A and B ended; C, D, E open
    store.apply_snapshot([order("C", 7), order("D", 8), order("E", 9)], now=4.0, requested_at=4.0)
    assert store.open_count() == 3 and not store.over_cap
    store.apply_update(order("F", 10), now=5.0)
    assert store.over_cap and store.open_count() == 4


def test_notices_are_bounded():
    store = OrderStore()
    for i in range(500):
        store.apply_update(Order.unreadable({"orderId": f"U{i}"}, "status: missing"), now=1.0)
    notices = store.take_notices()
    assert len(notices) <= 51 and notices[-1] == "and 450 more such notices"
    assert store.open_count() == 500 and len(store.unreadable()) == 500 and store.take_notices() == []


def test_snapshot_does_not_overwrite_newer_stream_state():
    store = OrderStore()
    store.apply_update(order("A", 7, status="Canceled"), now=1.0)
    store.apply_snapshot([order("A", 5)], now=2.0)  # snapshot taken before the cancel
    assert store.get("A").status == "Canceled"


def test_snapshot_adds_unknown_orders():
    store = OrderStore()
    store.apply_snapshot([order("A", 3), order("B", 8)], now=1.0)
    assert {e.order_id for e in store.open_entries()} == {"A", "B"}
    assert store.apply_update(order("C", 40), now=2.0).applied
    assert store.stats.snapshots == 1


def test_open_by_symbol():
    store = OrderStore()
    store.apply_update(order("A", 1, symbol="BTC-PERP"), now=1.0)
    store.apply_update(order("B", 2, symbol="ETH-PERP"), now=1.0)
    store.apply_update(order("C", 3, symbol="ETH-PERP", status="Filled"), now=1.0)
    assert [e.order_id for e in store.open_by_symbol("ETH-PERP")] == ["B"]
    assert {e.order_id for e in store.open_by_symbol()} == {"A", "B"}


def test_final_orders_evicted_oldest_first():
    store = OrderStore(max_final=3)
    store.apply_update(order("OPEN", 1), now=0.0)
    for i in range(5):
        store.apply_update(order(f"F{i}", 10 + i, status="Canceled"), now=float(i))
    assert "OPEN" in store  # open orders are never evicted
    assert [oid for oid in ("F0", "F1", "F2", "F3", "F4") if oid in store] == ["F2", "F3", "F4"]
    assert store.stats.evicted == 2
    assert len(store) == 4


def test_eviction_order_follows_finality_not_creation():
    store = OrderStore(max_final=2)
    store.apply_update(order("A", 1), now=0.0)
    store.apply_update(order("B", 2, status="Canceled"), now=1.0)
    store.apply_update(order("C", 3, status="Canceled"), now=2.0)
    store.apply_update(order("A", 4, status="Filled"), now=3.0)  # oldest order, newest final
    assert "B" not in store and "C" in store and "A" in store


def test_marked_orders_count_as_final_for_eviction():
    store = OrderStore(max_final=1)
    store.apply_update(order("A", 1), now=0.0)
    store.apply_update(order("B", 2), now=0.0)
    store.apply_snapshot([], now=1.0)
    assert len(store) == 1
    assert store.stats.evicted == 1


def test_take_changes_reports_ids_and_structure():
    store = OrderStore()
    assert store.take_changes() == (set(), False)
    store.apply_update(order("A", 1), now=1.0)
    store.apply_update(order("B", 2), now=1.0)
    changed, structural = store.take_changes()
    assert changed == {"A", "B"} and structural  # rows added
    assert store.take_changes() == (set(), False)  # drained

    store.apply_update(order("A", 3, status="PartiallyFilled"), now=2.0)
    changed, structural = store.take_changes()
    assert changed == {"A"} and not structural  # same group (open), only a redraw

    store.apply_update(order("A", 4, status="Filled"), now=3.0)
    changed, structural = store.take_changes()
    assert changed == {"A"} and structural  # open -> final

    store.apply_update(order("B", 2), now=4.0)  # duplicate: nothing changes
    assert store.take_changes() == (set(), False)


def test_version_bumps_on_change_only():
    store = OrderStore()
    v0 = store.version
    store.apply_update(order("A", 1), now=1.0)
    v1 = store.version
    assert v1 > v0
    store.apply_update(order("A", 1), now=2.0)  # duplicate
    assert store.version == v1
    store.apply_snapshot([order("A", 1)], now=3.0)  # identical record
    assert store.version == v1


@pytest.mark.parametrize("status", ["Filled", "Canceled", "Rejected"])
def test_final_at_set_once(status):
    store = OrderStore()
    store.apply_update(order("A", 1), now=1.0)
    assert store.get("A").final_at is None
    store.apply_update(order("A", 2, status=status), now=2.0)
    store.apply_update(order("A", 3, status=status), now=3.0)
    assert store.get("A").final_at == 2.0


def test_open_count_is_kept_exact_through_every_kind_of_change():
    store = OrderStore(max_final=2)

    def check():
        assert store.open_count() == sum(1 for e in store.entries() if e.is_open)

    store.apply_update(order("A", 1), now=0.0)
    check()
    store.apply_update(order("B", 2), now=0.0)
    check()
    store.apply_update(order("A", 3, status="PartiallyFilled"), now=1.0)
    check()
    store.apply_update(order("A", 4, status="Filled"), now=1.0)
    check()
    store.apply_update(order("A", 4, status="Filled"), now=1.0)
    check()  # duplicate
    store.apply_snapshot([order("C", 5)], now=2.0)
    check()  # B marked NOT OPEN, C added
    store.apply_update(order("B", 6), now=3.0)
    check()  # B heard of again: open
    for i in range(5):
        store.apply_update(order(f"F{i}", 10 + i, status="Canceled"), now=4.0)
        check()
    assert store.open_count() == 2


def test_query_records_fold_by_the_per_order_rule_and_settle_not_open_orders():
    """Reconciliation folds REST records through the store: never an older record over a
    newer one; an order marked NOT OPEN is settled by the exchange's record."""
    store = OrderStore()
    store.apply_snapshot([order("A", 10), order("B", 20), order("C", 30)], now=1.0)
    store.apply_update(order("C", 35, status="PartiallyFilled", cfq="0.5"), now=1.5)
    gone = store.apply_snapshot([order("C", 35, status="PartiallyFilled", cfq="0.5")], now=2.0, requested_at=1.8)
    assert sorted(gone) == ["A", "B"] and store.get("A").status == NOT_OPEN
    finals = store.apply_records(
        [
            order("A", 12, status="Filled", cfq="1", ap="100"),  # settles A
            order("B", 20),  # same record as held, but B is NOT OPEN: the exchange says it is open
            order("C", 31, status="Canceled"),  # older than the stream's: dropped
        ],
        now=3.0,
    )
    assert [o.order_id for o in finals] == ["A"]
    a, b, c = store.get("A"), store.get("B"), store.get("C")
    assert a.status == "Filled" and a.order.filled_qty == Decimal("1") and not a.missing and not a.is_open
    assert b.status == "New" and b.is_open and not b.missing
    assert c.status == "PartiallyFilled" and c.order.seq == 35
    assert store.apply_records([order("A", 12, status="Filled", cfq="1", ap="100")], now=4.0) == []  # duplicate
    no_seq = Order.model_validate({"orderId": "A", "s": "BTC-PERP", "sd": "Buy", "st": "New", "ot": "Limit"})
    assert store.apply_records([no_seq], now=5.0) == [] and store.get("A").status == "Filled"  # final stays final
    assert store.open_count() == 2


# -- a snapshot folded a slice at a time (SnapshotFold), stream updates in between ----------------


def _fold_state(inline: bool, monkeypatch, seed: int) -> tuple:
    import random

    from blotter.core import orders as orders_module

    monkeypatch.setattr(orders_module, "INLINE_NEW_OPEN", inline)
    rng = random.Random(seed)
    store = OrderStore(max_final=5, max_orders=rng.choice([12, 40]))
    first = seed % 3 == 0  # the first snapshot: every record a new open order
    for i in range(0 if first else 6):  # some known before the snapshot, open and final
        store.apply_update(order(f"K{i}", 10, status=rng.choice(["New", "Filled"])), now=1.0)
    store.take_changes()
    records = [order(f"N{i}", 3, a="acct") for i in range(30)] if first else []
    for i in range(0 if first else 30):
        oid = rng.choice([f"N{i}", f"N{i}", f"K{rng.randrange(6)}", f"N{rng.randrange(max(i, 1))}"])
        status = rng.choice(["New", "New", "PartiallyFilled", "Filled", "Canceled"])
        symbol = rng.choice(["BTC-PERP", "BTC-PERP", "BTC-PERP", "ETH-PERP"])
        if rng.random() < 0.1:
            records.append(Order.unreadable({"orderId": oid, "s": symbol}, "st: bad"))
        else:
            records.append(order(oid, rng.choice([5, 10, 20, None]), status=status, symbol=symbol, a=f"acct{seed}"))
    fold = store.begin_snapshot(now=2.0, requested_at=1.5)
    keep: list[Order] = []
    between = []
    for i in range(0, len(records), 7):
        fold.add(records[i : i + 7], keep)
        between.append((store.take_changes(), store.version, store.open_count()))  # (as a view's sync does)
    gone = fold.finish()
    entries = {
        key: (
            e.order.model_dump(),
            next((i for i, r in enumerate(records) if r is e.order), None),
            e.changed_at,
            e.missing,
            e.final_at,
            e.is_open,
            e.order_id,
            e.conflict,
        )
        for key, e in store._orders.items()
    }
    return (
        entries,
        list(store._orders),
        store.open_count(),
        store.version,
        store.take_changes(),
        store.untracked,
        store.take_notices(),
        sorted(store._unreadable),
        list(store._final_order),
        (fold.records, fold.unreadable, fold.account_id, sorted(fold.listed), sorted(fold.open_keys)),
        [next((i for i, r in enumerate(records) if r is o), None) for o in keep],  # the record itself, or the store's
        between,
        gone,
    )


@pytest.mark.parametrize("seed", range(12))
def test_a_snapshot_puts_new_open_orders_inline_as_the_general_path_would(monkeypatch, seed):
    """SnapshotFold.add's inline put of an order the store never held: the same store,
    changes, counts, notices and kept records as the general path (``_put``), with
    repeats, finals, unreadable records, an id on two symbols and the store's cap."""
    assert _fold_state(True, monkeypatch, seed) == _fold_state(False, monkeypatch, seed)


def test_an_update_between_slices_wins_over_the_snapshots_record():
    store = OrderStore()
    store.apply_update(order("REPEAT", 8), now=1.0)
    fold = store.begin_snapshot(now=2.0, requested_at=1.5)  # the snapshot arrived
    fold.add([order("A", 5)])
    # the stream, after the snapshot: same number as the snapshot's record, or no number at all
    store.apply_update(order("B", 7, status="PartiallyFilled", cfq="0.5"), now=2.1)
    store.apply_update(Order.unreadable({"orderId": "C", "s": "BTC-PERP"}, "st: bad"), now=2.1)
    store.apply_update(order("REPEAT", 8), now=2.1)  # a repeat: dropped, nothing newer known
    fold.add([order("B", 7), order("C", None), order("REPEAT", 9, status="PartiallyFilled", cfq="0.1")])
    assert fold.finish() == []
    assert store.get("B").order.status == "PartiallyFilled"  # not the snapshot's "New"
    assert store.get("C").unreadable  # the stream's word, later than the snapshot's
    assert store.get("REPEAT").order.seq == 9  # a strictly newer record is still taken
    assert fold.open_keys == {"A", "B", "C", "REPEAT"} and fold.records == 4


def test_the_gone_rule_holds_when_folded_in_slices():
    store = OrderStore()
    for name, sn in (("A", 1), ("B", 2), ("OLD", 3), ("UPD", 4)):
        store.apply_update(order(name, sn), now=1.0)
    fold = store.begin_snapshot(now=3.0)  # no requested_at: only what the stream said after it protects
    fold.add([order("A", 1)])
    store.apply_update(order("NEW", 10), now=3.1)  # created after the snapshot: not in it
    store.apply_update(order("UPD", 11, status="PartiallyFilled", cfq="0.5"), now=3.1)
    fold.add([order("B", 2)])
    assert not fold.mark_gone(limit=2)  # in steps
    store.apply_update(order("NEW2", 12), now=3.2)  # between two steps of the marking
    assert fold.finish() == ["OLD"]
    assert store.get("OLD").status == NOT_OPEN
    assert all(store.get(k).is_open for k in ("A", "B", "NEW", "UPD", "NEW2"))
    assert store.stats.snapshots == 1 and store.stats.marked_missing == 1
    store.apply_update(order("LATER", 13), now=4.0)  # the fold ended: it no longer listens
    assert ("LATER", "BTC-PERP") not in fold.seen


def test_a_later_snapshot_folded_meanwhile_wins_over_the_older_one():
    # e.g. a REST answer folded in one go while a big WebSocket snapshot is still in slices
    store = OrderStore()
    older = store.begin_snapshot(now=2.0)
    older.add([order("A", None)])
    store.apply_snapshot([order("B", None, status="PartiallyFilled", cfq="0.5")], now=2.5)
    older.add([order("B", None)])
    older.finish()
    assert store.get("B").order.status == "PartiallyFilled"


def test_the_cap_makes_room_from_what_a_sliced_snapshot_no_longer_lists():
    store = OrderStore(max_orders=2)
    store.apply_update(order("A", 1), now=1.0)
    store.apply_update(order("B", 2), now=1.0)
    fold = store.begin_snapshot(now=3.0, requested_at=2.0)
    fold.add([order("C", 3)])  # A and B are still open here: no room yet
    fold.add([order("D", 4)])
    assert store.untracked == 2
    assert sorted(fold.finish()) == ["A", "B"]
    # as if A and B had been marked first: C and D are tracked, nothing is counted untracked
    assert "C" in store and "D" in store and store.untracked == 0 and store.open_count() == 2
