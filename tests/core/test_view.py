"""blotter/core/view.py: the sorted, filtered id list behind the orders table."""

from __future__ import annotations

from decimal import Decimal

import pytest

from blotter.core import OrderStore
from blotter.core.view import OrderView
from blotter.protocol import Order

_seq = 0


def order(oid: str, status: str = "New", symbol: str = "BTC-PERP", ct: int = 1_000, side: str = "Buy") -> Order:
    global _seq
    _seq += 1
    return Order(order_id=oid, symbol=symbol, side=side, status=status, create_time_ms=ct, seq=_seq,
                 price=Decimal("100.5"), qty=Decimal("1"))


def make(*orders: Order, now: float = 0.0) -> tuple[OrderStore, OrderView]:
    store = OrderStore()
    for o in orders:
        store.apply_update(o, now)
    view = OrderView(store, final_linger=30.0)
    view.sync(now)
    return store, view


def test_open_first_newest_first_then_final():
    store, view = make(order("a", ct=1), order("b", ct=3), order("c", ct=2))
    assert view.ids == ["b", "c", "a"]
    store.apply_update(order("b", status="Canceled", ct=3), 1.0)
    change = view.sync(1.0)
    assert change.reordered
    assert view.ids == ["c", "a", "b"]
    assert view.open_count() == 2


def test_final_orders_most_recently_final_first():
    store, view = make(order("a", ct=1), order("b", ct=2))
    store.apply_update(order("a", status="Filled", ct=1), 1.0)
    store.apply_update(order("b", status="Canceled", ct=2), 2.0)
    view.sync(2.0)
    assert view.ids == ["b", "a"]


def test_in_place_update_does_not_reorder():
    store, view = make(order("a", ct=1), order("b", ct=2))
    version = view.version
    store.apply_update(order("a", status="PartiallyFilled", ct=1), 1.0)
    change = view.sync(1.0)
    assert not change.reordered
    assert change.changed == {"a"}
    assert view.version == version
    assert view.ids == ["b", "a"]


def test_final_linger_hides_old_finals_and_toggle_shows_them():
    store, view = make(order("a", ct=1), order("b", ct=2))
    store.apply_update(order("a", status="Canceled", ct=1), 10.0)
    view.sync(10.0)
    assert "a" in view
    assert not view.sync(39.0).reordered
    assert "a" in view
    assert view.sync(40.5).reordered
    assert "a" not in view and view.ids == ["b"]
    view.set_show_final(True)
    view.sync(41.0)
    assert view.ids == ["b", "a"]
    view.set_show_final(False)
    view.sync(41.0)
    assert view.ids == ["b"]


def test_not_open_counts_as_final():
    store, view = make(order("a", ct=1), order("b", ct=2))
    store.apply_snapshot([order("b", ct=2)], 5.0)
    view.sync(5.0)
    assert view.ids == ["b", "a"]
    assert store.get("a").status == "NotOpen"


@pytest.mark.parametrize("text, expected", [
    ("btc", ["b2", "b1"]), ("ETH", ["e1"]), ("2", ["b2"]), ("", ["e1", "b2", "b1"]), ("zzz", []),
])
def test_filter_by_symbol_or_order_id_substring(text, expected):
    store, view = make(order("b1", ct=1), order("b2", ct=2), order("e1", symbol="ETH-PERP", ct=3))
    view.set_filter(text)
    view.sync(0.0)
    assert view.ids == expected
    assert view.filter == text


def test_filter_applies_to_new_orders():
    store, view = make(order("b1", ct=1))
    view.set_filter("ETH")
    view.sync(0.0)
    store.apply_update(order("e1", symbol="ETH-PERP", ct=5), 1.0)
    store.apply_update(order("b9", ct=6), 1.0)
    view.sync(1.0)
    assert view.ids == ["e1"]


def test_index_of_and_follow_pin_the_selection_to_the_order_id():
    store, view = make(*(order(f"o{i}", ct=i) for i in range(10)))
    assert view.index_of("o7") == 2
    # new, newer orders are inserted above the selected one
    store.apply_update(order("n1", ct=100), 1.0)
    store.apply_update(order("n2", ct=101), 1.0)
    view.sync(1.0)
    assert view.follow("o7", 2) == ("o7", 4)
    assert view[4] == "o7"
    assert view.index_of("nope") is None
    assert view.index_of(None) is None


def test_follow_moves_to_a_neighbour_when_the_order_leaves_the_view():
    store, view = make(*(order(f"o{i}", ct=i) for i in range(5)))
    # o4 o3 o2 o1 o0 ; o2 selected at row 2, then filtered out
    view.set_filter("o1")
    view.sync(0.0)
    assert view.follow("o2", 2) == ("o1", 0)
    view.set_filter("nothing")
    view.sync(0.0)
    assert view.follow("o2", 2) == (None, 0)


def test_evicted_orders_leave_the_view():
    store = OrderStore(max_final=1)
    view = OrderView(store, show_final=True)
    for i in range(3):
        store.apply_update(order(f"o{i}", ct=i), 0.0)
    for i in range(3):
        store.apply_update(order(f"o{i}", status="Filled", ct=i), float(i + 1))
    view.sync(5.0)
    assert view.ids == ["o2"]


def test_big_burst_rebuilds_and_matches_incremental():
    store = OrderStore()
    view = OrderView(store, show_final=True)
    view.sync(0.0)
    for i in range(2000):
        store.apply_update(order(f"x{i:05d}", ct=i % 97, status="New" if i % 3 else "Filled"), float(i))
    view.sync(3000.0)
    expected = OrderView(store, show_final=True)
    expected.rebuild(3000.0)
    assert view.ids == expected.ids
    # and small incremental changes keep the same order as a rebuild
    for i in range(0, 2000, 7):
        store.apply_update(order(f"x{i:05d}", ct=i % 97, status="Canceled"), 4000.0 + i)
    view.sync(9000.0)
    expected.rebuild(9000.0)
    assert view.ids == expected.ids
