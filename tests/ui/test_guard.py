"""The cursor that moves by itself: a double tap never reaches the wrong order, and at
the top the table follows the newest orders."""

from __future__ import annotations

from decimal import Decimal

import blotter.ui.app
import blotter.ui.widgets.orders_table
from blotter.protocol import PlaceOrder
from blotter.ui.settings import UiSettings

from .conftest import running, until


def cancels_of(sim, order_id: str) -> list:
    return [f for f in sim.requests("cancel-order") if f.data["args"]["orderId"] == order_id]


async def select_then_lose_it(sim, desk, app, pilot) -> tuple[str, str]:
    """Select B (second row), cancel it with c; once B is gone (final linger 0) the cursor
    has moved by itself to its neighbour C. Returns (B, C)."""
    await pilot.press("down")
    b = app.table.selected_id
    await pilot.press("c")
    await until(pilot, lambda: b not in app.view and app.table.selected_id not in (None, b), what="B gone")
    c = app.table.selected_id
    assert app.table.implicit_move is not None and app.table.implicit_move[0] == b
    return b, c


GUARD = 3.0
"""The guard in these tests: long enough that a loaded machine does not outwait it
between two key presses 60 ms apart."""


def guard_over(app) -> bool:
    moved = app.table.implicit_move
    return moved is None or app.clock() - moved[1] >= blotter.ui.app.MOVED_GUARD


async def test_a_double_tap_60_ms_apart_after_the_selected_order_went_never_cancels_its_neighbour(monkeypatch):
    monkeypatch.setattr(blotter.ui.app, "MOVED_GUARD", GUARD)
    async with running(ui=UiSettings(clock="utc", final_linger=0)) as (sim, desk, app, pilot):
        b, c = await select_then_lose_it(sim, desk, app, pilot)
        assert len(cancels_of(sim, b)) == 1
        await pilot.press("c")
        await pilot.pause(0.06)
        await pilot.press("c")
        await pilot.pause(0.2)
        await sim.flush()
        assert cancels_of(sim, c) == []
        held = [line.text for line in desk.log.lines() if line.text.startswith("cancel: nothing sent")]
        assert len(held) == 2 and all(c in line and b in line for line in held)
        # the same row on screen for a moment: c acts on it
        await until(pilot, lambda: guard_over(app), timeout=GUARD + 5, what="guard over")
        await pilot.press("c")
        frame = await sim.wait_for(
            lambda f: (
                isinstance(f.data, dict) and f.data.get("action") == "cancel-order" and f.data["args"]["orderId"] == c
            ),
            3,
        )
        assert frame.data["args"]["orderId"] == c


async def test_moving_the_cursor_ends_the_guard_at_once():
    async with running(ui=UiSettings(clock="utc", final_linger=0)) as (sim, desk, app, pilot):
        b, c = await select_then_lose_it(sim, desk, app, pilot)
        await pilot.press("down", "up")
        assert app.table.implicit_move is None
        target = app.table.selected_id
        await pilot.press("c")
        frame = await sim.wait_for(
            lambda f: (
                isinstance(f.data, dict) and f.data.get("action") == "cancel-order" and f.data["args"]["orderId"] != b
            ),
            3,
        )
        assert frame.data["args"]["orderId"] == target


async def test_at_the_top_with_no_key_pressed_the_table_follows_the_newest_orders(monkeypatch):
    monkeypatch.setattr(blotter.ui.app, "MOVED_GUARD", 60.0)
    async with running(size=(120, 30)) as (sim, desk, app, pilot):
        template = next(iter(sim.open_orders()))
        before = set(sim.orders)
        for _ in range(30):
            await desk.session.send(
                PlaceOrder(
                    symbol=template["symbol"],
                    side="buy",
                    qty=Decimal(template["orderQty"]),
                    price=Decimal(template["price"]),
                )
            )
        await until(pilot, lambda: len(app.view) == 50, what="30 new orders shown")
        app.poll(force=True)
        await pilot.pause(0.05)
        newest = app.view[0]
        assert newest not in before
        assert app.table.selected_id == newest and app.table.cursor_row == 0
        assert app.table.scroll_y == 0
        assert str(app.table.border_subtitle).startswith("row 1/50")
        # the cursor moved by itself (from the order that was newest before)
        moved = app.table.implicit_move
        assert moved is not None and moved[0] != newest and moved[0] in app.view
        await pilot.press("c")  # a c pressed now sends nothing
        await pilot.pause(0.1)
        assert cancels_of(sim, newest) == []


