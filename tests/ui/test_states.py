"""Row and header states: NOT OPEN, highlight, auth refused, the implicit-move guard, clicks."""

from __future__ import annotations

import blotter.ui.app
from blotter.desk import Desk, DeskSettings
from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET, SimConfig, SimServer
from blotter.ui.app import make_app
from blotter.ui.settings import UiSettings

from .conftest import running, until


async def test_order_missing_from_a_snapshot_shows_not_open():
    async with running() as (sim, desk, app, pilot):
        target = app.view[0]
        listed = [e.order for e in desk.store.open_entries() if e.order_id != target]
        desk.store.apply_snapshot(listed, app.clock())
        await pilot.pause(0.1)
        entry = desk.store.get(target)
        assert app.table.status_of(entry, app.clock())[0] == "NOT OPEN"
        assert app.view.index_of(target) == 0  # keeps its place, dimmed, while it lingers
        assert app.view.is_lingering(target)
        assert app.table.selected_id == target
        assert app.view.open_count() == len(listed)


async def test_changed_row_is_highlighted_briefly():
    async with running(ui=UiSettings(clock="utc", highlight=0.3)) as (sim, desk, app, pilot):
        await pilot.pause(0.4)
        oid = app.view[5]
        entry = desk.store.get(oid)
        table = app.table
        cells = table.cells(entry, app.clock())
        hl = table._styles["highlight"].bgcolor
        table._now = app.clock()
        strip = table._row_strip(cells, entry, False, 100, table.rich_style)
        assert all(seg.style.bgcolor != hl for seg in strip if seg.style)
        entry.changed_at = app.clock()
        table._now = app.clock()
        strip = table._row_strip(cells, entry, False, 100, table.rich_style)
        assert any(seg.style and seg.style.bgcolor == hl for seg in strip)


async def test_auth_refused_is_shown_and_the_app_keeps_running():
    async with SimServer(SimConfig(seed=1, initial_orders=5, rate=0), port=0) as sim:
        desk = Desk(DeskSettings(url=sim.url, api_key=DEMO_API_KEY, api_secret="d3Jvbmcgc2VjcmV0"))
        app = make_app(desk, UiSettings())
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: desk.state.name == "AUTH_REFUSED", timeout=5, what="auth refused")
            app.poll(force=True)
            await pilot.pause(0.05)
            assert "AUTH REFUSED" in str(app.status_bar.render())
            assert app.is_running
            await pilot.press("c")  # nothing selected, nothing sent, no crash
            assert sim.requests("cancel-order") == []


async def test_c_right_after_the_cursor_jumped_by_itself_sends_nothing(monkeypatch):
    import blotter.ui.app

    monkeypatch.setattr(blotter.ui.app, "MOVED_GUARD", 60.0)  # a loaded machine cannot outwait it
    async with running() as (sim, desk, app, pilot):
        await pilot.press("down")
        gone = app.table.selected_id
        gone_symbol = desk.store.get(gone).order.symbol
        other = next(e.order.symbol for e in desk.store.open_entries() if e.order.symbol != gone_symbol)
        app.view.set_filter(other)  # the selected order leaves the view
        app.poll(force=True)
        await pilot.pause(0.02)
        now_selected = app.table.selected_id
        assert now_selected != gone and app.table.implicit_move is not None
        await pilot.press("c")
        await pilot.pause(0.1)
        assert sim.requests("cancel-order") == []
        assert any("just left the view" in l.text for l in desk.log.lines())
        await pilot.press("c")  # still held back: the trader has not seen the row for a moment yet
        await pilot.pause(0.1)
        assert sim.requests("cancel-order") == []
        await pilot.press("up", "down")  # the trader moves the cursor: c acts again
        now_selected = app.table.selected_id
        await pilot.press("c")
        frame = await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "cancel-order", 3)
        assert frame.data["args"]["orderId"] == now_selected


async def test_click_selects_a_row():
    async with running() as (sim, desk, app, pilot):
        # row 4 of the data is on screen line 1 (border) + 1 (header) + 4
        await pilot.click("#orders", offset=(5, 2 + 4))
        await pilot.pause(0.05)
        assert app.table.selected_id == app.view[4]


