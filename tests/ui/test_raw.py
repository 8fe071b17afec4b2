"""An UNREADABLE order on screen: its row, and ``v`` for its raw record, sanitised."""

from __future__ import annotations

from decimal import Decimal

from blotter.core.text import has_unsafe
from blotter.ui.screens.raw import RawScreen, raw_text
from blotter.ui.widgets.orders_table import fmt_amount

from .conftest import running, sim_config, until


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def test_v_shows_the_raw_record_of_an_unreadable_order_escaped():
    config = sim_config(initial_orders=6, odd_records=["zero-width-status", "lone-surrogate"])
    async with running(config, size=(140, 40)) as (sim, desk, app, pilot):
        unreadable = desk.store.unreadable()
        assert len(unreadable) == 2
        text = screen_text(app)
        table = text.split("Orders —", 1)[1].split("╰", 1)[0]  # the orders box (the log may quote valid values)
        assert "Canceled" not in table  # the status that only looks like Canceled is never drawn as one
        assert text.count("UNREADABLE") >= 2  # two rows (and the detail line of a selected one), counted open
        assert f"open {len(sim.open_orders())}" in text
        target = next(e for e in unreadable if e.order.problem.startswith("accountId"))
        app.table.select(target.order_id)
        await pilot.pause(0.05)
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, RawScreen), what="raw screen")
        await pilot.pause(0.05)
        raw = screen_text(app)
        assert "UNREADABLE" in raw and "problem" in raw and target.order_id in raw
        assert "accountId: not text (a lone surrogate escape)" in raw
        shown = raw_text(target).plain  # (the box scrolls: the whole text, as the screen holds it)
        assert "\\udc80" in shown and not any(has_unsafe(line) for line in shown.splitlines())  # escaped, nothing raw
        shown.encode("utf-8")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, RawScreen), what="raw screen closed")


async def test_v_on_a_readable_order_shows_its_fields():
    async with running(sim_config(initial_orders=3), size=(140, 40)) as (_sim, _desk, app, pilot):
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, RawScreen), what="raw screen")
        await pilot.pause(0.05)
        assert "fields:" in screen_text(app) and "UNREADABLE" not in screen_text(app)


def test_an_amount_out_of_range_is_never_formatted():
    assert fmt_amount(Decimal("1e999999999999999999")) == "out of range"
    assert fmt_amount(Decimal("NaN")) == "out of range"
    assert fmt_amount(Decimal("64000.50")) == "64000.50"
