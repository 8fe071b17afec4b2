"""The ? screen: every binding, its key (keymap included) and its id, grouped by where
it is in force. It scrolls (arrows, PgUp/PgDn, the mouse wheel) when the terminal is
too small to show it all."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..bindings import HELP, textual_bindings

Row = tuple[str, str, str]
"""(key as shown, what it does, binding id)."""


class HelpScreen(ModalScreen[None]):
    BINDINGS = textual_bindings(HELP)

    def __init__(self, sections: dict[str, list[Row]]) -> None:
        """``sections``: where the keys are in force → its rows."""
        super().__init__()
        self.sections = sections

    @property
    def rows(self) -> list[Row]:
        """Every row, in order."""
        return [row for rows in self.sections.values() for row in rows]

    def _table(self) -> Table:
        table = Table(box=None, show_header=True, header_style="bold", expand=True, padding=(0, 1))
        table.add_column("key", no_wrap=True)
        table.add_column("does", ratio=1)
        table.add_column("binding id", no_wrap=True, style="dim")
        for i, (scope, rows) in enumerate(self.sections.items()):
            table.add_row(Text(""), Text(scope.upper(), style="bold underline"))
            for key, description, binding_id in rows:
                table.add_row(Text(key, style="bold"), Text(description), Text(binding_id))
            if i < len(self.sections) - 1:
                table.add_row()
        return table

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            with VerticalScroll(id="help-box"):
                yield Static(self._table(), id="help-table")
            yield Static(
                Text(
                    "↑ ↓ PgUp PgDn scroll · Esc closes · Tab: orders → positions → log · remap a key by its id: "
                    '[keymap] "blotter.cancel" = "delete" in the config file'
                ),
                id="help-hint",
            )

    def on_mount(self) -> None:
        self.query_one("#help-dialog").border_title = Text("Keys")
        self.query_one("#help-box").focus()

    def action_close(self) -> None:
        self.dismiss(None)
