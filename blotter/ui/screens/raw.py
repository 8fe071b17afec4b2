"""The ``v`` screen: the selected order's record as the blotter holds it, and for an
UNREADABLE order what was wrong with it and the record as received.

Everything here came from the exchange: each value goes through the one sanitiser
(control, bidi and zero-width characters made visible, lengths capped) and is put
in :class:`~rich.text.Text` objects, never markup."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ...core.orders import OrderEntry
from ...protocol.messages import ORDER_FIELDS, RAW_LIMIT
from ..bindings import RAW, textual_bindings
from ..text import safe


def raw_text(entry: OrderEntry) -> Text:
    """What the screen shows for ``entry``, sanitised."""
    order = entry.order
    t = Text()
    t.append("row ", style="dim")
    t.append(safe(entry.order_id, 80), style="bold")
    t.append(f"   status {safe(entry.status, 24)}")
    if entry.conflict:
        t.append("   CONFLICT: this order id is also on another symbol", style="bold")
    t.append("\n")
    if order.problem is not None:
        t.append("\nUNREADABLE: ", style="bold")
        t.append(
            "the blotter could not read this record. It counts as OPEN in every count and verdict "
            "until the exchange sends a readable record or a snapshot no longer lists it.\n"
        )
        t.append("problem: ", style="bold")
        t.append(safe(order.problem, 400) + "\n")
        if order.order_id.startswith("?"):
            t.append("no readable order id: it cannot be cancelled on its own (cancel-all covers it)\n")
        t.append("\nas received (escaped):\n", style="bold")
        t.append(safe(order.raw, RAW_LIMIT + 1) + "\n")
        t.append("\nfields read:\n", style="bold")
    else:
        t.append("\nfields:\n", style="bold")
    for name in ORDER_FIELDS:
        value = getattr(order, name)
        t.append(f"  {name:<15}", style="dim")
        t.append(("–" if value is None else safe(value, 80)) + "\n")
    return t


class RawScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    RawScreen {
        align: center middle;
        background: $background 60%;
    }
    RawScreen #raw-box {
        width: 100;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        padding: 0 1;
        border: round $accent;
        background: $surface;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = textual_bindings(RAW)

    def __init__(self, entry: OrderEntry) -> None:
        super().__init__()
        self.entry = entry

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="raw-box"):
            yield Static(raw_text(self.entry), id="raw")
            yield Static(Text("Esc closes"), id="hint")

    def on_mount(self) -> None:
        box = self.query_one("#raw-box")
        box.border_title = Text("Raw record" if self.entry.order.problem is not None else "Order record")

    def action_close(self) -> None:
        self.dismiss(None)
