"""The emergency path takes whichever road is up (issue 13 item 4): with the WebSocket
not live the cancels go over REST at once, each under its own request id, and are
confirmed only by what the exchange says (REST order status, or the stream)."""

from __future__ import annotations

import asyncio

from blotter.core import State
from blotter.desk import ConnState
from tests.helpers import eventually, running_desk, running_sim


def open_ids(sim) -> set[str]:
    return {o["orderId"] for o in sim.open_orders()}


def lines_of(desk, request_id: str) -> list[str]:
    return [line.text for line in desk.log.lines() if line.request_id == request_id]


def rest_paths(sim, method: str | None = None) -> list[str]:
    return [c.path for c in sim.rest.calls if method is None or c.method == method]


async def refused(sim, desk) -> None:
    await sim.refuse_websocket()
    await eventually(lambda: desk.state is not ConnState.LIVE, 5)


async def test_a_cancel_with_the_stream_down_goes_via_rest_and_is_confirmed_by_rest_status():
    async with running_sim(initial_orders=4) as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        target = sorted(open_ids(sim))[0]
        await refused(sim, desk)
        tracked = await desk.cancel_order(target)
        assert tracked is not None
        await eventually(lambda: tracked.state is State.CONFIRMED, 5)
        lines = lines_of(desk, tracked.request_id)
        symbol = desk.store.get(target).order.symbol
        assert f"{tracked.request_id} sent cancel-order {symbol} {target} via REST" in lines[0], lines
        assert "ACK via REST" in lines[1], lines
        assert "confirmed Canceled" in lines[2] and "REST order status" in lines[2], lines
        assert desk.store.get(target).status == "Canceled" and not desk.store.get(target).is_open
        assert target not in open_ids(sim)
        deletes = [c for c in sim.rest.calls if c.method == "DELETE"]
        assert len(deletes) == 1 and deletes[0].path.endswith("/api/pro/v2/futures/order")
        assert any(c.path.endswith("/order/status") and target in c.query for c in sim.rest.calls)


async def test_a_rest_ack_alone_is_not_a_confirmation():
    async with running_sim(initial_orders=3) as sim, running_desk(sim, request_timeout=1.0) as desk:
        assert await desk.wait_live(5)
        target = sorted(open_ids(sim))[0]
        await refused(sim, desk)
        real = sim.rest.handle

        def no_status(method, path, query, headers, body):  # the exchange's status road fails
            if path.endswith("/order/status"):
                sim.rest._record(method, path, query, headers, body)
                return 502, {"Content-Type": "text/plain"}, b"Bad Gateway\n"
            return real(method, path, query, headers, body)

        sim.rest.handle = no_status
        tracked = await desk.cancel_order(target)
        await eventually(lambda: tracked.acked_at is not None, 5)
        await eventually(lambda: tracked.state is State.TIMED_OUT, 5)
        assert desk.store.get(target).is_open  # the exchange did not say: never shown Canceled
        assert any("HTTP 502" in t and "via REST" in t for t in lines_of(desk, tracked.request_id))


async def test_cancel_all_and_verify_with_the_stream_down_verifies_through_rest():
    from blotter.desk import Outcome

    async with running_sim(initial_orders=15) as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        await refused(sim, desk)
        symbol = sorted(open_ids(sim) and {o["symbol"] for o in sim.open_orders()})[0]
        one = await desk.cancel_all_and_verify(symbol)
        assert one.outcome is Outcome.VERIFIED, one.reason
        assert sim.open_orders(symbol) == [] and sim.open_orders()
        assert any(p.endswith("/order/all") for p in rest_paths(sim, "DELETE"))
        assert one.query is not None and one.query.symbol == symbol
        lines = lines_of(desk, one.request_id)
        assert "via REST" in lines[0] and any("verdict:" in t and "0 still open" in t for t in lines), lines
        every = await desk.cancel_all_and_verify(None)
        assert every.verified and sim.open_orders() == [] and desk.store.open_count() == 0


