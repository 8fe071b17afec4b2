"""The positions pane: the futures account's positions and collateral, as the account
channel (snapshot at connect, then updates) says, with mark prices from REST
``futures/position`` where it answers.

A light :class:`~textual.widgets.Static`: an account has a few positions, so the pane is
rebuilt whole, and only when something it shows changed (the account's version, the
marks, staleness, the selection). Every value is exact (``fmt_amount``: never a float,
never scientific notation) and every string from the wire passes through ``safe``.

Flat positions are hidden unless toggled. Collapsed, the pane is one line (the default
on a short terminal, so that the orders and the log keep their room at 80×24). Its
values follow the orders' rules: when the connection is not live or no data came for
``stale_after`` seconds, the pane is dimmed and says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import Static

from ...protocol.messages import Position
from ..bindings import POSITIONS, textual_bindings
from ..text import safe
from .orders_table import fmt_amount, fmt_time

if TYPE_CHECKING:
    from ...desk import Desk

COLLAPSE_BELOW = 30
"""Terminal rows under which the pane starts collapsed (80×24 keeps the orders and the log)."""


class PositionsPane(Static, can_focus=True):
    BINDINGS = textual_bindings(POSITIONS)

    def __init__(self, desk: Desk, *, id: str | None = None, utc: bool = False, frozen: bool = False) -> None:
        super().__init__("", id=id)
        self.desk = desk
        self.utc = utc
        """Times (the marks' age) in UTC rather than local time, as the table's."""
        self.frozen = frozen
        """Snapshot tests: the marks' time drawn as a fixed placeholder."""
        self.show_flat = False
        self.collapsed = False
        self.selected_symbol: str | None = None
        self.text = ""
        """What the pane shows now, as plain text (tests and the detail read it)."""
        self._hidden = ""
        """What :meth:`_fit` left out, in words (the border's subtitle), or ""."""
        self.max_lines: int | None = None
        """Lines inside the border the app leaves it (a short terminal): the positions beyond
        are not drawn, and a line says how many (see :meth:`_fit`)."""
        self._key: Any = None

    # -- what is shown ----------------------------------------------------------------------
    def rows(self) -> list[Position]:
        """The positions shown, by symbol (flat ones only when toggled)."""
        with self.desk.lock:  # (the account is folded on the desk's thread)
            positions = self.desk.account_state.positions
            return [p for s, p in sorted(positions.items()) if self.show_flat or p.position]

    def selected(self) -> Position | None:
        rows = self.rows()
        for p in rows:
            if p.symbol == self.selected_symbol:
                return p
        return None

    def _fix_selection(self, rows: list[Position]) -> None:
        symbols = [p.symbol for p in rows]
        if self.selected_symbol not in symbols:
            self.selected_symbol = symbols[0] if symbols else None

    # -- keys -------------------------------------------------------------------------------
    def _move(self, step: int) -> None:
        rows = self.rows()
        if not rows:
            return
        symbols = [p.symbol for p in rows]
        i = symbols.index(self.selected_symbol) if self.selected_symbol in symbols else 0
        self.selected_symbol = symbols[max(0, min(len(symbols) - 1, i + step))]
        self.sync(force=True)

    def action_cursor_up(self) -> None:
        self._move(-1)

    def action_cursor_down(self) -> None:
        self._move(1)

    def toggle_flat(self) -> None:
        self.show_flat = not self.show_flat
        self.sync(force=True)

    def set_collapsed(self, collapsed: bool) -> None:
        self.collapsed = collapsed
        self.set_class(collapsed, "-collapsed")
        self.sync(force=True)

    def on_focus(self) -> None:
        self.sync(force=True)

    def on_blur(self) -> None:
        self.sync(force=True)

    # -- drawing ----------------------------------------------------------------------------
    def _state_words(self, now: float) -> str:
        desk = self.desk
        if desk.is_stale(now):
            return "STALE: may be out of date"
        if desk.state.name != "LIVE":
            return f"NOT LIVE ({desk.state.value}): may be out of date"
        if not desk.account_state.loaded:
            return "waiting for the account snapshot"
        return ""

    def sync(self, now: float | None = None, force: bool = False) -> None:
        """Rebuild the pane if anything it shows changed (called by the app's poll)."""
        with self.desk.lock:
            self._sync(now, force)

    def _sync(self, now: float | None, force: bool) -> None:
        desk = self.desk
        now = desk.clock() if now is None else now
        warning = self._state_words(now)
        rows = self.rows()
        self._fix_selection(rows)
        key = (
            desk.account_state.version,
            id(desk.marks),
            warning,
            self.show_flat,
            self.collapsed,
            self.selected_symbol,
            self.has_focus,
        )
        if key == self._key and not force:
            return
        self._key = key
        self.set_class(bool(warning), "-stale")
        text = self._render_text(rows, warning)
        self.text = text.plain
        self.update(text)
        self.border_subtitle = Text(self._hidden) if self._hidden else None

    def _collateral(self) -> str:
        cols = self.desk.account_state.collaterals
        return "  ".join(f"{safe(a, 16)} {fmt_amount(c.balance)}" for a, c in sorted(cols.items())) or "–"

    def _render_text(self, rows: list[Position], warning: str) -> Text:
        open_count = sum(1 for p in rows if p.position)
        dim = "dim" if warning else ""
        # before the account snapshot, "0 open" would be a guess
        head = f"Positions: {open_count} open" if self.desk.account_state.loaded else "Positions: ? (not loaded)"
        if self.show_flat:
            head += " (flat shown)"
        if warning:
            head += f" — {warning}"
        if not self.desk.read_only:
            head += " (F flatten, Z all)" if not self.collapsed else ""
        if self.collapsed:
            parts = [f"{safe(p.symbol, 24)} {safe(p.side, 8)} {fmt_amount(p.position)}" for p in rows]
            line = Text(f"{head} │ {self._collateral()} │ " + (" · ".join(parts) or "none") + " (p: expand)")
            if warning:
                line.stylize("dim")
                line.stylize("bold reverse", 0, len(head))
            return line
        out = Text(end="")
        out.append(head, "bold reverse" if warning else "bold")
        out.append(f"  collateral: {self._collateral()}", dim)
        if self.desk.rest is None:
            out.append("  mark: none (no REST road)", dim)
        elif self.desk.marks_wall_ms is not None and rows:
            # the marks are REST's, asked now and then; the PnL beside them is live
            stamp = "--:--:--" if self.frozen else fmt_time(self.desk.marks_wall_ms, self.utc)
            out.append(f"  marks as of {stamp}", dim)
        if not rows:
            out.append("\n  no open position" + ("" if self.show_flat else " (0: show flat ones)"), dim)
        marks = self.desk.marks
        blocks: list[Text] = []
        chosen_at: int | None = None
        for p in rows:
            chosen = p.symbol == self.selected_symbol
            if chosen:
                chosen_at = len(blocks)
            pointer = "▶ " if chosen and self.has_focus else ("› " if chosen else "  ")
            mark = marks.get(p.symbol)
            row = (
                f"{pointer}{safe(p.symbol, 24)} {safe(p.side, 8) or '–'} {fmt_amount(p.position)}"
                f"  avg {fmt_amount(p.avg_open_price)}  mark {fmt_amount(mark)}"
                f"  uPnL {fmt_amount(p.unrealized_pnl)}  rPnL {fmt_amount(p.realized_pnl)}"
                f"  {fmt_amount(p.leverage)}x {safe(p.margin_type, 12) or '–'}"
            )
            block = Text(end="")
            block.append(row, f"{'reverse' if chosen and self.has_focus else ''} {dim}".strip())
            if chosen:  # the rest of the selected position's fields: one more line, not one per position
                block.append("\n")
                block.append(
                    f"    iso margin {fmt_amount(p.isolated_margin)}"
                    f"  TP {fmt_amount(p.take_profit_price)} {safe(p.take_profit_trigger, 12)}"
                    f"  SL {fmt_amount(p.stop_loss_price)} {safe(p.stop_loss_trigger, 12)}"
                    f"  open orders: buy {fmt_amount(p.buy_open_order_notional)}"
                    f" sell {fmt_amount(p.sell_open_order_notional)}",
                    dim,
                )
            blocks.append(block)
        for block in self._fit(out, blocks, chosen_at, dim):
            out.append("\n")
            out.append_text(block)
        return out

    def _fit(self, head: Text, blocks: list[Text], chosen: int | None, dim: str) -> list[Text]:
        """The position blocks that fit :attr:`max_lines` under ``head`` (as wrapped at the
        pane's width): a window around the selected one. The border says how many are not
        shown: a short terminal never hides a position without saying so."""
        self._hidden = ""
        width = self.content_region.width
        if self.max_lines is None or width <= 0 or not blocks:
            return blocks
        console = self.app.console

        def lines(text: Text) -> int:
            return len(text.wrap(console, width))

        sizes = [lines(b) for b in blocks]
        room = self.max_lines - lines(head)
        if sum(sizes) <= room:
            return blocks
        start = chosen if chosen is not None else 0
        end, used = start + 1, sizes[start]
        while end < len(blocks) and used + sizes[end] <= room:
            used, end = used + sizes[end], end + 1
        while start > 0 and used + sizes[start - 1] <= room:
            start, used = start - 1, used + sizes[start - 1]
        above, below = start, len(blocks) - end
        where = ", ".join(f"{n} {side}" for n, side in ((above, "above"), (below, "below")) if n)
        self._hidden = f"{above + below} more not shown ({where}): Tab here, ↑↓"
        return blocks[start:end]
