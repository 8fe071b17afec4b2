"""The cancel keys with the WebSocket refused and REST up (issue 13 item 4)."""

from __future__ import annotations

from blotter.ui.screens import ConfirmScreen
from tests.ui.conftest import running, sim_config, until


async def test_x_with_the_websocket_refused_ends_in_a_verified_empty_book():
    async with running(sim_config(initial_orders=12), backoff_max=0.2) as (sim, desk, app, pilot):
        await sim.refuse_websocket()
        await until(pilot, lambda: desk.state.name != "LIVE", what="stream down")
        await until(pilot, lambda: "VIA REST" in str(app.status_bar.render()).upper(), what="header says REST")
        seen = desk.log.last_seq
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="cancel-all dialog")
        await pilot.press("y")
        await until(
            pilot, lambda: any("verdict:" in l.text for l in desk.log.lines(since=seen)), timeout=10, what="verdict"
        )
        texts = [l.text for l in desk.log.lines(since=seen)]
        assert any("sent cancel-all ALL symbols (12 open) via REST" in t for t in texts), texts
        verdict = next(t for t in texts if "verdict:" in t)
        assert "12 were open, 12 confirmed cancelled, 0 still open" in verdict, texts
        assert sim.open_orders() == [] and desk.store.open_count() == 0


async def test_c_with_the_stream_down_shows_canceled_once_rest_status_says_so():
    async with running(sim_config(initial_orders=5), backoff_max=0.2) as (sim, desk, app, pilot):
        target = app.table.selected_id
        await sim.refuse_websocket()
        await until(pilot, lambda: desk.state.name != "LIVE", what="stream down")
        await pilot.press("c")
        await until(pilot, lambda: desk.tracker.cancel_for(target) is not None, what="cancel recorded")
        tracked = desk.tracker.cancel_for(target)
        await until(pilot, lambda: tracked.final_status == "Canceled", what="confirmed")
        texts = [l.text for l in desk.log.lines() if l.request_id == tracked.request_id]
        assert "via REST" in texts[0] and "REST order status" in texts[-1], texts
        assert desk.store.get(target).status == "Canceled"


async def test_the_quit_dialogs_cancel_all_with_the_websocket_refused_verifies_via_rest_and_quits():
    from blotter.ui.screens import QuitScreen

    async with running(sim_config(initial_orders=6), backoff_max=0.2) as (sim, desk, app, pilot):
        await sim.refuse_websocket()
        await until(pilot, lambda: desk.state.name != "LIVE", what="stream down")
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), what="quit dialog")
        await pilot.press("c")
        await until(pilot, lambda: not app.is_running or app.quitting, timeout=10, what="quit after the verdict")
        assert sim.open_orders() == []
        assert any("verdict:" in l.text and "0 still open" in l.text for l in desk.log.lines())


async def test_a_rest_call_sent_but_never_answered_is_flagged_in_the_header():
    """The stream is down and REST takes the cancel but never answers it in time: the header
    says the REST road failed, as for one that could not be made; an answered call clears it."""
    async with running(sim_config(initial_orders=5), backoff_max=0.2, request_timeout=0.5) as (sim, desk, app, pilot):
        target = app.table.selected_id
        await sim.refuse_websocket()
        await until(pilot, lambda: desk.state.name != "LIVE", what="stream down")
        sim.rest.faults.delay = 2.0  # (longer than the request timeout)

        def header() -> str:
            app.poll(force=True)
            return str(app.status_bar.render())

        assert "CANCELS VIA REST" in header() and "last REST call failed" not in header()
        await pilot.press("c")
        await until(pilot, lambda: desk.tracker.cancel_for(target) is not None, what="cancel recorded")
        await until(pilot, lambda: "CANCELS VIA REST (last REST call failed)" in header(), timeout=5, what="flagged")
        sim.rest.faults.delay = 0.0
        await desk.call(desk.road.fetch_open_orders, None)  # a REST call of the road, answered
        await until(pilot, lambda: "last REST call failed" not in header(), timeout=5, what="cleared")