async def test_a_ws_cancel_all_without_an_ack_is_repeated_over_rest():
    async with running_sim(initial_orders=8) as sim, running_desk(sim, rest_fallback_after=1.0) as desk:
        assert await desk.wait_live(5)
        sim.config.ignore_requests = True  # the stream stays up, the cancel-all is never answered
        outcome = await desk.cancel_all_and_verify(None)
        assert outcome.verified, outcome.reason
        ws, rest = outcome.requests[0], outcome.requests[-1]
        assert sim.requests("cancel-all") and ws.acked_at is None
        assert rest.retry_of == ws.request_id and rest.request_id != ws.request_id
        assert any("repeated via REST" in t for t in lines_of(desk, ws.request_id))
        assert (
            f"sent cancel-all ALL symbols (8 open) (retry of {ws.request_id}) via REST"
            in lines_of(desk, rest.request_id)[0]
        )
        assert rest.sent_at - ws.sent_at < 3.0  # ~1 s, with room for a loaded machine
        assert sim.open_orders() == []


async def test_both_roads_down_is_one_not_sent_line():
    async with running_sim(initial_orders=3) as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        target = sorted(open_ids(sim))[0]
        await sim.stop()
        await eventually(lambda: desk.state is not ConnState.LIVE, 5)
        tracked = await desk.cancel_order(target)
        await eventually(lambda: tracked.state is State.FAILED, 5)
        await asyncio.sleep(0.2)
        lines = lines_of(desk, tracked.request_id)
        assert len(lines) == 1 and "NOT SENT" in lines[0] and "sent cancel-order" not in lines[0], lines
        assert "not connected" in lines[0] and "REST" in lines[0] and "not reachable" in lines[0], lines


async def test_a_rest_5xx_is_named_with_its_road():
    async with running_sim(initial_orders=3) as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        target = sorted(open_ids(sim))[0]
        await refused(sim, desk)
        sim.rest.faults.server_error = 503
        tracked = await desk.cancel_order(target)
        await eventually(lambda: any("HTTP 503" in t for t in lines_of(desk, tracked.request_id)), 5)
        lines = lines_of(desk, tracked.request_id)
        assert "via REST" in lines[0] and any("HTTP 503" in t and "REST" in t for t in lines), lines
        assert tracked.state is not State.CONFIRMED and desk.store.get(target).is_open


async def test_the_retry_over_rest_is_a_batch_cancel_of_at_most_10_per_call():
    async with running_sim(initial_orders=13) as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        await refused(sim, desk)
        sim.config.refuse_cancels = 300009
        first = await desk.cancel_all()
        await eventually(lambda: first.state is State.REFUSED, 5)
        assert (
            "ERR 300009" in lines_of(desk, first.request_id)[-1] and "via REST" in lines_of(desk, first.request_id)[-1]
        )
        sim.config.refuse_cancels = None
        sent = await desk.retry_cancel_all()
        assert len(sent) == 13 and len({t.request_id for t in sent}) == 13
        await eventually(lambda: all(t.state is State.CONFIRMED for t in sent), 10)
        batches = [c for c in sim.rest.calls if c.method == "DELETE" and c.path.endswith("/order/batch")]
        assert len(batches) == 2  # 10 + 3: the documented cap
        assert sim.open_orders() == [] and desk.store.open_count() == 0
        assert all("via REST" in lines_of(desk, t.request_id)[0] for t in sent)


async def test_a_websocket_cancel_stranded_by_the_outage_can_be_sent_again_via_rest_at_once():
    async with running_sim(initial_orders=3, ack_delay=30) as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        target = sorted(open_ids(sim))[0]
        stranded = await desk.cancel_order(target)
        assert stranded is not None and stranded.road == "WebSocket" and stranded.in_flight
        await refused(sim, desk)
        again = await desk.cancel_order(target)  # not "already cancelling": its road is gone
        assert again is not None and again.road == "REST" and again.retry_of == stranded.request_id
        await eventually(lambda: again.state is State.CONFIRMED, 5)
        assert f"(retry of {stranded.request_id}) via REST" in lines_of(desk, again.request_id)[0]
        assert target not in open_ids(sim)


async def test_a_rest_call_with_no_answer_in_time_is_named_with_its_road():
    async with running_sim(initial_orders=3) as sim, running_desk(sim, request_timeout=1.0) as desk:
        assert await desk.wait_live(5)
        target = sorted(open_ids(sim))[0]
        await refused(sim, desk)
        sim.rest.faults.delay = 3.0
        tracked = await desk.cancel_order(target)
        await eventually(lambda: any("failed via REST" in t for t in lines_of(desk, tracked.request_id)), 5)
        lines = lines_of(desk, tracked.request_id)
        assert any("failed via REST: no REST answer within 1 s" in t for t in lines), lines
        assert tracked.state is not State.CONFIRMED
        assert desk.store.get(target).is_open  # nobody said it ended: never Canceled
