"""Yes/no confirmation for cancels that touch many orders. y/Enter confirms, n/Esc aborts.

The question may be a function: it is then redrawn four times a second, so the
count of orders it names is never stale while the trader reads it."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from ..bindings import CONFIRM, textual_bindings


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = textual_bindings(CONFIRM)

    def __init__(self, question: Text | Callable[[], Text], title: str = "Confirm") -> None:
        super().__init__()
        self.question = question
        self.title_text = title

    def question_text(self) -> Text:
        return self.question() if callable(self.question) else self.question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question_text(), id="question")
            yield Static(Text("y / Enter = yes, send it     n / Esc = no, send nothing"), id="hint")

    def on_mount(self) -> None:
        # A Text, not a str: a str border title is parsed as markup, and the title
        # may quote the exchange (a symbol).
        self.query_one("#dialog").border_title = Text(self.title_text)
        if callable(self.question):
            self.set_interval(0.25, self._redraw)

    def _redraw(self) -> None:
        self.query_one("#question", Static).update(self.question_text())

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_abort(self) -> None:
        self.dismiss(False)
