"""Asked on quit while orders are open or requests are in flight.

The counts are live: the dialog asks ``counts()`` a few times a second, so what it
says is what is open now, not when ``q`` was pressed."""

from __future__ import annotations

import enum
from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

REFRESH_EVERY = 0.25
"""Seconds between two looks at the counts."""


class QuitChoice(enum.Enum):
    LEAVE = "leave"
    CANCEL_ALL = "cancel-all"
    STAY = "stay"


class QuitScreen(ModalScreen[QuitChoice]):
    BINDINGS = [
        Binding("l", "choose('leave')", "Leave orders working and quit", id="quit.leave"),
        Binding("c", "choose('cancel-all')", "Cancel all, then quit", id="quit.cancel_all"),
        Binding("s,escape", "choose('stay')", "Stay", id="quit.stay"),
    ]

    def __init__(self, counts: Callable[[], tuple[int, int]], read_only: bool = False) -> None:
        """``counts()`` is (open orders, requests in flight), asked while the dialog shows."""
        super().__init__()
        self.counts = counts
        self.read_only = read_only
        self.open_count, self.in_flight = counts()

    def question(self) -> Text:
        what = []
        if self.open_count:
            what.append(f"{self.open_count} order{'s' if self.open_count != 1 else ''} open")
        if self.in_flight:
            what.append(f"{self.in_flight} request{'s' if self.in_flight != 1 else ''} in flight")
        text = Text(f"{', '.join(what) or 'Nothing open'}.\n\n", style="bold")
        text.append("l  leave the orders working and quit\n")
        if not self.read_only:
            text.append("c  cancel ALL open orders, wait until the exchange shows none open, then quit\n")
        text.append("s / Esc  stay")
        return text

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question(), id="question")

    def on_mount(self) -> None:
        self.query_one("#dialog").border_title = "Quit?"
        self.set_interval(REFRESH_EVERY, self.refresh_counts)

    def refresh_counts(self) -> None:
        counts = self.counts()
        if counts != (self.open_count, self.in_flight):
            self.open_count, self.in_flight = counts
            self.query_one("#question", Static).update(self.question())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "choose" and parameters == ("cancel-all",) and self.read_only:
            return False
        return True

    def action_choose(self, choice: str) -> None:
        self.dismiss(QuitChoice(choice))
