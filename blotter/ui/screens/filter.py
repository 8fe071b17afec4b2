"""The filter prompt: symbol or order-id substring. Enter applies, Esc clears."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class FilterScreen(ModalScreen[str]):
    BINDINGS = [Binding("escape", "clear", "Clear filter", id="filter.clear")]

    def __init__(self, current: str = "") -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="filter-box"):
            yield Static("Filter by symbol or order-id substring — Enter applies, Esc clears", id="filter-hint")
            yield Input(value=self.current, placeholder="e.g. BTC or 3f9a", id="filter-input", max_length=64)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_clear(self) -> None:
        self.dismiss("")
