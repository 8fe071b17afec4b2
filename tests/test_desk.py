"""The desk (session + store + tracker) against the real simulator on loopback."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest
from pydantic import SecretStr

from blotter.core import State
from blotter.desk import ConnState, Desk, DeskSettings
from blotter.net.endpoints import EndpointError
from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET
from tests.helpers import eventually, running_desk, running_sim


def open_ids(sim) -> set[str]:
    return {o["orderId"] for o in sim.open_orders()}


def desk_open(desk: Desk) -> set[str]:
    return {e.order_id for e in desk.store.open_entries()}


@pytest.mark.parametrize("auth_mode", ["headers", "op"])
@pytest.mark.parametrize("encoding", ["base64", "raw"])
async def test_connects_authenticates_and_loads_snapshot(auth_mode, encoding):
    secret = "demo-raw-secret-used-as-utf8-bytes" if encoding == "raw" else base64.b64encode(b"k" * 32).decode()
    async with running_sim(api_secret=secret, secret_encoding=encoding) as sim:
        async with running_desk(
            sim, api_secret=SecretStr(secret), secret_encoding=encoding, auth_mode=auth_mode
        ) as desk:
            assert await desk.wait_live(5)
            assert desk.state is ConnState.LIVE
            assert desk_open(desk) == open_ids(sim)
            assert len(open_ids(sim)) == 12
            subs = [f.data for f in sim.received if isinstance(f.data, dict) and f.data.get("op") == "sub"]
            assert subs and subs[0]["ch"] == "futures-order"


@pytest.mark.parametrize("auth_mode", ["headers", "op"])
async def test_wrong_secret_is_refused_with_a_hint(auth_mode):
    async with running_sim() as sim:
        wrong = SecretStr(base64.b64encode(b"not the secret at all....").decode())
        async with running_desk(sim, api_secret=wrong, auth_mode=auth_mode) as desk:
            assert not await desk.wait_live(5)
            assert desk.state is ConnState.AUTH_REFUSED
            assert "base64 key form" in desk.detail and "--secret-encoding raw" in desk.detail
            assert wrong.get_secret_value() not in desk.detail
            assert any("auth refused" in line.text for line in desk.log.lines())


async def test_cancel_order_sends_the_documented_frame_and_is_confirmed():
    async with running_sim() as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        target = sorted(open_ids(sim))[3]
        tracked = await desk.cancel_order(target)
        frame = await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "cancel-order")
        data = frame.data
        assert data["op"] == "req" and data["ac"] == "futures" and data["id"] == tracked.request_id
        assert data["args"]["orderId"] == target
        assert data["args"]["symbol"] == desk.store.get(target).order.symbol
        assert abs(data["args"]["time"] - time.time() * 1000) < 1000
        await eventually(lambda: tracked.state is State.CONFIRMED)
        assert tracked.final_status == "Canceled"
        assert desk.store.get(target).status == "Canceled"
        texts = [line.text for line in desk.log.lines() if line.request_id == tracked.request_id]
        assert texts[0].startswith(f"{tracked.request_id} sent cancel-order")
        assert any(t.startswith(f"{tracked.request_id} ACK") for t in texts)
        assert any(t.startswith(f"{tracked.request_id} confirmed Canceled") for t in texts)


async def test_2021_dialect_ack_without_id_still_resolves():
    async with running_sim(dialect="2021") as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        assert desk_open(desk) == open_ids(sim)
        target = sorted(open_ids(sim))[0]
        tracked = await desk.cancel_order(target)
        await eventually(lambda: tracked.state is State.CONFIRMED)
        assert tracked.acked_at is not None
        bogus = await desk.cancel_order("s0000000000000U0000000000bogus001", symbol="BTC-PERP")
        await eventually(lambda: bogus.state is State.REFUSED)
        assert bogus.code == 300006 and bogus.reason == "INVALID_ORDER_ID"


async def test_refused_cancel_shows_code_reason_message():
    async with running_sim(refuse_cancels=300009) as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        target = sorted(open_ids(sim))[0]
        tracked = await desk.cancel_order(target)
        await eventually(lambda: tracked.state is State.REFUSED)
        assert tracked.code == 300009 and tracked.reason == "TRADING_VIOLATION"
        err = [l.text for l in desk.log.lines() if l.request_id == tracked.request_id and " ERR " in l.text]
        assert err and err[0].startswith(f"{tracked.request_id} ERR 300009 TRADING_VIOLATION")
        assert desk.store.get(target).is_open


async def test_timeout_then_snapshot_settles_unknown():
    async with (
        running_sim(ack_delay=1.5) as sim,
        running_desk(sim, request_timeout=0.4, resnapshot_min_interval=0) as desk,
    ):
        assert await desk.wait_live(5)
        target = sorted(open_ids(sim))[0]
        tracked = await desk.cancel_order(target)
        await eventually(lambda: tracked.state is State.TIMED_OUT, 3)
        assert any("TIMEOUT" in l.text for l in desk.log.lines() if l.request_id == tracked.request_id)
        # The late confirmation still resolves it.
        await eventually(lambda: tracked.state is State.CONFIRMED, 5)
        assert any("after timeout" in l.text for l in desk.log.lines() if l.request_id == tracked.request_id)


async def test_duplicate_cancel_is_suppressed_and_read_only_sends_nothing():
    async with running_sim(ack_delay=0.5) as sim:
        async with running_desk(sim) as desk:
            assert await desk.wait_live(5)
            target = sorted(open_ids(sim))[0]
            first = await desk.cancel_order(target)
            second = await desk.cancel_order(target)
            assert first is not None and second is None
            assert any("already cancelling" in l.text and first.request_id in l.text for l in desk.log.lines())
            await sim.flush()
            assert len([f for f in sim.requests("cancel-order") if f.data["args"]["orderId"] == target]) == 1
        async with running_desk(sim, read_only=True) as desk:
            assert await desk.wait_live(5)
            before = len(sim.requests())
            assert await desk.cancel_order(sorted(open_ids(sim))[0]) is None
            assert await desk.cancel_all() is None
            await asyncio.sleep(0.1)
            assert [f for f in sim.requests()[before:] if f.data["action"] != "futures-open-orders"] == []
            assert any("read-only" in l.text for l in desk.log.lines())


async def test_cancel_all_confirms_and_gives_a_verdict():
    async with running_sim(initial_orders=20) as sim, running_desk(sim, resnapshot_min_interval=0) as desk:
        assert await desk.wait_live(5)
        symbol = desk.store.open_entries()[0].order.symbol
        on_symbol = {e.order_id for e in desk.store.open_by_symbol(symbol)}
        tracked = await desk.cancel_all(symbol)
        assert tracked.targets == on_symbol
        await eventually(lambda: tracked.verdict is not None)
        assert tracked.state is State.CONFIRMED and tracked.confirmed == on_symbol
        assert tracked.still_open == []
        assert not sim.open_orders(symbol)
        everything = await desk.cancel_all()
        await eventually(lambda: everything.verdict is not None)
        assert sim.open_orders() == [] and desk.store.open_count() == 0
        assert f"{len(everything.targets)} were open" in everything.verdict


async def test_reconnect_restores_the_table_and_settles_vanished_orders():
    async with running_sim(initial_orders=15) as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        victim = sorted(open_ids(sim))[0]
        # Cancelled behind the blotter's back while its update is lost.
        order = sim.book.orders[victim]
        order.cancel(sim.book.clock.now())
        sim.book.refresh(order)
        await sim.drop_connections()
        await eventually(lambda: desk.session.connections >= 2 and desk.state is ConnState.LIVE, 10)
        await eventually(lambda: desk.snapshot_count >= 2)
        assert desk_open(desk) == open_ids(sim)
        # not in the snapshot: NOT OPEN, then settled through REST order/status (issue 13 item 3)
        await eventually(lambda: desk.store.get(victim).status == "Canceled", 5)
        assert any(l.text == f"{victim} ended while disconnected: Canceled, nothing filled" for l in desk.log.lines())
        assert any("reconnecting" in l.text for l in desk.log.lines())


async def test_pings_answered_rtt_measured_and_dead_server_detected():
    async with running_sim(ping_interval=0.1, client_ping_quiet=0) as sim:
        async with running_desk(sim, ping_interval=0.1) as desk:
            assert await desk.wait_live(5)
            await asyncio.sleep(0.6)
            assert desk.state is ConnState.LIVE and desk.session.connections == 1
            assert desk.rtt_ms is not None and desk.skew_ms is not None and not desk.skew_warning
            assert any(f.data == {"op": "pong"} for f in sim.received)
            sim.config.no_pong = True
            await eventually(lambda: desk.session.connections >= 2, 5)


async def test_stale_when_the_server_goes_silent():
    async with running_sim(rate=50) as sim, running_desk(sim, stale_after=0.3) as desk:
        assert await desk.wait_live(5)
        await asyncio.sleep(0.1)
        assert not desk.is_stale()
        sim.set_silent(True)
        await eventually(lambda: desk.is_stale(), 3)
        sim.set_silent(False)
        await eventually(lambda: not desk.is_stale(), 3)


async def test_sequence_faults_are_survived():
    async with running_sim(rate=200, skip_sn_every=7, repeat_sn_every=5, malformed_every=40) as sim:
        async with running_desk(sim, resnapshot_min_interval=0.2) as desk:
            assert await desk.wait_live(5)
            await asyncio.sleep(1.0)
            sim.pause_flow()
            await sim.flush()
            await desk.refresh()
            await asyncio.sleep(0.3)
            assert desk.store.stats.repeated > 0 and desk.counts["bad_frames"] > 0
            assert desk_open(desk) == open_ids(sim)


def test_plain_ws_to_a_remote_host_is_refused():
    with pytest.raises(EndpointError, match="only loopback"):
        Desk(
            DeskSettings(url="ws://example.com/1/api/pro/v2/stream", api_key=SecretStr("k"), api_secret=SecretStr("s"))
        )


async def test_unreachable_host_is_a_visible_state_not_a_crash():
    desk = Desk(
        DeskSettings(
            url="ws://127.0.0.1:9/1/api/pro/v2/stream",
            api_key=SecretStr("k" * 32),
            api_secret=SecretStr("c2VjcmV0"),
            backoff_max=0.2,
        )
    )
    task = asyncio.create_task(desk.run())
    try:
        await eventually(lambda: desk.state is ConnState.RECONNECTING and desk.attempt >= 2, 5)
        assert "refused" in desk.detail
        tracked = await desk.cancel_all()  # both roads down (REST is on the same port): not sent
        await eventually(lambda: tracked.state is State.FAILED, 5)
        assert "not connected" in tracked.message and "REST" in tracked.message
    finally:
        await desk.stop()
        await asyncio.wait_for(task, 5)


# -- every request has a deadline and an outcome (issue 10 item 3) ------------------------------
def open_orders_queries(sim) -> list:
    return [f for f in sim.requests() if f.data.get("action") == "futures-open-orders"]


@pytest.mark.parametrize("fault", ["ignore", "garble"])
async def test_an_unanswered_snapshot_is_waited_for_visibly_and_asked_again(fault):
    from blotter.desk import SnapshotState

    async with (
        running_sim(open_orders_fault=fault) as sim,
        running_desk(sim, request_timeout=0.3, resnapshot_min_interval=0.1) as desk,
    ):
        await eventually(lambda: desk.state is ConnState.LIVE, 5)
        assert desk.snapshot_state is SnapshotState.WAITING and "waiting for the open orders" in desk.snapshot_wait
        await eventually(lambda: len(open_orders_queries(sim)) >= 3, 10)  # asked again, with backoff
        assert desk.snapshot_state is SnapshotState.WAITING and len(desk.store) == 0
        assert not await desk.wait_live(0.2)
        assert any("open-orders (all symbols): no answer in 0.3 s" in l.text for l in desk.log.lines())
        sim.config.open_orders_fault = "none"
        await eventually(lambda: desk.snapshot_state is SnapshotState.LOADED, 15)
        assert desk_open(desk) == open_ids(sim) and desk.snapshot_wait == ""


async def test_an_unknown_row_is_queried_again_until_it_resolves():
    async with (
        running_sim(ack_delay=30) as sim,
        running_desk(sim, request_timeout=0.3, resnapshot_min_interval=0.1) as desk,
    ):
        assert await desk.wait_live(5)
        target = sorted(open_ids(sim))[0]
        sim.config.open_orders_fault = "ignore"
        sim.rest.faults.drop_connections = True  # REST cannot settle it: the snapshot is the fallback
        tracked = await desk.cancel_order(target)
        await eventually(lambda: tracked.state is State.TIMED_OUT, 5)
        asked = len(open_orders_queries(sim))
        await eventually(lambda: len(open_orders_queries(sim)) >= asked + 2, 10)  # not answered: asked again
        assert tracked.final_status is None  # still UNKNOWN
        sim.config.open_orders_fault = "none"
        await eventually(lambda: tracked.final_status is not None, 15)
        assert tracked.final_status == "Open"  # the exchange still lists it: the trader sees it open, not UNKNOWN


# -- cancel-all while offline: one line (issue 10 item 8) ----------------------------------------
async def test_cancel_all_and_retry_offline_say_not_sent_once():
    async with running_sim(initial_orders=6, refuse_cancels=300009) as sim:
        async with running_desk(sim, resnapshot_min_interval=0) as desk:
            assert await desk.wait_live(5)
            refused = await desk.cancel_all()
            await eventually(lambda: refused.state is State.REFUSED, 5)
            await sim.stop()
            await eventually(lambda: desk.state is not ConnState.LIVE, 5)
            seen = desk.log.last_seq
            tracked = await desk.cancel_all()  # the REST road is tried, and is down too
            await eventually(lambda: tracked.state is State.FAILED, 5)
            lines = [l.text for l in desk.log.lines(since=seen) if l.request_id == tracked.request_id]
            assert len(lines) == 1 and "NOT SENT" in lines[0] and "sent cancel-all" not in lines[0], lines
            assert "(6 open)" in lines[0]

            desk.retry_hint = "press R to cancel them again"
            seen = desk.log.last_seq
            # the retry acts on the latest cancel-all: a batch cancel over REST, which is down too
            sent = await desk.retry_cancel_all()
            assert len(sent) == 6
            await eventually(lambda: all(t.state is State.FAILED for t in sent), 5)
            await asyncio.sleep(0.1)
            # (the desk goes on trying to reconnect meanwhile: its own lines are not the retry's)
            new = [l.text for l in desk.log.lines(since=seen) if not l.text.startswith("connection: ")]
            assert len(new) == 1 and "6 order(s) still open: NOT SENT: not connected" in new[0], new


# -- the one cancel-all-and-verify (issue 11 item 6) --------------------------------------------
async def test_cancel_all_and_verify_is_verified_only_by_a_fresh_answered_query():
    from blotter.core.tracker import QueryState
    from blotter.desk import Outcome

    async with running_sim(initial_orders=20) as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        btc = {e.order_id for e in desk.store.open_by_symbol("BTC-PERP")}
        refused = await desk.cancel_all_and_verify("NOPE-PERP")
        assert refused.outcome is Outcome.REFUSED and not refused.verified
        assert "300012" in refused.reason and refused.requests[0].state is State.REFUSED
        assert (
            {e.order_id for e in desk.store.open_by_symbol("BTC-PERP")}
            == btc
            == {o["orderId"] for o in sim.open_orders("BTC-PERP")}
        )

        done = await desk.cancel_all_and_verify("BTC-PERP")
        assert done.verified and done.outcome is Outcome.VERIFIED and done.still_open == []
        q = done.query
        assert q is not None and q.state is QueryState.ANSWERED and q.symbol == "BTC-PERP"
        assert q.asked_at >= done.requests[-1].done_at  # asked after the cancel-all was answered
        assert sim.open_orders("BTC-PERP") == [] and sim.open_orders()


async def test_cancel_all_and_verify_counts_orders_placed_since_and_retries():
    """The verdict counts every open order the answer lists, not only the cancel-all's targets."""
    from blotter.desk import Outcome
    from tests.helpers.exchange import record, scripted_exchange

    replies = [[], [record("s18f1a2b3c4dU1234567890lateAAAA1")], []]  # the book, round 1, round 2

    def open_orders(symbol):
        return {"code": 0, "data": replies.pop(0) if replies else []}

    def order_reply(data):
        return {
            "m": "order",
            "action": data.get("action"),
            "ac": "FUTURES",
            "code": 0,
            "id": data["id"],
            "info": {"symbol": ""},
        }

    async with scripted_exchange(open_orders, order_reply) as url:
        desk = Desk(
            DeskSettings(
                url=url,
                api_key=SecretStr("k" * 32),
                api_secret=SecretStr("c2VjcmV0"),
                auth_mode="op",
                request_timeout=2,
            )
        )
        task = asyncio.create_task(desk.run())
        try:
            assert await desk.wait_live(5)
            one = await desk.cancel_all_and_verify(None, rounds=1)
            assert one.outcome is Outcome.STILL_OPEN and not one.verified
            assert [e.order_id for e in one.still_open] == ["s18f1a2b3c4dU1234567890lateAAAA1"]
            assert one.requests[0].targets == set()  # it was not known when the cancel-all was sent
            two = await desk.cancel_all_and_verify(None, rounds=1)
            assert two.verified and desk.store.open_count() == 0
        finally:
            await desk.stop()
            await asyncio.wait_for(task, 5)


