"""The orders table: a virtual table on Textual's line API.

Only the rows on screen are drawn, straight from the order store through
:class:`~blotter.core.view.OrderView` (the sorted, filtered id list), so 100,000
orders cost no more to draw than 40. No per-cell widgets, no DataTable.

The cursor is pinned to an **order id**, never to a row number: when rows are
inserted, removed or re-sorted, the cursor follows the same order (and the screen
scrolls with it so the row stays where the trader's eyes are). If that order leaves
the view, the cursor moves to the row now at its place. On the first row the cursor
follows the newest order instead, so the table at the top shows the newest orders.
Each time the cursor moves by itself, :attr:`OrdersTable.implicit_move` says so, and
the app holds back ``c`` until the trader has seen the new row: nothing is ever
cancelled implicitly. An up or down key pressed too soon after such a move to have been
aimed at it moves from the order the trader had selected (:meth:`OrdersTable.step`).

On narrower screens ORDER ID first shrinks to its last characters (``…`` + tail; the
full id is always on the detail line under the table), so every column is shown
from 100 columns up; at 80, TYPE and AVG PRICE are dropped (then, for wider values,
STATUS cut back to its least width, TIME, FILLED: see :func:`layout`). Column
widths come from the widest values seen so far, never from the rows on screen only,
so columns do not come and go as values change. Values are never cut silently: a
value wider than its column's cap ends with ``…``.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...core import NOT_OPEN, OrderEntry, RequestTracker
from ...core.view import OrderView, ViewChange
from ..bindings import ORDERS, textual_bindings
from ..text import safe
from ..themes import Theme
from .virtual import set_virtual_size

Align = Literal["left", "right"]


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    align: Align = "left"
    min_width: int = 0
    cap: int = 30
    """Widest the column grows; longer values end with '…'."""


COLUMNS: tuple[Column, ...] = (
    Column("time", "TIME", min_width=8, cap=12),
    Column("symbol", "SYMBOL", min_width=8, cap=20),
    Column("side", "SIDE", min_width=4, cap=8),
    Column("type", "TYPE", min_width=5, cap=12),
    Column("price", "PRICE", "right", min_width=5),
    Column("qty", "QTY", "right", min_width=3),
    Column("filled", "FILLED", "right", min_width=3),
    Column("avg", "AVG PRICE", "right", min_width=5),
    Column("status", "STATUS", min_width=20, cap=24),
    Column("id", "ORDER ID", min_width=32, cap=40),
)
BY_KEY = {c.key: c for c in COLUMNS}
DROP_ORDER = ("type", "avg", "time")
"""Dropped first, in this order, when the table is too narrow."""
ID_MIN_TAIL = 9
"""Narrowest the ORDER ID column gets ('…' + last 8 characters: the simulator's and the
exchange's ids end in 9 random characters)."""
GUTTER = 1
SEP = 1
WIDE_SEP = 2
"""Gap between columns when everything fits with it."""


def fmt_amount(value: Decimal | None) -> str:
    """An exact decimal string: never float, never scientific notation; absent is '–'."""
    if value is None:
        return "–"
    if not value.is_finite() or abs(value.adjusted()) > 64:  # (orders hold bounded amounts only)
        return "out of range"
    return format(value, "f")


@functools.lru_cache(maxsize=256)
def order_badge(exec_inst: str | None, status: str | None) -> str:
    """The short badge of an order row, from its ``execInst`` and status (computed once
    per distinct pair): ``LIQ`` an order of the liquidation engine, ``POS-STOP`` a
    position's own stop (``PosStop*``), ``STOP`` an untriggered stop (``PendingNew``),
    ``PO`` post-only, ``RO`` reduce-only (PROTOCOL.md enums, by their names)."""
    inst = exec_inst or ""
    if inst == "Liquidation":
        return "LIQ"
    parts = []
    if inst.startswith("PosStop"):
        parts.append("POS-STOP")
    elif status == "PendingNew":
        parts.append("STOP")
    if inst.startswith(("Post", "OpenPost")) or inst == "InternalPost":
        parts.append("PO")
    if "Reduce" in inst:
        parts.append("RO")
    return " ".join(parts)


def fmt_time(ms: int | None, utc: bool) -> str:
    if ms is None:
        return "–"
    seconds = ms / 1000
    t = time.gmtime(seconds) if utc else time.localtime(seconds)
    return time.strftime("%H:%M:%S", t)


def fit(text: str, width: int, align: Align = "left") -> str:
    """``text`` in exactly ``width`` cells; cut text ends with '…' (never cut silently)."""
    n = cell_len(text)
    if n > width:
        return set_cell_size(text, max(width - 1, 0)) + ("…" if width > 0 else "")
    if align == "right":
        return " " * (width - n) + text
    return text + " " * (width - n)


def tail(text: str, width: int) -> str:
    """The last characters of ``text`` in ``width`` cells, led by '…' when cut."""
    if cell_len(text) <= width:
        return text + " " * (width - cell_len(text))
    return "…" + text[-(width - 1) :] if width > 1 else "…"


def layout(natural: dict[str, int], width: int) -> tuple[list[tuple[Column, int]], bool, int]:
    """Columns and widths that fit ``width`` cells, whether ORDER ID shows its tail
    only, and the gap between columns.

    ``natural`` are the widest values seen so far (they only grow), so a column never
    comes and goes with the values on screen. Room is found in this order: the gap
    narrows, ORDER ID gives up its head (the full id is on the detail line), down to
    ``ID_MIN_TAIL``; TYPE and AVG PRICE are dropped; STATUS gives up what it grew
    beyond its least width (a passing ``PENDING CANCEL 0.4s STOP`` is cut with '…'
    rather than TIME dropped for the rest of the session: the detail line has it
    whole); only then TIME, then FILLED are dropped; the room left goes back to
    STATUS, then the id; last, SYMBOL is cut (with '…')."""
    keys = [c.key for c in COLUMNS]

    def total(ks: list[str], w: dict[str, int], sep: int = SEP) -> int:
        return GUTTER + sum(w[k] for k in ks) + sep * max(len(ks) - 1, 0)

    if total(keys, natural, WIDE_SEP) <= width:
        return [(c, natural[c.key]) for c in COLUMNS], False, WIDE_SEP

    widths = dict(natural)
    widths["id"] = min(natural["id"], ID_MIN_TAIL)
    least_status = min(natural["status"], BY_KEY["status"].min_width)
    for key in (*DROP_ORDER, "filled"):
        over = total(keys, widths) - width
        if over <= 0:
            break
        if key == "time" and widths["status"] > least_status:
            widths["status"] = max(least_status, widths["status"] - over)
            if total(keys, widths) <= width:
                break
        keys.remove(key)
    spare = width - total(keys, widths)
    if spare > 0:  # the room left goes back to STATUS, then to the id
        give = min(spare, natural["status"] - widths["status"])
        widths["status"] += give
        widths["id"] = min(natural["id"], widths["id"] + spare - give)
    over = total(keys, widths) - width
    if over > 0:
        widths["symbol"] = max(widths["symbol"] - over, 6)
    return [(BY_KEY[k], widths[k]) for k in keys], widths["id"] < natural["id"], SEP


MOVED_UNSEEN = 0.3
"""Seconds after the cursor moved by itself (and was drawn so) during which a cursor key
counts as planned on the frame before: about the quickest a trader can see a row jump
and react. Such a key moves from the order the trader had selected (:meth:`OrdersTable.step`)."""
_RELATIVE = frozenset({"cursor_up", "cursor_down", "page_up", "page_down"})
"""Cursor keys that move from where the cursor is (not to the first or last row)."""


class OrdersTable(ScrollView, can_focus=True):
    """The main pane. Reads the store; holds only view state (cursor, scroll)."""

    BINDINGS = textual_bindings(ORDERS)

    DEFAULT_CSS = """
    OrdersTable {
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
        overflow-y: scroll;  /* always there: the columns' room never changes with the row count */
    }
    """

    class SelectionChanged(Message):
        def __init__(self, order_id: str | None) -> None:
            super().__init__()
            self.order_id = order_id

    def __init__(
        self,
        view: OrderView,
        tracker: RequestTracker,
        theme: Theme,
        clock: Callable[[], float] = time.monotonic,
        highlight: float = 1.0,
        utc: bool = False,
        frozen: bool = False,
        *,
        lock: AbstractContextManager[Any] | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.view = view
        self.tracker = tracker
        self.blotter_theme = theme
        self.clock = clock
        self.highlight = 0.0 if frozen else highlight
        self.utc = utc
        self.frozen = frozen
        self.book_lock: AbstractContextManager[Any] = lock if lock is not None else threading.RLock()
        """The desk's book lock: held while the view and the cursor are read or changed."""
        self.selected_id: str | None = None
        self._announced: str | None = None
        self._index = 0
        self.page_rows = 20
        """Rows a page key moves (the rows on screen, as last laid out)."""
        self.implicit_move: tuple[str, float] | None = None
        """(order id the cursor was on, when): the cursor last moved by itself, not by the
        trader. Cleared when the trader moves the cursor."""
        self.unseen_for: Callable[[], float] = lambda: MOVED_UNSEEN
        """Seconds after the cursor moved by itself during which a cursor key was planned
        on the frame before (:data:`MOVED_UNSEEN`; see :meth:`step`)."""
        self._natural: dict[str, int] = {c.key: max(c.min_width, len(c.title)) for c in COLUMNS}
        self._layout: list[tuple[Column, int]] = []
        self._id_tail = False
        self._sep = SEP
        self._layout_width = -1
        self._rows: dict[str, tuple[dict[str, str] | None, OrderEntry, tuple]] = {}
        self._row_ids: dict[int, str] = {}
        """Row number → order id of the rows prepared for this redraw (drawn without the lock)."""
        self._status_keys: dict[str, str] = {}
        self._width = 0
        self._base = Style()
        self._strips: dict[str, tuple[tuple, Strip]] = {}
        """order id → (what its row was drawn from, the row): redraws reuse unchanged rows."""
        self._layout_key = object()
        self._stale = False
        """The table is marked STALE, NOT LIVE or NOT LOADED (its class ``-stale``): rows are dimmed."""
        self._pending_all: dict[str, float] = {}
        self._pending_all_version = -1
        self._now = 0.0
        self.highlight_until = 0.0
        """Monotonic time until which some visible row is highlighted (needs redraws)."""
        self.pending_visible = False
        """A visible row shows a PENDING CANCEL age (needs redraws ten times a second)."""
        self._styles: dict[str, Style] = {}
        self._build_styles()
        self.render_hook: Callable[[list[OrderEntry]], None] | None = None
        """Instrumentation (benchmarks): called with the entries of the rows on screen
        each time they are drawn. None (the default) costs nothing."""

    # -- theme -------------------------------------------------------------------
    def _build_styles(self) -> None:
        role = self.blotter_theme.style
        self._styles = {name: role(name) for name in ("header", "cursor", "highlight", "dim", "fg")}

    # -- selection (pinned to the order id) -----------------------------------------
    # The cursor's state (selected_id, its row, implicit_move) may be changed by the
    # terminal's input thread (see blotter/ui/keys.py), always under ``book_lock``; scrolling
    # to it and redrawing are the screen loop's (:meth:`show_cursor`).
    @property
    def row_count(self) -> int:
        return len(self.view)

    @property
    def cursor_row(self) -> int:
        return self._index

    def select(self, order_id: str | None) -> None:
        """Put the cursor on ``order_id`` (if shown)."""
        with self.book_lock:
            index = self.view.index_of(order_id)
            if index is None:
                return
            self.move_cursor(index)
        self.show_cursor()

    def move_cursor(self, index: int) -> None:
        """The cursor's state only (any thread, ``book_lock`` held): on row ``index``, clamped."""
        n = len(self.view)
        if n == 0:
            self._index, self.selected_id = 0, None
            return
        index = min(max(index, 0), n - 1)
        self.implicit_move = None
        self._index = index
        self.selected_id = self.view[index]

    def step(self, action: str) -> None:
        """A cursor key (``cursor_up``, ``page_down``, ``first``…), in the view as it is
        now (any thread, ``book_lock`` held).

        An up or down key that comes within :func:`unseen_for` of the cursor moving by
        itself was pressed before the trader could see the move: it moves from the order
        they had selected. So ``c Down c`` on the first row cancels that order and the one
        below it even when a newer order takes the first row between the presses (the
        cursor follows the newest there). If that order left the view, the row now in its
        place counts as the one below it. Later, every key moves from the row the cursor
        is on, as drawn."""
        here = self._here()
        moved = self.implicit_move
        if moved is not None and action in _RELATIVE and self.clock() - moved[1] < self.unseen_for():
            anchor = self.view.index_of(moved[0])
            if anchor is not None:
                here = anchor
            elif action in ("cursor_down", "page_down"):
                here -= 1
        target = {
            "cursor_up": here - 1,
            "cursor_down": here + 1,
            "page_up": here - self.page_rows,
            "page_down": here + self.page_rows,
            "first": 0,
            "last": len(self.view) - 1,
        }[action]
        self.move_cursor(target)

    def show_cursor(self) -> None:
        """On the screen's loop, after the cursor moved: scroll to it, redraw, say so."""
        if not self.is_mounted:
            return
        with self.book_lock:
            self._index = self._here()
            self._scroll_to_cursor()
            self._announce()
        self.refresh()

    def _announce(self) -> None:
        if self.selected_id != self._announced:
            self._announced = self.selected_id
            self.post_message(self.SelectionChanged(self.selected_id))

    def _move_to(self, index: int) -> None:
        with self.book_lock:
            self.move_cursor(index)
        self.show_cursor()

    def _set_selected(self, order_id: str | None, index: int) -> None:
        self._index = index
        self.selected_id = order_id
        self._announce()

    @property
    def _page(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def _scroll_to_cursor(self) -> None:
        page = self._page
        self.page_rows = page
        top = round(self.scroll_y)
        if self._index < top:
            self.scroll_y = self._index
        elif self._index > top + page - 1:
            self.scroll_y = self._index - page + 1

    def _here(self) -> int:
        """The cursor's row in the view as it is now: the view follows the store between
        redraws, and the cursor is pinned to its order, not to a row number."""
        index = self.view.index_of(self.selected_id)
        return self._index if index is None else index

    def action_cursor_up(self) -> None:
        self._step("cursor_up")

    def action_cursor_down(self) -> None:
        self._step("cursor_down")

    def action_page_up(self) -> None:
        self._step("page_up")

    def action_page_down(self) -> None:
        self._step("page_down")

    def action_first(self) -> None:
        self._step("first")

    def action_last(self) -> None:
        self._step("last")

    def _step(self, action: str) -> None:
        with self.book_lock:
            self.step(action)
        self.show_cursor()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        index = round(self.scroll_y) + offset.y - 1
        if 0 <= index < len(self.view):
            self._move_to(index)

    # -- folding view changes ---------------------------------------------------------
    def apply(self, change: ViewChange) -> None:
        """After ``view.sync``: keep the cursor on its order, resize, redraw if needed."""
        old_index = self._index
        if change.reordered:
            previous = self.selected_id
            order_id: str | None
            if old_index == 0 and len(self.view):
                # on the first row the cursor follows the newest order (the table stays at the top)
                order_id, index = self.view[0], 0
            else:
                order_id, index = self.view.follow(previous, old_index)
            if previous is not None and order_id != previous:
                # the cursor moved by itself: c is held back until the trader has seen the new row
                self.implicit_move = (previous, self.clock())
            top = round(self.scroll_y)
            self._set_selected(order_id, index)
            self._set_virtual_height(len(self.view) + 1)
            if order_id is not None:
                rows_on_screen = max(1, self.scrollable_content_region.height - 1)
                if top == 0 and index < rows_on_screen:
                    # at the top, stay there: new orders (newest first) come into view
                    self.scroll_y = 0
                else:
                    # scrolled down: keep the selected row on the same screen line
                    self.scroll_y = max(0, top + (index - old_index))
                self._scroll_to_cursor()
            self.refresh()
        elif change.changed:
            visible = self._visible_range()
            index_of = self.view.index_of
            for changed_id in change.changed:
                row = index_of(changed_id)
                if row is not None and row in visible:
                    self.refresh()
                    break

    def _set_virtual_height(self, height: int) -> None:
        set_virtual_size(self, Size(self.scrollable_content_region.width, height))

    def on_resize(self, event: events.Resize) -> None:
        with self.book_lock:
            self.virtual_size = Size(self.scrollable_content_region.width, len(self.view) + 1)
            self._scroll_to_cursor()

    # -- cells -----------------------------------------------------------------------------
    def _pending_cancel_all(self) -> dict[str, float]:
        """order id → sent_at of an in-flight cancel-all targeting it (per tracker version)."""
        if self._pending_all_version != self.tracker.version:
            pending: dict[str, float] = {}
            for t in self.tracker.in_flight():
                if t.action == "cancel-all":
                    for oid in t.targets - t.confirmed:
                        pending.setdefault(oid, t.sent_at)
            self._pending_all = pending
            self._pending_all_version = self.tracker.version
        return self._pending_all

    def status_of(self, entry: OrderEntry, now: float) -> tuple[str, str]:
        """(text, theme key) of the STATUS cell: the store's status, or the fate of a
        cancel in flight for an open order; ``CONFLICT`` after it when the order id is
        also on another symbol."""
        text, key = self._status_of(entry, now)
        return (text + " CONFLICT", key) if entry.conflict else (text, key)

    def _status_of(self, entry: OrderEntry, now: float) -> tuple[str, str]:
        if entry.is_open and entry.unreadable:
            return "UNREADABLE", "unknown"  # open, and the raw record is one key away
        if not entry.is_open:
            status = entry.status
            return ("NOT OPEN", "NotOpen") if status == NOT_OPEN else (safe(status, 24), status)
        oid = entry.order_id
        t = self.tracker.pending_cancel(oid)
        sent_at = t.sent_at if t is not None else self._pending_cancel_all().get(oid)
        if sent_at is not None:
            age = 0.0 if self.frozen else max(now - sent_at, 0.0)
            return f"PENDING CANCEL {age:.1f}s", "pending_cancel"
        t = self.tracker.timed_out_cancel(oid)
        if t is not None and t.final_status is None:
            return "UNKNOWN", "unknown"
        return safe(entry.status, 24), entry.status

    def cells(self, entry: OrderEntry, now: float, status: str | None = None) -> dict[str, str]:
        o = entry.order
        side = safe(o.side, 8).upper()
        if status is None:
            status, _ = self.status_of(entry, now)
        badge = order_badge(o.exec_inst, o.status)
        if badge:
            status = f"{status} {badge}"
        return {
            "time": fmt_time(o.create_time_ms if o.create_time_ms is not None else o.exec_time_ms, self.utc),
            "symbol": safe(o.symbol, 40) or "?",
            "side": side or "–",
            "type": safe(o.order_type, 16) or "–",
            "price": fmt_amount(o.price),
            "qty": fmt_amount(o.qty),
            "filled": fmt_amount(o.filled_qty),
            "avg": fmt_amount(o.avg_price),
            "status": status,
            "id": safe(o.order_id, 64),
        }

    def _visible_range(self) -> range:
        top = round(self.scroll_y)
        return range(top, min(top + self._page, len(self.view)))

    def _prepare(self) -> None:
        """The rows on screen: which can reuse the strip drawn last time, and the cells
        of the others; widen columns that need it; lay out. Runs once per redraw."""
        now = self._now = self.clock()
        width = self._width = self.scrollable_content_region.width
        base = self._base = self.rich_style
        rows: dict[str, tuple[dict[str, str] | None, OrderEntry, tuple]] = {}
        natural = self._natural
        grew = False
        pending = False
        hl_until = 0.0
        view = self.view
        store_get = view.store.get
        strips = self._strips
        highlight = self.highlight
        selected_id = self.selected_id
        layout_key = self._layout_key
        stale = self._stale = self.has_class("-stale")  # STALE / NOT LIVE / NOT LOADED: every row dimmed
        row_ids: dict[int, str] = {}
        status_keys: dict[str, str] = {}
        for index in self._visible_range():
            oid = view[index]
            row_ids[index] = oid
            entry = store_get(oid)
            if entry is None:
                continue
            status, status_key = self.status_of(entry, now)
            status_keys[oid] = status_key
            if status.startswith("PENDING"):
                pending = True
            highlighted = bool(highlight) and now - entry.changed_at < highlight
            if highlighted:
                hl_until = max(hl_until, entry.changed_at + highlight)
            selected = oid == selected_id
            # A row's strip depends only on these: redraws of rows that did not change (the
            # screen scrolled, another row changed) reuse it, without working out its cells.
            key = (
                entry.order,
                entry.missing,
                selected,
                highlighted and not selected,
                status,
                width,
                base,
                stale,
                layout_key,  # (last: render_line swaps it when the columns were laid out again)
            )
            if self._cached_strip(oid, key) is not None:
                rows[oid] = (None, entry, key)
                continue
            cells = self.cells(entry, now, status)
            rows[oid] = (cells, entry, key)
            for column, text in cells.items():
                w = min(cell_len(text), BY_KEY[column].cap)
                if w > natural[column]:
                    natural[column] = w
                    grew = True
        self._rows = rows
        self._row_ids = row_ids
        self._status_keys = status_keys
        if len(strips) > 4 * max(len(rows), 64):
            self._strips = {oid: v for oid, v in strips.items() if oid in rows}
        if self.render_hook is not None:
            self.render_hook([entry for _, entry, _ in rows.values()])
        self.pending_visible = pending
        self.highlight_until = hl_until
        if grew or width != self._layout_width:
            self._layout, self._id_tail, self._sep = layout(natural, width)
            self._layout_width = width
            self._layout_key = object()

    def _cached_strip(self, oid: str, key: tuple) -> Strip | None:
        """The strip drawn for ``oid`` last time, if it was drawn from the same ``key``
        (the order record is compared by identity: a new record is a changed row)."""
        cached = self._strips.get(oid)
        if cached is not None and cached[0][0] is key[0] and cached[0][1:] == key[1:]:
            return cached[1]
        return None

    def render_lines(self, crop: Region) -> list[Strip]:
        # What the rows show is read under the book lock (the session's thread changes the
        # store and the view, the input thread the cursor); the strips are built after it.
        with self.book_lock:
            self._prepare()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width, base = self._width, self._base
        if y == 0:
            return self._header_strip(width, base)
        index = round(self.scroll_y) + y - 1
        oid = self._row_ids.get(index)
        if oid is None:
            return Strip.blank(width, base)
        row = self._rows.get(oid)
        if row is None:  # its order is no longer known
            return Strip.blank(width, base)
        cells, entry, key = row
        if key[-1] is not self._layout_key:  # the columns were laid out again since
            key = (*key[:-1], self._layout_key)
        cached = self._cached_strip(oid, key)
        if cached is not None:
            return cached
        if cells is None:
            cells = self.cells(entry, self._now, key[4])
        strip = self._row_strip(cells, entry, key[2], width, base, self._status_keys.get(oid, entry.status))
        self._strips[oid] = (key, strip)
        return strip

    def _header_strip(self, width: int, base: Style) -> Strip:
        style = base + self._styles["header"]
        segments = [Segment(" " * GUTTER, base)]
        for i, (col, w) in enumerate(self._layout):
            title = "…ORDER ID" if col.key == "id" and self._id_tail and w >= 9 else col.title
            if i:
                segments.append(Segment(" " * self._sep, base))
            segments.append(Segment(fit(title, w, col.align), style))
        return Strip(segments).crop_extend(0, width, base)

    def _row_strip(
        self,
        cells: dict[str, str],
        entry: OrderEntry,
        selected: bool,
        width: int,
        base: Style,
        status_key: str | None = None,
    ) -> Strip:
        """One row; ``status_key``: the STATUS cell's theme key as prepared (default: worked out now)."""
        if status_key is None:
            status_key = self.status_of(entry, self._now)[1]
        theme = self.blotter_theme
        row_base = base
        if selected:
            row_base = base + self._styles["cursor"]
        elif self.highlight and self._now - entry.changed_at < self.highlight:
            row_base = base + self._styles["highlight"]
        final = not entry.is_open
        dim = self._styles["dim"]
        segments = [Segment("▶" if selected else " ", row_base + Style(bold=True))]
        for i, (col, w) in enumerate(self._layout):
            key = col.key
            text = cells[key]
            if key == "id" and self._id_tail:
                text = tail(text, w)
            else:
                text = fit(text, w, col.align)
            if key == "status":
                style = theme.status_style(entry.status if final else status_key)
                if final:
                    style = style + Style(dim=True)
            elif key == "side":
                style = dim if final else theme.side_style(cells["side"])
            else:
                style = dim if final else self._styles["fg"]
            if self._stale and not final:  # (a final row is dimmed already)
                style = style + Style(dim=True)
            if i:
                segments.append(Segment(" " * self._sep, row_base))
            segments.append(Segment(text, row_base + style))
        return Strip(segments).crop_extend(0, width, row_base)
