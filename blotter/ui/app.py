"""The blotter's Textual app: one screen, driven by a :class:`~blotter.desk.Desk`.

The desk folds every frame into its store, tracker and log synchronously; this app
never gets a message per frame. It *polls* (``poll_hz`` times a second) and redraws
only when ``store.version``, ``tracker.version`` or ``log.last_seq`` moved, plus
ten times a second while a PENDING CANCEL age or a row highlight is on screen, and
once a second for ages and staleness.

In a real terminal the desk runs on a thread of its own (:meth:`Desk.start_thread`):
the socket is read, frames are parsed and folded and the journal is fed there, while
this app's loop composes frames and writes them to the terminal. Everything the two
share (store, tracker, log, view, cursor) is read and changed under the desk's book
lock. The cursor keys and ``c`` act in the terminal's input thread
(:mod:`blotter.ui.keys`): a cancel is on the desk's loop, on its way to the socket,
without waiting for this loop. Headless (tests), the desk runs on this app's loop and
the same code handles the same keys here.

Use :func:`make_app` — the CLI, the demo and the tests all build the app with it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.filter import LineFilter
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from ..core.view import OrderView, ViewChange
from ..net.loop_thread import name_os_threads
from . import bindings
from .bindings import textual_bindings
from .keys import COUNTED, BlotterDriver, KeyRouter
from .nocolor import TEXTUAL_COLOUR_FILTERS, TEXTUAL_NO_COLOR_FILTERS, StripColour
from .screens import ConfirmScreen, FilterScreen, FlattenScreen, HelpScreen, QuitChoice, QuitScreen
from .screens.raw import RawScreen
from .settings import UiSettings
from .text import safe
from .themes import Theme, load_theme, theme_variables
from .widgets import DetailLine, LogPane, OrdersTable, PositionsPane, StatusBar
from .widgets.orders_table import fmt_amount, fmt_time, order_badge
from .widgets.positions_pane import COLLAPSE_BELOW
from .widgets.status_bar import build_status

if TYPE_CHECKING:
    from ..desk import Desk

__all__ = ["BlotterApp", "UiSettings", "make_app"]

READ_ONLY_MESSAGE = "read-only: cancel keys are disabled"
BUSY_RATE = 5000
"""Frames a second from which the poll counts the session as in a burst."""
BUSY_HZ = 20
"""Redraws a second at most during a burst (every 50 ms: fresh enough to read)."""
CANCEL_KEYS = (
    "blotter.cancel",
    "blotter.cancel_all",
    "blotter.cancel_symbol",
    "blotter.retry",
    "blotter.flatten",
    "blotter.flatten_all",
)
"""Bindings that send cancels or close orders: hidden (and answered with a line in the log) in read-only."""
BEHIND_HZ = 4
"""Redraws a second at most while the session is behind the wire (frames wait to be
folded): the screen shares one interpreter with the session's thread, and a redraw it
does not make is time the session catches up with (the header says CATCHING UP)."""
FRAME_AHEAD = 3
"""Writes a frame takes in the terminal's output queue (begin, content, end of a
synchronized update): with more than that still queued, the poll draws nothing."""
MOVED_GUARD = 1.0
"""Seconds after the cursor moved by itself (its order left the view, or a newer order
took the first row) during which ``c`` sends nothing, however often it is pressed: the
trader may not have seen which order is selected now. Moving the cursor ends it."""


class BlotterApp(App[None]):
    CSS_PATH = "blotter.tcss"
    TITLE = "blotter"
    ENABLE_COMMAND_PALETTE = False

    # Footer labels are short so all of them fit at 80 columns; the ? screen shows the descriptions.
    BINDINGS = textual_bindings(bindings.MAIN)

    def __init__(
        self,
        desk: Desk,
        settings: UiSettings,
        theme: Theme,
        clock: Callable[[], float] | None = None,
        threaded: bool = False,
    ) -> None:
        self.desk = desk
        self.threaded = threaded
        """Run the desk on a thread of its own (the real terminal); else on this app's loop."""
        self.book_lock = desk.lock
        self.settings = settings
        self.blotter_theme = theme
        self.clock: Callable[[], float] = clock or desk.clock
        super().__init__()
        self.no_color = settings.no_color
        self._strip_colour = StripColour()
        self.register_theme(theme.to_textual())
        self.theme = theme.textual_name
        if settings.keymap:
            self.set_keymap(settings.keymap)
        cancel_specs = [spec for spec in bindings.MAIN if spec.id in CANCEL_KEYS]
        self._cancel_actions = frozenset(spec.action for spec in cancel_specs)
        self._cancel_keys = frozenset(
            key.strip() for spec in cancel_specs for key in settings.keymap.get(spec.id, spec.key).split(",")
        )
        """Keys of the cancel bindings, as Textual names ("delete") or characters ("X")."""
        desk.retry_hint = f"press {self.key_of('blotter.retry')} to cancel them again"
        self.view = OrderView(desk.store, final_linger=settings.final_linger, show_final=settings.show_final)
        self.session_error: str | None = None
        self.quitting = False
        self._seen = (-1, -1, -1)
        self._polled_at = -1e9
        self._view_change: ViewChange | None = None
        self._polled_frames = 0
        self._next_slow = 0.0
        self._next_fast = 0.0
        self._status_key: Any = None
        self._status_shape: Any = None
        self._banner_text: str | None = None
        self._detail_key: Any = None
        self._log_title = "Log"
        self._ui_thread: threading.Thread | None = None
        self._ui_loop: asyncio.AbstractEventLoop | None = None
        self._skipped_frames = 0
        self.key_router = KeyRouter(self)

    def get_driver_class(self) -> type:
        """Textual's terminal driver, with the cancel and cursor keys applied in its input thread."""
        driver = super().get_driver_class()
        from textual.drivers.linux_driver import LinuxDriver

        return BlotterDriver if driver is LinuxDriver else driver

    def get_line_filters(self) -> list[LineFilter]:
        """With ``no_color``, no colour at all (Textual's own NO_COLOR filters only turn
        colours grey or to the terminal's defaults, still sending colour codes)."""
        if not self.no_color:  # (Textual reads NO_COLOR itself; the settings decide)
            return [f for f in super().get_line_filters() if not isinstance(f, TEXTUAL_NO_COLOR_FILTERS)]
        filters = [f for f in super().get_line_filters() if not isinstance(f, TEXTUAL_COLOUR_FILTERS)]
        filters.append(self._strip_colour)
        return filters

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return theme_variables(self.blotter_theme)

    # -- widgets -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        utc = self.settings.clock == "utc"
        # Widgets are kept by reference: the poll must reach them while a modal
        # screen is on top (queries look at the active screen).
        self.status_bar = StatusBar(id="status")
        self.banner = Static("", id="banner")
        self.table = OrdersTable(
            self.view,
            self.desk.tracker,
            self.blotter_theme,
            clock=self.clock,
            highlight=self.settings.highlight,
            utc=utc,
            frozen=self.settings.frozen,
            lock=self.book_lock,
            id="orders",
        )
        self.detail = DetailLine(id="detail")
        self.positions = PositionsPane(self.desk, id="positions", utc=utc, frozen=self.settings.frozen)
        self.log_pane = LogPane(
            self.desk.log,
            self.blotter_theme,
            max_lines=self.settings.log_lines,
            utc=utc,
            frozen=self.settings.frozen,
            id="log",
        )
        yield self.status_bar
        yield self.banner
        yield self.table
        yield self.detail
        yield self.positions
        yield self.log_pane
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._ui_thread = threading.current_thread()
        self._ui_loop = asyncio.get_running_loop()
        self.desk.on_folded = self._fold_view
        self.log_pane.border_title = "Log"
        self.positions.set_collapsed(self.size.height < COLLAPSE_BELOW)
        self._fit_positions()
        self.table.focus()
        if self.threaded:
            # the CLI starts the desk before the screen (connected, logged in and asking for
            # the open orders while Textual starts); else it starts here
            if not self.desk.threaded:
                self.desk.start_thread()
            self.desk.when_thread_done(lambda error: self.soon(self._session_done, error))
        else:
            self.run_worker(self.desk.run(), name="session", group="session", exit_on_error=False)
        self.set_interval(1 / self.settings.poll_hz, self.poll)
        self.poll()
        self.set_timer(0.5, name_os_threads)

    def soon(self, callback: Callable[..., object], *args: object) -> None:
        """Run ``callback(*args)`` on this app's loop, from any thread, without waiting."""
        loop = self._ui_loop
        if loop is None or loop.is_closed():
            return
        if threading.current_thread() is self._ui_thread:
            loop.call_soon(callback, *args)
            return
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop closed meanwhile (quitting)
            pass

    async def on_unmount(self) -> None:
        self.desk.on_folded = None
        try:
            await self.desk.stop()
        except Exception:
            pass
        if self.threaded:
            await asyncio.to_thread(self.desk.join, 5.0)

    def _session_done(self, error: BaseException | None) -> None:
        """The desk's run ended (on its own thread, or as this app's worker)."""
        if error is not None and not isinstance(error, asyncio.CancelledError):
            self.session_error = " ".join(f"{type(error).__name__}: {error}".split())
            self.desk.log.add(f"session failed: {self.session_error}", "error")
        elif not self.quitting:
            self.desk.log.add("session ended", "warn")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "session":
            return
        if event.state is WorkerState.ERROR:
            self._session_done(worker.error)
        elif event.state is WorkerState.SUCCESS:
            self._session_done(None)

    # -- drawing: poll the desk -------------------------------------------------------------
    def poll(self, force: bool = False) -> None:
        """Redraw what changed since the last poll (called ``poll_hz`` times a second).

        In a burst (more than ``BUSY_RATE`` frames a second) the screen is redrawn at
        most ``BUSY_HZ`` times a second: every redraw is CPU the reader — and a cancel
        key waiting behind it — does not get, and a trader cannot read 30 screens a
        second of a table that changes everywhere anyway. Keys are never slowed: the
        cursor and the cancel act at once, whatever the pace of the poll."""
        if not self.table.is_mounted or self.quitting:
            return
        if not force and self._terminal_behind():
            return  # the terminal has not taken the last frame yet: draw the newest state once it has
        with self.book_lock:
            self._poll(force)

    def _terminal_behind(self) -> bool:
        """More than one frame's writes are queued for the terminal (a slow SSH link):
        drawing another would only wait behind them (and the loop with it)."""
        backlog = getattr(self._driver, "backlog", None)
        if backlog is None or backlog() <= FRAME_AHEAD:
            return False
        self._skipped_frames += 1
        return True

    def _poll(self, force: bool) -> None:
        desk = self.desk
        now = self.clock()
        frames = desk.session.frames_received
        if not force:
            elapsed = now - self._polled_at
            busy = elapsed > 0 and (frames - self._polled_frames) > BUSY_RATE * elapsed
            if busy and elapsed < 1 / BUSY_HZ:
                return
            if self.threaded and desk.behind() and elapsed < 1 / BEHIND_HZ:
                return  # the session is behind the wire: its thread gets the time a redraw would take
        self._polled_at = now
        self._polled_frames = frames
        self._redraw(now, force)

    def _redraw(self, now: float, force: bool) -> None:
        """Bring every pane up to the desk (book lock held)."""
        desk = self.desk
        seen = (desk.store.version, desk.tracker.version, desk.log.last_seq)
        slow = force or now >= self._next_slow
        if slow:
            self._next_slow = now + 1.0
        table = self.table
        if seen[0] != self._seen[0] or slow or self._view_change is not None:
            self._fold_view()
            change, self._view_change = self._view_change, None
            if change is not None:
                table.apply(change)
        if seen[1] != self._seen[1]:
            table.refresh()
        if seen[2] != self._seen[2]:
            self.log_pane.sync()
        if (table.pending_visible or now < table.highlight_until + 0.1) and now >= self._next_fast:
            self._next_fast = now + 0.1
            table.refresh()
        if seen != self._seen or slow:
            self._update_status(now)
            self._update_detail(now)
        self.positions.sync(now)  # cheap: it compares a small key and redraws only on a change
        self._seen = seen

    def _fold_view(self) -> None:
        """Bring the sorted view up to the store (after every run of frames the desk
        folds — on the desk's thread when it has one, under the book lock — and before
        each redraw). The table takes the changes at the next redraw; until then its
        cursor stays pinned to its order id."""
        if self.quitting:
            return
        change = self.view.sync(self.clock())
        pending = self._view_change
        if pending is None:
            self._view_change = pending = change
        else:
            pending.reordered = pending.reordered or change.reordered
            pending.changed |= change.changed
        table = self.table
        if table.selected_id is None and len(self.view) and table.is_mounted:
            # the first rows: the cursor takes one at once (a key pressed before the next
            # redraw acts on it, never on "no order selected")
            if threading.current_thread() is self._ui_thread:
                self._view_change = None
                table.apply(pending)
            else:
                # on the desk's thread: the state now, the drawing at the next poll, whose
                # apply() sees the cursor on row 0 and keeps it on the newest order while
                # the rest of a big snapshot comes in above
                table.move_cursor(0)

    def on_resize(self, event: events.Resize) -> None:
        self._fit_positions()

    def _fit_positions(self) -> None:
        """The expanded positions pane gets the rows the other panes leave (at most 10, at
        least 3, scrolling inside): at 80×24 it must not push the log's newest lines, or
        the footer, off the screen."""
        height = self.size.height
        others = 2 + 1 + 5 + 3 + max(5, int(height * 0.3)) + 1  # header, banner, table, detail, log, footer
        rows = max(3, min(10, height - others))
        self.positions.styles.max_height = rows
        self.positions.max_lines = rows - 2  # inside the border
        self.positions.sync(force=True)

    def _update_status(self, now: float) -> None:
        desk = self.desk
        open_count = self._open_count(now)
        frozen = self.settings.frozen
        width = self.size.width
        key = (
            desk.state,
            desk.attempt,
            desk.account,
            open_count,
            self.session_error,
            desk.read_only,
            desk.cancel_on_hangup,
            desk.detail,
            desk.road.down is not None,
            None if frozen else int(now * 10) // 10,
            desk.rtt_ms,
            desk.skew_ms,
            width,
            None if frozen or not desk.behind() else round(desk.session.lag, 1),
        )
        if key != self._status_key:
            self._status_key = key
            status = build_status(
                desk, self.blotter_theme, now, open_count, frozen=frozen, session_error=self.session_error, width=width
            )
            # A layout pass costs more than the whole redraw: only when the bar may change height.
            lines = status.plain.split("\n")
            shape = (len(lines), all(cell_len(line) <= width - 2 for line in lines), width)
            self.status_bar.update(status, layout=shape != self._status_shape or not shape[1])
            self._status_shape = shape
        # staleness: banner above the table and a red table border
        banner = self.banner
        table = self.table
        stale = desk.is_stale(now)
        text = ""
        if stale:
            if frozen or desk.last_frame_at is None:
                text = f"STALE — no data for more than {desk.stale_after:g} s"
            else:
                text = f"STALE — no data for {now - desk.last_frame_at:.0f} s"
        elif desk.state.name != "LIVE" and len(desk.store):
            text = f"NOT LIVE — {state_words(desk)}: the orders shown may be out of date"
        elif desk.state.name != "LIVE" and desk.snapshot_count == 0:
            text = f"NOT LOADED — {state_words(desk)}: no open orders received yet"
        elif desk.state.name == "LIVE" and desk.snapshot_wait:
            text = f"NOT LOADED — {desk.snapshot_wait}: the table may be incomplete"
        if text != self._banner_text:
            self._banner_text = text
            banner.update(Text(text), layout=False)  # one line, always; showing it is the class's job
        banner.set_class(bool(text), "-on")
        table.set_class(bool(text), "-stale")
        shown = len(self.view)
        title = f"Orders — {self.view.open_count()} open, {shown} shown"
        if self.view.filter:
            title += f" — filter {safe(self.view.filter, 40)!r}"
        title += " — all finals" if self.view.show_final else f" — finals {self.settings.final_linger:g} s"
        table.border_title = Text(text) if text else Text(title)
        self._update_position()

    def _open_count(self, now: float) -> int:
        """Open orders in the store, whatever the filter shows (O(1))."""
        return self.desk.store.open_count()

    def _update_position(self) -> None:
        table = self.table
        shown = len(self.view)
        table.border_subtitle = Text(f"row {table.cursor_row + 1}/{shown}" if shown else "no orders")

    def _update_detail(self, now: float) -> None:
        """The selected order in full (the table may show only the tail of its id)."""
        table = self.table
        oid = table.selected_id
        entry = self.desk.store.get(oid) if oid else None
        req = self.desk.tracker.cancel_for(oid) if oid else None
        key = (
            oid,
            entry.order if entry else None,
            entry.missing if entry else None,
            req.state if req else None,
            int(now * 10),
            self.log_pane.order_filter,
        )
        if key == self._detail_key:
            return
        self._detail_key = key
        if entry is None:
            self.detail.show([Text("no order selected" if oid is None else f"▶ {safe(oid, 64)} (no longer known)")])
        else:
            o = entry.order
            status, _ = table.status_of(entry, now)
            badge = order_badge(o.exec_inst, o.status)  # as in the table's STATUS cell, which may be cut
            fields = [
                Text.assemble("▶ ", (safe(o.order_id, 64), "bold")),
                Text(
                    f"{safe(o.symbol, 40)} {safe(o.side, 8).upper()} {safe(o.order_type, 16)}"
                    f" {fmt_amount(o.qty)} @ {fmt_amount(o.price)}"
                ),
                Text(f"{status} {badge}" if badge else status),
                Text(f"filled {fmt_amount(o.filled_qty)} avg {fmt_amount(o.avg_price)}"),
                Text(f"created {fmt_time(o.create_time_ms, self.settings.clock == 'utc')}"),
            ]
            if req is not None:
                fields.append(Text(f"last cancel {req.request_id}: {req.state.value}"))
            self.detail.show(fields)
        title = (
            f"Log — only order {safe(self.log_pane.order_filter, 64)} (l: all)" if self.log_pane.order_filter else "Log"
        )
        if title != self._log_title:  # setting it redraws the whole pane
            self._log_title = title
            self.log_pane.border_title = Text(title)

    def on_orders_table_selection_changed(self, event: OrdersTable.SelectionChanged) -> None:
        with self.book_lock:
            self._update_detail(self.clock())
            self._update_position()

    # -- which keys act where ------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The cancel keys act on the main screen only (a dialog's own ``c`` is the
        dialog's), whatever pane has focus there; in read-only they are not offered."""
        if action in self._cancel_actions:
            if self.desk.read_only:
                return False
            if len(self.screen_stack) > 1:
                return False
        return True

    def key_of(self, binding_id: str) -> str:
        """The key(s) of a binding as the trader sees them, keymap included."""
        default = bindings.binding_ids()[binding_id][0]
        return bindings.key_display(self.settings.keymap.get(binding_id, default))

    def action_help_quit(self) -> None:
        """Ctrl+C (Textual's "you probably want to quit") names this app's quit keys."""
        keys = [self.key_of(spec.id) for spec in bindings.MAIN if spec.action == "quit_blotter"]
        self.notify(f"To quit press {' or '.join(keys)}", title="Quit?")

    # -- actions: cancels go straight to the desk ------------------------------------------------
    async def on_event(self, event: events.Event) -> None:
        """Keys of the main screen are applied here, one after the other, each to the end
        before the next is looked at: the cursor keys and ``c`` by the key router (which
        the input thread also uses while nothing waits here: see :mod:`blotter.ui.keys`),
        every other binding (Tab, ``/``, ``X``…) by running its action now. Textual alone
        would hand a key to the focused widget's queue and look at the next key before
        that one took effect: under load, ``Tab Down`` could move the table's cursor, and
        ``Down c`` cancel the row the cursor was leaving."""
        router = self.key_router
        if isinstance(event, events.Key) and not event.is_forwarded and len(self.screen_stack) == 1:
            try:
                if await self._main_screen_key(event):
                    event.stop()
                    event.prevent_default()
                    return
                await super().on_event(event)
            finally:
                router.done(event)
            return
        try:
            await super().on_event(event)
        finally:
            if getattr(event, COUNTED, False):
                # a click (or a key for a dialog): once what it started has run
                self.call_after_refresh(router.done, event)

    async def _main_screen_key(self, event: events.Key) -> bool:
        """Apply a key of the main screen now; False: not a binding here (Textual forwards it)."""
        if self.quitting:
            return False
        if self.desk.read_only and (event.key in self._cancel_keys or (event.character or "") in self._cancel_keys):
            self.desk.log.add(READ_ONLY_MESSAGE, "warn")  # not bound in read-only; it still answers
            return True
        router = self.key_router
        action = router.action_of(event)
        if action is not None and router.applies(action):
            router.handle(action, in_ui=True)
            return True
        for key in dict.fromkeys((event.key, *event.aliases)):
            if await self._check_bindings(key, priority=True) or await self._check_bindings(key):
                return True
        return False

    def cancel_target(self) -> str | None:
        """The order ``c`` cancels now, or None — and then the log says why. Any thread, no
        lock needed: the cursor's order id and the guard are each one attribute, set whole."""
        if self.desk.read_only:
            self.desk.log.add(READ_ONLY_MESSAGE, "warn")
            return None
        table = self.table
        order_id = table.selected_id
        if order_id is None:
            self.desk.log.add("cancel: no order selected; nothing sent", "warn")
            return None
        moved = table.implicit_move
        if moved is not None and self.clock() - moved[1] < MOVED_GUARD:
            # Held back for as long as the guard lasts, not for one press: a double tap
            # meant for the order that just went must not reach its neighbour.
            with self.book_lock:
                gone = self.view.index_of(moved[0]) is None
            why = "just left the view" if gone else "moved down as newer orders arrived"
            self.desk.log.add(
                f"cancel: nothing sent — {moved[0]} {why} and the cursor moved by itself to {order_id}; "
                f"check the row, then press {self.key_of('blotter.cancel')} again (or move the cursor first)",
                "warn",
                order_id=order_id,
            )
            return None
        return order_id

    async def action_cancel(self) -> None:
        """Cancel the selected order now (no confirmation). The key itself is applied by
        the key router (:meth:`on_event`); this is the footer's and the keymap's way in."""
        order_id = self.cancel_target()
        if order_id is not None:
            await self.desk.call(self.desk.cancel_order, order_id)

    async def action_retry_cancel_all(self) -> None:
        """The one-key retry after a cancel-all that left orders open."""
        await self.desk.call(self.desk.retry_cancel_all)

    def _confirm_text(self, symbol: str | None) -> Text:
        with self.book_lock:
            entries = self.desk.store.open_by_symbol(symbol)
        counts = Counter(e.order.symbol for e in entries)
        n = len(entries)
        scope = f" on {safe(symbol, 40)}" if symbol else ""
        if self.desk.snapshot_count == 0:
            # nothing loaded yet: "no open orders" would be a guess, and a wrong one is dangerous
            text = Text(
                f"The open orders are not loaded yet: how many are open{scope} is not known. "
                f"Send cancel-all{scope} anyway?",
                style="bold",
            )
        elif n == 0:
            text = Text(f"No open orders known{scope}. Send cancel-all{scope} anyway?", style="bold")
        else:
            text = Text(f"Cancel ALL {n} open order{'s' if n != 1 else ''}{scope}?", style="bold")
        if counts:
            listing = ", ".join(f"{safe(s, 40)} {c}" for s, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
            text.append("\n" + listing)
        return text

    def action_cancel_all(self) -> None:
        if self.desk.read_only:
            self.desk.log.add(READ_ONLY_MESSAGE, "warn")
            return
        self._ask_cancel_all(None)

    def action_cancel_symbol(self) -> None:
        if self.desk.read_only:
            self.desk.log.add(READ_ONLY_MESSAGE, "warn")
            return
        with self.book_lock:
            oid = self.table.selected_id
            entry = self.desk.store.get(oid) if oid else None
        if entry is None:
            self.desk.log.add("cancel symbol: no order selected; nothing sent", "warn")
            return
        self._ask_cancel_all(entry.order.symbol)

    def _ask_cancel_all(self, symbol: str | None) -> None:
        async def answered(yes: bool | None) -> None:
            if yes:
                await self.desk.call(self.desk.cancel_all, symbol)
            else:
                self.desk.log.add(f"cancel-all {safe(symbol, 40) if symbol else 'ALL symbols'}: aborted, nothing sent")

        title = f"Cancel all on {safe(symbol, 40)}" if symbol else "Cancel ALL"
        self.push_screen(ConfirmScreen(lambda: self._confirm_text(symbol), title=title), answered)

    def action_filter(self) -> None:
        def done(value: str | None) -> None:
            if value is None:  # Esc: editing cancelled, the filter stays as it was
                return
            with self.book_lock:
                self.view.set_filter(value)
            self.poll(force=True)

        self.push_screen(FilterScreen(self.view.filter), done)

    def action_toggle_final(self) -> None:
        with self.book_lock:
            self.view.set_show_final(not self.view.show_final)
        self.poll(force=True)

    async def action_refresh(self) -> None:
        await self.desk.call(self.desk.refresh)

    def action_log_filter(self) -> None:
        pane = self.log_pane
        if pane.order_filter is None and self.table.selected_id is not None:
            pane.set_order_filter(self.table.selected_id)
        else:
            pane.set_order_filter(None)
        self._detail_key = None
        with self.book_lock:
            self._update_detail(self.clock())

    def action_raw(self) -> None:
        """The selected order's record; for an UNREADABLE order, the problem and the raw record."""
        with self.book_lock:
            oid = self.table.selected_id
            entry = self.desk.store.get(oid) if oid else None
        if entry is None:
            self.desk.log.add("raw: no order selected", "warn")
            return
        self.push_screen(RawScreen(entry))

    # -- positions: flatten ------------------------------------------------------------------------
    def action_toggle_positions(self) -> None:
        self.positions.set_collapsed(not self.positions.collapsed)

    def action_toggle_flat(self) -> None:
        self.positions.toggle_flat()

    def _flatten_keys(self) -> frozenset[str]:
        keys: set[str] = set()
        for spec in bindings.FLATTEN:
            keys.update(k.strip() for k in self.settings.keymap.get(spec.id, spec.key).split(","))
        return frozenset(keys)

    def _estimate(self, symbol: str, size: Decimal) -> str:
        """Size × mark price, or × the average open price when REST gave no mark (says which)."""
        mark = self.desk.marks.get(symbol)
        if mark is not None:
            return f"≈ {fmt_amount(abs(size) * mark)} (size × mark price {fmt_amount(mark)})"
        pos = self.desk.account_state.positions.get(symbol)
        aop = pos.avg_open_price if pos is not None else None
        if aop:
            return f"≈ {fmt_amount(abs(size) * aop)} (size × average open price {fmt_amount(aop)}; no mark price)"
        return "unknown (no mark price, no average open price)"

    def _flatten_text(self, symbol: str | None) -> Text:
        with self.book_lock:
            return self._flatten_text_locked(symbol)

    def _flatten_text_locked(self, symbol: str | None) -> Text:
        held = self.desk.open_positions(symbol)
        if not held:
            scope = f" on {safe(symbol, 40)}" if symbol else ""
            return Text(f"No open position{scope} now: nothing would be sent.", style="bold")
        if symbol is not None:
            size = held[symbol]
            side = "SELL" if size > 0 else "BUY"
            text = Text(f"Flatten {safe(symbol, 40)}: {side} {fmt_amount(abs(size))} at market, reduce-only?", "bold")
            text.append(f"\nclosing a {'LONG' if size > 0 else 'SHORT'} position of {fmt_amount(abs(size))}")
            text.append(f"\nestimated notional {self._estimate(symbol, size)}")
            return text
        text = Text(f"Flatten ALL {len(held)} positions with reduce-only market orders?", "bold")
        for sym, size in sorted(held.items()):
            side = "SELL" if size > 0 else "BUY"
            text.append(f"\n{safe(sym, 40)}: {side} {fmt_amount(abs(size))}, notional {self._estimate(sym, size)}")
        text.append("\nOpen orders can re-open a position: cancel all (X) first.")
        return text

    def action_flatten(self) -> None:
        if self.desk.read_only:
            self.desk.log.add(READ_ONLY_MESSAGE, "warn")
            return
        with self.book_lock:
            pos = self.positions.selected()
        if pos is None or not pos.position:
            self.desk.log.add("flatten: no open position selected; nothing sent", "warn")
            return
        self._ask_flatten(pos.symbol)

    def action_flatten_all(self) -> None:
        if self.desk.read_only:
            self.desk.log.add(READ_ONLY_MESSAGE, "warn")
            return
        self._ask_flatten(None)

    def _ask_flatten(self, symbol: str | None) -> None:
        scope = safe(symbol, 40) if symbol else "ALL symbols"

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._flatten(symbol), group="flatten", exit_on_error=False)
            else:
                self.desk.log.add(f"flatten {scope}: aborted, nothing sent")

        title = f"Flatten {scope}" if symbol else "Flatten ALL"
        self.push_screen(
            FlattenScreen(lambda: self._flatten_text(symbol), title=title, confirm_keys=self._flatten_keys()), answered
        )

    async def _flatten(self, symbol: str | None) -> None:
        outcome = await self.desk.call(self.desk.flatten_and_verify, symbol)
        if not outcome.verified:
            why = f"flatten {symbol or 'ALL symbols'} {outcome.outcome.value}: {safe(outcome.reason, 200)}"
            self.desk.log.add(why, "error")
            self.notify(why, severity="error", timeout=10)

    def action_help(self) -> None:
        sections = {
            scope: [(self.key_of(spec.id), spec.description, spec.id) for spec in group]
            for scope, group in bindings.SCOPES.items()
        }
        self.push_screen(HelpScreen(sections))

    async def action_quit_blotter(self) -> None:
        def counts() -> tuple[int, int]:
            with self.book_lock:
                return self.desk.store.open_count(), len(self.desk.tracker.in_flight())

        if counts() == (0, 0):
            await self.shutdown()
            return

        async def chosen(choice: QuitChoice | None) -> None:
            if choice is QuitChoice.LEAVE:
                await self.shutdown()
            elif choice is QuitChoice.CANCEL_ALL:
                self.run_worker(self._cancel_all_then_quit(), group="quit", exit_on_error=False)

        self.push_screen(QuitScreen(counts, read_only=self.desk.read_only), chosen)

    async def _cancel_all_then_quit(self) -> None:
        """Quit only once the desk's cancel-all-and-verify says nothing is left open
        (the same condition as the dead man's switch and ``blotter cancel-all``);
        otherwise stay and say why."""
        self.notify("cancelling all open orders before quitting…")
        outcome = await self.desk.call(self.desk.cancel_all_and_verify, None)
        if outcome.verified:
            await self.shutdown()
            return
        why = f"cancel-all {outcome.outcome.value}: {safe(outcome.reason, 200)} — not quitting"
        self.desk.log.add(why, "error", request_id=outcome.request_id)
        self.notify(why, severity="error", timeout=10)

    async def shutdown(self) -> None:
        self.quitting = True
        try:
            await self.desk.stop()
        finally:
            self.exit()


def state_words(desk: Desk) -> str:
    words = str(desk.state.value)
    if desk.state.name == "RECONNECTING" or (desk.state.name in ("CONNECTING", "AUTHENTICATING") and desk.attempt):
        words += f" (attempt {desk.attempt})"
    return words


def make_app(
    desk: Desk,
    settings: UiSettings | None = None,
    *,
    clock: Callable[[], float] | None = None,
    threaded: bool = False,
) -> BlotterApp:
    """The one way to build the app (CLI, demo, tests); ``threaded``: the desk runs on a
    thread of its own (the CLI), else on the app's loop (tests). Raises
    :class:`~blotter.ui.themes.UnknownTheme` / :class:`~blotter.ui.themes.ThemeFileError`
    for a bad theme before anything is drawn."""
    settings = settings or UiSettings()
    theme = load_theme(settings.theme, settings.theme_dir)
    if settings.no_color:
        theme = theme.model_copy(update={"no_color": True})
    return BlotterApp(desk, settings, theme, clock=clock, threaded=threaded)
