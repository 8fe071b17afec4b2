"""The positions pane and the flatten dialog, over loopback against the simulator."""

from __future__ import annotations

from decimal import Decimal

from blotter.ui.screens.flatten import FlattenScreen
from blotter.ui.widgets.orders_table import fmt_amount, fmt_time, order_badge

from .conftest import running, sim_config, until


def pane_text(app) -> str:
    return app.positions.text


def sim_positions(sim) -> dict[str, Decimal]:
    return {s: p.position for s, p in sim.book.account.positions.items() if p.position}


def place_frames(sim) -> list:
    return sim.requests("place-order")


def config():
    return sim_config(initial_orders=40)


async def shown(pilot, app, desk) -> None:
    await until(pilot, lambda: desk.account_state.loaded and app.positions.rows(), what="positions shown")
    await until(pilot, lambda: bool(desk.marks), what="marks from REST")
    app.poll(force=True)
    await pilot.pause(0.05)


async def test_the_pane_shows_each_position_with_exact_decimals_and_the_collateral():
    async with running(config(), size=(120, 40)) as (sim, desk, app, pilot):
        await shown(pilot, app, desk)
        assert not app.positions.collapsed
        text = pane_text(app)
        held = sim_positions(sim)
        assert held
        for symbol, size in held.items():
            pos = desk.account_state.positions[symbol]
            assert symbol in text
            assert fmt_amount(size) in text and fmt_amount(pos.avg_open_price) in text
            assert ("LONG" if size > 0 else "SHORT") in text
            assert fmt_amount(desk.marks[symbol]) in text
        assert "(F flatten, Z all)" in text and app.check_action("flatten", ()) is True
        usdt = desk.account_state.collaterals["USDT"].balance
        assert f"USDT {fmt_amount(usdt)}" in text


async def test_the_pane_says_when_the_marks_were_answered():
    """The marks come from REST now and then, the PnL beside them live: the pane gives the
    marks' time, and a new answer moves it on."""
    async with running(config(), size=(120, 40)) as (sim, desk, app, pilot):
        await shown(pilot, app, desk)
        first = desk.marks_wall_ms
        assert first is not None
        assert f"marks as of {fmt_time(first, True)}" in pane_text(app)
        await pilot.pause(1.1)  # (the time is to the second)
        assert await desk.call(desk.poll_positions)
        assert desk.marks_wall_ms is not None and desk.marks_wall_ms >= first + 1000
        app.poll(force=True)
        await pilot.pause(0.05)
        assert f"marks as of {fmt_time(desk.marks_wall_ms, True)}" in pane_text(app)


async def test_flat_positions_are_hidden_until_toggled():
    async with running(config(), size=(120, 40)) as (sim, desk, app, pilot):
        await shown(pilot, app, desk)
        symbol = sorted(sim_positions(sim))[0]
        assert (await desk.flatten_and_verify(symbol)).verified
        await until(pilot, lambda: symbol not in [p.symbol for p in app.positions.rows()], what="flat hidden")
        app.poll(force=True)
        await pilot.pause(0.05)
        assert f"{symbol} " not in pane_text(app)
        await pilot.press("0")
        await until(pilot, lambda: symbol in [p.symbol for p in app.positions.rows()], what="flat shown")


async def test_at_80x24_the_pane_is_collapsed_to_one_line_and_p_expands_it():
    async with running(config(), size=(80, 24)) as (sim, desk, app, pilot):
        await shown(pilot, app, desk)
        pane = app.positions
        assert pane.collapsed and pane.region.height == 1
        assert app.table.region.height >= 5 and app.log_pane.region.height >= 5
        assert "Positions" in pane_text(app)
        await pilot.press("p")
        await until(pilot, lambda: not pane.collapsed and pane.region.height > 1, what="expanded")
        await pilot.press("p")
        await until(pilot, lambda: pane.collapsed and pane.region.height == 1, what="collapsed again")


async def test_tab_moves_focus_between_orders_positions_and_log():
    async with running(config()) as (sim, desk, app, pilot):
        await shown(pilot, app, desk)
        assert app.focused is app.table
        await pilot.press("tab")
        await until(pilot, lambda: app.focused is app.positions, what="positions focused")
        await pilot.press("tab")
        await until(pilot, lambda: app.focused is app.log_pane, what="log focused")
        await pilot.press("tab")
        await until(pilot, lambda: app.focused is app.table, what="orders focused")


async def test_positions_are_marked_stale_when_the_server_goes_silent():
    async with running(config(), stale_after=0.5) as (sim, desk, app, pilot):
        await shown(pilot, app, desk)
        assert not app.positions.has_class("-stale")
        sim.set_silent(True)
        await until(pilot, lambda: app.positions.has_class("-stale"), what="positions stale")
        assert "STALE" in pane_text(app)
        sim.set_silent(False)
        await desk.refresh()
        await until(pilot, lambda: not app.positions.has_class("-stale"), what="fresh again")


