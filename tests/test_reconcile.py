"""Reconciliation's decisions, pure: store entries + REST records -> corrections (no I/O).

The I/O (REST calls, folding, log lines) is the desk's; see tests/test_desk_reconcile.py."""

from __future__ import annotations

from decimal import Decimal

from blotter.core import NOT_OPEN, OrderStore
from blotter.protocol import Order
from blotter.protocol.rest import RestOrder
from blotter.reconcile import Context, compare_open, resolve, summary

A = "s18f1a2b3c4dU1234567890aaaaaaaa1"
B = "s18f1a2b3c4dU1234567890bbbbbbbb2"
C = "s18f1a2b3c4dU1234567890cccccccc3"
D = "s18f1a2b3c4dU1234567890dddddddd4"


def stream(oid: str, seq: int, status: str = "New", **extra) -> Order:
    data = {
        "orderId": oid,
        "s": "BTC-PERP",
        "sd": "Buy",
        "st": status,
        "ot": "Limit",
        "p": "30000",
        "q": "0.5",
        "cfq": "0",
    }
    data.update(extra)
    data["sn"] = seq
    return Order.model_validate(data)


def rest(oid: str, seq: int | None, status: str, filled: str = "0", avg: str = "0", **extra) -> RestOrder:
    data = {
        "orderId": oid,
        "symbol": "BTC-PERP",
        "side": "Buy",
        "orderType": "Limit",
        "price": "30000",
        "orderQty": "0.5",
        "status": status,
        "cumFilledQty": filled,
        "avgFilledPx": avg,
        "cumFee": extra.pop("fee", "0"),
        "feeAsset": "USDT",
        "errorCode": extra.pop("error", ""),
        **extra,
    }
    if seq is not None:
        data["seqNum"] = seq
    return RestOrder.model_validate(data)


def store_with_gone() -> OrderStore:
    """A, B, C and D were open; a snapshot listed only D: A, B, C are NOT OPEN."""
    store = OrderStore()
    store.apply_snapshot([stream(A, 10), stream(B, 20), stream(C, 30), stream(D, 40)], now=1.0)
    gone = store.apply_snapshot([stream(D, 40)], now=2.0, requested_at=1.5)
    assert sorted(gone) == [A, B, C]
    return store


def test_orders_that_ended_while_disconnected_are_resolved_to_the_exchanges_truth():
    store = store_with_gone()
    records = [
        rest(A, 11, "Filled", "0.5", "30058", fee="3.0058"),
        rest(B, 21, "Canceled", "0.2", "30001.5"),
        rest(C, 31, "Rejected", error="Insufficient margin."),
    ]
    out = resolve(store, [A, B, C], records, Context.RECONNECT)
    assert out.unresolved == [] and out.still_open == []
    by_key = {c.key: c for c in out.corrections}
    assert set(by_key) == {A, B, C}
    assert by_key[A].text == f"{A} ended while disconnected: Filled 0.5 @ 30058, fee 3.0058 USDT"
    assert by_key[B].text == f"{B} ended while disconnected: Canceled after 0.2 filled @ 30001.5"
    assert by_key[C].text == f"{C} ended while disconnected: Rejected, nothing filled (Insufficient margin.)"
    assert by_key[A].order.status == "Filled" and by_key[A].order.filled_qty == Decimal("0.5")
    assert by_key[A].order.avg_price == Decimal("30058") and by_key[A].order.fee == Decimal("3.0058")
    # folded through the store's normal path, every row shows the truth
    store.apply_records([c.order for c in out.corrections], now=3.0)
    assert [store.get(k).status for k in (A, B, C)] == ["Filled", "Canceled", "Rejected"]
    assert not any(store.get(k).missing for k in (A, B, C))


def test_what_rest_cannot_answer_stays_not_open_with_the_reason():
    store = store_with_gone()
    unreadable = rest(B, 21, "Filled", "0.5", "30000").model_copy(update={"side": "Sideways"})
    out = resolve(store, [A, B, C], [unreadable, rest(C, 29, "Canceled")], Context.RECONNECT)
    reasons = {u.key: u.reason for u in out.unresolved}
    assert out.corrections == []
    assert reasons[A] == "unknown to REST (order/status does not list it)"
    assert reasons[B].startswith("REST's record is unreadable: ")
    assert reasons[C] == "REST's record (seqNum 29) is older than the blotter's (30)"
    assert all(store.get(k).status == NOT_OPEN for k in (A, B, C))


