"""The filter prompt: symbol or order-id substring. Enter applies (an empty box clears the
filter); Esc stops editing and keeps the filter as it was."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from ..bindings import FILTER, textual_bindings


class FilterScreen(ModalScreen[str | None]):
    BINDINGS = textual_bindings(FILTER)

    def __init__(self, current: str = "") -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="filter-box"):
            yield Static(
                "Filter by symbol or order-id substring — Enter applies (empty: no filter), Esc keeps the filter",
                id="filter-hint",
            )
            yield Input(value=self.current, placeholder="e.g. BTC or 3f9a", id="filter-input", max_length=64)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
