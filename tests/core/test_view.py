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
    return Order(
        order_id=oid,
        symbol=symbol,
        side=side,
        status=status,
        create_time_ms=ct,
        seq=_seq,
        price=Decimal("100.5"),
        qty=Decimal("1"),
    )


def make(*orders: Order, now: float = 0.0) -> tuple[OrderStore, OrderView]:
    store = OrderStore()
    for o in orders:
        store.apply_update(o, now)
    view = OrderView(store, final_linger=30.0)
    view.sync(now)
    return store, view


def test_open_newest_first_and_a_finished_order_keeps_its_place_while_it_lingers():
    store, view = make(order("a", ct=1), order("b", ct=3), order("c", ct=2))
    assert view.ids == ["b", "c", "a"]
    store.apply_update(order("b", status="Canceled", ct=3), 1.0)
    change = view.sync(1.0)
    assert not change.reordered and change.changed == {"b"}  # redrawn in place, dimmed
    assert view.ids == ["b", "c", "a"] and view.is_lingering("b")
    assert view.open_count() == 2
    # the linger ends: hidden (no 'f'), and the open orders close up
    assert view.sync(31.5).reordered
    assert view.ids == ["c", "a"] and view.open_count() == 2 and not view.is_lingering("b")


def test_older_finals_follow_the_open_orders_most_recently_final_first():
    store, view = make(order("a", ct=1), order("b", ct=2), order("c", ct=3))
    view.set_show_final(True)
    store.apply_update(order("a", status="Filled", ct=1), 1.0)
    store.apply_update(order("c", status="Canceled", ct=3), 2.0)
    view.sync(2.0)
    assert view.ids == ["c", "b", "a"]  # both still in place
    view.sync(40.0)
    assert view.ids == ["b", "c", "a"]  # open first, then finals, latest final first
    assert view.open_count() == 1
    store.apply_update(order("c", status="Canceled", ct=3), 41.0)  # duplicate: nothing moves
    assert not view.sync(41.0).reordered


def test_a_reopened_lingering_order_stays_put_and_stops_lingering():
    store, view = make(order("a", ct=1), order("b", ct=2))
    store.apply_snapshot([order("b", ct=2)], 5.0, requested_at=4.0)  # a: NOT OPEN, lingering
    view.sync(5.0)
    assert view.is_lingering("a") and view.open_count() == 1
    store.apply_update(order("a", status="PartiallyFilled", ct=1), 6.0)  # heard of again
    assert not view.sync(6.0).reordered
    assert not view.is_lingering("a") and view.open_count() == 2
    view.sync(60.0)
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


@pytest.mark.parametrize(
    "text, expected",
    [
        ("btc", ["b2", "b1"]),
        ("ETH", ["e1"]),
        ("2", ["b2"]),
        ("", ["e1", "b2", "b1"]),
        ("zzz", []),
    ],
)
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


def test_a_budgeted_sync_spreads_a_big_snapshot_over_several_calls_without_a_rebuild():
    store = OrderStore()
    view = OrderView(store, final_linger=30.0)
    view.sync(0.0)
    store.apply_snapshot([order(f"o{i:05d}", ct=i) for i in range(5000)], 1.0)
    calls = 0
    while True:
        view.sync(1.0, budget=600)
        calls += 1
        assert view.pending <= 5000 - 600 * calls or view.pending == 0
        if not view.pending:
            break
    assert calls == 9 and view.rebuilds == 1  # (the first sync, of the empty store)
    store.apply_snapshot([order(f"o{i:05d}", ct=i) for i in range(0, 5000, 2)], 2.0)  # half of them gone
    while view.sync(2.0, budget=600) and view.pending:
        pass
    fresh = OrderView(store, final_linger=30.0)
    fresh.sync(2.0)
    assert view.ids == fresh.ids and len(view) == 5000 and view.open_count() == 2500 and view.rebuilds == 1


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("show_final", [False, True])
@pytest.mark.parametrize(
    ("batch_threshold", "budget"), [(64, None), (0, None), (0, 7)], ids=["one-by-one", "batch", "budgeted"]
)
def test_incremental_view_always_equals_a_fresh_rebuild(seed, show_final, batch_threshold, budget):
    """Random updates over time (new, fills, finals, re-opens, snapshots, eviction):
    the incrementally kept rows equal what a rebuild from the store gives — through
    the one-change-at-a-time path and through the batch path (which works keys out
    inline)."""
    import random

    rng = random.Random(seed)
    store = OrderStore(max_final=15)
    view = OrderView(store, final_linger=3.0, show_final=show_final)
    view.batch_threshold = batch_threshold
    now = 0.0
    ids = [f"o{i}" for i in range(40)]
    for step in range(400):
        now += rng.choice([0.0, 0.1, 0.5, 1.0, 2.5])
        for _ in range(rng.choice([1, 1, 2, 5, 80])):
            oid = rng.choice(ids)
            status = rng.choice(["New", "PartiallyFilled", "Filled", "Canceled", "Rejected"])
            store.apply_update(order(oid, status=status, ct=int(oid[1:])), now)
        if step % 37 == 0:
            store.apply_snapshot([e.order for e in store.open_entries() if rng.random() < 0.7], now, requested_at=now)
        view.sync(now, budget)
        while view.pending:  # (a budgeted view catches up over a few calls)
            view.sync(now, budget)
        fresh = OrderView(store, final_linger=3.0, show_final=show_final)
        fresh.sync(now)
        assert view.ids == fresh.ids, f"step {step}"
        assert view.open_count() == fresh.open_count() == sum(1 for oid in fresh.ids if store.get(oid).is_open)


def unreadable(oid: str | None, **record) -> Order:
    return Order.unreadable({"orderId": oid, **record}, "status: not a known status")


def test_an_unreadable_order_is_a_row_among_the_open_ones_and_counts_open():
    store, view = make(order("a", ct=1), unreadable("u", s="BTC-PERP", ct=2), order("b", ct=3))
    assert view.ids == ["b", "u", "a"] and view.open_count() == 3
    # a burst path (many changes at once) places it the same way
    for i in range(100):
        store.apply_update(order(f"n{i}", ct=10 + i), 1.0)
    store.apply_update(unreadable("v", s="ETH-PERP", ct=5), 1.0)
    view.sync(1.0)
    assert view.open_count() == 104 and view.index_of("v") < view.index_of("u")


def test_both_orders_of_one_id_on_two_symbols_are_rows():
    _, view = make(order("dup", symbol="BTC-PERP", ct=1), order("dup", symbol="ETH-PERP", ct=2))
    assert view.ids == ["dup@ETH-PERP", "dup"] and view.open_count() == 2
    view.set_filter("eth")
    view.sync(1.0)
    assert view.ids == ["dup@ETH-PERP"]


def test_a_filter_never_hides_an_open_order_whose_symbol_could_not_be_read():
    store, view = make(order("a", symbol="BTC-PERP"), order("b", symbol="ETH-PERP"), unreadable("u", s="X" * 65))
    view.set_filter("eth")
    view.sync(1.0)
    assert sorted(view.ids) == ["b", "u"]  # u may be on ETH-PERP: never filtered out
    store.apply_snapshot([], now=2.0)  # the exchange no longer lists it: not open, and filtered like any other
    view.sync(2.0)
    view.set_filter("eth")
    view.set_show_final(True)
    view.sync(2.0)
    assert view.ids == ["b"]
