"""Asked on quit while orders are open or requests are in flight."""

from __future__ import annotations

import enum

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


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

    def __init__(self, open_count: int, in_flight: int, read_only: bool = False) -> None:
        super().__init__()
        self.open_count = open_count
        self.in_flight = in_flight
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        what = []
        if self.open_count:
            what.append(f"{self.open_count} order{'s' if self.open_count != 1 else ''} open")
        if self.in_flight:
            what.append(f"{self.in_flight} request{'s' if self.in_flight != 1 else ''} in flight")
        text = Text(f"{', '.join(what) or 'Nothing open'}.\n\n", style="bold")
        text.append("l  leave the orders working and quit\n")
        if not self.read_only:
            text.append("c  cancel ALL open orders, wait for the confirmation, then quit\n")
        text.append("s / Esc  stay")
        with Vertical(id="dialog"):
            yield Static(text, id="question")

    def on_mount(self) -> None:
        self.query_one("#dialog").border_title = "Quit?"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "choose" and parameters == ("cancel-all",) and self.read_only:
            return False
        return True

    def action_choose(self, choice: str) -> None:
        self.dismiss(QuitChoice(choice))
