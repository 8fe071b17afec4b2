"""Every key binding of the screen, declared once, as plain data.

The app, the orders table and the dialogs build their Textual ``BINDINGS`` from
these tables; the ``?`` screen lists them; and :func:`binding_ids` gives the
command line (``blotter --list-bindings``, the check of a ``[keymap]``) the same
list without loading Textual or starting an app.

A key is written as in a ``[keymap]`` entry: a character (``"?"``, ``"X"``), or a
Textual key name (``"ctrl+q"``, ``"pagedown"``); several keys are separated by
commas (``"y,enter"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.binding import BindingType

__all__ = ["KeySpec", "SCOPES", "binding_ids", "key_display", "specs", "textual_bindings"]


@dataclass(frozen=True, slots=True)
class KeySpec:
    id: str
    """The binding id a ``[keymap]`` names (``blotter.cancel``)."""
    key: str
    """Default key(s), comma-separated."""
    action: str
    label: str
    """Short footer label."""
    description: str
    """What the key does, in a sentence (the ``?`` screen and ``--list-bindings``)."""
    show: bool = True
    """Offered in the footer."""
    priority: bool = False
    """Matched before the focused widget sees the key."""


MAIN: tuple[KeySpec, ...] = (
    KeySpec(
        "blotter.cancel",
        "c",
        "cancel",
        "Cancel",
        "Cancel the selected order now (no confirmation), whichever pane has focus",
        priority=True,
    ),
    KeySpec("blotter.help", "?", "help", "Help", "Show every key and its binding id"),
    KeySpec("blotter.cancel_all", "X", "cancel_all", "All", "Cancel ALL open orders on every symbol (asks first)"),
    KeySpec(
        "blotter.cancel_symbol",
        "s",
        "cancel_symbol",
        "Symbol",
        "Cancel all open orders on the selected order's symbol (asks first)",
    ),
    KeySpec(
        "blotter.retry",
        "R",
        "retry_cancel_all",
        "Retry",
        "Cancel again the orders the last cancel-all left open",
        show=False,
    ),
    KeySpec(
        "blotter.filter",
        "/",
        "filter",
        "Filter",
        "Filter by symbol or order-id substring (Enter applies, empty Enter clears, Esc keeps the filter)",
    ),
    KeySpec(
        "blotter.toggle_final", "f", "toggle_final", "Finals", "Show / hide final orders older than the linger time"
    ),
    KeySpec("blotter.log_filter", "l", "log_filter", "Log", "Log pane: only the selected order's lines / all lines"),
    KeySpec("blotter.refresh", "r", "refresh", "Refresh", "Re-request the open-orders snapshot"),
    KeySpec(
        "blotter.raw",
        "v",
        "raw",
        "Raw",
        "Show the selected order's record (what was wrong with an UNREADABLE one, and the record as received)",
        show=False,
    ),
    KeySpec(
        "blotter.flatten",
        "F",
        "flatten",
        "Flatten",
        "Close the selected position with a reduce-only market order of its size (asks first; "
        "in an emergency cancel all orders first: X, then Z)",
        show=False,  # (the footer must fit 80 columns; the positions pane names F and Z)
    ),
    KeySpec(
        "blotter.flatten_all",
        "Z",
        "flatten_all",
        "Flat all",
        "Flatten ALL positions, each by its own reduce-only market order, and verify they are at zero (asks first). "
        "Emergency sequence: cancel all (X) first, then flatten all (Z)",
        show=False,
    ),
    KeySpec(
        "blotter.toggle_positions",
        "p",
        "toggle_positions",
        "Positions",
        "Positions pane: expand / collapse to one line",
        show=False,
    ),
    KeySpec(
        "blotter.toggle_flat", "0", "toggle_flat", "Flat", "Positions pane: show / hide flat positions", show=False
    ),
    KeySpec("blotter.quit", "q", "quit_blotter", "Quit", "Quit (asks what to do with open orders)"),
    KeySpec(
        "blotter.quit_ctrl",
        "ctrl+q",
        "quit_blotter",
        "Quit",
        "Quit (asks what to do with open orders)",
        show=False,
        priority=True,
    ),
)
"""The main screen's keys (bound on the app)."""

ORDERS: tuple[KeySpec, ...] = (
    KeySpec("orders.up", "up", "cursor_up", "Up", "Orders table: cursor up one row", show=False),
    KeySpec("orders.down", "down", "cursor_down", "Down", "Orders table: cursor down one row", show=False),
    KeySpec("orders.page_up", "pageup", "page_up", "Page up", "Orders table: cursor up one page", show=False),
    KeySpec("orders.page_down", "pagedown", "page_down", "Page down", "Orders table: cursor down one page", show=False),
    KeySpec("orders.first", "home", "first", "First row", "Orders table: first row (newest open order)", show=False),
    KeySpec("orders.last", "end", "last", "Last row", "Orders table: last row", show=False),
)
"""The orders table's cursor keys (while the table has focus)."""

