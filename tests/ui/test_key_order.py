"""Key order under load: ``Down c`` cancels the row below the one selected before, and
``c Down c`` two adjacent orders — whichever thread applies the keys (the screen's loop,
or the terminal's input thread while nothing else waits there), with the order flow
running and the desk on the app's loop or on a thread of its own."""

from __future__ import annotations

import asyncio
import threading

import pytest
from textual import events

from .conftest import running, sim_config, until


def cancel_targets(desk) -> set[str]:
    """Every order a cancel was tried for: sent (tracked), or refused with a log line."""
    with desk.lock:
        sent = {t.order_id for t in desk.tracker.all() if t.action == "cancel-order"}
        refused = {
            line.order_id
            for line in desk.log.lines()
            if line.order_id and (line.text.startswith("cancel:") or "already cancelling" in line.text)
        }
    return sent | refused


def cancel_lines(desk) -> list[str]:
    """What the log says about cancels (a failure shows it)."""
    with desk.lock:
        return [line.text for line in desk.log.lines() if "cancel" in line.text]


def select_open_rows(app, desk, start: int, n: int = 2, avoid: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Put the cursor on the first row from ``start`` on that begins ``n`` open rows in a
    row, and return their ids, in one look at the view: the flow changes it between two
    looks (an order that is filled lingers in place a while, then moves away), and a test
    that selects, then reads the rows, can read the wrong ones."""
    with app.book_lock:
        view, store = app.view, desk.store
        for i in range(start, len(view) - n + 1):
            run = tuple(view[i + k] for k in range(n))
            entries = [store.get(oid) for oid in run]
            if all(e is not None and e.is_open for e in entries) and not avoid.intersection(run):
                app.table.select(run[0])
                return run
    raise AssertionError(f"no {n} open orders in a row from row {start} on")


async def until_cancelled(pilot, desk, wanted: set[str], what: str) -> None:
    try:
        await until(pilot, lambda: wanted <= cancel_targets(desk), timeout=15, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: wanted {sorted(wanted)}; the log says {cancel_lines(desk)}") from None


LOAD = dict(initial_orders=60, rate=3000, fixed_time_ms=None)
"""Order updates all the time; new orders come in at the top, far above the rows used."""


@pytest.mark.parametrize("threaded", [False, True], ids=["desk-on-app-loop", "desk-on-own-thread"])
async def test_down_c_and_c_down_c_cancel_the_rows_meant_under_load(threaded):
    async with running(sim_config(**LOAD), size=(120, 60), threaded=threaded) as (sim, desk, app, pilot):
        await until(pilot, lambda: desk.session.frames_received > 200, what="the flow running")
        _, below = select_open_rows(app, desk, 30)
        await pilot.press("down", "c")
        await until_cancelled(pilot, desk, {below}, "the cancel of the row below")
        first, second = select_open_rows(app, desk, 40, avoid=frozenset({below}))
        await pilot.press("c", "down", "c")
        await until_cancelled(pilot, desk, {first, second}, "both cancels")
        await pilot.pause(0.2)
        assert cancel_targets(desk) == {below, first, second}, cancel_lines(desk)


def post_as_the_driver(app, loop, event: events.Event) -> None:
    """What Textual's driver does with an event it did not keep (from its input thread)."""
    event.set_sender(app)
    asyncio.run_coroutine_threadsafe(app._post_message(event), loop)


async def test_keys_read_in_the_input_thread_keep_their_order_around_keys_the_screen_handles():
    """The input thread applies ``Down`` and ``c`` itself, but after a key it hands to the
    screen's loop (Tab: focus leaves the table) every key waits its turn there: the
    ``Down`` after Tab is the next pane's, not the table's, and the ``c`` after it cancels
    the same order again (refused: already cancelling); back on the table (Shift+Tab),
    ``Down c`` cancels the next row. Sent together, as a terminal delivers a burst."""
    async with running(sim_config(**LOAD), size=(120, 60), threaded=True) as (sim, desk, app, pilot):
        await until(pilot, lambda: desk.session.frames_received > 200, what="the flow running")
        router = app.key_router
        loop = asyncio.get_running_loop()
        _, a, b = select_open_rows(app, desk, 20, 3)
        early_before = router.handled_early
        keys = [("down", None), ("c", "c"), ("tab", "\t"), ("down", None), ("c", "c")]
        keys += [("shift+tab", None), ("down", None), ("c", "c")]

        def type_keys() -> None:
            for key, char in keys:
                event = events.Key(key, char)
                if not router.read(event):
                    post_as_the_driver(app, loop, event)

        reader = threading.Thread(target=type_keys)
        reader.start()
        await asyncio.to_thread(reader.join)
        await until_cancelled(pilot, desk, {a, b}, "both cancels")
        await until(pilot, lambda: router.pending == 0, what="every posted key handled")
        await pilot.pause(0.3)
        assert cancel_targets(desk) == {a, b}, cancel_lines(desk)
        assert app.focused is app.table
        assert router.handled_early > early_before, "no key was applied in the input thread"


async def test_the_cursor_on_the_first_row_stays_on_the_newest_order_while_a_big_snapshot_comes_in():
    """With the desk on its own thread, the first rows of a big snapshot (folded a slice at
    a time, newer orders landing above) take the cursor at once; it must stay on the first
    row — the newest order — not on the order that happened to come first, so that ``c``
    after the load cancels the order shown on top."""
    config = sim_config(initial_orders=20_000, fixed_time_ms=None)
    async with running(config, size=(120, 40), threaded=True) as (sim, desk, app, pilot):
        await pilot.pause(0.3)
        with app.book_lock:
            top = app.view[0]
        assert app.table.selected_id == top
        assert app.table.cursor_row == 0
