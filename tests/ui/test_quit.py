"""The quit dialog: live counts, and the desk's one cancel-all-and-verify."""

from __future__ import annotations

from blotter.ui.screens import QuitScreen
from tests.ui.conftest import running, sim_config, until


def question(app) -> str:
    return str(app.screen.query_one("#question").render())


async def test_the_open_count_follows_the_orders_while_the_dialog_shows():
    async with running(sim_config(initial_orders=6)) as (sim, desk, app, pilot):
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), what="quit dialog")
        assert "6 orders open" in question(app)
        target = sorted(e.order_id for e in desk.store.open_entries())[0]
        tracked = await desk.cancel_order(target)
        await until(pilot, lambda: tracked.final_status == "Canceled", what="cancel confirmed")
        await until(pilot, lambda: "5 orders open" in question(app), what="dialog shows 5 open")
        await pilot.press("escape")


async def test_cancel_all_on_quit_while_offline_says_not_sent_once_and_stays():
    async with running(sim_config(initial_orders=4), backoff_max=0.2) as (sim, desk, app, pilot):
        await sim.stop()
        await until(pilot, lambda: desk.state.name != "LIVE", what="offline")
        seen = desk.log.last_seq
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), what="quit dialog")
        await pilot.press("c")
        await until(pilot, lambda: any("not quitting" in l.text for l in desk.log.lines(since=seen)), what="verdict")
        lines = [l.text for l in desk.log.lines(since=seen) if l.request_id and l.request_id.startswith("ca-")]
        assert not any("sent cancel-all" in t and "NOT SENT" not in t for t in lines), lines
        assert len([t for t in lines if "NOT SENT" in t]) == 1, lines
        assert app.is_running