async def test_a_cancel_while_offline_is_one_not_sent_line():
    async with running_sim(initial_orders=3) as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        target = sorted(open_ids(sim))[0]
        await sim.stop()
        await eventually(lambda: desk.state is not ConnState.LIVE, 5)
        tracked = await desk.cancel_order(target)  # both roads down: the REST attempt is not sent either
        await eventually(lambda: tracked.state is State.FAILED, 5)
        lines = [l.text for l in desk.log.lines() if l.request_id == tracked.request_id]
        assert len(lines) == 1 and "NOT SENT" in lines[0], lines
        assert target in lines[0]


async def test_a_header_auth_login_is_redacted_in_the_journal_too(tmp_path):
    # The journal never sees header-auth values as a frame: the desk hands each login to it,
    # so a server that echoes the signature or its timestamp back cannot get them written.
    import sqlite3

    from blotter.journal import Journal

    path = tmp_path / "journal.sqlite3"
    journal = Journal.open(path)
    logins: list[tuple[str, int]] = []
    async with running_sim() as sim:
        desk = Desk(
            DeskSettings(url=sim.url, api_key=SecretStr(DEMO_API_KEY), api_secret=SecretStr(DEMO_API_SECRET)),
            journal=journal,
        )
        handed_on = desk.session.redactor.on_login

        def watch(signature: str, timestamp: int) -> None:
            logins.append((signature, timestamp))
            if handed_on is not None:
                handed_on(signature, timestamp)

        desk.session.redactor.on_login = watch
        task = asyncio.create_task(desk.run())
        try:
            assert await desk.wait_live(5)
        finally:
            await desk.stop()
            await asyncio.wait_for(task, 5)
    assert logins, "the header login was not handed on"
    signature, timestamp = logins[-1]
    journal.record_note(f"echo: {signature} at {timestamp}")
    journal.close()
    with sqlite3.connect(path) as db:  # (ts_ms holds wall-clock ms too: only the text columns)
        rows = db.execute("SELECT kind, message, raw FROM frames").fetchall()
    text = "\n".join(str(row) for row in rows)
    assert "echo: " in text
    assert signature not in text and str(timestamp) not in text


