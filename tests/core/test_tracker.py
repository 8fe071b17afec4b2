"""RequestTracker: every request's life, one log line per step, each starting with its id."""

from __future__ import annotations

import re

import orjson
import pytest

from blotter.core import EventLog, RequestTracker, State
from blotter.protocol import Order, RequestAck, RequestError, parse
from tests.helpers import PROTOCOL_FIXTURES

FIXTURE_DIR = PROTOCOL_FIXTURES
OID = "s177bab1b474U5051470287bbtcpKiOR"


def order(oid: str = OID, status: str = "Canceled", seq: int = 1, symbol: str = "BTC-PERP") -> Order:
    return Order.model_validate({"orderId": oid, "s": symbol, "sd": "Buy", "st": status, "sn": seq})


def ack(rid: str | None, order_id: str | None = None, action: str = "cancel-order") -> RequestAck:
    return RequestAck(request_id=rid, action=action, order_id=order_id)


def texts(log: EventLog, rid: str | None = None) -> list[str]:
    return [line.text for line in log.lines() if rid is None or line.request_id == rid]


@pytest.fixture
def tracker() -> RequestTracker:
    return RequestTracker(EventLog(), timeout=5.0)


def assert_lines_start_with_ids(tracker: RequestTracker) -> None:
    for line in tracker.log.lines():
        assert line.request_id, line
        assert line.text.startswith(f"{line.request_id} "), line.text


def test_cancel_sent_acked_confirmed(tracker):
    t = tracker.sent("co-1", "cancel-order", now=10.0, symbol="BTC-PERP", order_id=OID)
    assert t.state is State.SENT and t.in_flight
    assert tracker.pending_cancel(OID) is t

    assert tracker.on_ack(ack("co-1", OID), now=10.012) is t
    assert t.state is State.ACKED and t.acked_at == 10.012

    assert tracker.on_order(order(status="New"), now=10.02) == []  # not final: nothing
    resolved = tracker.on_order(order(status="Canceled"), now=10.25)
    assert resolved == [t]
    assert t.state is State.CONFIRMED and t.final_status == "Canceled" and not t.in_flight
    assert tracker.pending_cancel(OID) is None

    lines = texts(tracker.log, "co-1")
    assert len(lines) == 3
    assert "sent cancel-order" in lines[0] and OID in lines[0] and "BTC-PERP" in lines[0]
    assert "ACK" in lines[1] and "12 ms" in lines[1]
    assert "confirmed Canceled" in lines[2] and "250 ms" in lines[2]
    assert "not by this cancel" not in lines[2]
    assert [line.level for line in tracker.log.lines()] == ["info", "ok", "ok"]
    assert all(line.order_id == OID for line in tracker.log.lines())
    assert_lines_start_with_ids(tracker)


def test_ack_from_parsed_fixture_then_confirm(tracker):
    event = parse((FIXTURE_DIR / "cancel-order-ack.json").read_bytes())
    assert isinstance(event, RequestAck)
    t = tracker.sent(event.request_id, "cancel-order", now=1.0, symbol="BTC-PERP", order_id=event.order_id)
    assert tracker.on_ack(event, now=1.1) is t and t.state is State.ACKED


def test_error_line_has_code_reason_message(tracker):
    event = parse((FIXTURE_DIR / "cancel-order-error.json").read_bytes())
    assert isinstance(event, RequestError)
    t = tracker.sent("sampleRequestId", "cancel-order", now=1.0, symbol="BTC-PERP", order_id=OID)
    assert tracker.on_error(event, now=1.05) is t
    assert t.state is State.REFUSED and not t.in_flight
    assert (t.code, t.reason) == (300006, "INVALID_ORDER_ID")
    assert t.message == "Client Order Id too Long: s177bab1b474U5051470287bbtcpKiOR1"
    last = tracker.log.lines()[-1]
    assert last.request_id == "sampleRequestId" and last.level == "error"
    assert last.text.startswith("sampleRequestId ERR 300006 INVALID_ORDER_ID ")
    assert "Client Order Id too Long" in last.text
    assert last.text.endswith("(the order id is invalid (unknown, or not open))")  # the code's readable reason
    # a refused cancel is not confirmed by a later update
    assert tracker.on_order(order(status="Canceled"), now=2.0) == []
    assert t.state is State.REFUSED
    assert_lines_start_with_ids(tracker)


