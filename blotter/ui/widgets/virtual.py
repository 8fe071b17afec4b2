"""Growing a line-API widget without a layout of the whole screen."""

from __future__ import annotations

from textual.geometry import Size
from textual.scroll_view import ScrollView


def set_virtual_size(widget: ScrollView, size: Size) -> None:
    """Give ``widget`` a new virtual size (rows added or dropped). Assigning
    ``virtual_size`` asks for a layout of the whole screen, since the scrollbar may
    appear or go: 7 ms at 160×48, each time a row or a log line is added in a burst —
    most of a redraw. When the scrollbar stays as it is (the content overflowed the
    widget before and still does, same width), only the widget and its scrollbar are
    redrawn."""
    old = widget.virtual_size
    if size == old:
        return
    room = widget.scrollable_content_region.height
    if size.width == old.width and old.height > room and size.height > room and widget.show_vertical_scrollbar:
        widget.set_reactive(type(widget).virtual_size, size)
        bar = widget.vertical_scrollbar
        if _thumb(bar, size.height) != _thumb(bar, bar.window_virtual_size):
            # (redrawing the bar costs 0.5–1 ms; a thumb that does not move is not redrawn)
            bar.window_virtual_size = size.height
        widget.refresh()
    else:
        widget.virtual_size = size


def _thumb(bar: object, virtual: float) -> tuple[int, int] | None:
    """Where the scrollbar's thumb is drawn, in eighths of a cell (its finest step)."""
    if virtual <= 0:
        return None
    length = max(bar.size.height, 1) * 8  # type: ignore[attr-defined]
    position, window = bar.position, bar.window_size  # type: ignore[attr-defined]
    return int(position * length / virtual), int((position + window) * length / virtual)
