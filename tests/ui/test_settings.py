"""UiSettings, make_app wiring, NO_COLOR, and import hygiene of the view."""

from __future__ import annotations

import subprocess
import sys

import pytest

from blotter.ui.app import make_app
from blotter.ui.settings import UiSettings
from blotter.ui.themes import UnknownTheme

from .conftest import desk_for


def test_defaults():
    s = UiSettings()
    assert s.theme == "dark" and s.final_linger == 30 and s.show_final is False and s.highlight == 1.0
    assert s.keymap == {}


def test_no_color_follows_the_environment(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert UiSettings().no_color is True
    monkeypatch.setenv("NO_COLOR", "")  # no-color.org: set *and not empty*
    assert UiSettings().no_color is False
    monkeypatch.delenv("NO_COLOR")
    assert UiSettings().no_color is False


async def test_colour_stays_when_the_settings_say_so_whatever_textual_read(monkeypatch):
    from textual.filter import Monochrome, NoColor

    monkeypatch.setenv("NO_COLOR", "")
    app = make_app(desk_for("ws://127.0.0.1:1/1/api/pro/v2/stream", reconnect=False), UiSettings(no_color=False))
    assert not app.no_color
    assert not any(isinstance(f, (Monochrome, NoColor)) for f in app.get_line_filters())


def test_make_app_rejects_an_unknown_theme_before_drawing():
    with pytest.raises(UnknownTheme):
        make_app(desk_for("ws://127.0.0.1:1/1/api/pro/v2/stream"), UiSettings(theme="nope"))


async def test_no_color_app_strips_every_colour_and_runs():
    from textual.filter import Monochrome, NoColor

    from blotter.ui.nocolor import StripColour

    app = make_app(desk_for("ws://127.0.0.1:1/1/api/pro/v2/stream", reconnect=False), UiSettings(no_color=True))
    filters = app.get_line_filters()
    assert app.no_color and any(isinstance(f, StripColour) for f in filters)
    assert not any(isinstance(f, (Monochrome, NoColor)) for f in filters)
    assert app.blotter_theme.no_color
    assert app.blotter_theme.style("cursor").reverse and app.blotter_theme.style("cursor").bgcolor is None
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        assert app.is_running


def test_view_and_settings_do_not_import_textual():
    code = "import sys, blotter.core.view, blotter.ui.settings; print('textual' in sys.modules, 'rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