def test_error_lines_read_every_code_from_the_one_table(tracker):
    from blotter.protocol.messages import RequestError as Err

    t = tracker.sent("r-tick", "cancel-order", now=1.0, symbol="BTC-PERP", order_id=OID)
    tracker.on_error(Err(request_id="r-tick", code=300014, reason="", message="tick 1"), now=1.1)
    assert t.state is State.REFUSED
    line = tracker.log.lines()[-1].text
    # a futures-only code, no reason on the wire: the table's word and sentence
    assert line == "r-tick ERR 300014 TICK_SIZE_VIOLATION tick 1 (the order price is not a multiple of the tick size)"
    tracker.sent("r-odd", "cancel-order", now=2.0, symbol="BTC-PERP", order_id="other")
    tracker.on_error(Err(request_id="r-odd", code=319999, reason="ODD", message=""), now=2.1)
    assert tracker.log.lines()[-1].text == "r-odd ERR 319999 ODD (undocumented margin error)"


def test_2021_error_matched_by_info_id(tracker):
    event = parse((FIXTURE_DIR / "cancel-order-error-2021.json").read_bytes())
    t = tracker.sent("x@fabs", "cancel-order", now=1.0, symbol="BTC-PERP", order_id="x@fabs")
    assert tracker.on_error(event, now=1.2) is t
    assert t.state is State.REFUSED and "Invalid Client Order Id" in tracker.log.lines()[-1].text


def test_2021_ack_without_request_id_matched_by_order_id(tracker):
    event = parse((FIXTURE_DIR / "cancel-order-ack-2021.json").read_bytes())
    assert isinstance(event, RequestAck) and event.request_id is None
    other = tracker.sent("co-other", "cancel-order", now=0.5, symbol="BTC-PERP", order_id="someOtherOrder")
    t = tracker.sent("co-2021", "cancel-order", now=1.0, symbol="BTC-PERP", order_id=OID)
    assert tracker.on_ack(event, now=1.03) is t
    assert t.state is State.ACKED and other.state is State.SENT
    assert texts(tracker.log, "co-2021")[-1].startswith("co-2021 ACK (30 ms)")


def test_ack_for_unknown_request_is_ignored(tracker):
    assert tracker.on_ack(ack("nobody"), now=1.0) is None
    assert tracker.on_ack(ack(None, "unknown-order"), now=1.0) is None
    assert tracker.on_error(RequestError(request_id="nobody", code=1), now=1.0) is None
    assert len(tracker.log) == 0


def test_duplicate_ack_logs_once(tracker):
    tracker.sent("co-1", "cancel-order", now=1.0, order_id=OID)
    tracker.on_ack(ack("co-1", OID), now=1.1)
    tracker.on_ack(ack("co-1", OID), now=1.2)
    assert sum("ACK" in s for s in texts(tracker.log)) == 1


def test_timeout_without_ack_then_late_cancel(tracker):
    t = tracker.sent("co-1", "cancel-order", now=100.0, order_id=OID)
    assert tracker.check_timeouts(104.9) == []
    assert t.state is State.SENT
    assert tracker.check_timeouts(105.0) == [t]
    assert t.state is State.TIMED_OUT and not t.in_flight
    assert tracker.check_timeouts(200.0) == []  # reported once
    line = tracker.log.lines()[-1]
    assert line.text.startswith("co-1 TIMEOUT") and "no ACK" in line.text and "5 s" in line.text
    assert line.level == "error"
    assert tracker.timed_out_cancel(OID) is t

    assert tracker.on_order(order(status="Canceled"), now=107.0) == [t]
    assert t.state is State.CONFIRMED
    last = tracker.log.lines()[-1].text
    assert last.startswith("co-1 confirmed Canceled") and "after timeout" in last and "7000 ms" in last
    assert_lines_start_with_ids(tracker)