# -- a big snapshot is folded a slice at a time (issue 14: the cancel never waits) ----------------

BIG = 20_000
"""Open orders of the 'big snapshot' tests (a 10 MB reply; the issue's figure is 100,000)."""


@pytest.mark.parametrize("dialect", ["current", "2021"])
async def test_a_cancel_runs_while_a_big_snapshot_is_being_folded(dialect):
    # The desk's loop runs other work between slices of the snapshot: a task that waits
    # on the loop sees the store part-filled, and a cancel it sends leaves before the
    # snapshot's query is answered. Folded in one step, the store goes from 0 to all.
    # (The 2021 bare array is read in one go, then folded in slices.)
    async with running_sim(initial_orders=BIG, dialect=dialect) as sim:
        async with running_desk(sim, request_timeout=60) as desk:
            seen: list[int] = []
            cancelled: list[str] = []
            answered_before_cancel: list[bool] = []

            async def probe() -> None:
                while desk.snapshot_count == 0:
                    n = len(desk.store)
                    if 0 < n < BIG:
                        seen.append(n)
                        if not cancelled:
                            target = next(iter(desk.store.entries())).order_id
                            answered_before_cancel.append(desk.snapshot_count > 0)
                            assert await desk.cancel_order(target) is not None
                            cancelled.append(target)
                    await asyncio.sleep(0)

            task = asyncio.create_task(probe())
            await eventually(lambda: desk.snapshot_count >= 1, timeout=120)
            await task
            assert len(seen) >= 2, "the snapshot was folded in one step"
            assert answered_before_cancel == [False]
            # the cancel reached the exchange, and the snapshot still came out whole
            await eventually(lambda: any(f.get("action") == "cancel-order" for f in _requests(sim)), timeout=30)
            # the cancel's stream update, folded between slices, is not undone by the snapshot's older record
            await eventually(lambda: desk_open(desk) == open_ids(sim), timeout=30)
            assert cancelled[0] not in desk_open(desk) and len(desk.store) == BIG
            snapshot_lines = [line for line in desk.log.lines() if "open orders (all symbols)" in line.text]
            assert len(snapshot_lines) == 1, "the query is answered once, at the end"


