"""The app against the real Desk and the real simulator on loopback (pilot tests)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from blotter.protocol import PlaceOrder
from blotter.ui.app import READ_ONLY_MESSAGE
from blotter.ui.screens import ConfirmScreen, QuitScreen
from blotter.ui.settings import UiSettings

from .conftest import running, sim_config, until


def log_text(desk) -> str:
    return "\n".join(line.text for line in desk.log.lines())


async def place_newer_orders(desk, sim, n: int) -> list[str]:
    """Place ``n`` orders through the simulator: they are newer, so they sort above."""
    template = next(iter(sim.open_orders()))
    before = set(sim.orders)
    for _ in range(n):
        await desk.session.send(
            PlaceOrder(
                symbol=template["symbol"],
                side="buy",
                qty=Decimal(template["orderQty"]),
                price=Decimal(template["price"]),
            )
        )
    return [oid for oid in sim.orders if oid not in before]


async def test_orders_appear_with_exact_values():
    async with running() as (sim, desk, app, pilot):
        assert len(app.view) == 20
        assert desk.store.open_count() == 20
        # open orders newest first
        created = [desk.store.get(oid).order.create_time_ms for oid in app.view]
        assert created == sorted(created, reverse=True)
        # the first row is selected and the detail line shows its full id
        first = app.view[0]
        assert app.table.selected_id == first
        detail = str(app.query_one("#detail").render())
        assert first in detail
        # prices are the exchange's exact strings
        sim_order = next(o for o in sim.open_orders() if o["orderId"] == first)
        assert app.table.cells(desk.store.get(first), 0.0)["price"] == sim_order["price"]


async def test_cursor_stays_on_its_order_when_rows_are_inserted_above_then_c_cancels_it():
    async with running() as (sim, desk, app, pilot):
        await pilot.press("down", "down", "down")
        target = app.table.selected_id
        assert target == app.view[3]
        new_ids = await place_newer_orders(desk, sim, 3)
        await until(pilot, lambda: all(oid in app.view for oid in new_ids), what="new orders shown")
        await pilot.pause(0.05)
        assert app.view.index_of(target) == 6  # three rows were inserted above it
        assert app.table.selected_id == target
        assert app.table.cursor_row == 6

        await pilot.press("c")
        frame = await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "cancel-order", 3)
        data = frame.data
        assert data["op"] == "req"
        assert data["ac"].upper() == "FUTURES"  # the wire spells it "futures"
        assert data["args"]["orderId"] == target
        assert data["args"]["symbol"] == desk.store.get(target).order.symbol
        assert abs(data["args"]["time"] - time.time() * 1000) < 1000
        rid = data["id"]
        assert rid and desk.tracker.get(rid).order_id == target
        await until(pilot, lambda: desk.store.get(target).status == "Canceled", what="row canceled")
        await pilot.pause(0.05)
        text = log_text(desk)
        assert f"{rid} sent cancel-order" in text and target in text
        assert f"{rid} ACK" in text
        assert f"{rid} confirmed Canceled" in text
        assert any(rid in line and "ACK" in line for line in app.log_pane.lines)
        # the row shows Canceled and sorts among the finals; the cursor is still on it
        assert app.table.selected_id == target
        assert app.table.status_of(desk.store.get(target), 0.0)[0] == "Canceled"
        # only that one order was cancelled
        assert [f.data["args"]["orderId"] for f in sim.requests("cancel-order")] == [target]


async def test_refused_cancel_shows_err_code_reason_and_message_under_the_request_id():
    async with running(sim_config(refuse_cancels=300006)) as (sim, desk, app, pilot):
        target = app.table.selected_id
        await pilot.press("c")
        frame = await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "cancel-order", 3)
        rid = frame.data["id"]
        await until(pilot, lambda: any(rid in l and "ERR" in l for l in app.log_pane.lines), what="ERR line")
        line = next(l for l in app.log_pane.lines if rid in l and "ERR" in l)
        assert "300006" in line and "INVALID_ORDER_ID" in line
        t = desk.tracker.get(rid)
        assert t.message and t.message[:20] in line
        assert desk.store.get(target).is_open


@pytest.mark.parametrize("dialect", ["current", "2021"])
async def test_cancel_all_confirmed_with_y_cancels_everything(dialect):
    async with running(sim_config(dialect=dialect)) as (sim, desk, app, pilot):
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        question = str(app.screen.question_text())
        assert "Cancel ALL 20 open orders" in question
        for symbol in {e.order.symbol for e in desk.store.open_entries()}:
            assert symbol in question
        await pilot.press("y")
        frame = await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "cancel-all", 3)
        assert "symbol" not in frame.data.get("args", {}) or not frame.data["args"].get("symbol")
        await until(pilot, lambda: desk.store.open_count() == 0, what="all cancelled")
        await until(pilot, lambda: f"{frame.data['id']} confirmed Canceled" in log_text(desk), what="confirmed")


@pytest.mark.parametrize("dialect", ["current", "2021"])
async def test_single_cancel_both_dialects(dialect):
    async with running(sim_config(dialect=dialect)) as (sim, desk, app, pilot):
        await pilot.press("down")
        target = app.table.selected_id
        await pilot.press("c")
        frame = await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "cancel-order", 3)
        assert frame.data["args"]["orderId"] == target
        rid = frame.data["id"]
        await until(pilot, lambda: f"{rid} confirmed Canceled" in log_text(desk), what="confirmed")
        assert f"{rid} ACK" in log_text(desk)


async def test_cancel_all_escape_sends_nothing():
    async with running() as (sim, desk, app, pilot):
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen)
        assert sim.requests("cancel-all") == []
        assert desk.store.open_count() == 20
        await pilot.press("X", "n")
        await pilot.pause(0.2)
        assert sim.requests("cancel-all") == []


async def test_cancel_symbol_asks_then_cancels_only_that_symbol():
    async with running() as (sim, desk, app, pilot):
        symbol = desk.store.get(app.table.selected_id).order.symbol
        n = len(desk.store.open_by_symbol(symbol))
        others = desk.store.open_count() - n
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        assert f"Cancel ALL {n} open order" in str(app.screen.question_text())
        await pilot.press("enter")
        frame = await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "cancel-all", 3)
        assert frame.data["args"]["symbol"] == symbol
        await until(pilot, lambda: len(desk.store.open_by_symbol(symbol)) == 0, what="symbol cancelled")
        assert desk.store.open_count() == others


async def test_read_only_cancel_keys_do_nothing_but_log():
    async with running(read_only=True) as (sim, desk, app, pilot):
        await pilot.press("c", "X", "s")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen)
        assert sim.requests("cancel-order") == [] and sim.requests("cancel-all") == []
        assert log_text(desk).count(READ_ONLY_MESSAGE) == 3
        assert "READ-ONLY" in str(app.query_one("#status").render())


async def test_reconnect_restores_the_table():
    async with running(backoff_max=0.2) as (sim, desk, app, pilot):
        selected = app.table.selected_id
        await sim.drop_connections()
        await until(pilot, lambda: desk.state.name != "LIVE", what="disconnect noticed")
        await until(
            pilot, lambda: desk.state.name == "LIVE" and desk.snapshot_count >= 2, timeout=10, what="reconnected"
        )
        await pilot.pause(0.1)
        assert len(app.view) == 20 and desk.store.open_count() == 20
        assert app.table.selected_id == selected
        assert "reconnecting" in log_text(desk)


async def test_stale_banner_when_the_server_goes_silent():
    async with running(stale_after=0.5) as (sim, desk, app, pilot):
        banner = app.query_one("#banner")
        assert not banner.has_class("-on")
        sim.set_silent(True)
        await until(pilot, lambda: banner.has_class("-on"), timeout=5, what="STALE")
        assert "STALE — no data for" in str(banner.render())
        assert app.table.has_class("-stale")
        assert "STALE" in str(app.table.border_title)

        # the header does not say LIVE beside it, nor a round-trip time from before (both are
        # drawn by the same poll; asked until then, since on a loaded machine a frame read late
        # can end the staleness for a moment)
        def consistent_and_stale() -> bool:
            app.poll(force=True)
            shown = str(banner.render())
            header = str(app.query_one("#status").render())
            assert shown.startswith("STALE") == header.startswith("● STALE"), (shown, header)
            return header.startswith("● STALE") and "LIVE" not in header and "rtt –" in header

        await until(pilot, consistent_and_stale, timeout=5, what="the header saying STALE")

        def open_row_dim() -> bool:
            # the first open row as drawn: every cell of it dim (a stale row never looks fresh)
            table = app.table
            row = next(i for i in range(len(app.view)) if desk.store.get(app.view[i]).is_open)
            strip = table.render_line(row + 1 - round(table.scroll_y))  # (line 0 is the header)
            styled = [
                seg for seg in list(strip)[1:] if seg.text.strip() and seg.style is not None
            ]  # (after the cursor mark)
            return bool(styled) and all(seg.style.dim for seg in styled)

        app.table.refresh()
        await until(pilot, open_row_dim, timeout=5, what="the open rows dimmed")
        sim.set_silent(False)
        await app.desk.refresh()
        await until(pilot, lambda: not banner.has_class("-on"), timeout=5, what="data flows again")
        assert not app.table.has_class("-stale")
        app.table.refresh()
        await pilot.pause(0.05)
        assert not open_row_dim()


async def test_pending_cancel_then_unknown_after_timeout():
    async with running(request_timeout=0.5) as (sim, desk, app, pilot):
        sim.config.ignore_requests = True
        sim.rest.faults.drop_connections = True  # neither road can say: UNKNOWN stays (REST would settle it)
        target = app.table.selected_id
        await pilot.press("c")
        await until(pilot, lambda: desk.tracker.pending_cancel(target) is not None, what="pending")
        status = app.table.status_of(desk.store.get(target), app.clock())[0]
        assert status.startswith("PENDING CANCEL ") and status.endswith("s")
        await until(pilot, lambda: desk.tracker.timed_out_cancel(target) is not None, timeout=3, what="timeout")
        assert app.table.status_of(desk.store.get(target), app.clock())[0] == "UNKNOWN"
        assert "TIMEOUT" in log_text(desk)


async def test_filter_final_toggle_and_log_filter():
    async with running() as (sim, desk, app, pilot):
        symbol = desk.store.get(app.table.selected_id).order.symbol
        await pilot.press("slash")
        await pilot.press(*symbol.lower())
        await pilot.press("enter")
        await pilot.pause(0.05)
        assert app.view.filter == symbol.lower()
        assert len(app.view) == len(desk.store.open_by_symbol(symbol))
        assert all(desk.store.get(oid).order.symbol == symbol for oid in app.view)
        # Esc stops editing and keeps the filter (even with the box edited)
        from textual.widgets import Input

        from blotter.ui.screens import FilterScreen

        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.focused, Input), what="filter box")
        await pilot.press("backspace", "x", "escape")
        await until(pilot, lambda: not isinstance(app.screen, FilterScreen), what="filter box closed")
        assert app.view.filter == symbol.lower()
        assert len(app.view) == len(desk.store.open_by_symbol(symbol))
        # Enter on an empty box clears it
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.focused, Input), what="filter box")
        await pilot.press("ctrl+u", "enter")
        await until(pilot, lambda: app.view.filter == "" and len(app.view) == 20, what="filter cleared")

        # a cancelled order lingers, is hidden after final_linger, and 'f' shows it again
        app.view.final_linger = 0.3
        target = app.table.selected_id
        await pilot.press("c")
        await until(pilot, lambda: not desk.store.get(target).is_open, what="cancelled")
        await until(pilot, lambda: target not in app.view, timeout=3, what="hidden after linger")
        assert app.table.selected_id is not None and app.table.selected_id != target
        await pilot.press("f")
        await pilot.pause(0.05)
        assert target in app.view

        # l: log filtered to the selected order
        app.table.select(target)
        await pilot.press("l")
        await pilot.pause(0.05)
        assert app.log_pane.order_filter == target
        assert app.log_pane.lines and all(target in l or "co-" in l for l in app.log_pane.lines)
        await pilot.press("l")
        assert app.log_pane.order_filter is None


async def test_quit_asks_when_orders_are_open_and_stay_keeps_running():
    async with running() as (sim, desk, app, pilot):
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), what="quit dialog")
        await pilot.press("escape")
        await pilot.pause(0.05)
        assert not isinstance(app.screen, QuitScreen) and app.is_running
        await pilot.press("q", "c")
        await until(pilot, lambda: not app.is_running, timeout=8, what="quit after cancel-all")
        assert desk.store.open_count() == 0
        assert len(sim.requests("cancel-all")) == 1


async def test_keymap_remaps_by_binding_id_and_help_lists_it():
    ui = UiSettings(clock="utc", keymap={"blotter.cancel": "k"})
    async with running(ui=ui) as (sim, desk, app, pilot):
        target = app.table.selected_id
        await pilot.press("c")
        await pilot.pause(0.1)
        assert sim.requests("cancel-order") == []
        await pilot.press("k")
        frame = await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "cancel-order", 3)
        assert frame.data["args"]["orderId"] == target
        await pilot.press("question_mark")
        await pilot.pause(0.05)
        from blotter.ui.screens import HelpScreen

        assert isinstance(app.screen, HelpScreen)
        rows = {r[2]: r[0] for r in app.screen.rows}
        assert rows["blotter.cancel"] == "k"
        for bid in (
            "blotter.cancel_all",
            "blotter.cancel_symbol",
            "blotter.filter",
            "blotter.toggle_final",
            "blotter.refresh",
            "blotter.quit",
            "blotter.log_filter",
            "blotter.help",
        ):
            assert bid in rows
        await pilot.press("escape")


async def test_the_confirmation_count_stays_live_while_the_dialog_is_open():
    async with running() as (sim, desk, app, pilot):
        n = desk.store.open_count()
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        assert f"Cancel ALL {n} open orders" in str(app.screen.question_text())
        await desk.session.send(PlaceOrder(symbol="BTC-PERP", side="buy", qty="0.01", price="60000"))
        await until(pilot, lambda: desk.store.open_count() == n + 1, what="new order")
        await until(
            pilot,
            lambda: f"Cancel ALL {n + 1} open orders" in str(app.screen.query_one("#question").render()),
            what="dialog redrawn",
        )
        await pilot.press("n")
        await pilot.pause(0.1)
        assert sim.requests("cancel-all") == []


async def test_c_in_the_filter_box_is_typed_not_a_cancel():
    from textual.widgets import Input

    async with running() as (sim, desk, app, pilot):
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.focused, Input), what="filter box")
        await pilot.press("b", "t", "c")
        assert app.focused.value == "btc"
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert app.view.filter == "btc"
        assert sim.requests("cancel-order") == []
        selected = app.table.selected_id
        await pilot.press("c")  # back on the table: a cancel key again
        await pilot.pause(0.1)
        if sim.requests("cancel-order") == []:
            # the filter moved the cursor off the order it was on: c is held back until
            # the trader moves the cursor
            assert any("press c again" in line.text for line in desk.log.lines())
            await pilot.press("down", "up")
            selected = app.table.selected_id
            await pilot.press("c")
        frame = await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "cancel-order", 3)
        assert frame.data["args"]["orderId"] == selected


async def test_one_key_retry_after_a_cancel_all_left_orders_open():
    async with running(sim_config(refuse_cancels=200002)) as (sim, desk, app, pilot):
        symbol = desk.store.get(app.table.selected_id).order.symbol
        targets = {e.order_id for e in desk.store.open_by_symbol(symbol)}
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        await pilot.press("y")
        frame = await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "cancel-all", 3)
        rid = frame.data["id"]
        await until(
            pilot, lambda: any("press R to cancel them again" in l.text for l in desk.log.lines()), what="retry hint"
        )
        hint = next(l.text for l in desk.log.lines() if "press R" in l.text)
        assert hint.startswith(f"{rid} {len(targets)} order(s) still open")
        sim.config.refuse_cancels = None  # the rate limit has passed
        before = {e.order_id for e in desk.store.entries()}
        await desk.session.send(PlaceOrder(symbol=symbol, side="buy", qty=Decimal("1"), price=Decimal("1")))
        await until(pilot, lambda: any(e.order_id not in before for e in desk.store.entries()), what="new order")
        placed = [e.order_id for e in desk.store.entries() if e.order_id not in before]  # not the retry's business
        await pilot.press("R")
        await until(pilot, lambda: all(not desk.store.get(o).is_open for o in targets), what="retried")
        retried = {f.data["args"]["orderId"] for f in sim.requests("cancel-order")}
        assert retried == targets
        assert desk.store.get(placed[0]).is_open
        assert any(l.text.startswith(f"{rid} retry: cancelling the {len(targets)}") for l in desk.log.lines())
        await pilot.press("R")  # nothing left: nothing sent
        await pilot.pause(0.1)
        assert len(sim.requests("cancel-order")) == len(targets)


async def test_a_quiet_but_healthy_connection_is_never_called_stale():
    """No order moves (rate 0) and the exchange does not ping first: the desk pings when
    nothing came for a third of stale_after, so the pong keeps the connection fresh — no
    STALE banner, no cancels sent by REST for a connection that is fine."""
    async with running(stale_after=1.0) as (sim, desk, app, pilot):
        banner = app.query_one("#banner")
        loop = asyncio.get_running_loop()
        end = loop.time() + 3.0
        while loop.time() < end:
            assert not desk.is_stale(), desk.frame_age()
            app.poll(force=True)
            await pilot.pause(0.05)
            assert not banner.has_class("-on")
            header = str(app.query_one("#status").render())
            assert header.startswith("● LIVE") and "CANCELS VIA REST" not in header, header
        pings = [f for f in sim.received if isinstance(f.data, dict) and f.data.get("op") == "ping"]
        assert len(pings) >= 4, len(pings)  # (the regular pings: every 15 s)