def test_timeout_after_ack_without_confirmation(tracker):
    t = tracker.sent("co-1", "cancel-order", now=0.0, order_id=OID)
    tracker.on_ack(ack("co-1", OID), now=0.1)
    assert tracker.check_timeouts(5.0) == [t]
    line = tracker.log.lines()[-1].text
    assert "TIMEOUT" in line and "ACKed, no confirmation" in line
    tracker.on_order(order(status="Canceled"), now=9.0)
    assert t.state is State.CONFIRMED and "after timeout" in tracker.log.lines()[-1].text


def test_timeout_respects_configured_timeout():
    tracker = RequestTracker(EventLog(), timeout=0.5)
    t = tracker.sent("co-1", "cancel-order", now=0.0, order_id=OID)
    assert tracker.check_timeouts(0.49) == []
    assert tracker.check_timeouts(0.5) == [t]
    assert "0.5 s" in tracker.log.lines()[-1].text


def test_error_after_timeout_still_refuses(tracker):
    t = tracker.sent("co-1", "cancel-order", now=0.0, order_id=OID)
    tracker.check_timeouts(6.0)
    tracker.on_error(RequestError(request_id="co-1", code=300006, reason="INVALID_ORDER_ID"), now=7.0)
    assert t.state is State.REFUSED


def test_order_filled_while_cancel_in_flight(tracker):
    t = tracker.sent("co-1", "cancel-order", now=0.0, order_id=OID)
    tracker.on_ack(ack("co-1", OID), now=0.01)
    assert tracker.on_order(order(status="Filled"), now=0.05) == [t]
    assert t.state is State.CONFIRMED and t.final_status == "Filled"
    line = tracker.log.lines()[-1]
    assert line.text.startswith("co-1 ")
    assert "ended Filled" in line.text and "not by this cancel" in line.text
    assert line.level == "warn"


def test_cancel_all_counts_targets_and_confirms_when_all_final(tracker):
    targets = {"A", "B", "C"}
    t = tracker.sent("ca-1", "cancel-all", now=0.0, symbol=None, targets=targets)
    first = tracker.log.lines()[0].text
    assert first.startswith("ca-1 sent cancel-all") and "ALL symbols" in first and "(3 open)" in first
    tracker.on_ack(ack("ca-1", action="cancel-all"), now=0.02)
    assert t.state is State.ACKED
    assert tracker.on_order(order("A", "Canceled"), now=0.1) == []
    assert tracker.on_order(order("A", "Canceled", seq=2), now=0.11) == []  # counted once
    assert tracker.on_order(order("X", "Canceled"), now=0.12) == []  # not a target
    assert tracker.on_order(order("B", "Filled"), now=0.2) == []
    assert t.confirmed == {"A", "B"} and t.state is State.ACKED
    assert tracker.on_order(order("C", "Canceled"), now=0.3) == [t]
    assert t.state is State.CONFIRMED
    last = tracker.log.lines()[-1].text
    assert last.startswith("ca-1 confirmed") and "3/3 final" in last and "300 ms" in last
    assert_lines_start_with_ids(tracker)


def test_cancel_all_with_symbol_names_it(tracker):
    tracker.sent("ca-1", "cancel-all", now=0.0, symbol="ETH-PERP", targets={"A"})
    assert "ETH-PERP" in tracker.log.lines()[0].text and "(1 open)" in tracker.log.lines()[0].text


def test_cancel_all_with_no_targets_confirms_on_ack(tracker):
    t = tracker.sent("ca-1", "cancel-all", now=0.0, targets=set())
    assert t.state is State.SENT
    tracker.on_ack(ack("ca-1", action="cancel-all"), now=0.04)
    assert t.state is State.CONFIRMED
    assert "nothing was open" in tracker.log.lines()[-1].text


