"""Snapshot tests of the main screen (pytest-textual-snapshot) at 80×24 and 160×48.

The simulator is seeded with a fixed clock (identical orders and times every run) and
runs in its own thread, because snap_compare runs the app with its own event loop.
UiSettings(frozen=True) draws ages, round-trip times and local clock times as fixed
placeholders. Regenerate with ``pytest tests/ui/test_snapshots.py --snapshot-update``
and look at the SVGs in tests/ui/__snapshots__/.
"""

from __future__ import annotations

import pytest

from blotter.ui.app import make_app
from blotter.ui.settings import UiSettings

from .conftest import desk_for, sim_config, sim_in_thread, until


def frozen_app(url: str, theme: str = "dark", **desk_kw):
    desk = desk_for(url, **desk_kw)
    desk.endpoint_label = "ws://127.0.0.1:8765/1/api/pro/v2/stream"  # the port is random
    return make_app(desk, UiSettings(clock="utc", frozen=True, theme=theme, no_color=False))


def wait_then(*keys: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        await until(pilot, lambda: app.desk.snapshot_count > 0 and len(app.view) == 20, what="orders")
        desk = app.desk  # the positions pane: the account loaded, and the marks (REST) when there are positions
        await until(
            pilot,
            lambda: desk.account_state.loaded and (not desk.open_positions() or bool(desk.marks)),
            what="account and marks",
        )
        # Column widths follow the widest values *drawn* so far; which rows were drawn while
        # the table loaded depends on timing, so draw every row once (End, Home) first.
        await pilot.press("end")
        app.poll(force=True)
        await pilot.pause(0.05)
        await pilot.press("home")
        app.poll(force=True)
        await pilot.pause(0.05)
        if keys:
            await pilot.press(*keys)
        app.poll(force=True)
        await pilot.pause(0.1)

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_main_screen(snap_compare, size):
    with sim_in_thread(sim_config()) as sim:
        app = frozen_app(sim.url)
        assert snap_compare(app, terminal_size=size, run_before=wait_then("down", "down"))


def test_main_screen_read_only_armed_high_contrast(snap_compare):
    with sim_in_thread(sim_config()) as sim:
        app = frozen_app(sim.url, theme="high-contrast", read_only=True, cancel_on_hangup=True)
        assert snap_compare(app, terminal_size=(120, 30), run_before=wait_then("down"))


def test_cancel_all_confirmation(snap_compare):
    with sim_in_thread(sim_config()) as sim:
        app = frozen_app(sim.url)
        assert snap_compare(app, terminal_size=(80, 24), run_before=wait_then("X"))


def test_help_screen(snap_compare):
    with sim_in_thread(sim_config()) as sim:
        app = frozen_app(sim.url)
        assert snap_compare(app, terminal_size=(80, 24), run_before=wait_then("question_mark"))


def test_main_screen_at_100_columns(snap_compare):
    with sim_in_thread(sim_config()) as sim:
        app = frozen_app(sim.url)
        assert snap_compare(app, terminal_size=(100, 30), run_before=wait_then("down"))
