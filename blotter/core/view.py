"""The orders table's view: which orders it shows, in which order. Plain Python.

The table draws only the rows on screen, straight from the
:class:`~blotter.core.orders.OrderStore`; this module keeps the sorted, filtered list
of order ids it draws from, updated incrementally from ``store.take_changes()`` so a
burst of updates costs per *changed order*, not per order in the store.

Order of rows:

* open orders first, newest first (by creation time, then order id). An order that
  has just become final (Filled, Canceled, Rejected, NOT OPEN) **keeps its place**,
  drawn dimmed, for ``final_linger`` seconds: rows do not jump under the trader's
  eyes when an order ends, and after ``c`` on a row, Down goes to the order that was
  below it — not into a list of finished orders;
* then, only with ``show_final`` on, the older final orders, most recently final first.

The selection helpers (:meth:`OrderView.index_of`, :meth:`OrderView.follow`) work
on order ids, never on row numbers: a table pins its cursor to the id, so rows
inserted or re-sorted under it never change which order the cursor means.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice

from .orders import OrderEntry, OrderStore

Key = tuple[int | float | str, ...]
"""A row's sort key: (group, …, row id); the row id is always last."""


class SortedKeys:
    """The rows' keys, sorted, in blocks of about :attr:`LOAD` (the layout of
    ``sortedcontainers.SortedList``): adding or removing one key costs O(log n + LOAD)
    instead of moving every key after it, and the row at an index or the index of a
    key are O(log n). With 100,000 rows a burst's changes then cost per *change*."""

    LOAD = 512

    __slots__ = ("_blocks", "_maxes", "_len", "_offsets")

    def __init__(self, keys: list[Key] | None = None) -> None:
        """``keys`` must be sorted already."""
        keys = keys or []
        load = self.LOAD
        self._blocks: list[list[Key]] = [keys[i : i + load] for i in range(0, len(keys), load)]
        self._maxes: list[Key] = [b[-1] for b in self._blocks]
        self._len = len(keys)
        self._offsets: list[int] | None = None

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Key]:
        for block in self._blocks:
            yield from block

    def _offs(self) -> list[int]:
        offsets = self._offsets
        if offsets is None:
            offsets = []
            total = 0
            for block in self._blocks:
                offsets.append(total)
                total += len(block)
            self._offsets = offsets
        return offsets

    def __getitem__(self, index: int) -> Key:
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("row index out of range")
        offsets = self._offs()
        i = bisect_right(offsets, index) - 1
        return self._blocks[i][index - offsets[i]]

    def bisect_left(self, key: Key) -> int:
        """Index of ``key`` (or where it would go)."""
        maxes = self._maxes
        i = bisect_left(maxes, key)
        if i == len(maxes):
            return self._len
        return self._offs()[i] + bisect_left(self._blocks[i], key)

    def add(self, key: Key) -> None:
        blocks, maxes = self._blocks, self._maxes
        self._offsets = None
        self._len += 1
        if not blocks:
            blocks.append([key])
            maxes.append(key)
            return
        first = blocks[0]
        if key < first[0]:  # the newest order: first row (most of a burst's new rows)
            first.insert(0, key)
            i = 0
        else:
            i = bisect_left(maxes, key)
            if i == len(maxes):
                i -= 1
                blocks[i].append(key)
                maxes[i] = key
            else:
                insort(blocks[i], key)
        block = blocks[i]
        if len(block) > 2 * self.LOAD:
            half = len(block) // 2
            blocks[i : i + 1] = [block[:half], block[half:]]
            maxes[i : i + 1] = [block[half - 1], block[-1]]

    def update(self, keys: list[Key]) -> None:
        """Add many keys (none of them there yet); ``keys`` is sorted here, in place.

        A run that sorts wholly before the first key or after the last one goes in as
        whole blocks: the records of a big snapshot come in time order, so each of its
        slices is such a run, and so are a burst's new orders (newest first). Any
        other run is added a key at a time, in order: merging it into each block it
        touches would cost a block's length per key when the keys are spread."""
        if not keys:
            return
        keys.sort()
        blocks, maxes = self._blocks, self._maxes
        if blocks and keys[0] <= maxes[-1] and keys[-1] >= blocks[0][0]:
            for key in keys:
                self.add(key)
            return
        load = self.LOAD
        n = len(keys)
        if not blocks or keys[0] > maxes[-1]:
            new = [keys[i : i + load] for i in range(0, n, load)]
            if blocks and new and len(blocks[-1]) + len(new[0]) <= 2 * load:
                blocks[-1].extend(new.pop(0))
                maxes[-1] = blocks[-1][-1]
            blocks.extend(new)
            maxes.extend(block[-1] for block in new)
        else:
            new = [keys[max(0, i - load) : i] for i in range(n, 0, -load)][::-1]
            if len(new[-1]) + len(blocks[0]) <= 2 * load:
                blocks[0][:0] = new.pop()
            blocks[:0] = new
            maxes[:0] = [block[-1] for block in new]
        self._len += n
        self._offsets = None

    def remove(self, key: Key) -> None:
        """Remove ``key`` (it must be there)."""
        blocks, maxes = self._blocks, self._maxes
        i = bisect_left(maxes, key)
        block = blocks[i]
        j = bisect_left(block, key)
        if block[j] != key:
            raise KeyError(key)
        del block[j]
        self._len -= 1
        self._offsets = None
        if not block:
            del blocks[i]
            del maxes[i]
        elif j == len(block):
            maxes[i] = block[-1]