def test_cancel_all_with_no_targets_confirms_on_late_ack(tracker):
    t = tracker.sent("ca-1", "cancel-all", now=0.0, targets=set())
    tracker.check_timeouts(6.0)
    assert t.state is State.TIMED_OUT
    tracker.on_ack(ack("ca-1", action="cancel-all"), now=7.0)
    assert t.state is State.CONFIRMED
    assert "after timeout" in tracker.log.lines()[-1].text


def test_cancel_all_2021_ack_fixture(tracker):
    event = parse((FIXTURE_DIR / "cancel-all-ack-2021.json").read_bytes())
    rid = event.request_id
    t = tracker.sent(rid, "cancel-all", now=0.0, targets={"A"})
    assert tracker.on_ack(event, now=0.1) is t and t.state is State.ACKED


def test_cancel_all_timeout_reports_progress(tracker):
    t = tracker.sent("ca-1", "cancel-all", now=0.0, targets={"A", "B"})
    tracker.on_ack(ack("ca-1", action="cancel-all"), now=0.1)
    tracker.on_order(order("A"), now=1.0)
    tracker.check_timeouts(5.0)
    assert t.state is State.TIMED_OUT
    assert "1/2 confirmed" in tracker.log.lines()[-1].text
    assert tracker.on_order(order("B"), now=6.0) == [t]
    assert t.state is State.CONFIRMED and "after timeout" in tracker.log.lines()[-1].text


def test_resolve_with_snapshot_cancel_all_verdict(tracker):
    t = tracker.sent("ca-1", "cancel-all", now=0.0, targets={"A", "B", "C"})
    tracker.on_ack(ack("ca-1", action="cancel-all"), now=0.1)
    tracker.on_order(order("A"), now=0.2)
    done = tracker.resolve_with_snapshot({"B", "C", "UNRELATED"}, now=6.0)
    assert done == [t]
    assert t.still_open == ["B", "C"]
    assert t.verdict and "3 were open" in t.verdict and "1 confirmed" in t.verdict and "2 still open" in t.verdict
    line = tracker.log.lines()[-1]
    assert line.text.startswith("ca-1 verdict") and "B" in line.text and "C" in line.text
    assert line.level == "error"
    assert tracker.resolve_with_snapshot(set(), now=7.0) == []  # one verdict only


def test_resolve_with_snapshot_cancel_all_clean(tracker):
    t = tracker.sent("ca-1", "cancel-all", now=0.0, targets={"A"})
    tracker.on_ack(ack("ca-1", action="cancel-all"), now=0.1)
    assert tracker.resolve_with_snapshot(set(), now=1.0) == [t]
    assert t.still_open == [] and tracker.log.lines()[-1].level == "ok"


def test_resolve_with_snapshot_waits_for_ack_of_cancel_all(tracker):
    t = tracker.sent("ca-1", "cancel-all", now=0.0, targets={"A"})
    assert tracker.resolve_with_snapshot({"A"}, now=0.01) == []
    assert t.verdict is None


def test_resolve_with_snapshot_skips_other_symbol(tracker):
    t = tracker.sent("ca-1", "cancel-all", now=0.0, symbol="BTC-PERP", targets={"A"})
    tracker.on_ack(ack("ca-1", action="cancel-all"), now=0.1)
    assert tracker.resolve_with_snapshot({"A"}, now=1.0, symbol="ETH-PERP") == []
    assert tracker.resolve_with_snapshot({"A"}, now=1.0, symbol="BTC-PERP") == [t]


