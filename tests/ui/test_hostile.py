"""Strings from the exchange are data: markup, escapes, bidi, NUL and huge values are
shown literally (escaped) and the app keeps running."""

from __future__ import annotations

from blotter.protocol import RequestError
from blotter.sim import SimServer

from .conftest import running, sim_config

HOSTILE_SYMBOLS = [
    "[bold red]x[/]",
    "[@click=app.quit]",
    "EVIL\x1b[2J",
    "\x1b]52;c;aGk=\x07",
    "\u202eLREP-CTB\x00",
]
HUGE = "Z" * 100_000
"""The protocol cannot read such a symbol (records are kept as UNREADABLE rows and logged, one line each)."""
LONG = "Z" * 60
"""Accepted by the protocol, wider than the SYMBOL column: shown cut with '…'."""
BAD_CHARS = ("\x1b", "\x07", "\x00", "\u202e", "\r")


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def test_hostile_symbols_and_messages_render_literally():
    config = sim_config(symbols=["BTC-PERP", *HOSTILE_SYMBOLS, LONG, HUGE], initial_orders=40)
    async with SimServer(config, port=0) as sim:
        acceptable = sum(1 for o in sim.open_orders() if len(o["symbol"]) <= 64)
    async with running(config, size=(160, 48), wait_orders=acceptable) as (sim, desk, app, pilot):
        rejected = [l.text for l in desk.log.lines() if "record unreadable" in l.text]
        assert rejected and all(len(t) < 700 for t in rejected)
        await app.desk.refresh()
        symbols = {e.order.symbol for e in desk.store.entries()}
        assert any(s.startswith("[@CLICK") for s in symbols)  # the simulator upper-cases symbols
        # filter to each hostile symbol and look at the screen
        for needle, shown in [
            ("[@click", "[@CLICK=APP.QUIT]"),
            ("[bold", "[BOLD RED]X[/]"),
            ("evil", "EVIL\\x1b[2J"),
            ("52;c", "\\x1b]52;C;AGK=\\x07"),
            ("lrep", "\\u202eLREP-CTB\\x00"),
        ]:
            app.view.set_filter(needle)
            app.poll(force=True)
            await pilot.pause(0.05)
            assert len(app.view), f"no order on {needle!r}"
            text = screen_text(app)
            assert shown in text, (needle, text)
            for bad in BAD_CHARS:
                assert bad not in text
        app.view.set_filter("ZZZZ")
        app.poll(force=True)
        await pilot.pause(0.05)
        assert len(app.view)
        text = screen_text(app)
        assert "ZZZZ" in text and "…" in text  # the 60-char symbol, cut visibly
        # a refused request with a hostile message
        tracked = desk.tracker.sent("co-hostile-1", "cancel-order", app.clock(), symbol="BTC-PERP", order_id="o1")
        desk.tracker.on_error(
            RequestError(
                request_id=tracked.request_id,
                code=300006,
                reason="[@click=app.quit]",
                message="\x1b]52;c;aGk=\x07 [bold]boom[/] \u202e" + "M" * 100_000,
            ),
            app.clock(),
        )
        await pilot.pause(0.1)
        line = next(l for l in app.log_pane.lines if "co-hostile-1 ERR" in l)
        assert "300006 [@click=app.quit] \\x1b]52;c;aGk=\\x07 [bold]boom[/] \\u202e" in line
        assert len(line) <= 700
        for bad in BAD_CHARS:
            assert bad not in line
        assert app.is_running
        svg = app.export_screenshot()
        assert "\x1b" not in svg and "\u202e" not in svg


async def test_a_hostile_symbol_in_the_cancel_symbol_dialog_is_shown_literally():
    from blotter.ui.screens.confirm import ConfirmScreen

    from .conftest import until

    symbol = "[reverse]EV[/reverse][@click=app.quit]Q"
    async with running(sim_config(symbols=[symbol], initial_orders=3), size=(120, 36)) as (sim, desk, app, pilot):
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        await pilot.pause(0.1)
        shown = desk.store.get(app.table.selected_id).order.symbol  # as the exchange spelled it
        assert "[" in shown and "@click" in shown.lower()
        assert f"Cancel all on {shown}" in screen_text(app)  # the title, literally
        await pilot.press("n")
        await pilot.pause(0.1)
        assert sim.requests("cancel-all") == [] and app.return_code is None