async def test_a_big_resnapshot_is_folded_in_slices_and_answers_its_query_once_at_the_end():
    async with running_sim(initial_orders=BIG) as sim:
        async with running_desk(sim, request_timeout=60) as desk:
            await eventually(lambda: desk.snapshot_count >= 1, timeout=120)
            states: list[str] = []
            desk.on_folded = lambda: states.append(q.state.value if q is not None else "-")
            q = None
            rid = await desk.refresh()
            q = desk.queries.get(rid)
            await eventually(lambda: desk.snapshot_count >= 2, timeout=120)
            # called between slices (query still waiting), and once after: answered
            assert states.count("answered") == 1 and states[-1] == "answered"
            assert states.count("waiting") >= 2
            assert desk_open(desk) == open_ids(sim)


def _requests(sim) -> list[dict]:
    return [f.data for f in sim.received if isinstance(f.data, dict)]


async def test_a_cancel_key_runs_between_two_parts_of_a_big_snapshot_fold(monkeypatch):
    """On its own thread the desk folds a big snapshot a part at a time; a cancel key
    (an urgent job) runs after the part being folded, not at the end of the step (2 ms of
    parts) nor of the fold."""
    import collections

    import blotter.desk as desk_module
    from blotter.protocol.messages import Order

    monkeypatch.setattr(desk_module, "SNAPSHOT_STEP_SECONDS", 60.0)  # no pause: only the parts
    desk = Desk(
        DeskSettings(url="ws://127.0.0.1:1/1/api/pro/v2/stream", api_key=DEMO_API_KEY, api_secret=DEMO_API_SECRET)
    )
    urgent: collections.deque = collections.deque()
    desk.session.urgent = urgent
    slice_ = desk_module.SNAPSHOT_SLICE_ORDERS
    orders = [
        Order.model_validate(
            {
                "orderId": f"o{i:06d}",
                "s": "BTC-PERP",
                "sd": "Buy",
                "st": "New",
                "ot": "Limit",
                "p": "1",
                "q": "1",
                "sn": 1,
            }
        )
        for i in range(3 * slice_)
    ]
    ran_at: list[int] = []
    fold = desk.store.begin_snapshot(time.monotonic())
    real_add = fold.add

    def add(part, keep=None):
        real_add(part, keep)
        if len(desk.store) == slice_:  # the first part is in: the key comes now
            urgent.append(lambda: ran_at.append(len(desk.store)))

    monkeypatch.setattr(fold, "add", add)
    await desk._fold_in_slices(fold, None, orders, None, 0)
    assert ran_at == [slice_], "the key ran right after the part it came during"
    assert len(desk.store) == 3 * slice_