def test_resolve_with_snapshot_settles_timed_out_cancels(tracker):
    still = tracker.sent("co-1", "cancel-order", now=0.0, symbol="BTC-PERP", order_id="A")
    gone = tracker.sent("co-2", "cancel-order", now=0.0, symbol="BTC-PERP", order_id="B")
    confirmed = tracker.sent("co-3", "cancel-order", now=0.0, symbol="BTC-PERP", order_id="C")
    other_symbol = tracker.sent("co-4", "cancel-order", now=0.0, symbol="ETH-PERP", order_id="E")
    tracker.on_order(order("C"), now=0.1)
    assert confirmed.state is State.CONFIRMED
    tracker.check_timeouts(5.0)
    assert still.state is gone.state is other_symbol.state is State.TIMED_OUT
    done = tracker.resolve_with_snapshot({"A"}, now=6.0, symbol="BTC-PERP")
    assert sorted(t.request_id for t in done) == ["co-1", "co-2"]
    assert other_symbol.final_status is None
    assert still.final_status == "Open"
    assert gone.final_status == "NotOpen"
    assert "STILL OPEN" in texts(tracker.log, "co-1")[-1]
    assert "no longer open" in texts(tracker.log, "co-2")[-1]
    assert tracker.resolve_with_snapshot({"A"}, now=7.0, symbol="BTC-PERP") == []  # settled once
    assert [t.request_id for t in tracker.resolve_with_snapshot({"E"}, now=8.0)] == ["co-4"]
    assert other_symbol.final_status == "Open"
    assert_lines_start_with_ids(tracker)


def test_send_failed(tracker):
    t = tracker.sent("co-1", "cancel-order", now=0.0, order_id=OID)
    tracker.send_failed("co-1", now=0.0, why="not connected")
    assert t.state is State.FAILED and not t.in_flight
    assert tracker.log.lines()[-1].text == "co-1 NOT SENT: not connected"
    assert tracker.check_timeouts(100.0) == []


def test_retry_and_note_in_sent_line(tracker):
    tracker.sent("co-2", "cancel-order", now=0.0, order_id=OID, retry_of="co-1", note="(key c)")
    text = tracker.log.lines()[-1].text
    assert "retry of co-1" in text and "(key c)" in text


def test_connection_lost_logs_in_flight(tracker):
    tracker.sent("co-1", "cancel-order", now=0.0, order_id=OID)
    done = tracker.sent("co-2", "cancel-order", now=0.0, order_id="X")
    tracker.on_order(order("X"), now=0.1)
    assert done.state is State.CONFIRMED
    tracker.on_connection_lost(now=1.0)
    lost = [s for s in texts(tracker.log) if "connection lost" in s]
    assert len(lost) == 1 and lost[0].startswith("co-1 ")


def test_every_line_of_a_mixed_session_starts_with_its_id(tracker):
    tracker.sent("co-1", "cancel-order", now=0.0, symbol="BTC-PERP", order_id="A")
    tracker.sent("co-2", "cancel-order", now=0.0, symbol="BTC-PERP", order_id="B")
    tracker.sent("ca-1", "cancel-all", now=0.0, targets={"C", "D"})
    tracker.sent("po-1", "place-order", now=0.0, symbol="BTC-PERP")
    tracker.on_ack(ack("co-1", "A"), now=0.1)
    tracker.on_error(RequestError(request_id="co-2", code=300006, reason="INVALID_ORDER_ID"), now=0.1)
    tracker.on_ack(ack("ca-1", action="cancel-all"), now=0.1)
    tracker.on_order(order("A"), now=0.2)
    tracker.on_order(order("C", "Filled"), now=0.2)
    tracker.check_timeouts(10.0)
    tracker.resolve_with_snapshot({"D"}, now=11.0)
    tracker.on_order(order("D"), now=12.0)
    assert len(tracker.log) >= 10
    assert_lines_start_with_ids(tracker)
    ids = {line.request_id for line in tracker.log.lines()}
    assert ids == {"co-1", "co-2", "ca-1", "po-1"}
    for line in tracker.log.lines():
        assert re.match(r"^[\w\-]+ \S", line.text)


def test_version_changes_with_each_line(tracker):
    v0 = tracker.version
    tracker.sent("co-1", "cancel-order", now=0.0, order_id=OID)
    assert tracker.version > v0


def test_queries(tracker):
    a = tracker.sent("co-1", "cancel-order", now=0.0, order_id="A")
    b = tracker.sent("co-2", "cancel-order", now=0.0, order_id="A")  # a retry replaces the first
    assert tracker.get("co-1") is a and tracker.get("missing") is None
    assert tracker.cancel_for("A") is b
    assert sorted(t.request_id for t in tracker.in_flight()) == ["co-1", "co-2"]
    assert len(tracker.all()) == 2
    assert a.age(2.5) == 2.5 and a.elapsed_ms(0.0125) == 12