def test_a_record_never_replaces_a_newer_one_and_an_open_answer_is_reported():
    store = store_with_gone()
    store.apply_update(stream(A, 50, "Canceled"), now=2.5)  # the stream said more, later
    out = resolve(store, [A, B], [rest(A, 11, "Filled", "0.5", "30000"), rest(B, 20, "New")], Context.SNAPSHOT)
    assert [c.key for c in out.corrections] == [B]  # A: the stream's record is newer; nothing to do
    assert out.still_open == [B]
    assert (
        out.corrections[0].text == f"{B} is open on the exchange (New, 0 filled), though the snapshot did not list it"
    )
    assert out.unresolved == []


def test_drift_open_here_ended_there_open_there_missing_here_and_missed_fills():
    store = OrderStore()
    store.apply_snapshot([stream(A, 10), stream(B, 20), stream(C, 30)], now=1.0)
    store.apply_update(stream(D, 45), now=5.0)  # after the REST call was asked: may postdate its answer
    there = [
        rest(B, 25, "PartiallyFilled", "0.2", "30000"),
        rest(C, 30, "New"),
        rest("s18f1a2b3c4dU1234567890eeeeeeee5", 44, "New"),
    ]
    drift = compare_open(store, there, asked_at=4.0)
    assert drift.ended_here == [A]  # D changed after the question: not compared
    texts = sorted(c.text for c in drift.corrections)
    assert texts == [
        f"drift: {B} PartiallyFilled, 0.2 filled on the exchange; New, 0 filled here",
        "drift: s18f1a2b3c4dU1234567890eeeeeeee5 open on the exchange, missing here (New BTC-PERP Buy 0.5 @ 30000)",
    ]
    # then the status of what ended there
    out = resolve(store, drift.ended_here, [rest(A, 12, "Canceled")], Context.DRIFT)
    assert [c.text for c in out.corrections] == [f"drift: {A} was open here, Canceled, nothing filled on the exchange"]


def test_no_drift_when_store_and_exchange_agree():
    store = OrderStore()
    store.apply_snapshot([stream(A, 10), stream(B, 20)], now=1.0)
    drift = compare_open(store, [rest(A, 10, "New"), rest(B, 20, "New")], asked_at=2.0)
    assert drift.corrections == [] and drift.ended_here == []


def test_summary_is_sanitised():
    order = Order.model_validate(
        {"orderId": A, "s": "BTC-PERP", "sd": "Buy", "st": "Rejected", "ot": "Limit", "err": "bad\x1b[31mred", "sn": 1}
    )
    assert "\x1b" not in summary(order) and "\\x1b" in summary(order)


async def test_reasons_of_rows_the_store_forgot_are_pruned():
    from blotter.core import EventLog, RequestTracker
    from blotter.protocol.rest import RequestCounter
    from blotter.reconcile import MAX_REMEMBERED, Reconciler

    store = OrderStore(max_final=200)
    log = EventLog()
    rec = Reconciler(
        store=store,
        tracker=RequestTracker(log),
        log=log,
        rest=None,
        rest_problem="no account group",
        limits=RequestCounter(),
        clock=lambda: 0.0,
        every=0,
        on_change=lambda: None,
        ask_snapshot=lambda: None,
    )
    ids = [f"s{i:031d}" for i in range(MAX_REMEMBERED + 20)]
    for chunk in range(0, len(ids), 100):
        batch = ids[chunk : chunk + 100]
        store.apply_snapshot([stream(i, 1) for i in batch], now=1.0)
        gone = store.apply_snapshot([], now=2.0, requested_at=1.5)
        rec.orders_gone(gone, Context.RECONNECT)  # no REST road: NOT OPEN with the reason
    assert rec.not_open_reason(ids[-1]) == "no REST road (no account group)"
    assert f"{ids[-1]} stays NOT OPEN: no REST road (no account group)" in [l.text for l in log.lines()]
    assert rec.remembered > MAX_REMEMBERED
    rec.tick(3.0, live=False)
    assert rec.remembered <= 200  # only rows the store still holds
