"""The one list of bindings: pure, complete, and the same as what the classes bind."""

from __future__ import annotations

import subprocess
import sys

from blotter.ui.bindings import binding_ids, key_display, specs


def test_binding_ids_need_neither_textual_nor_an_app():
    code = (
        "import sys; from blotter.ui.bindings import binding_ids; ids = binding_ids(); "
        "print('textual' in sys.modules, ids['blotter.cancel'][0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "c"]


def test_binding_ids_cover_every_binding_of_every_class_with_its_key():
    from textual.binding import Binding

    from blotter.ui.app import BlotterApp
    from blotter.ui.screens import ConfirmScreen, FilterScreen, FlattenScreen, HelpScreen, QuitScreen
    from blotter.ui.screens.raw import RawScreen
    from blotter.ui.widgets import OrdersTable, PositionsPane

    ids = binding_ids()
    declared: dict[str, str] = {}
    for cls in (
        BlotterApp,
        OrdersTable,
        PositionsPane,
        ConfirmScreen,
        FlattenScreen,
        FilterScreen,
        HelpScreen,
        QuitScreen,
        RawScreen,
    ):
        for binding in cls.BINDINGS:
            assert isinstance(binding, Binding) and binding.id, f"{cls.__name__}: a binding without an id"
            declared[binding.id] = binding.key
    assert declared == {bid: key for bid, (key, _) in ids.items()}
    for bid, (key, description) in ids.items():
        assert description and key, bid
    for needed in (
        "blotter.cancel",
        "blotter.cancel_all",
        "blotter.cancel_symbol",
        "blotter.retry",
        "blotter.filter",
        "blotter.toggle_final",
        "blotter.log_filter",
        "blotter.refresh",
        "blotter.help",
        "blotter.quit",
        "blotter.raw",
        "blotter.flatten",
        "blotter.flatten_all",
        "blotter.toggle_positions",
        "blotter.toggle_flat",
    ):
        assert needed in ids
    assert len({s.id for s in specs()}) == len(specs())


def test_key_display_is_what_the_trader_types():
    assert key_display("n,escape") == "n / Esc"
    assert key_display("ctrl+q") == "Ctrl+q"
    assert key_display("?") == "?"
    assert key_display("question_mark") == "?"