def test_log_line_order_id_defaults_to_request_order(tracker):
    tracker.sent("co-1", "cancel-order", now=0.0, order_id="A")
    assert tracker.log.lines(order_id="A")[0].request_id == "co-1"
    assert tracker.log.lines(order_id="B") == []


def test_parsed_fixture_payload_roundtrip_for_place_order(tracker):
    event = parse((FIXTURE_DIR / "place-order-error.json").read_bytes())
    t = tracker.sent("sampleRequestID", "place-order", now=0.0, symbol="BTC-PERP")
    tracker.on_error(event, now=0.1)
    assert t.state is State.REFUSED
    assert "300001 INVALID_PRICE Order price is too low" in tracker.log.lines()[-1].text
    raw = orjson.loads((FIXTURE_DIR / "place-order-ack.json").read_bytes())
    t2 = tracker.sent("po-2", "place-order", now=0.0, symbol="BTC-PERP")
    tracker.on_ack(parse(orjson.dumps({**raw, "id": "po-2"})), now=0.2)
    assert t2.state is State.ACKED


# -- a request that cannot go out: one line ---------------------------------------------------
def test_not_sent_is_one_line_never_sent_then_not_sent(tracker):
    t = tracker.not_sent("ca-9", "cancel-all", now=3.0, why="not connected (reconnecting)", targets={"a", "b"})
    assert t.state is State.FAILED and not t.in_flight and t.message == "not connected (reconnecting)"
    assert texts(tracker.log, "ca-9") == ["ca-9 cancel-all ALL symbols (2 open) NOT SENT: not connected (reconnecting)"]
    assert tracker.check_timeouts(100.0) == []


# -- open-orders queries: a deadline and an outcome -------------------------------------------
def queries():
    from blotter.core.tracker import SnapshotQueries

    return SnapshotQueries(EventLog(), timeout=2.0)


def test_a_query_times_out_and_a_late_answer_still_counts():
    from blotter.core.tracker import QueryState

    qs = queries()
    q = qs.asked("oo-1", None, now=10.0)
    assert qs.check_timeouts(11.9) == [] and q.state is QueryState.WAITING
    assert qs.check_timeouts(12.0) == [q] and q.state is QueryState.TIMED_OUT and q.state.failed
    assert texts(qs.log) == ["oo-1 open-orders (all symbols): no answer in 2 s"]
    assert qs.match("oo-1") is q
    qs.answered(q, 13.0, open_count=4)
    assert q.state is QueryState.ANSWERED and q.open_count == 4
    assert qs.check_timeouts(100.0) == []


def test_a_refused_query_keeps_the_reason_and_2021_replies_match_the_oldest_unanswered():
    from blotter.core.tracker import QueryState

    qs = queries()
    a = qs.asked("oo-a", "NOPE-PERP", 1.0)
    b = qs.asked("oo-b", None, 1.5)
    assert qs.refused("oo-a", 300012, "300012 INVALID_PRODUCT Invalid Product Symbol", 1.1) is a
    assert a.state is QueryState.REFUSED and "INVALID_PRODUCT" in a.reason and a.code == 300012
    assert qs.refused("oo-unknown", 1, "x", 1.2) is None
    assert qs.match(None) is b  # a bare 2021 array: the oldest query not yet answered
    lost = qs.connection_lost(2.0)
    assert lost == [b] and b.state is QueryState.LOST and qs.match(None) is None


