"""The ? screen, generated from the bindings in force (keymap included)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..bindings import HELP, textual_bindings


class HelpScreen(ModalScreen[None]):
    BINDINGS = textual_bindings(HELP)

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        """``rows``: (key as shown, description, binding id)."""
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=True, header_style="bold", expand=False, padding=(0, 2))
        table.add_column("key", no_wrap=True)
        table.add_column("does")
        table.add_column("binding id (for keymap)", style="dim", no_wrap=True)
        for key, description, binding_id in self.rows:
            table.add_row(Text(key), Text(description), Text(binding_id))
        with VerticalScroll(id="help-box"):
            yield Static(table)
            yield Static(Text("Remap keys in the config file: [keymap] \"blotter.cancel\" = \"delete\"  —  Esc closes"))

    def on_mount(self) -> None:
        self.query_one("#help-box").border_title = "Keys"

    def action_close(self) -> None:
        self.dismiss(None)
