"""The detail line under the table: the selected order in full.

Its fields are wrapped between fields (never inside one, unless a field is wider than
a row) onto a fixed number of rows for the terminal's width — two below
``DETAIL_WIDE`` columns, one from there — so the table does not jump as the cursor
moves; a line that needs more gets up to ``DETAIL_MAX_ROWS``. Nothing is cut
silently: what does not fit ends with '…'.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.widgets import Static

DETAIL_WIDE = 160
"""From this many columns the detail line usually fits on one row."""
DETAIL_MAX_ROWS = 3
FIELD_GAP = "  "


class DetailLine(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._fields: list[Text] = []

    def show(self, fields: list[Text]) -> None:
        self._fields = fields
        self._draw()

    def on_resize(self, event: events.Resize) -> None:
        self._draw()

    def _draw(self) -> None:
        terminal = self.app.size.width
        width = max(self.content_region.width or terminal - 2, 20)
        lines: list[Text] = []
        for field in self._fields:
            if lines and cell_len(lines[-1].plain) + len(FIELD_GAP) + cell_len(field.plain) <= width:
                lines[-1].append(FIELD_GAP)
                lines[-1].append_text(field)
            else:  # a field wider than a row is folded
                lines.extend(field.wrap(self.app.console, width, overflow="fold"))
        rows = min(max(1 if terminal >= DETAIL_WIDE else 2, len(lines)), DETAIL_MAX_ROWS)
        if len(lines) > rows:
            last = lines[rows - 1]
            last.truncate(width - 1)
            last.append("…")
            lines = lines[:rows]
        height = self.styles.height
        if height is None or height.value != rows:
            self.styles.height = rows
        self.update(Text("\n").join(lines), layout=False)
