"""The order store: the single truth for what the orders table shows.

It folds the ``futures-open-orders`` snapshot and the ``futures-order`` stream into
one map of orders by ``orderId``. Each channel message is a full order record, so an
update replaces the record; ``sn`` (per account, increasing) drops stale and
duplicate updates. After a snapshot, an order the store believed open but that the
snapshot does not list is *marked* no longer open, never silently deleted.

Plain Python: no I/O, no asyncio. Time comes in as arguments.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable

from ..protocol.messages import FINAL_STATUSES, Order

NOT_OPEN = "NotOpen"
"""Status the store gives an order a snapshot no longer lists although its final
status was never received (shown as ``NOT OPEN``)."""


class OrderEntry:
    """One order as the blotter knows it. Changed only by the store."""

    __slots__ = ("order", "changed_at", "missing", "final_at", "is_open", "order_id")

    def __init__(self, order: Order, changed_at: float, missing: bool = False, final_at: float | None = None) -> None:
        self.order = order
        self.order_id: str = order.order_id
        self.changed_at = changed_at
        """Monotonic seconds of the last change (drives the brief row highlight)."""
        self.missing = missing
        """True when a snapshot no longer listed the order as open and no final status came."""
        self.final_at = final_at
        """Monotonic seconds at which the order became final (drives linger / eviction)."""
        self.is_open: bool = not missing and order.status not in FINAL_STATUSES
        """Open: neither final nor missing (kept up to date by the store)."""

    @property
    def status(self) -> str:
        return NOT_OPEN if self.missing else self.order.status

    def __repr__(self) -> str:
        return (f"OrderEntry(order={self.order!r}, changed_at={self.changed_at!r}, missing={self.missing!r}, "
                f"final_at={self.final_at!r})")


@dataclass(slots=True)
class UpdateResult:
    applied: bool
    gap: bool = False
    """The account ``sn`` jumped: updates were missed and a re-snapshot is due."""
    reason: str = ""


_APPLIED = UpdateResult(True)
_APPLIED_GAP = UpdateResult(True, True)
"""Shared results of the common case (read-only by convention: nobody mutates a result)."""


@dataclass
class StoreStats:
    updates: int = 0
    applied: int = 0
    stale: int = 0
    gaps: int = 0
    snapshots: int = 0
    marked_missing: int = 0
    evicted: int = 0


class OrderStore:
    """Orders by id, with change tracking for a renderer that draws once per frame."""

    def __init__(self, max_final: int = 20_000) -> None:
        self._orders: dict[str, OrderEntry] = {}
        self._final_order: OrderedDict[str, None] = OrderedDict()
        self.max_final = max_final
        self.last_sn: int | None = None
        self._open_count = 0
        self.stats = StoreStats()
        self._changed: set[str] = set()
        self._structure_changed = False
        self.version = 0
        """Bumped on every applied change: cheap "anything new?" test for the renderer."""
        self.get = self._orders.get  # type: ignore[method-assign]  # the view calls it per change: no wrapper

    # -- queries -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders

    def get(self, order_id: str) -> OrderEntry | None:
        return self._orders.get(order_id)  # (replaced per instance by the dict's own get: see __init__)

    def entries(self) -> Iterable[OrderEntry]:
        return self._orders.values()

    def open_entries(self) -> list[OrderEntry]:
        return [e for e in self._orders.values() if e.is_open]

    def open_count(self) -> int:
        """Open orders in the store. O(1): kept up to date as orders change."""
        return self._open_count

    def open_by_symbol(self, symbol: str | None = None) -> list[OrderEntry]:
        return [e for e in self._orders.values() if e.is_open and (symbol is None or e.order.symbol == symbol)]

    # -- change tracking -----------------------------------------------------
    def take_changes(self) -> tuple[set[str], bool]:
        """Order ids changed since the last call, and whether rows were added,
        removed or changed group (open ↔ final) so a sorted view must re-sort."""
        changed, structural = self._changed, self._structure_changed
        self._changed = set()
        self._structure_changed = False
        return changed, structural

    def _touch(self, order_id: str, structural: bool) -> None:
        self._changed.add(order_id)
        self._structure_changed = self._structure_changed or structural
        self.version += 1

    # -- folding -------------------------------------------------------------
    def apply_update(self, order: Order, now: float) -> UpdateResult:
        """Fold one channel update. Stale or duplicate (``sn`` not newer than the
        order's) is dropped; a jump in the account ``sn`` is reported as a gap."""
        known = self._orders.get(order.order_id)
        known_sn = known.order.seq if known is not None else None
        stale = self.stats.stale
        _, gap = self.apply_updates((order,), now)
        if self.stats.stale != stale:
            return UpdateResult(False, gap, "stale" if order.seq < known_sn else "duplicate")  # type: ignore[operator]
        return _APPLIED_GAP if gap else _APPLIED

    def apply_updates(self, orders: Iterable[Order], now: float) -> tuple[list[Order], bool]:
        """Fold channel updates, in order (the burst's hot path: one call per run of
        frames, written flat). Returns the applied updates that are final (for the
        request tracker) and whether the account ``sn`` jumped (a gap: updates were
        missed and a re-snapshot is due)."""
        stats = self.stats
        get = self._orders.get
        put = self._put
        finals = FINAL_STATUSES
        last = self.last_sn
        changed_add = self._changed.add
        final_updates: list[Order] = []
        gap = False
        n = applied = inline = 0
        for order in orders:
            n += 1
            sn = order.seq
            if sn is not None:
                if last is None:
                    last = sn
                elif sn > last:
                    if sn != last + 1:
                        gap = True
                        stats.gaps += 1
                    last = sn
            order_id = order.order_id
            known = get(order_id)
            if known is not None:
                if sn is not None:
                    known_sn = known.order.seq
                    if known_sn is not None and sn <= known_sn:
                        stats.stale += 1
                        continue
                if known.is_open and order.status not in finals:
                    # Most of a burst: an open order changed (a fill) and stays open. What
                    # _put does for it, inline: no count, group or eviction to touch.
                    known.order = order
                    known.changed_at = now
                    changed_add(order_id)
                    inline += 1
                    continue
            put(order, now, known)
            applied += 1
            if order.status in finals:
                final_updates.append(order)
        self.last_sn = last
        stats.updates += n
        stats.applied += applied + inline
        self.version += inline
        return final_updates, gap

    def _put(self, order: Order, now: float, known: OrderEntry | None) -> None:
        order_id = order.order_id
        now_open = order.status not in FINAL_STATUSES
        if known is None:
            entry = OrderEntry(order, now)
            self._orders[order_id] = entry
            self._structure_changed = True
            if now_open:
                self._open_count += 1
        else:
            entry = known
            was_open = entry.is_open
            entry.order = order
            entry.changed_at = now
            entry.missing = False
            entry.is_open = now_open
            if was_open != now_open:
                self._open_count += 1 if now_open else -1
                self._structure_changed = True
                if not now_open:
                    entry.final_at = None  # it ends now (set below)
        self._changed.add(order_id)
        self.version += 1
        final_order = self._final_order
        if now_open:
            if entry.final_at is not None:
                entry.final_at = None
                final_order.pop(order_id, None)
        else:
            if entry.final_at is None:
                entry.final_at = now
            final_order[order_id] = None
            final_order.move_to_end(order_id)
            if len(final_order) > self.max_final:
                self._evict()

    def apply_snapshot(
        self,
        orders: Iterable[Order],
        now: float,
        symbol: str | None = None,
        rejected_ids: Iterable[str] = (),
        requested_at: float | None = None,
    ) -> list[str]:
        """Fold an open-orders snapshot (for all symbols, or for ``symbol`` only).

        Returns the ids of orders that were open here but are not in the snapshot:
        they are marked no longer open (status ``NotOpen``), kept visible.

        ``requested_at`` is when the snapshot was asked for (same clock as ``now``).
        An order whose last update arrived after that may be newer than the
        snapshot (created or changed while it was being built), so it is not marked;
        an order last changed before it and absent from the snapshot is not open."""
        self.stats.snapshots += 1
        listed: set[str] = set()
        for order in orders:
            listed.add(order.order_id)
            known = self._orders.get(order.order_id)
            if known is not None and known.order.seq is not None and order.seq is not None and order.seq < known.order.seq:
                continue  # the stream already told us something newer
            if known is not None and not known.missing and known.order == order:
                continue
            self._put(order, now, known)
        skip = set(rejected_ids)
        gone: list[str] = []
        for entry in list(self._orders.values()):
            if not entry.is_open or entry.order_id in listed or entry.order_id in skip:
                continue
            if symbol is not None and entry.order.symbol != symbol:
                continue
            if requested_at is not None and entry.changed_at >= requested_at:
                continue  # changed after the snapshot was asked for: it may postdate it
            entry.missing = True
            entry.is_open = False
            self._open_count -= 1
            entry.changed_at = now
            entry.final_at = now
            self._final_order[entry.order_id] = None
            self._touch(entry.order_id, structural=True)
            gone.append(entry.order_id)
        self.stats.marked_missing += len(gone)
        self._evict()
        return gone

    def reset_sequence(self) -> None:
        """Forget the account ``sn`` (after a reconnect: the snapshot covers the gap)."""
        self.last_sn = None

    def _evict(self) -> None:
        """Bound memory: forget the oldest final orders beyond ``max_final``."""
        while len(self._final_order) > self.max_final:
            order_id, _ = self._final_order.popitem(last=False)
            self._orders.pop(order_id, None)
            self._changed.add(order_id)
            self._structure_changed = True
            self.stats.evicted += 1