async def test_flatten_dialog_any_other_key_aborts_then_y_closes_the_position():
    async with running(config()) as (sim, desk, app, pilot):
        await shown(pilot, app, desk)
        await pilot.press("tab")
        await until(pilot, lambda: app.focused is app.positions, what="positions focused")
        symbol = app.positions.selected_symbol
        size = desk.account_state.positions[symbol].position
        await pilot.press("F")
        await until(pilot, lambda: isinstance(app.screen, FlattenScreen), what="flatten dialog")
        question = app.screen.question_text().plain
        side = "SELL" if size > 0 else "BUY"
        assert symbol in question and side in question and fmt_amount(abs(size)) in question
        notional = abs(size) * desk.marks[symbol]
        assert f"≈ {fmt_amount(notional)}" in question and "mark price" in question
        await pilot.press("x")  # anything else aborts
        await until(pilot, lambda: not isinstance(app.screen, FlattenScreen), what="aborted")
        assert place_frames(sim) == []
        await pilot.press("F")
        await until(pilot, lambda: isinstance(app.screen, FlattenScreen), what="flatten dialog again")
        await pilot.press("y")
        await until(pilot, lambda: symbol not in sim_positions(sim), what="position closed")
        await until(
            pilot,
            lambda: any(f"flatten {symbol}: verified flat" in line.text for line in desk.log.lines()),
            what="verified in the log",
        )
        frame = place_frames(sim)[0].data["args"]
        assert frame["execInst"] == "ReduceOnly" and frame["side"] == side.lower()


async def test_flatten_all_closes_every_position():
    async with running(config()) as (sim, desk, app, pilot):
        await shown(pilot, app, desk)
        n = len(sim_positions(sim))
        await pilot.press("Z")
        await until(pilot, lambda: isinstance(app.screen, FlattenScreen), what="flatten-all dialog")
        assert f"Flatten ALL {n} positions" in app.screen.question_text().plain
        await pilot.press("enter")
        await until(pilot, lambda: sim_positions(sim) == {}, what="all flat")
        await until(
            pilot,
            lambda: any("flatten ALL symbols: verified flat" in line.text for line in desk.log.lines()),
            what="verified",
        )
        assert len({f.data["id"] for f in place_frames(sim)}) == n


async def test_read_only_hides_and_refuses_the_flatten_keys():
    async with running(config(), read_only=True) as (sim, desk, app, pilot):
        await shown(pilot, app, desk)
        assert app.check_action("flatten", ()) is False and app.check_action("flatten_all", ()) is False
        assert "F flatten" not in pane_text(app)
        await pilot.press("tab", "F", "Z")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, FlattenScreen)
        assert place_frames(sim) == []


async def test_an_untriggered_stop_order_row_shows_its_badge():
    async with running(config()) as (sim, desk, app, pilot):
        stops = [e for e in desk.store.open_entries() if e.order.status == "PendingNew"]
        assert stops
        cells = app.table.cells(stops[0], app.clock())
        assert cells["status"].endswith(" STOP")


def test_order_badges():
    assert order_badge("ReduceOnly", "New") == "RO"
    assert order_badge("PostReduceOnly", "New") == "PO RO"
    assert order_badge("Post", "New") == "PO"
    assert order_badge("NULL_VAL", "PendingNew") == "STOP"
    assert order_badge("PosStopMkt", "PendingNew") == "POS-STOP"
    assert order_badge("Liquidation", "New") == "LIQ"
    assert order_badge("NULL_VAL", "New") == ""
    assert order_badge(None, "Filled") == ""


async def test_at_80x24_the_expanded_pane_leaves_the_log_and_footer_on_screen_and_says_what_it_hides():
    async with running(config(), size=(80, 24)) as (sim, desk, app, pilot):
        await shown(pilot, app, desk)
        pane = app.positions
        await pilot.press("p")
        await until(pilot, lambda: not pane.collapsed and pane.region.height > 1, what="expanded")
        app.poll(force=True)
        await pilot.pause(0.1)
        log = app.log_pane.region
        assert log.y + log.height <= 23, (log, pane.region)  # the footer is the last line
        assert app.table.region.height >= 5 and log.height >= 5
        held = len(pane.rows())
        shown_rows = sum(1 for p in pane.rows() if f"{p.symbol} " in pane.text)
        subtitle = str(pane.border_subtitle or "")
        if shown_rows < held:  # what is not drawn is counted on the border
            assert f"{held - shown_rows} more not shown" in subtitle, (subtitle, pane.text)
        else:
            assert subtitle == ""
        assert held >= 2 and shown_rows < held  # (this account has more positions than 80×24 has room for)