def test_only_the_first_snapshot_is_read_while_it_arrives_and_the_collector_then_holds_off():
    """Desk._read_ahead: with nothing in the store, a big reply's records are read as they
    arrive, no middle or full collection runs meanwhile, and the parts read are collected
    young and frozen every few parts; once the store holds orders, a re-snapshot is only
    checked as it arrives (its records mostly repeat the store's: not held twice)."""
    import gc

    from blotter.collector import NEVER
    from blotter.protocol.messages import Order

    desk = Desk(
        DeskSettings(url="ws://127.0.0.1:1/1/api/pro/v2/stream", api_key=DEMO_API_KEY, api_secret=DEMO_API_SECRET)
    )
    before = gc.get_threshold()
    try:
        pause = desk._read_ahead()
        assert pause is not None and pause == desk.collector.snapshot_slice
        assert gc.get_threshold()[1:] == (NEVER, NEVER)
        gc.set_threshold(*before)
        desk.store.apply_update(
            Order.model_validate(
                {"orderId": "o1", "s": "BTC-PERP", "sd": "Buy", "st": "New", "ot": "Limit", "p": "1", "q": "1", "sn": 1}
            ),
            0.0,
        )
        assert desk._read_ahead() is None and gc.get_threshold() == before
    finally:
        gc.set_threshold(*before)
