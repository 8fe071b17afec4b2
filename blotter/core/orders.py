"""The order store: the single truth for what the orders table shows.

It folds the ``futures-open-orders`` snapshot and the ``futures-order`` stream into
one map of orders by ``orderId``. Each channel message is a full order record, so an
update replaces the record. After a snapshot, an order the store believed open but
that the snapshot does not list is *marked* no longer open, never silently deleted.

**Sequence numbers order each order's updates, nothing more** (ADDENDUM §3.1). The
exchange's ``sn`` is one large counter shared by many accounts: between two updates of
one account it jumps by thousands to millions, so a jump says nothing about a lost
message. An update whose ``sn`` is not above the last one applied *to that order* is
stale or repeated: dropped and counted (:attr:`StoreStats.stale`), never applied over
newer data. A snapshot record's ``seqNum`` is taken as the same counter (the ADDENDUM's
inference): between a snapshot record and a stream update, the newer wins. Messages
that never arrive are found by asking the exchange again (reconciliation), not here.

Three things the exchange may send that the store never hides:

* a record the blotter cannot read (:meth:`Order.unreadable`, status ``Unreadable``):
  kept as an order, and **open** in every count (:meth:`OrderStore.unreadable`);
* one order id on two symbols: both kept, each flagged ``conflict``. The store key
  (:meth:`OrderStore.key_of`, the row id) is the order id for the symbol seen first
  and ``<orderId>@<symbol>`` for another one (``@`` is never in a readable id);
* more orders than :attr:`OrderStore.max_orders`: the oldest final orders are
  forgotten first; an open order that does not fit is never dropped silently but
  counted (:attr:`OrderStore.untracked`, open in :meth:`OrderStore.open_count`) until
  a full snapshot says how many are open.

Each of them is also said once in :meth:`OrderStore.take_notices`, for the log.

Plain Python: no I/O, no asyncio. Time comes in as arguments.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from ..protocol.messages import FINAL_STATUSES, OPEN_STATUSES, UNREADABLE, Order
from .text import safe

MAX_ORDERS = 200_000
"""Default cap on the orders tracked (open and final): see :class:`OrderStore`."""
MAX_NOTICES = 50
"""Notices kept between two :meth:`OrderStore.take_notices` (then one line counts the rest)."""

NOT_OPEN = "NotOpen"
"""Status the store gives an order a snapshot no longer lists although its final
status was never received (shown as ``NOT OPEN``)."""


class OrderEntry:
    """One order as the blotter knows it. Changed only by the store."""

    __slots__ = ("order", "changed_at", "missing", "final_at", "is_open", "order_id", "conflict")

    def __init__(
        self,
        order: Order,
        changed_at: float,
        missing: bool = False,
        final_at: float | None = None,
        key: str | None = None,
    ) -> None:
        self.order = order
        self.order_id: str = key or order.order_id
        """The store key and row id: the order id, or ``<orderId>@<symbol>`` for an id
        already held by an order on another symbol (see :attr:`conflict`)."""
        self.conflict = False
        """Another order with the same order id on another symbol is in the store."""
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

    @property
    def unreadable(self) -> bool:
        """Its latest record could not be read (shown as UNREADABLE; open unless missing)."""
        return self.order.status == UNREADABLE

    def __repr__(self) -> str:
        return (
            f"OrderEntry(order={self.order!r}, changed_at={self.changed_at!r}, missing={self.missing!r}, "
            f"final_at={self.final_at!r})"
        )


@dataclass(slots=True)
class UpdateResult:
    applied: bool
    reason: str = ""
    """Why it was not applied: ``stale`` (an older ``sn`` than the order's) or
    ``duplicate`` (the same ``sn`` again)."""


_APPLIED = UpdateResult(True)
"""Shared result of the common case (read-only by convention: nobody mutates a result)."""


@dataclass
class StoreStats:
    updates: int = 0
    applied: int = 0
    stale: int = 0
    """Updates dropped because their ``sn`` was not above the order's last applied one."""
    repeated: int = 0
    """Of those, the ones with the very same ``sn`` (a repeated message)."""
    snapshots: int = 0
    marked_missing: int = 0
    evicted: int = 0
    unreadable: int = 0
    """Unreadable records folded."""
    conflicts: int = 0
    """Order ids seen on a second symbol."""


class OrderStore:
    """Orders by id, with change tracking for a renderer that draws once per frame.

    Bounded: at most ``max_final`` final orders are kept (oldest forgotten first), and at
    most ``max_orders`` orders in all. At that cap a new order first makes room by
    forgetting the oldest final order (even one still lingering on screen); when every
    tracked order is open, a new open order is not tracked but counted in
    :attr:`untracked` — open in :meth:`open_count`, flagged by :attr:`over_cap` — and a
    notice says so. A snapshot of all symbols recounts it; nothing else lowers it."""

    def __init__(self, max_final: int = 20_000, max_orders: int = MAX_ORDERS) -> None:
        self._orders: dict[str, OrderEntry] = {}
        self._final_order: OrderedDict[str, None] = OrderedDict()
        self.max_final = max_final
        self.max_orders = max_orders
        self.untracked = 0
        """Open orders the store could not track (at ``max_orders``, all open), since the
        last snapshot of all symbols; an upper bound (an order updated twice counts twice)."""
        self._unreadable: set[str] = set()
        self._notices: list[str] = []
        self._notices_dropped = 0
        self._cap_said = False
        self._open_count = 0
        self.stats = StoreStats()
        self._changed: set[str] = set()
        self._structure_changed = False
        self._folds: list[SnapshotFold] = []
        """Snapshots being folded a slice at a time (they learn which orders the stream updates)."""
        self.version = 0
        """Bumped on every applied change: cheap "anything new?" test for the renderer."""
        self.get = self._orders.get  # type: ignore[method-assign,assignment]  # the view calls it per change: no wrapper

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
        """Open orders tracked, unreadable ones included (see also :attr:`untracked`)."""
        return [e for e in self._orders.values() if e.is_open]

    def open_count(self) -> int:
        """Open orders: tracked ones (unreadable included) plus :attr:`untracked`.
        O(1): kept up to date as orders change."""
        return self._open_count + self.untracked

    def open_by_symbol(self, symbol: str | None = None) -> list[OrderEntry]:
        """Open orders tracked on ``symbol`` (all with None). An unreadable order whose
        symbol could not be read may be on any symbol: it is in every list."""
        return [
            e
            for e in self._orders.values()
            if e.is_open and (symbol is None or e.order.symbol == symbol or not e.order.symbol)
        ]

    def unreadable(self) -> list[OrderEntry]:
        """Open orders whose latest record could not be read (they are in every open
        count and list above: an order the blotter cannot read is never taken as gone)."""
        orders = self._orders
        return [e for e in (orders.get(k) for k in self._unreadable) if e is not None and e.is_open]

    def conflicts(self) -> list[OrderEntry]:
        """Orders whose id is also held by an order on another symbol."""
        return [e for e in self._orders.values() if e.conflict]

    @property
    def full(self) -> bool:
        """The store holds ``max_orders`` orders: new ones push out the oldest final ones."""
        return len(self._orders) >= self.max_orders

    @property
    def over_cap(self) -> bool:
        """Open orders exist that the store could not track (see :attr:`untracked`):
        the open count is a bound, and no cancel-all can be verified order by order."""
        return self.untracked > 0

    def key_of(self, order: Order) -> str:
        """The store key (row id) under which ``order``'s record is, or would be, kept."""
        return self._locate(order)[0]

    def take_notices(self) -> list[str]:
        """What the store has to say since the last call (unreadable records, an id on two
        symbols, the cap), one sanitised line each, for the log. Bounded."""
        notices, self._notices = self._notices, []
        if self._notices_dropped:
            notices.append(f"and {self._notices_dropped} more such notices")
            self._notices_dropped = 0
        return notices

    def _notice(self, text: str) -> None:
        if len(self._notices) < MAX_NOTICES:
            self._notices.append(text)
        else:
            self._notices_dropped += 1

    def _locate(self, order: Order) -> tuple[str, OrderEntry | None, OrderEntry | None]:
        """(key, entry under that key or None, entry of the same id on another symbol or None)."""
        order_id = order.order_id
        known = self._orders.get(order_id)
        symbol = order.symbol
        if known is None or not symbol or not known.order.symbol or known.order.symbol == symbol:
            return order_id, known, None
        key = f"{order_id}@{symbol}"
        return key, self._orders.get(key), known

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
        """Fold one channel update. Stale or repeated (``sn`` not above the order's last
        applied one) is dropped."""
        known = self._locate(order)[1]
        known_sn = known.order.seq if known is not None else None
        stale = self.stats.stale
        self.apply_updates((order,), now)
        if self.stats.stale != stale:
            return UpdateResult(False, "stale" if order.seq < known_sn else "duplicate")  # type: ignore[operator]
        return _APPLIED

    def apply_updates(self, orders: Iterable[Order], now: float) -> tuple[list[Order], bool]:
        """Fold channel updates, in order (the burst's hot path: one call per run of
        frames, written flat). Returns the applied updates that are final (for the
        request tracker) and whether a re-snapshot is due: an update could not be read,
        so what its order is now is unknown. (A jump in ``sn`` is never a reason: see
        the module's docstring.)"""
        folds = self._folds
        if folds:
            orders = list(orders)  # (read twice: see the end)
        stats = self.stats
        get = self._orders.get
        put = self._put
        finals = FINAL_STATUSES
        opens = OPEN_STATUSES
        unreadable = self._unreadable
        changed_add = self._changed.add
        final_updates: list[Order] = []
        resnapshot = False
        n = applied = inline = 0
        for order in orders:
            n += 1
            order_id = order.order_id
            known = get(order_id)
            status = order.status
            if known is not None:
                known_symbol = known.order.symbol
                if known_symbol is not order.symbol and known_symbol != order.symbol:
                    # the id on another symbol (or a record without a readable symbol)
                    if self._fold_located(order, now):
                        applied += 1
                        if status in finals:
                            final_updates.append(order)
                        elif status not in opens:
                            resnapshot = True  # unreadable: what the order is now is unknown
                    continue
                sn = order.seq
                if sn is not None:
                    known_sn = known.order.seq
                    if known_sn is not None and sn <= known_sn:
                        self._dropped(sn, known_sn)
                        continue
                if known.is_open and status in opens and not (unreadable and order_id in unreadable):
                    # Most of a burst: an open order changed (a fill) and stays open. What
                    # _put does for it, inline: no count, group or eviction to touch.
                    known.order = order
                    known.changed_at = now
                    changed_add(order_id)
                    inline += 1
                    continue
            put(order, now, known)
            applied += 1
            if status in finals:
                final_updates.append(order)
            elif status not in opens:
                resnapshot = True  # unreadable: what the order is now is unknown; a re-snapshot is due
        stats.updates += n
        stats.applied += applied + inline
        self.version += inline
        if folds:  # a snapshot is being folded: these updates came after it (see SnapshotFold.add)
            seen = [(o.order_id, o.symbol) for o in orders]
            for fold in folds:
                fold.seen.update(seen)
        return final_updates, resnapshot

    def _dropped(self, sn: int, known_sn: int) -> None:
        """An update not newer than what the store holds for its order: counted, not applied."""
        self.stats.stale += 1
        if sn == known_sn:
            self.stats.repeated += 1

    def _fold_located(self, order: Order, now: float) -> bool:
        """Fold one update whose id is held by an order on another symbol: under its own
        key (see :meth:`_locate`). False when stale."""
        key, known, rival = self._locate(order)
        if known is not None and order.seq is not None and known.order.seq is not None and order.seq <= known.order.seq:
            self._dropped(order.seq, known.order.seq)
            return False
        return self._put(order, now, known, key, rival)

    def _put(
        self,
        order: Order,
        now: float,
        known: OrderEntry | None,
        key: str | None = None,
        rival: OrderEntry | None = None,
    ) -> bool:
        """Store ``order`` under ``key`` (its id by default). False when it could not be
        tracked (the cap: see :class:`OrderStore`)."""
        order_id = key or order.order_id
        now_open = order.status not in FINAL_STATUSES
        if known is None:
            if len(self._orders) >= self.max_orders and not self._make_room(now_open):
                return False
            entry = OrderEntry(order, now, key=order_id)
            self._orders[order_id] = entry
            self._structure_changed = True
            if now_open:
                self._open_count += 1
            if rival is not None:
                entry.conflict = True
                if not rival.conflict:
                    rival.conflict = True
                    self._touch(rival.order_id, structural=False)
                self.stats.conflicts += 1
                self._notice(
                    f"order id {safe(order.order_id, 80)} is on two symbols ({safe(rival.order.symbol, 40)} "
                    f"and {safe(order.symbol, 40)}): both kept, flagged CONFLICT"
                )
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
        if order.status == UNREADABLE:
            self._unreadable.add(order_id)
            self.stats.unreadable += 1
            self._notice(
                f"order {safe(order_id, 80)}: record unreadable ({safe(order.problem, 160)}); "
                f"shown as UNREADABLE and counted open"
            )
        elif self._unreadable:
            self._unreadable.discard(order_id)
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
        return True

    def _make_room(self, for_open: bool) -> bool:
        """At ``max_orders``: forget the oldest final order. When there is none (every
        order tracked is open), an open order is counted as :attr:`untracked`."""
        if not self._cap_said:
            self._cap_said = True
            self._notice(
                f"order store at its cap of {self.max_orders:,} orders: the oldest final orders are forgotten first"
            )
        if self._final_order:
            self._forget(next(iter(self._final_order)))
            return True
        if for_open:
            if self.untracked == 0:
                self._notice(
                    f"order store full of OPEN orders (cap {self.max_orders:,}): open orders beyond it are "
                    f"not tracked, only counted as open; cancel-all cannot be verified order by order"
                )
            self.untracked += 1
            self.version += 1
        return False

    def _forget(self, order_id: str) -> None:
        self._final_order.pop(order_id, None)
        self._orders.pop(order_id, None)
        self._unreadable.discard(order_id)
        self._changed.add(order_id)
        self._structure_changed = True
        self.stats.evicted += 1

    def apply_snapshot(
        self,
        orders: Iterable[Order],
        now: float,
        symbol: str | None = None,
        requested_at: float | None = None,
    ) -> list[str]:
        """Fold an open-orders snapshot (for all symbols, or for ``symbol`` only), in one go.

        Returns the keys of orders that were open here but are not in the snapshot:
        they are marked no longer open (status ``NotOpen``), kept visible. Every
        record of the snapshot is an order, unreadable ones too (they stay open); a
        snapshot of all symbols also recounts :attr:`untracked` (the open orders it
        lists that do not fit).

        ``requested_at`` is when the snapshot was asked for (same clock as ``now``).
        An order whose last update arrived after that may be newer than the
        snapshot (created or changed while it was being built), so it is not marked;
        an order last changed before it and absent from the snapshot is not open.

        A big snapshot is better folded a slice at a time: :meth:`begin_snapshot`."""
        fold = self.begin_snapshot(now, symbol, requested_at)
        fold.add(orders)
        return fold.finish()

    def begin_snapshot(self, now: float, symbol: str | None = None, requested_at: float | None = None) -> SnapshotFold:
        """Start folding a snapshot a slice at a time (see :class:`SnapshotFold`); the
        arguments are those of :meth:`apply_snapshot`. From this call on, the fold learns
        which orders the stream updates: call it when the snapshot arrives."""
        return SnapshotFold(self, now, symbol, requested_at)

    def apply_records(self, orders: Iterable[Order], now: float) -> list[Order]:
        """Fold records the exchange gave in answer to a query (REST order status or open
        orders: reconciliation). Per order, the stream's rule: a record older than the one
        held (``seqNum`` lower) never replaces it, and one no newer is dropped too — except
        over an order marked no longer open, which the exchange's record then settles. A
        record without a sequence number never replaces a final order. The account ``sn``
        is not touched (a query says nothing about frames missed on the stream).

        Returns the records applied that are final (for the request tracker)."""
        finals: list[Order] = []
        for order in orders:
            key, known, rival = self._locate(order)
            if known is not None:
                held = known.order.seq
                if order.seq is not None and held is not None:
                    if order.seq < held or (order.seq == held and not known.missing):
                        continue
                elif not known.missing and not known.is_open:
                    continue  # no order between them: a final order stays final
                if not known.missing and known.order == order:
                    continue
            if self._put(order, now, known, key, rival) and order.status in FINAL_STATUSES:
                finals.append(order)
        self._evict()
        return finals

    def _evict(self) -> None:
        """Bound memory: forget the oldest final orders beyond ``max_final``."""
        while len(self._final_order) > self.max_final:
            self._forget(next(iter(self._final_order)))


INLINE_NEW_OPEN = True
""":meth:`SnapshotFold.add` puts an open order the store has never held inline (a test
turns it off to check the outcome is what :meth:`OrderStore._put` gives)."""


class SnapshotFold:
    """One open-orders snapshot folded into an :class:`OrderStore` a slice at a time
    (:meth:`OrderStore.begin_snapshot`): :meth:`add` each slice of its records, then
    :meth:`mark_gone` (in steps, or left to :meth:`finish`), then :meth:`finish`.
    The outcome is that of :meth:`OrderStore.apply_snapshot`, which is this in one go.

    Between two slices the store may fold stream updates. Each of them arrived after
    the snapshot, so it is at least as new as the snapshot's record of its order:

    * a record of an order the stream updated since :meth:`OrderStore.begin_snapshot`
      replaces it only when its ``seqNum`` is strictly newer (otherwise the
      snapshot's "newer or equal" rule, with a record without number taken);
    * an order the stream updated after ``requested_at`` is never marked gone (the
      store's rule, which holds for updates between slices too).

    The same holds for the records of a snapshot folded while an older one is still
    being folded (a REST answer in one go): they came later.

    What is gone is worked out after the records are in (what the snapshot lists is
    then known). At the store's cap an open record that did not fit is put again once
    the gone orders (now final) can make room, as if they had been marked first."""

    def __init__(
        self, store: OrderStore, now: float, symbol: str | None = None, requested_at: float | None = None
    ) -> None:
        self._store = store
        self.now = now
        self.symbol = symbol
        """The snapshot's scope (None: all symbols). May be set until the first slice."""
        self.requested_at = requested_at
        """When it was asked for (see :meth:`OrderStore.apply_snapshot`). May be set until the first slice."""
        self.listed: set[str] = set()
        """Store keys of the orders the snapshot lists."""
        self.open_keys: set[str] = set()
        """Store keys of the orders it lists as open (unreadable ones included)."""
        self.records = 0
        self.unreadable = 0
        self.account_id: str | None = None
        """The first account id a record gave."""
        self.seen: set[tuple[str, str]] = set()
        """(order id, symbol) of stream updates folded since the fold began."""
        self.gone: list[str] = []
        self._overflow: list[Order] = []
        self._keys: list[str] | None = None
        self._looked = 0
        self._untracked = 0
        self._started = False
        self._done = False
        store._folds.append(self)

    def _start(self) -> None:
        """The first slice: from here on :attr:`symbol` and :attr:`requested_at` hold."""
        self._started = True
        store = self._store
        store.stats.snapshots += 1
        self._untracked = store.untracked
        if self.symbol is None:
            store.untracked = 0  # recounted from what this snapshot lists

    def add(self, orders: Iterable[Order], keep: list[Order] | None = None) -> None:
        """Fold a slice of the snapshot's records. With ``keep``, each record is appended
        to it — as the store's own object when the store holds that very state (so a
        caller keeping the records keeps no second copy of an unchanged order)."""
        if not self._started:
            self._start()
        store = self._store
        locate = store._locate
        put = store._put
        now = self.now
        listed = self.listed
        open_keys = self.open_keys
        seen = self.seen
        finals = FINAL_STATUSES
        folds = store._folds
        older = [f.seen for f in folds[: folds.index(self)]] if self in folds and folds[0] is not self else []
        by_key = store._orders
        by_key_get = by_key.get
        changed = store._changed
        unreadable_keys = store._unreadable
        cap = store.max_orders if INLINE_NEW_OPEN else 0
        records = 0
        for order in orders:
            if older:  # a later answer than the snapshots still being folded: newer than theirs
                for other in older:
                    other.add((order.order_id, order.symbol))
            records += 1
            status = order.status
            if self.account_id is None and order.account_id:
                self.account_id = order.account_id
            order_id = order.order_id
            if status not in finals and status != UNREADABLE and by_key_get(order_id) is None and len(by_key) < cap:
                # An open order the store has never held (all of a first snapshot): what
                # ``_put`` does for it, inline (a third of the cost of a record here).
                listed.add(order_id)
                open_keys.add(order_id)
                if keep is not None:
                    keep.append(order)
                by_key[order_id] = OrderEntry(order, now, key=order_id)
                store._open_count += 1
                store._structure_changed = True
                if unreadable_keys:
                    unreadable_keys.discard(order_id)
                changed.add(order_id)
                store.version += 1
                continue
            if status == UNREADABLE:
                self.unreadable += 1
            key, known, rival = locate(order)
            if known is not None:
                key = known.order_id  # (the store's own string: a set of 100,000 keys shares them)
            listed.add(key)
            if status not in finals:
                open_keys.add(key)
            if known is not None:
                held = known.order.seq
                if held is not None and order.seq is not None:
                    if order.seq < held:
                        if keep is not None:
                            keep.append(order)
                        continue  # the stream already told us something newer (seqNum and sn: one counter)
                    if order.seq == held and seen and (order.order_id, order.symbol) in seen:
                        if keep is not None:
                            keep.append(order)
                        continue  # the stream's record came after the snapshot
                elif seen and (order.order_id, order.symbol) in seen:
                    if keep is not None:
                        keep.append(order)
                    continue  # no number to compare: the stream's record came after the snapshot
                if not known.missing and known.order == order:
                    if keep is not None:
                        keep.append(known.order)
                    continue  # the same state (the same number): nothing to redraw
            if keep is not None:
                keep.append(order)
            # newer, or the same number read differently (e.g. the stream's record was
            # unreadable): the exchange's answer, asked for later, is taken
            if not put(order, now, known, key, rival) and status not in finals:
                self._overflow.append(order)  # at the cap: put again once the gone ones left room
        self.records += records

    def mark_gone(self, limit: int | None = None) -> bool:
        """Mark the orders open here that the snapshot does not list (looking at up to
        ``limit`` orders of the store per call). True once every order was looked at."""
        if not self._started:
            self._start()
        store = self._store
        if self._keys is None:
            self._keys = list(store._orders)  # the orders held when the records were all in
        keys = self._keys
        start = self._looked
        stop = len(keys) if limit is None else min(len(keys), start + limit)
        get = store._orders.get
        listed, seen = self.listed, self.seen
        symbol, requested_at, now = self.symbol, self.requested_at, self.now
        for key in keys[start:stop]:
            if key in listed:  # (most of them: looked at first)
                continue
            entry = get(key)
            if entry is None or not entry.is_open:
                continue
            order = entry.order
            if symbol is not None and order.symbol != symbol:
                continue  # (an unreadable order without a symbol: not in this scope's say)
            if requested_at is not None and entry.changed_at >= requested_at:
                continue  # changed after the snapshot was asked for: it may postdate it
            if seen and (order.order_id, order.symbol) in seen:
                continue  # updated by the stream after the snapshot came
            entry.missing = True
            entry.is_open = False
            store._open_count -= 1
            entry.changed_at = now
            entry.final_at = now
            store._final_order[key] = None
            store._touch(key, structural=True)
            self.gone.append(key)
        self._looked = stop
        if stop >= len(keys):
            self._keys = []
            return True
        return False

    def finish(self) -> list[str]:
        """End the fold (marking what is gone, if not done yet). Returns the keys of the
        orders marked no longer open, as :meth:`OrderStore.apply_snapshot` does."""
        store = self._store
        if self._done:
            return self.gone
        while not self.mark_gone():
            pass
        for order in self._overflow:
            key, known, rival = store._locate(order)
            if store.untracked > 0:
                store.untracked -= 1  # counted when it did not fit; counted again below if it still does not
            if known is None:
                store._put(order, self.now, None, key, rival)
        self._overflow = []
        self.close()
        if store.untracked != self._untracked:
            store.version += 1
        store.stats.marked_missing += len(self.gone)
        store._evict()
        return self.gone

    def close(self) -> None:
        """Stop learning from the stream (the fold ended, or was given up)."""
        self._done = True
        if self in self._store._folds:
            self._store._folds.remove(self)