def sort_key(entry: OrderEntry, lingering: bool = False) -> Key:
    """Sort key of one order: smaller sorts first. The last element is the order id.

    Open orders, and final ones still ``lingering`` in place, sort by creation time
    (newest first); older final orders come after them. The id is the store key
    (``entry.order_id``): one order id on two symbols is two rows."""
    order = entry.order
    created = order.create_time_ms if order.create_time_ms is not None else (order.exec_time_ms or 0)
    if entry.is_open or lingering:
        return (0, -created, entry.order_id)
    return (1, -(entry.final_at or 0.0), -created, entry.order_id)


@dataclass(slots=True)
class ViewChange:
    changed: set[str] = field(default_factory=set)
    """Visible orders whose record changed (redraw their rows)."""
    reordered: bool = False
    """Rows were added, removed or moved: row numbers are no longer what they were."""


class OrderView:
    def __init__(
        self, store: OrderStore, final_linger: float = 30.0, show_final: bool = False, full_rebuild_ratio: float = 0.5
    ) -> None:
        self.store = store
        self.final_linger = final_linger
        self._show_final = show_final
        self._filter = ""
        self._filter_folded = ""
        self._keys = SortedKeys()
        self._key_of: dict[str, Key] = {}
        self._dirty = True
        self.full_rebuild_ratio = full_rebuild_ratio
        """A sync that changes more than this share of the store's orders recomputes every
        row instead (changing a row costs more than computing one)."""
        self.batch_threshold = 64
        """More changed orders than this in one sync are folded in one pass."""
        self.version = 0
        """Bumped whenever the rows change order or membership."""
        self.rebuilds = 0
        self._lingering: dict[str, float] = {}
        """Final orders still shown in their open-order place: order id → final_at."""
        self._expiries: list[tuple[float, str]] = []
        """Heap of (final_at, order id) for the lingering ones, to end their linger."""
        self._pending: set[str] = set()
        """Changed orders a budgeted :meth:`sync` left for the next call."""

    # -- settings ---------------------------------------------------------------
    @property
    def filter(self) -> str:
        return self._filter

    def set_filter(self, text: str) -> None:
        """Show only orders whose symbol or order id contains ``text`` (case-insensitive),
        and the open orders whose symbol could not be read (UNREADABLE: they may be on it)."""
        text = text.strip()
        if text != self._filter:
            self._filter = text
            self._filter_folded = text.casefold()
            self._dirty = True

    @property
    def show_final(self) -> bool:
        return self._show_final

    def set_show_final(self, show: bool) -> None:
        if show != self._show_final:
            self._show_final = show
            self._dirty = True

    # -- rows -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, index: int) -> str:
        return str(self._keys[index][-1])

    def __iter__(self) -> Iterator[str]:
        return (str(k[-1]) for k in self._keys)

    @property
    def ids(self) -> list[str]:
        return [k[-1] for k in self._keys]  # type: ignore[misc]  # the row id is always last: a str

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._key_of

    def index_of(self, order_id: str | None) -> int | None:
        """Row number of ``order_id``, or None when it is not shown. O(log n)."""
        if order_id is None:
            return None
        key = self._key_of.get(order_id)
        if key is None:
            return None
        return self._keys.bisect_left(key)

    def follow(self, order_id: str | None, old_index: int) -> tuple[str | None, int]:
        """Where a cursor pinned to ``order_id`` is now: ``(order_id, its row)`` when
        it is still shown; otherwise the neighbour now at ``old_index`` (clamped), or
        ``(None, 0)`` when the view is empty. Never picks another order while the
        pinned one is still shown."""
        index = self.index_of(order_id)
        if index is not None:
            return order_id, index
        if not self._keys:
            return None, 0
        index = min(max(old_index, 0), len(self._keys) - 1)
        return self[index], index

    def open_count(self) -> int:
        """Open orders among the rows shown (they sort first, with the lingering finals)."""
        return self._keys.bisect_left((1,)) - len(self._lingering)

    def is_lingering(self, order_id: str) -> bool:
        return order_id in self._lingering

    # -- folding store changes ----------------------------------------------------
    def _visible(self, entry: OrderEntry, now: float) -> bool:
        if self._filter_folded:
            f = self._filter_folded
            symbol = entry.order.symbol
            if (
                f not in symbol.casefold()
                and f not in entry.order.order_id.casefold()
                and (symbol or entry.is_open is False)
            ):
                return False  # (an open order whose symbol could not be read may be on any symbol: always shown)
        if entry.is_open or self._show_final or entry.final_at is None:
            return True
        return now - entry.final_at < self.final_linger

    def _key(self, entry: OrderEntry, now: float) -> Key | None:
        """The row key of ``entry`` now (None: not shown), keeping the linger books."""
        order_id = entry.order_id
        if not self._visible(entry, now):
            self._lingering.pop(order_id, None)
            return None
        final_at = entry.final_at
        if not entry.is_open and final_at is not None and now - final_at < self.final_linger:
            if self._lingering.get(order_id) != final_at:
                self._lingering[order_id] = final_at
                heapq.heappush(self._expiries, (final_at, order_id))
            return sort_key(entry, lingering=True)
        self._lingering.pop(order_id, None)
        return sort_key(entry)

    def rebuild(self, now: float) -> None:
        """Recompute every row from the store (after a filter change, or a big burst)."""
        self.store.take_changes()
        self._pending = set()
        keys: list[Key] = []
        key_of: dict[str, Key] = {}
        self._lingering = {}
        self._expiries = []
        for entry in self.store.entries():
            k = self._key(entry, now)
            if k is not None:
                keys.append(k)
                key_of[entry.order_id] = k
        keys.sort()
        self._keys = SortedKeys(keys)
        self._key_of = key_of
        self._dirty = False
        self.version += 1
        self.rebuilds += 1

    def _reposition(self, order_id: str, now: float) -> bool:
        old = self._key_of.get(order_id)
        entry = self.store.get(order_id)
        if entry is None:
            self._lingering.pop(order_id, None)
            new = None
        else:
            new = self._key(entry, now)
        if old == new:
            return False
        if old is not None:
            self._keys.remove(old)
            del self._key_of[order_id]
        if new is not None:
            self._keys.add(new)
            self._key_of[order_id] = new
        return True

    def _reposition_batch(self, changed: set[str], now: float) -> bool:
        """Many changes at once: each moved row is taken out and put back in its block
        (O(log n + LOAD) each), so a burst costs per changed order, never per row.

        Without a filter, the key of each order is worked out here, inline (what
        :meth:`_key` does, for the same result): this loop runs for every order a
        burst touches."""
        if self._filter_folded:
            return self._reposition_each(changed, now)
        store_get = self.store.get
        key_of = self._key_of
        keys = self._keys
        lingering = self._lingering
        expiries = self._expiries
        linger = self.final_linger
        show_final = self._show_final
        moved = False
        added: list[Key] = []
        new: Key | None
        for order_id in changed:
            old = key_of.get(order_id)
            entry = store_get(order_id)
            if entry is None:
                lingering.pop(order_id, None)
                if old is None:
                    continue
                new = None
            else:
                order = entry.order
                created = order.create_time_ms
                if created is None:
                    created = order.exec_time_ms or 0
                if entry.is_open:
                    if old is not None and old[0] == 0 and old[1] == -created and order_id not in lingering:
                        continue  # most of a burst: an open order changed (a fill) and stays put
                    lingering.pop(order_id, None)
                    new = (0, -created, order_id)
                else:
                    final_at = entry.final_at
                    if final_at is None:
                        lingering.pop(order_id, None)
                        new = (1, -0.0, -created, order_id)
                    elif now - final_at < linger:
                        if lingering.get(order_id) != final_at:
                            lingering[order_id] = final_at
                            heapq.heappush(expiries, (final_at, order_id))
                        new = (0, -created, order_id)
                    else:
                        lingering.pop(order_id, None)
                        new = (1, -final_at, -created, order_id) if show_final else None
            if old == new:
                continue
            moved = True
            if old is not None:
                keys.remove(old)
                del key_of[order_id]
            if new is not None:
                added.append(new)
                key_of[order_id] = new
        if added:
            keys.update(added)
        return moved

    def _reposition_each(self, changed: set[str], now: float) -> bool:
        moved = False
        for order_id in changed:
            if self._reposition(order_id, now):
                moved = True
        return moved

    def _expire(self, now: float) -> bool:
        """End the linger of final orders final for ``final_linger`` seconds: they
        leave their place (hidden, or moved among the older finals with ``f``)."""
        cutoff = now - self.final_linger
        moved = False
        expiries = self._expiries
        while expiries and expiries[0][0] <= cutoff:
            final_at, order_id = heapq.heappop(expiries)
            if self._lingering.get(order_id) != final_at:
                continue  # stale heap entry: re-opened, re-finalled or gone
            if self._reposition(order_id, now):
                moved = True
        return moved

    @property
    def pending(self) -> int:
        """Changed orders not yet folded into the rows (left by a budgeted :meth:`sync`)."""
        return len(self._pending)

    def sync(self, now: float, budget: int | None = None) -> ViewChange:
        """Fold the store's changes since the last call into the rows.

        With ``budget``, at most that many changed orders are folded by this call and
        the others wait for the next one (:attr:`pending`): a big change — a
        100,000-order snapshot — never costs one long call (a rebuild of every row is
        50-100 ms), but a few bounded ones, the rows catching up over a few frames.
        Until then, a row waiting its turn is drawn at its old place from the store's
        current record (an order the store no longer holds is skipped by the table).
        A filter or show-final change still rebuilds at once."""
        if self._dirty:
            self.rebuild(now)
            return ViewChange(reordered=True)
        changed, _structural = self.store.take_changes()
        pending = self._pending
        if pending:
            pending |= changed
            changed, self._pending = pending, set()
        if budget is not None and len(changed) > budget:
            now_changed = set(islice(changed, max(budget, 1)))
            changed -= now_changed
            self._pending = changed
            changed = now_changed
            big = len(self.store) <= budget  # (a rebuild then costs about the budget)
        else:
            big = len(changed) > max(256, int(len(self.store) * self.full_rebuild_ratio))
        result = ViewChange()
        if big:
            self.rebuild(now)
            result.reordered = True
        elif len(changed) > self.batch_threshold:
            result.reordered = self._reposition_batch(changed, now)
        else:
            result.reordered = self._reposition_each(changed, now)
        if self._expire(now):
            result.reordered = True
        if result.reordered and not self._dirty:
            self.version += 1
        # Only a view that kept its rows in place redraws row by row (``changed``); after a
        # reorder the whole screen is redrawn anyway, so the set is not worked out.
        result.changed = changed if result.reordered else {oid for oid in changed if oid in self._key_of}
        return result
