"""Columns, the detail line and the log at 80, 100, 120 and 160 columns."""

from __future__ import annotations

import pytest

from blotter.ui.widgets.orders_table import COLUMNS, ID_MIN_TAIL, layout

from .conftest import running, until

TITLES = [c.title for c in COLUMNS]
DEMO_NATURAL = {
    "time": 8,
    "symbol": 9,
    "side": 4,
    "type": 9,
    "price": 7,
    "qty": 6,
    "filled": 6,
    "avg": 9,
    "status": 20,
    "id": 32,
}
"""Widths of the demo's values (StopLimit, DOGE-PERP, 0.12272, PENDING CANCEL 12.3s, a 32-character id)."""


def shown(width: int, natural: dict[str, int] = DEMO_NATURAL) -> list[str]:
    columns, _, _ = layout(natural, width)
    return [c.key for c, _ in columns]


@pytest.mark.parametrize("terminal", [100, 120, 160])
def test_every_column_is_shown_from_100_columns(terminal):
    width = terminal - 3  # borders and the scrollbar
    assert shown(width) == [c.key for c in COLUMNS]
    columns, id_tail, _ = layout(DEMO_NATURAL, width)
    assert sum(w for _, w in columns) + len(columns) - 1 + 1 <= width
    assert dict((c.key, w) for c, w in columns)["id"] >= ID_MIN_TAIL


def test_at_80_columns_type_then_avg_price_collapse_and_the_id_shows_its_tail():
    keys = shown(77)
    assert "type" not in keys and "avg" not in keys
    assert {"symbol", "side", "price", "qty", "filled", "status", "id"} <= set(keys)
    _, id_tail, _ = layout(DEMO_NATURAL, 77)
    assert id_tail


@pytest.mark.parametrize("terminal", [120, 160])
def test_wider_values_do_not_make_columns_disappear(terminal):
    """The id gives up room first; wider prices and quantities keep every column."""
    wider = dict(DEMO_NATURAL, price=9, qty=8, avg=11, filled=8, symbol=10)
    assert shown(terminal - 3, wider) == shown(terminal - 3)


async def header_of(app) -> str:
    return app.table.render_line(0).text


@pytest.mark.parametrize("size", [(100, 30), (120, 36)])
async def test_the_table_shows_every_column_at(size):
    async with running(size=size) as (sim, desk, app, pilot):
        app.poll(force=True)
        await pilot.pause(0.05)
        header = await header_of(app)
        for title in TITLES:
            assert title in header.replace("…ORDER ID", "ORDER ID"), (title, header)


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
async def test_the_detail_line_is_shown_in_full(size):
    async with running(size=size) as (sim, desk, app, pilot):
        await pilot.press("down")
        await pilot.pause(0.05)
        oid = app.table.selected_id
        detail = app.query_one("#detail")
        # everything the line says fits in the rows it has: nothing cut, no ellipsis
        lines = [strip.text.rstrip() for strip in detail.render_lines(detail.region.reset_offset)]
        shown_text = " ".join(line.strip() for line in lines if line.strip())
        assert "…" not in shown_text, lines
        assert oid in shown_text.replace(" ", "") or oid in shown_text
        assert "created" in shown_text


async def test_log_lines_wrap_between_words():
    async with running(size=(100, 40)) as (sim, desk, app, pilot):
        words = [f"word{i:03d}" for i in range(40)]
        desk.log.add("refused: " + " ".join(words), "error")
        app.poll(force=True)
        await pilot.pause(0.05)
        pane = app.log_pane
        rows = [pane.render_line(y).text.rstrip() for y in range(pane.scrollable_content_region.height)]
        first = next(i for i, r in enumerate(rows) if "refused: " in r)
        rows = rows[first : first + 1 + sum(1 for r in rows[first + 1 :] if r.startswith(" " * 13) and r.strip())]
        assert len(rows) >= 3, rows
        tokens = " ".join(rows).split()
        tokens = tokens[tokens.index("refused:") + 1 :]
        assert tokens == words, rows  # no word cut in two
        # continuation rows are indented under the text, after the time stamp
        assert all(r.startswith(" " * 13) for r in rows[1:])


async def test_the_detail_line_rewraps_when_the_terminal_is_resized():
    async with running(size=(160, 40)) as (sim, desk, app, pilot):
        detail = app.query_one("#detail")
        assert detail.region.height == 1
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.1)
        assert detail.region.height == 2
        lines = [strip.text.strip() for strip in detail.render_lines(detail.region.reset_offset)]
        assert "…" not in " ".join(lines) and "created" in " ".join(lines)


async def test_the_columns_keep_their_width_when_the_rows_outgrow_the_page():
    """The scrollbar is always there: its arrival would narrow the table by a column and
    lay the columns out again."""
    from decimal import Decimal

    from blotter.protocol import PlaceOrder

    async with running(size=(120, 50)) as (sim, desk, app, pilot):  # (50 rows: the positions pane takes some)
        table = app.table
        assert len(app.view) < table.scrollable_content_region.height - 1  # all rows fit
        width = table.scrollable_content_region.width
        header = table.render_line(0).text
        template = next(iter(sim.open_orders()))
        for _ in range(30):
            await desk.session.send(
                PlaceOrder(
                    symbol=template["symbol"],
                    side="buy",
                    qty=Decimal(template["orderQty"]),
                    price=Decimal(template["price"]),
                )
            )
        await until(pilot, lambda: len(app.view) == 50, what="more rows than the page")
        app.poll(force=True)
        await pilot.pause(0.05)
        assert table.scrollable_content_region.width == width
        assert table.render_line(0).text == header


def test_a_status_that_grows_for_a_moment_is_cut_at_80_columns_rather_than_time_dropped():
    """During a cancel-all a stop order's STATUS reads ``PENDING CANCEL 0.4s STOP`` (24
    cells): widths only grow, so at 80 columns that once would have dropped TIME for
    the rest of the session. STATUS gives back what it grew beyond its least width."""
    grown = dict(DEMO_NATURAL, status=24)
    assert shown(77) == shown(77, grown)
    assert "time" in shown(77, grown)
    columns, _, _ = layout(grown, 77)
    widths = {c.key: w for c, w in columns}
    assert widths["status"] == 20 and sum(widths.values()) + len(widths) - 1 + 1 <= 77
    # with room to spare the status gets its width back before the id does
    columns, _, _ = layout(grown, 80)
    widths = {c.key: w for c, w in columns}
    assert widths["status"] == 23 and "time" in widths
    # values wider still: TIME goes, and STATUS gets back what TIME gave
    wider = dict(grown, price=9, qty=8)
    columns, _, _ = layout(wider, 77)
    widths = {c.key: w for c, w in columns}
    assert "time" not in widths and widths["status"] == 24
    assert sum(widths.values()) + len(widths) - 1 + 1 <= 77