async def test_a_session_behind_the_wire_says_catching_up_and_redraws_less():
    """While frames wait to be folded (the transport stopped reading, or the oldest frame
    waited long), the header says CATCHING UP (with the lag), and the threaded screen
    redraws at most BEHIND_HZ times a second; caught up, both end."""
    async with running(threaded=True) as (sim, desk, app, pilot):
        assert "CATCHING UP" not in str(app.status_bar.render())
        with desk.lock:
            desk.session.read_paused = True  # what the session sets when the transport paused reading
            desk.session.lag = 1.25
        assert desk.behind()
        await until(pilot, lambda: "CATCHING UP 1.2 s" in str(app.status_bar.render()), what="the header")
        redraws = []
        original = app._redraw

        def counting(now: float, force: bool) -> None:
            redraws.append(now)
            original(now, force)

        app._redraw = counting
        await pilot.pause(1.0)
        assert 1 <= len(redraws) <= blotter.ui.app.BEHIND_HZ + 1, redraws
        app._redraw = original
        with desk.lock:
            desk.session.read_paused = False
            desk.session.lag = 0.0
        await until(pilot, lambda: "CATCHING UP" not in str(app.status_bar.render()), what="caught up")


async def test_a_desk_that_ended_before_the_screen_came_up_is_reported_once():
    """The CLI starts the desk before the screen (connected and asking while Textual
    starts). A desk whose thread ended before the app mounted (nothing listens on the
    port, no reconnect) is still reported in the log, once."""
    import asyncio

    from .conftest import desk_for

    desk = desk_for("ws://127.0.0.1:1/1/api/pro/v2/stream", reconnect=False)
    desk.start_thread()
    await asyncio.to_thread(desk.join, 10)
    app = make_app(desk, UiSettings(clock="utc"), threaded=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        ended = [line.text for line in desk.log.lines() if line.text.startswith("session ")]
        assert len(ended) == 1, ended
        assert ended[0] in ("session ended",) or ended[0].startswith("session failed: "), ended


async def test_before_any_snapshot_the_screen_says_not_loaded_and_a_cancel_all_makes_no_false_verdict():
    """The exchange takes the connection but never answers the login: no open-orders count
    is known. The header does not say "open 0", the table says NOT LOADED, the login's
    retries show their attempt, X says the count is unknown, and a cancel-all sent anyway
    (by REST) gets a verdict that does not claim "0 were open"."""
    config = SimConfig(seed=1, initial_orders=5, rate=0, ping_interval=0, silent=True)
    async with SimServer(config, port=0) as sim:
        desk = Desk(
            DeskSettings(
                url=sim.url,
                api_key=DEMO_API_KEY,
                api_secret=DEMO_API_SECRET,
                reply_timeout=0.3,
                backoff_initial=0.05,
                backoff_max=0.1,
            )
        )
        app = make_app(desk, UiSettings(clock="utc"))
        async with app.run_test(size=(120, 30)) as pilot:
            await until(
                pilot, lambda: desk.attempt >= 1 and desk.state.name == "AUTHENTICATING", timeout=10, what="a retry"
            )
            app.poll(force=True)
            await pilot.pause(0.05)
            header = str(app.status_bar.render())
            assert "AUTHENTICATING (attempt" in header and "open ? (not loaded)" in header, header
            assert "open 0" not in header
            assert str(app.banner.render()).startswith("NOT LOADED — authenticating (attempt")
            assert app.positions.text.startswith("Positions: ? (not loaded)"), app.positions.text
            await pilot.press("X")
            await pilot.pause(0.1)
            dialog = " ".join(str(w.render()) for w in app.screen.query("Static"))
            assert "not loaded yet" in dialog and "No open orders known" not in dialog, dialog
            await pilot.press("y")

            def verdict() -> str | None:
                return next((line.text for line in desk.log.lines() if "verdict:" in line.text), None)

            await until(pilot, lambda: verdict() is not None, timeout=10, what="the verdict")
            text = verdict()
            assert "0 were open" not in text and "sent before the open orders were loaded" in text, text
            assert sim.open_orders() == []  # REST did cancel them
