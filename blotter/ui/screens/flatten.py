"""Yes/no before closing positions. y/Enter confirms; n/Esc, and ANY other key, aborts:
a close order is not undone, so only the confirm keys send it."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from ..bindings import FLATTEN, textual_bindings
from .confirm import ConfirmScreen


class FlattenScreen(ConfirmScreen):
    BINDINGS = textual_bindings(FLATTEN)

    def __init__(
        self, question: Text | Callable[[], Text], title: str = "Flatten", confirm_keys: frozenset[str] = frozenset()
    ) -> None:
        super().__init__(question, title=title)
        self.confirm_keys = confirm_keys or frozenset({"y", "enter", "n", "escape"})
        """The keys of this dialog's bindings (keymap included): every other key aborts."""

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question_text(), id="question")
            yield Static(Text("y / Enter = yes, send it     any other key = no, send nothing"), id="hint")

    def on_key(self, event: events.Key) -> None:
        if event.key in self.confirm_keys or (event.character or "") in self.confirm_keys:
            return
        event.stop()
        event.prevent_default()
        self.dismiss(False)