async def test_scrolled_away_from_the_first_row_the_cursor_stays_on_its_order():
    async with running(size=(120, 30)) as (sim, desk, app, pilot):
        await pilot.press("down")
        mine = app.table.selected_id
        template = next(iter(sim.open_orders()))
        for _ in range(5):
            await desk.session.send(
                PlaceOrder(
                    symbol=template["symbol"],
                    side="buy",
                    qty=Decimal(template["orderQty"]),
                    price=Decimal(template["price"]),
                )
            )
        await until(pilot, lambda: len(app.view) == 25, what="5 new orders shown")
        app.poll(force=True)
        await pilot.pause(0.05)
        assert app.table.selected_id == mine and app.table.cursor_row == 6
        assert app.table.implicit_move is None


async def newer_order_takes_the_first_row(sim, desk, app, pilot) -> str:
    """A new order arrives and is drawn: the cursor, on the first row, follows it."""
    shown = len(app.view)
    template = next(iter(sim.open_orders()))
    await desk.session.send(
        PlaceOrder(
            symbol=template["symbol"], side="buy", qty=Decimal(template["orderQty"]), price=Decimal(template["price"])
        )
    )
    await until(pilot, lambda: len(app.view) == shown + 1, what="a newer order shown")
    app.poll(force=True)
    await pilot.pause(0.05)
    assert app.table.implicit_move is not None  # it moved by itself
    return app.table.selected_id


def is_cancel(f, but: str = "") -> bool:
    return isinstance(f.data, dict) and f.data.get("action") == "cancel-order" and f.data["args"]["orderId"] != but


async def test_c_down_c_on_the_first_row_cancels_two_adjacent_orders_when_a_newer_order_comes_between(monkeypatch):
    """The cursor follows the newest order on the first row; a Down pressed before the
    trader can have seen the new row moves from the order they had selected, so the
    second c cancels the order below the first, not the first again (nor a new one)."""
    monkeypatch.setattr(blotter.ui.widgets.orders_table, "MOVED_UNSEEN", 60.0)  # "at once", on a loaded machine
    async with running(size=(120, 30)) as (sim, desk, app, pilot):
        with app.book_lock:
            first, below = app.view[0], app.view[1]
        assert app.table.selected_id == first
        await pilot.press("c")
        await sim.wait_for(is_cancel, 3)
        newest = await newer_order_takes_the_first_row(sim, desk, app, pilot)
        assert newest not in (first, below)
        await pilot.press("down", "c")
        frame = await sim.wait_for(lambda f: is_cancel(f, but=first), 3)
        assert frame.data["args"]["orderId"] == below
        assert app.table.selected_id == below
        assert cancels_of(sim, newest) == [] and len(cancels_of(sim, first)) == 1


async def test_a_down_pressed_once_the_move_could_be_seen_moves_from_the_row_drawn(monkeypatch):
    monkeypatch.setattr(blotter.ui.widgets.orders_table, "MOVED_UNSEEN", 0.0)
    async with running(size=(120, 30)) as (sim, desk, app, pilot):
        with app.book_lock:
            first = app.view[0]
        newest = await newer_order_takes_the_first_row(sim, desk, app, pilot)
        assert newest != first
        await pilot.press("down")
        assert app.table.selected_id == first  # the row below the one on screen


async def test_down_at_once_after_the_selected_order_went_selects_the_row_now_in_its_place(monkeypatch):
    """B went and the cursor moved by itself to C, the row below B: a Down pressed before
    the trader can have seen it stays on C, the row below the one selected before, and c
    then cancels C."""
    monkeypatch.setattr(blotter.ui.widgets.orders_table, "MOVED_UNSEEN", 60.0)
    async with running(ui=UiSettings(clock="utc", final_linger=0)) as (sim, desk, app, pilot):
        b, c = await select_then_lose_it(sim, desk, app, pilot)
        await pilot.press("down")
        assert app.table.selected_id == c and app.table.implicit_move is None
        await pilot.press("c")
        frame = await sim.wait_for(lambda f: is_cancel(f, but=b), 3)
        assert frame.data["args"]["orderId"] == c
