"""Chaos: the desk against a misbehaving exchange, with order flow and cancels.

Every transmission fault of the simulator is on at once (dropped connections,
non-JSON frames, far jumps and repeats of the realistic sequence counter), cancels are refused or
answered late for a while, and for one phase the server stops answering pings so
the client must notice and reconnect. Cancels go out at random throughout (seeded).

When the exchange goes quiet and well-behaved again, the desk must agree with it
exactly, every request must have reached a final state, and nothing may have
raised anywhere. ``pytest -s`` shows the counts.
"""

from __future__ import annotations

import asyncio
import collections
import random
from decimal import Decimal

import pytest

from blotter.core import NOT_OPEN, State
from blotter.desk import ConnState, Desk
from tests.helpers import eventually, running_desk, running_sim


def rest_received(sim, tracked: dict) -> set:
    """Request ids of the cancels that reached the simulator over REST: a cancel's and a batch
    item's REST ``id`` (``rest_request_id`` of the request id); a REST cancel-all carries no id,
    so the ones the desk sent over REST count, but never more than the simulator received."""
    import orjson

    from blotter.roads import rest_request_id

    by_wire = {rest_request_id(rid): rid for rid in tracked}
    ids: set = set()
    all_calls = 0
    for call in sim.rest.calls:
        if call.method != "DELETE":
            continue
        if call.path.endswith("/order/all"):
            all_calls += 1
            continue
        body = orjson.loads(call.body or b"{}")
        for item in body.get("orders", [body]):
            if item.get("id") in by_wire:
                ids.add(by_wire[item["id"]])
    rest_alls = [rid for rid, t in tracked.items() if t.action == "cancel-all" and t.road == "REST" and t.announced]
    assert len(rest_alls) <= all_calls, (rest_alls, all_calls)
    return ids | set(rest_alls)


CANCEL_ACTIONS = ("cancel-order", "cancel-all")


def dec(value) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def sim_view(sim) -> dict[str, tuple[str, Decimal | None, int | None]]:
    return {o["orderId"]: (o["status"], dec(o["cumFilledQty"]), o["seqNum"]) for o in sim.open_orders()}


def desk_view(desk: Desk) -> dict[str, tuple[str, Decimal | None, int | None]]:
    return {e.order_id: (e.status, e.order.filled_qty, e.order.seq) for e in desk.store.open_entries()}


class Canceller:
    """Random cancels on the desk's open orders (and now and then a cancel-all of a symbol)."""

    def __init__(self, desk: Desk, seed: int, symbols: list[str]) -> None:
        self.desk = desk
        self.rng = random.Random(seed)
        self.symbols = symbols
        self.sent: list = []
        self.not_sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self.rng.uniform(0.005, 0.05))
            if self.rng.random() < 0.04:
                tracked = await self.desk.cancel_all(self.rng.choice(self.symbols))
            else:
                open_ids = sorted(e.order_id for e in self.desk.store.open_entries())
                if not open_ids:
                    continue
                tracked = await self.desk.cancel_order(self.rng.choice(open_ids))
            if tracked is None:
                self.not_sent += 1  # duplicate suppressed: the log says why
            else:
                self.sent.append(tracked)


async def wait_in_phase(seconds: float, stop_when=None) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        if stop_when is not None and stop_when():
            return
        await asyncio.sleep(0.02)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("dialect", "scale"), [("current", 1.0), ("2021", 0.5)])
