"""Keys that always answer: the cancel keys whatever pane has focus, Ctrl+C, the filter's
Esc, and read-only mode offering only what can act."""

from __future__ import annotations

import io

from textual.widgets import Input

from blotter.ui.app import READ_ONLY_MESSAGE
from blotter.ui.screens import ConfirmScreen, FilterScreen

from .conftest import running, until


def cancel_frames(sim) -> list:
    return sim.requests("cancel-order")


def footer_actions(app) -> set[str]:
    """Actions the footer offers on the current screen."""
    return {a.binding.action for a in app.screen.active_bindings.values() if a.binding.show}


async def test_c_cancels_the_selected_order_after_tab_moved_focus_to_the_log():
    async with running() as (sim, desk, app, pilot):
        target = app.table.selected_id
        await pilot.press("tab", "tab")  # orders → positions → log
        await until(pilot, lambda: app.focused is app.log_pane, what="log focused")
        await pilot.press("c")
        frame = await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "cancel-order", 3)
        assert frame.data["args"]["orderId"] == target


async def test_c_s_and_x_act_after_a_click_on_the_log():
    async with running() as (sim, desk, app, pilot):
        target = app.table.selected_id
        await pilot.click("#log", offset=(5, 2))
        await until(pilot, lambda: app.focused is app.log_pane, what="log focused")
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="cancel-symbol dialog")
        assert desk.store.get(target).order.symbol in str(app.screen.question_text())
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), what="dialog closed")
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="cancel-all dialog")
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), what="dialog closed")
        assert sim.requests("cancel-all") == []
        await pilot.press("c")
        frame = await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "cancel-order", 3)
        assert frame.data["args"]["orderId"] == target


async def test_c_in_a_dialog_is_the_dialogs_key_not_a_cancel():
    async with running() as (sim, desk, app, pilot):
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="cancel-all dialog")
        await pilot.press("c")
        await pilot.pause(0.2)
        assert cancel_frames(sim) == []
        await pilot.press("n")


async def test_ctrl_c_says_how_to_quit():
    async with running(notifications=True) as (sim, desk, app, pilot):
        await pilot.press("ctrl+c")
        from textual.widgets._toast import Toast

        await until(
            pilot,
            lambda: any("To quit press q" in str(t.render()) for t in app.screen.query(Toast)),
            what="how to quit",
        )
        assert app.is_running


async def test_escape_in_the_filter_box_keeps_the_active_filter():
    async with running() as (sim, desk, app, pilot):
        symbol = desk.store.get(app.table.selected_id).order.symbol
        app.view.set_filter(symbol)
        app.poll(force=True)
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.focused, Input), what="filter box")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, FilterScreen), what="filter box closed")
        assert app.view.filter == symbol


async def test_read_only_footer_offers_no_cancel_key_and_the_keys_still_answer():
    async with running(read_only=True, cancel_on_hangup=True) as (sim, desk, app, pilot):
        offered = footer_actions(app)
        assert {"cancel", "cancel_all", "cancel_symbol"}.isdisjoint(offered)
        assert {"filter", "help", "quit_blotter"} <= offered
        await pilot.press("c", "X", "s")
        await until(
            pilot,
            lambda: sum(READ_ONLY_MESSAGE in line.text for line in desk.log.lines()) == 3,
            what="three read-only answers",
        )
        assert cancel_frames(sim) == [] and sim.requests("cancel-all") == []
        status = str(app.status_bar.render())
        assert "READ-ONLY" in status
        assert "CANCEL-ON-HANGUP" not in status


async def test_the_footer_offers_the_cancel_keys_when_trading():
    async with running() as (sim, desk, app, pilot):
        assert {"cancel", "cancel_all", "cancel_symbol"} <= footer_actions(app)


async def test_help_lists_every_binding_with_its_key_and_id_and_scrolls_at_80x24():
    from rich.console import Console

    from blotter.ui.bindings import binding_ids, key_display
    from blotter.ui.screens import HelpScreen

    async with running(size=(80, 24)) as (sim, desk, app, pilot):
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        await pilot.pause(0.1)
        box = app.screen.query_one("#help-box")
        dialog = app.screen.query_one("#help-dialog")
        assert dialog.region.width >= 70 and dialog.region.height >= 20  # not an empty 4x2 box
        assert box.region.height >= 15
        console = Console(width=box.content_region.width, record=True, file=io.StringIO())
        console.print(app.screen.query_one("#help-table").content)
        text = console.export_text()
        for bid, (key, _) in binding_ids().items():
            line = next((ln for ln in text.splitlines() if bid in ln), None)
            assert line is not None, f"{bid} not listed"
            assert line.strip().startswith(key_display(key)), line
        # more than fits: it scrolls, with the keys
        assert box.max_scroll_y > 0
        await pilot.press("pagedown")
        await until(pilot, lambda: box.scroll_y > 0, what="scrolled")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen), what="help closed")
