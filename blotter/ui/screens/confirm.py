"""Yes/no confirmation for cancels that touch many orders. y/Enter confirms, n/Esc aborts."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y,enter", "confirm", "Yes", id="confirm.yes"),
        Binding("n,escape", "abort", "No", id="confirm.no"),
    ]

    def __init__(self, question: Text, title: str = "Confirm") -> None:
        super().__init__()
        self.question = question
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, id="question")
            yield Static(Text("y / Enter = yes, send it     n / Esc = no, send nothing"), id="hint")

    def on_mount(self) -> None:
        self.query_one("#dialog").border_title = self.title_text

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_abort(self) -> None:
        self.dismiss(False)