async def test_chaos_desk_converges_and_every_request_ends(dialect, scale, loop_errors, handler_failures):
    seed = 20240611 if dialect == "current" else 4242
    async with (
        running_sim(
            dialect=dialect,
            seed=seed,
            rate=200,
            initial_orders=60,
            drop_every=350,
            malformed_every=97,
            skip_sn_every=53,
            repeat_sn_every=41,
        ) as sim,
        running_desk(
            sim,
            ping_interval=0.25,
            request_timeout=1.0,
            resnapshot_min_interval=0.2,
            backoff_max=0.3,
            log_lines=500_000,
        ) as desk,
    ):
        assert await desk.wait_live(5)
        stop = asyncio.Event()
        canceller = Canceller(desk, seed, list(sim.config.symbols))
        task = asyncio.create_task(canceller.run(stop))

        def log_has(text: str, since: int = 0) -> bool:
            return any(text in line.text for line in desk.log.lines(since))

        try:
            # Phase 1: transmission faults only.
            await wait_in_phase(3.0 * scale)
            # Phase 2: the exchange refuses cancels for a while, then answers late.
            sim.config.refuse_cancels = 300009
            await wait_in_phase(1.5 * scale)
            sim.config.refuse_cancels = None
            sim.config.ack_delay = 0.3
            await wait_in_phase(1.5 * scale)
            sim.config.ack_delay = 1.6  # longer than request_timeout: timeouts, then late confirmations
            await wait_in_phase(1.5)
            sim.config.ack_delay = 0.0
            sim.config.refuse_cancels = 300006
            await wait_in_phase(1.0 * scale)
            sim.config.refuse_cancels = None
            # Phase 3: no pongs: the client must notice and reconnect.
            # Only what happens from here on counts. A line naming the missing pong comes a
            # moment before the reconnect is counted (a cancel refused meanwhile gives the
            # reason too), so the wait is for both.
            disconnects_before = desk.counts["disconnects"]
            phase_start = desk.log.last_seq
            sim.config.no_pong = True
            await wait_in_phase(
                6.0,
                stop_when=lambda: (
                    log_has("no pong for", phase_start) and desk.counts["disconnects"] > disconnects_before
                ),
            )
            sim.config.no_pong = False
            assert log_has("no pong for", phase_start), "the client never noticed the missing pongs"
            assert desk.counts["disconnects"] > disconnects_before
            # Phase 4: everything again, with cancels refused on and off.
            for refuse in (300009, None, 300020, None):
                sim.config.refuse_cancels = refuse
                await wait_in_phase(0.75 * scale)
        finally:
            stop.set()
            await task

        # The exchange goes quiet and well-behaved.
        sim.pause_flow()
        for name in ("drop_every", "malformed_every", "skip_sn_every", "repeat_sn_every", "refuse_cancels"):
            setattr(sim.config, name, None)
        sim.config.ack_delay = 0.0
        sim.config.no_pong = False
        await asyncio.sleep(1.7)  # answers still held by the last ack_delay go out
        await sim.flush()

        # Re-snapshot on a live connection and wait for that very reply.
        async def resnapshot() -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while True:
                assert loop.time() < deadline, f"no fresh snapshot: {desk.state} {desk.detail}"
                await eventually(lambda: desk.session.connected, 5)
                rid = await desk.refresh()
                if rid is None:
                    continue
                try:
                    await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("id") == rid, 2)
                except TimeoutError:
                    continue  # the frame was lost with a connection: ask again
                await sim.flush()
                try:
                    await eventually(lambda: desk.queries.get(rid).state.name == "ANSWERED", 2)
                    return
                except AssertionError:
                    continue

        await resnapshot()
        # Every request reaches a final state (timeouts run in the desk's housekeeping).
        await eventually(lambda: not desk.tracker.in_flight(), desk.settings.request_timeout + 3)
        await resnapshot()  # after late confirmations and verdict snapshots, once more

        assert desk.state is ConnState.LIVE

        # 0. Reconciliation: no NOT OPEN row whose truth REST knows (each was asked about
        #    through REST order/status and settled to its final status, fills and fee).
        def not_open_rest_knows() -> list[str]:
            return [e.order_id for e in desk.store.entries() if e.status == NOT_OPEN and e.order_id in sim.orders]

        try:
            await eventually(lambda: not desk.reconciler.busy and not not_open_rest_knows(), 15)
        except AssertionError:
            raise AssertionError(
                f"NOT OPEN rows whose truth REST knows: {not_open_rest_knows()[:5]} "
                f"({len(sim.requests('futures-open-orders'))} snapshots asked, {len(sim.rest.calls)} REST calls)"
            ) from None
        for e in desk.store.entries():
            truth = sim.orders.get(e.order.order_id)
            if truth is not None and not e.is_open and e.status != NOT_OPEN:
                assert (e.status, e.order.filled_qty) == (truth.status, truth.filled_qty), e.order_id
        rest_calls = len(sim.rest.calls)
        snapshots_asked = len(sim.requests("futures-open-orders"))

        # 1. The desk's open orders are exactly the simulator's (ids, status, filled qty, sn).
        want, have = sim_view(sim), desk_view(desk)
        assert set(have) == set(want), (
            f"only on desk: {sorted(set(have) - set(want))[:5]}, only on sim: {sorted(set(want) - set(have))[:5]}"
        )
        diff = {oid: (have[oid], want[oid]) for oid in want if have[oid] != want[oid]}
        assert not diff, diff

        # 2. Every cancel request has a final state; none missing, none pending.
        tracked = {t.request_id: t for t in desk.tracker.all() if t.action in CANCEL_ACTIONS}
        assert {t.request_id for t in canceller.sent} <= set(tracked)
        received = {f.data["id"] for a in CANCEL_ACTIONS for f in sim.requests(a)}
        received |= rest_received(sim, tracked)  # the REST road during the outages
        assert received <= set(tracked), f"the sim got requests the tracker does not know: {received - set(tracked)}"
        pending = [t for t in tracked.values() if not t.state.final]
        assert not pending, [(t.request_id, t.state) for t in pending]
        for rid, t in tracked.items():
            if rid in received:
                assert t.state is not State.FAILED, f"{rid} reached the exchange but the desk says NOT SENT"
            else:
                # Never reached the exchange: no ACK, no refusal can exist for it. It timed out or
                # failed to send — or the order ended by itself (filled, or cancelled by another
                # session) and the order channel resolved the request (``not by this cancel``).
                assert t.code is None, (rid, t.state, t.code)
                if dialect == "current":
                    # (A 2021 ACK carries no request id: a late one for an earlier cancel of the
                    # same order is matched to the retry, so this holds for the current dialect only.)
                    assert t.acked_at is None, (rid, t.state)
                assert t.state in (State.TIMED_OUT, State.FAILED, State.CONFIRMED), (rid, t.state)
                if t.state is State.CONFIRMED:
                    assert t.final_status is not None
        refused = [t for t in tracked.values() if t.state is State.REFUSED]
        assert refused and all(t.code for t in refused)

        # 3. No unhandled exception anywhere.
        assert not handler_failures(), [r.getMessage() for r in handler_failures()]
        loop_errors.assert_none()

        # The faults really happened.
        assert sim._next_client >= 3, "no connection was dropped"
        assert desk.counts["bad_frames"] > 0
        assert desk.store.stats.repeated > 0  # repeated sn dropped (far jumps are applied, not gaps)

        outcomes = collections.Counter(t.state.value for t in tracked.values())
        never = collections.Counter(t.state.value for rid, t in tracked.items() if rid not in received)
        print(
            f"\nchaos counts ({dialect} dialect):",
            f"\n  server updates published: {sim._updates}, frames received by desk: {desk.counts['frames']}",
            f"\n  connections: {sim._next_client}, desk disconnects: {desk.counts['disconnects']}",
            f"\n  faults: malformed frames seen {desk.counts['bad_frames']}, "
            f"stale/repeated updates dropped {desk.store.stats.stale} ({desk.store.stats.repeated} repeated), "
            f"sn {sim.sn.last:,}",
            f"\n  snapshots: {desk.snapshot_count} folded, {len(sim.requests('futures-open-orders'))} open-orders "
            f"queries received by the sim",
            f"\n  cancels: {len(canceller.sent)} sent ({sum(t.action == 'cancel-all' for t in canceller.sent)} cancel-all), "
            f"{canceller.not_sent} suppressed, {len(received)} reached the sim",
            f"\n  outcomes: {dict(outcomes)}",
            f"\n  outcomes of requests the sim never got: {dict(never)}",
            f"\n  open orders at the end: {len(want)}",
            f"\n  reconciliation: {snapshots_asked} snapshots asked ({desk.snapshot_count} answered), "
            f"{rest_calls} REST calls ({desk.reconciler.stats.status_calls} order/status), "
            f"{desk.reconciler.stats.corrected} rows corrected, "
            f"{sum(e.status == NOT_OPEN for e in desk.store.entries())} NOT OPEN left (REST knows none of them)",
        )
