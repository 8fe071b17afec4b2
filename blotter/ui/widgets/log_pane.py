"""The log pane: one entry per event from the desk's :class:`~blotter.core.log.EventLog`.

A line-API widget over a bounded deque: only the rows on screen are drawn. Every
entry is a literal string run through :func:`~blotter.ui.text.safe` (no markup, no
control characters) and coloured by its level. Long entries wrap between words
(continuation rows are indented), so an exchange error message is never cut off at the screen
edge. The pane follows the newest entry unless the trader has scrolled up. With an
order filter it shows only that order's entries.
"""

from __future__ import annotations

import re
import time
from collections import deque

from rich.cells import cell_len, chop_cells
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...core import EventLog, LogLine
from ..text import safe
from ..themes import Theme
from .virtual import set_virtual_size

LINE_LIMIT = 600
"""Characters shown of one entry (the exchange's messages can be long)."""
STAMP_WIDTH = 13
"""'HH:MM:SS.mmm ' — continuation rows are indented by this much."""
_LATENCY = re.compile(r"\d+(?:\.\d+)? ms\b")


class LogPane(ScrollView):
    DEFAULT_CSS = """
    LogPane {
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
        overflow-y: scroll;  /* always there: the wrap width never changes under the text */
    }
    """

    def __init__(
        self,
        log: EventLog,
        theme: Theme,
        max_lines: int = 2000,
        utc: bool = False,
        frozen: bool = False,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.event_log = log
        self.blotter_theme = theme
        self.max_lines = max_lines
        self.utc = utc
        self.frozen = frozen
        self.order_filter: str | None = None
        self._entries: deque[tuple[str, str]] = deque(maxlen=max_lines)
        """(text, level) per entry shown."""
        self._rows: list[tuple[str, str]] = []
        """Wrapped rows (text, level) for the current width."""
        self._row_counts: deque[int] = deque()
        self._wrap_width = 0
        self._seen = 0
        self._strip_key: tuple = (0, Style(), theme)
        self._strips: dict[tuple[str, str], Strip] = {}
        """Drawn rows by (text, level), for the width, base style and theme of ``_strip_key``."""

    def set_order_filter(self, order_id: str | None) -> None:
        """Show only ``order_id``'s entries (None: every entry)."""
        self.order_filter = order_id
        self.reload()

    @property
    def lines(self) -> list[str]:
        """The entries shown, unwrapped (for tests)."""
        return [text for text, _ in self._entries]

    def _format(self, line: LogLine) -> str:
        if self.frozen:
            stamp = "--:--:--.---"
            body = _LATENCY.sub("# ms", line.text)
        else:
            seconds = line.wall_ms / 1000
            t = time.gmtime(seconds) if self.utc else time.localtime(seconds)
            stamp = time.strftime("%H:%M:%S", t) + f".{line.wall_ms % 1000:03d}"
            body = line.text
        return f"{stamp} {safe(body, LINE_LIMIT)}"

    def _wrap(self, text: str) -> list[str]:
        """``text`` in rows of the pane's width, broken between words (a word longer
        than a row is broken where it must); continuation rows are indented past
        the time stamp."""
        width = self._wrap_width
        if width <= STAMP_WIDTH + 8 or cell_len(text) <= width:
            return [text]
        rows: list[str] = []
        indent = " " * STAMP_WIDTH
        line, room = "", width
        for word in text.split(" "):
            need = cell_len(word) + (1 if line else 0)
            if need <= room:
                line = f"{line} {word}" if line else word
                room -= need
                continue
            if line:
                rows.append(line)
                line, room = "", width - STAMP_WIDTH
            while cell_len(word) > room:  # longer than a whole row: break it
                head = chop_cells(word, room)[0]
                rows.append(head)
                word = word[len(head) :]
                room = width - STAMP_WIDTH
            line, room = word, room - cell_len(word)
        if line or not rows:
            rows.append(line)
        return [rows[0], *(indent + row for row in rows[1:])]

    def _rewrap(self) -> None:
        self._rows = []
        self._row_counts = deque()
        for text, level in self._entries:
            wrapped = self._wrap(text)
            self._rows.extend((row, level) for row in wrapped)
            self._row_counts.append(len(wrapped))

    def reload(self) -> None:
        self._entries.clear()
        self._rows = []
        self._row_counts = deque()
        self._seen = 0
        self.sync()
        self.virtual_size = Size(self._wrap_width, len(self._rows))
        self.scroll_y = self.max_scroll_y
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        width = self.scrollable_content_region.width
        if width != self._wrap_width:
            at_end = self.scroll_y >= self.max_scroll_y - 0.5
            self._wrap_width = width
            self._rewrap()
            self.virtual_size = Size(width, len(self._rows))
            if at_end:
                self.scroll_y = self.max_scroll_y
            self.refresh()

    def sync(self) -> bool:
        """Append entries logged since the last call. Returns True if any were added."""
        log = self.event_log
        if log.last_seq == self._seen:
            return False
        new = log.lines(since=self._seen, order_id=self.order_filter)
        self._seen = log.last_seq
        if not new:
            return False
        at_end = self.scroll_y >= self.max_scroll_y - 0.5
        dropped_rows = 0
        for line in new[-self.max_lines :]:
            if len(self._entries) == self._entries.maxlen:
                dropped_rows += self._row_counts.popleft() if self._row_counts else 0
            text = self._format(line)
            self._entries.append((text, line.level))
            wrapped = self._wrap(text)
            self._rows.extend((row, line.level) for row in wrapped)
            self._row_counts.append(len(wrapped))
        if dropped_rows:
            del self._rows[:dropped_rows]
        set_virtual_size(self, Size(self._wrap_width, len(self._rows)))
        if at_end:
            # synchronously: a lazy scroll_end would leave the next sync thinking the
            # trader had scrolled up
            self.scroll_y = self.max_scroll_y
        elif dropped_rows:
            self.scroll_y = max(0, self.scroll_y - dropped_rows)
        self.refresh()
        return True

    def render_lines(self, crop: Region) -> list[Strip]:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if (width, base, self.blotter_theme) != self._strip_key:
            self._strip_key = (width, base, self.blotter_theme)
            self._strips = {}
        elif len(self._strips) > 512:
            self._strips = {}
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width, base, theme = self._strip_key
        index = round(self.scroll_y) + y
        if index >= len(self._rows):
            return Strip.blank(width, base)
        row = self._rows[index]
        strip = self._strips.get(row)
        if strip is None:
            text, level = row
            strip = Strip([Segment(text, base + theme.log_style(level))]).crop_extend(0, width, base)
            self._strips[row] = strip
        return strip