def test_a_timed_out_cancel_is_settled_by_its_orders_status(tracker):
    """Reconciliation asks REST about the order of an UNKNOWN cancel: still open settles it
    (the row stops showing UNKNOWN), once, and a late confirmation still resolves it."""
    t = tracker.sent("co-1", "cancel-order", now=0.0, order_id=OID)
    other = tracker.sent("co-2", "cancel-order", now=0.0, order_id="other")
    tracker.check_timeouts(5.0)
    assert tracker.settle_cancel("co-1", True, 6.0, "REST order status") is t
    assert t.final_status == "Open" and other.final_status is None  # only that request
    assert texts(tracker.log, "co-1")[-1] == "co-1 REST order status: order is STILL OPEN"
    assert tracker.settle_cancel("co-1", True, 7.0, "REST order status") is None  # settled once
    tracker.on_order(order(status="Canceled"), now=9.0)
    assert t.state is State.CONFIRMED
    assert_lines_start_with_ids(tracker)


# -- the REST road (issue 13 item 4) ------------------------------------------------------------
def test_a_rest_request_is_announced_when_it_goes_out_and_its_lines_name_the_road():
    from blotter.core.tracker import REST

    log = EventLog()
    tr = RequestTracker(log, timeout=5)
    t = tr.sent("co-1", "cancel-order", 0.0, symbol="BTC-PERP", order_id=OID, road=REST, announce=False)
    assert texts(log) == [] and t.in_flight
    tr.check_timeouts(99.0)  # not out yet: its own call's deadline decides, not the timeout
    assert t.state is State.SENT
    tr.announce("co-1")
    tr.acked("co-1", 0.04)
    tr.on_order(order(), 0.09, "REST order status")
    assert texts(log) == [
        f"co-1 sent cancel-order BTC-PERP {OID} via REST",
        "co-1 ACK via REST (40 ms)",
        "co-1 confirmed Canceled (90 ms, by REST order status)",
    ]
    tr.sent("co-2", "cancel-order", 1.0, symbol="BTC-PERP", order_id="x" * 9, road=REST, announce=False)
    tr.not_sent_after("co-2", 1.1, "not connected; REST not reachable")
    assert texts(log, "co-2") == [f"co-2 cancel-order BTC-PERP {'x' * 9} NOT SENT: not connected; REST not reachable"]
    assert tr.get("co-2").state is State.FAILED
    tr.sent("co-3", "cancel-order", 2.0, symbol="BTC-PERP", order_id="y" * 9, road=REST)
    tr.refused("co-3", 2.1, 300006, "INVALID_ORDER_ID", "no such order")
    assert texts(log, "co-3")[-1] == (
        "co-3 ERR 300006 INVALID_ORDER_ID no such order (the order id is invalid (unknown, or not open)) via REST"
    )
    tr.sent("co-4", "cancel-order", 3.0, symbol="BTC-PERP", order_id="z" * 9, road=REST)
    tr.road_failed("co-4", 3.2, "HTTP 503")
    assert texts(log, "co-4")[-1] == "co-4 failed via REST: HTTP 503" and tr.get("co-4").in_flight


def test_a_blind_cancel_all_claims_nothing_about_what_was_open(tracker):
    """Sent before any snapshot: no "(0 open)", no "nothing was open" at its ACK, and its
    verdict gives what the snapshot lists open now (an empty book is not a guess then)."""
    t = tracker.sent("ca-1", "cancel-all", now=1.0, targets=set(), blind=True)
    tracker.acked("ca-1", 1.05)
    assert t.state is State.ACKED  # not CONFIRMED: what it had to cancel is not known
    tracker.resolve_with_snapshot({"A1", "B2"}, now=1.3)
    lines = texts(tracker.log, "ca-1")
    assert "sent cancel-all ALL symbols (open orders not loaded)" in lines[0], lines
    assert not any("nothing was open" in line or "0 open" in line or "0 were open" in line for line in lines), lines
    assert "sent before the open orders were loaded" in lines[-1] and "2 open now: A1, B2" in lines[-1]
    assert t.still_open == ["A1", "B2"]
    # the same request with targets known: its ACK with nothing open confirms it, as before
    u = tracker.sent("ca-2", "cancel-all", now=2.0, targets=set())
    tracker.acked("ca-2", 2.01)
    assert u.state is State.CONFIRMED and "nothing was open" in texts(tracker.log, "ca-2")[-1]