POSITIONS: tuple[KeySpec, ...] = (
    KeySpec("positions.up", "up", "cursor_up", "Up", "Positions pane: select the position above", show=False),
    KeySpec("positions.down", "down", "cursor_down", "Down", "Positions pane: select the position below", show=False),
)
"""The positions pane's keys (while it has focus; Tab moves focus between orders, positions and log)."""

FLATTEN: tuple[KeySpec, ...] = (
    KeySpec("flatten.yes", "y,enter", "confirm", "Yes", "Flatten dialog: yes, send the reduce-only market order(s)"),
    KeySpec("flatten.no", "n,escape", "abort", "No", "Flatten dialog: no, send nothing (so does any other key)"),
)

CONFIRM: tuple[KeySpec, ...] = (
    KeySpec("confirm.yes", "y,enter", "confirm", "Yes", "Cancel-all dialog: yes, send it"),
    KeySpec("confirm.no", "n,escape", "abort", "No", "Cancel-all dialog: no, send nothing"),
)
FILTER: tuple[KeySpec, ...] = (
    KeySpec("filter.cancel", "escape", "cancel", "Cancel", "Filter box: stop editing, keep the filter as it was"),
)
HELP: tuple[KeySpec, ...] = (KeySpec("help.close", "escape,q,?", "close", "Close", "This screen: close it"),)
RAW: tuple[KeySpec, ...] = (KeySpec("raw.close", "escape,q,v", "close", "Close", "Record screen: close it"),)
QUIT: tuple[KeySpec, ...] = (
    KeySpec(
        "quit.leave",
        "l",
        "choose('leave')",
        "Leave orders working and quit",
        "Quit dialog: leave the orders working and quit",
    ),
    KeySpec(
        "quit.cancel_all",
        "c",
        "choose('cancel-all')",
        "Cancel all, then quit",
        "Quit dialog: cancel all open orders, wait for the confirmation, then quit",
    ),
    KeySpec("quit.stay", "s,escape", "choose('stay')", "Stay", "Quit dialog: stay"),
)
"""Declared here for the lists; :class:`~blotter.ui.screens.quit.QuitScreen` keeps its
own ``BINDINGS`` (tests check that the two agree)."""

SCOPES: dict[str, tuple[KeySpec, ...]] = {
    "main screen": MAIN,
    "orders table": ORDERS,
    "positions pane": POSITIONS,
    "cancel-all dialog": CONFIRM,
    "flatten dialog": FLATTEN,
    "filter box": FILTER,
    "keys screen": HELP,
    "record screen": RAW,
    "quit dialog": QUIT,
}
"""Where each group of keys is in force."""


def specs() -> list[KeySpec]:
    """Every binding, in the order of :data:`SCOPES`."""
    return [spec for group in SCOPES.values() for spec in group]


def binding_ids() -> dict[str, tuple[str, str]]:
    """Binding id → (default key(s), what it does), for every binding of the screen.

    Pure: no Textual import, no app. The ids are what a ``[keymap]`` may name."""
    return {spec.id: (spec.key, spec.description) for spec in specs()}


_DISPLAY = {
    "escape": "Esc",
    "enter": "Enter",
    "pageup": "PgUp",
    "pagedown": "PgDn",
    "home": "Home",
    "end": "End",
    "up": "↑",
    "down": "↓",
    "left": "←",
    "right": "→",
    "tab": "Tab",
    "delete": "Del",
    "space": "Space",
    "question_mark": "?",
    "slash": "/",
}


def key_display(keys: str) -> str:
    """How a key string is shown to the trader: ``"n,escape"`` → ``"n / Esc"``."""
    shown = []
    for key in keys.split(","):
        key = key.strip()
        *mods, last = key.split("+") if len(key) > 1 else [key]
        name = _DISPLAY.get(last, last)
        shown.append("+".join([m.capitalize() for m in mods] + [name]))
    return " / ".join(shown)


def textual_bindings(group: tuple[KeySpec, ...]) -> list[BindingType]:
    """The group as Textual ``Binding`` objects (for a class's ``BINDINGS``)."""
    from textual.binding import Binding

    bindings: list[BindingType] = [
        Binding(
            spec.key,
            spec.action,
            spec.label,
            show=spec.show,
            priority=spec.priority,
            tooltip=spec.description,
            id=spec.id,
        )
        for spec in group
    ]
    return bindings
