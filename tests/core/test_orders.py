"""OrderStore: snapshot + stream folding, sequence numbers, marking, eviction, change tracking."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from blotter.core import NOT_OPEN, OrderStore
from blotter.protocol import OpenOrders, Order, OrderUpdate, parse
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
    gone = store.apply_snapshot(snap.orders, now=1.0, rejected_ids=snap.rejected_ids)
    assert gone == []
    assert len(store) == 1 and "r1782f04c58aU3792951278sbtcp7EbA" in store
    assert store.last_sn is None  # the account sn comes from the stream only

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
    assert store.stats.stale == 2
    newer = store.apply_update(order("A", 6, status="Filled"), now=4.0)
    assert newer.applied and store.get("A").status == "Filled"


def test_updates_without_sn_always_apply():
    store = OrderStore()
    store.apply_update(order("A", None), now=1.0)
    assert store.apply_update(order("A", None, status="Canceled"), now=2.0).applied
    assert store.get("A").status == "Canceled"


def test_gap_detection():
    store = OrderStore()
    assert not store.apply_update(order("A", 10), now=1.0).gap  # first one: nothing to compare
    assert not store.apply_update(order("B", 11), now=1.0).gap
    jump = store.apply_update(order("C", 14), now=1.0)
    assert jump.applied and jump.gap
    assert store.stats.gaps == 1
    assert store.last_sn == 14
    assert not store.apply_update(order("A", 15), now=1.0).gap


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


def test_rejected_ids_are_not_marked():
    store = OrderStore()
    store.apply_update(order("BAD", 1), now=1.0)
    store.apply_update(order("A", 2), now=1.0)
    gone = store.apply_snapshot([order("A", 2)], now=2.0, rejected_ids=["BAD"])
    assert gone == []
    assert store.get("BAD").is_open


def test_rejected_ids_from_parsed_snapshot():
    store = OrderStore()
    data = orjson.loads((FIXTURE_DIR / "open-orders-reply.json").read_bytes())
    good = data["data"][0]
    bad = {**good, "orderId": "BAD-ORDER", "price": "abc"}
    store.apply_update(order("BAD-ORDER", 1), now=1.0)
    data["data"] = [good, bad]
    snap = parse(orjson.dumps(data))
    assert isinstance(snap, OpenOrders) and snap.rejected_ids == ["BAD-ORDER"]
    assert store.apply_snapshot(snap.orders, now=2.0, rejected_ids=snap.rejected_ids) == []
    assert store.get("BAD-ORDER").is_open


def test_snapshot_does_not_overwrite_newer_stream_state():
    store = OrderStore()
    store.apply_update(order("A", 7, status="Canceled"), now=1.0)
    store.apply_snapshot([order("A", 5)], now=2.0)  # snapshot taken before the cancel
    assert store.get("A").status == "Canceled"


def test_snapshot_adds_unknown_orders_and_leaves_the_stream_sn_alone():
    store = OrderStore()
    store.apply_snapshot([order("A", 3), order("B", 8)], now=1.0)
    assert {e.order_id for e in store.open_entries()} == {"A", "B"}
    assert store.last_sn is None  # per-order seqNum is not the account sn: no false gap next
    assert not store.apply_update(order("C", 40), now=2.0).gap
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

    store.apply_update(order("A", 1), now=0.0); check()
    store.apply_update(order("B", 2), now=0.0); check()
    store.apply_update(order("A", 3, status="PartiallyFilled"), now=1.0); check()
    store.apply_update(order("A", 4, status="Filled"), now=1.0); check()
    store.apply_update(order("A", 4, status="Filled"), now=1.0); check()  # duplicate
    store.apply_snapshot([order("C", 5)], now=2.0); check()  # B marked NOT OPEN, C added
    store.apply_update(order("B", 6), now=3.0); check()  # B heard of again: open
    for i in range(5):
        store.apply_update(order(f"F{i}", 10 + i, status="Canceled"), now=4.0); check()
    assert store.open_count() == 2
