"""Reconcile, don't trust: what the exchange's REST road says about the orders the store holds.

A stream can drop, go quiet, or miss an order's end. Three moments compare the store
with the exchange and say what they corrected, one log line per order:

- **after a (re)connect** — the snapshot marks the orders it no longer lists ``NOT
  OPEN``; each is then asked about through REST ``order/status`` (several ids per
  call) and settled to its real final status, filled quantity, average price and fee
  ("… ended while disconnected: Filled 0.3 @ 30058"). ``NOT OPEN`` stays only when
  REST cannot answer, and the log (and :meth:`Reconciler.not_open_reason`) says why;
- **while live, every ``reconcile_every`` seconds** — REST ``order/open`` against the
  store's open orders; what is open here but not there is asked about through
  ``order/status``; every difference is a ``drift:`` line, and corrected;
- **a cancel that timed out** (UNKNOWN) — its order is asked about through
  ``order/status``, not with a whole snapshot (the snapshot remains the fallback when
  REST cannot answer).

Records are read by the stream's strict rules (:func:`~blotter.protocol.rest.order_from_rest`)
and folded through the store's normal path (:meth:`~blotter.core.OrderStore.apply_records`):
a record never replaces a newer one (``seqNum``).

The decisions are pure functions (:func:`resolve`, :func:`compare_open`: store + records
-> corrections); :class:`Reconciler` is the desk's I/O around them (REST calls, folding,
the log), one task at a time, and backs off first when a message type nears its
threshold (housekeeping yields; cancels never wait for it).
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from .core import EventLog, OrderEntry, OrderStore, RequestTracker, State, Tracked
from .core.text import safe
from .net.rest import RestCallError, RestClient, RestRejected, RestThrottled
from .protocol.messages import FILLED, UNREADABLE, Order
from .protocol.rest import ORDER_STATUS_MAX_IDS, RequestCounter, RestOrder, order_from_rest

__all__ = [
    "Context",
    "Correction",
    "Drift",
    "Reconciler",
    "Resolution",
    "Unresolved",
    "compare_open",
    "resolve",
    "summary",
]

UNKNOWN_TO_REST = "unknown to REST (order/status does not list it)"
RETRY_MAX = 30.0
"""Longest wait between two REST attempts for orders REST could not answer about."""
THROTTLE_WAIT = 5.0
"""Wait before trying again when a type is near its threshold (housekeeping yields)."""
MAX_REMEMBERED = 4096
"""Rows whose last log line and reason are remembered before forgotten rows are pruned."""
_QUERYABLE = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")


class Context(enum.Enum):
    """Why an order is asked about: it words the log line."""

    RECONNECT = "ended while disconnected"
    SNAPSHOT = "ended unseen on the stream"
    DRIFT = "drift"
    CANCEL = "timed-out cancel"


@dataclass(frozen=True)
class Correction:
    """Fold ``order`` (the exchange's record) for the row ``key``; ``text`` is its log line."""

    key: str
    order: Order
    text: str


@dataclass(frozen=True)
class Unresolved:
    """REST gave no usable answer about ``key``: ``reason`` says why (sanitised)."""

    key: str
    reason: str


@dataclass
class Resolution:
    corrections: list[Correction] = field(default_factory=list)
    unresolved: list[Unresolved] = field(default_factory=list)
    still_open: list[str] = field(default_factory=list)
    """Keys the exchange says are open (whether or not that changed anything here)."""


@dataclass
class Drift:
    corrections: list[Correction] = field(default_factory=list)
    """Open on the exchange and missing (or older) here."""
    ended_here: list[str] = field(default_factory=list)
    """Open here, not among the exchange's open orders: ask their status."""


# --- the decisions (pure) -----------------------------------------------------------------------------------


def _amount(value: Decimal | None) -> str:
    return "?" if value is None else format(value, "f")


def summary(order: Order) -> str:
    """``Filled 0.3 @ 30058, fee 1.8 USDT`` / ``Canceled after 0.1 filled @ 30058`` /
    ``Canceled, nothing filled`` / ``Rejected, nothing filled (reason)`` / ``New, 0 filled``.
    Sanitised (every part came from the wire)."""
    status = safe(order.status, 24)
    filled = order.filled_qty
    if not order.is_final:
        text = f"{status}, {_amount(filled)} filled"
    elif status == FILLED:
        text = f"{status} {_amount(filled)} @ {_amount(order.avg_price)}"
    elif filled:
        text = f"{status} after {_amount(filled)} filled @ {_amount(order.avg_price)}"
    else:
        text = f"{status}, nothing filled"
    fee = order.fee
    if fee:
        text += f", fee {_amount(fee)} {safe(order.fee_asset or '', 16)}".rstrip()
    if order.error:
        text += f" ({safe(order.error, 120)})"
    return text


def _newer(entry: OrderEntry, order: Order) -> bool:
    """Would :meth:`OrderStore.apply_records` fold ``order`` over ``entry``? (the same rule)"""
    held = entry.order.seq
    if order.seq is not None and held is not None:
        return order.seq > held or (order.seq == held and entry.missing)
    if not entry.missing and not entry.is_open:
        return False
    return entry.missing or entry.order != order


def _index(store: OrderStore, records: Iterable[RestOrder]) -> dict[str, Order]:
    found: dict[str, Order] = {}
    for record in records:
        order = order_from_rest(record)
        found[store.key_of(order)] = order
    return found


def resolve(store: OrderStore, keys: Sequence[str], records: Iterable[RestOrder], context: Context) -> Resolution:
    """What REST ``order/status`` records say about the rows ``keys``: corrections to fold
    (with their log line), rows REST cannot settle (and why), and rows it says are open."""
    found = _index(store, records)
    out = Resolution()
    for key in keys:
        entry = store.get(key)
        if entry is None:
            continue  # forgotten since (evicted): nothing to show
        shown = safe(key, 80)
        order = found.get(key)
        if order is None:
            out.unresolved.append(Unresolved(key, UNKNOWN_TO_REST))
            continue
        if order.status == UNREADABLE:
            out.unresolved.append(Unresolved(key, f"REST's record is unreadable: {safe(order.problem, 160)}"))
            continue
        if order.is_open:
            out.still_open.append(key)
        if not _newer(entry, order):
            if entry.missing:
                out.unresolved.append(
                    Unresolved(
                        key, f"REST's record (seqNum {order.seq}) is older than the blotter's ({entry.order.seq})"
                    )
                )
            continue
        if context is Context.DRIFT:
            if order.is_final:
                text = f"drift: {shown} was open here, {summary(order)} on the exchange"
            else:
                text = f"drift: {shown} {summary(order)} on the exchange; {summary(entry.order)} here"
        elif order.is_final:
            if context is Context.CANCEL:
                text = f"{shown} order status (REST): {summary(order)}"
            else:
                text = f"{shown} {context.value}: {summary(order)}"
        elif entry.missing:
            text = f"{shown} is open on the exchange ({summary(order)}), though the snapshot did not list it"
        else:
            text = f"{shown} order status (REST): {summary(order)}"
        out.corrections.append(Correction(key, order, text))
    return out


def _queryable(entry: OrderEntry) -> bool:
    return bool(entry.order.symbol) and bool(_QUERYABLE.match(entry.order.order_id))


def compare_open(store: OrderStore, records: Iterable[RestOrder], asked_at: float) -> Drift:
    """The store against REST ``order/open`` (all symbols), asked at ``asked_at`` (the
    store's clock). Rows changed since then are left alone: the answer may predate them."""
    found = _index(store, records)
    drift = Drift()
    for key, order in found.items():
        entry = store.get(key)
        shown = safe(key, 80)
        if entry is None:
            what = (
                f"{safe(order.status, 24)} {safe(order.symbol, 40)} {safe(order.side, 8)} "
                f"{_amount(order.qty)} @ {_amount(order.price)}"
            )
            drift.corrections.append(
                Correction(key, order, f"drift: {shown} open on the exchange, missing here ({what})")
            )
            continue
        if entry.changed_at >= asked_at or not _newer(entry, order):
            continue
        if not entry.is_open:
            here = "NOT OPEN" if entry.missing else safe(entry.status, 24)
            text = f"drift: {shown} open on the exchange ({summary(order)}), {here} here"
        elif order.status != entry.order.status or order.filled_qty != entry.order.filled_qty:
            text = f"drift: {shown} {summary(order)} on the exchange; {summary(entry.order)} here"
        else:
            text = ""  # a newer record, nothing a row shows differs: folded without a line
        drift.corrections.append(Correction(key, order, text))
    for entry in store.open_entries():
        if entry.order_id not in found and entry.changed_at < asked_at and _queryable(entry):
            drift.ended_here.append(entry.order_id)
    return drift


# --- the I/O (the desk's) -----------------------------------------------------------------------------------


@dataclass
class ReconcileStats:
    status_calls: int = 0
    """REST order/status calls made."""
    open_calls: int = 0
    """REST order/open calls made (periodic reconciles)."""
    corrected: int = 0
    drift: int = 0
    unresolved: int = 0
    runs: int = 0
    """Periodic reconciles completed."""


class Reconciler:
    """The desk's reconciliation: asks REST, folds what it says, logs what it corrected.

    Driven by the desk: :meth:`orders_gone` after a snapshot, :meth:`cancel_timed_out`
    for an UNKNOWN cancel, :meth:`on_live` / :meth:`on_lost` with the connection, and
    :meth:`tick` from the housekeeping (which starts at most one REST task at a time,
    so the housekeeping itself never waits for the network)."""

    def __init__(
        self,
        *,
        store: OrderStore,
        tracker: RequestTracker,
        log: EventLog,
        rest: RestClient | None,
        rest_problem: str | None,
        limits: RequestCounter,
        clock: Callable[[], float],
        every: float,
        on_change: Callable[[], None],
        ask_snapshot: Callable[[], None],
    ) -> None:
        self.store = store
        self.tracker = tracker
        self.log = log
        self.rest = rest
        self.rest_problem = rest_problem
        self.limits = limits
        self.clock = clock
        self.every = every
        self.on_change = on_change
        self.ask_snapshot = ask_snapshot
        self.stats = ReconcileStats()
        self._pending: dict[str, Context] = {}
        """Rows to ask REST about, and why."""
        self._reasons: dict[str, str] = {}
        """Why a NOT OPEN row stays NOT OPEN (REST could not settle it)."""
        self._cancels: dict[str, str] = {}
        """Timed-out cancels REST is asked to settle: request id -> row."""
        self._by_snapshot: set[str] = set()
        """Timed-out cancels REST could not settle: the snapshot settles them."""
        self._said: dict[str, str] = {}
        """The last reason logged per row (a retry that fails alike logs nothing new)."""
        self._failures = 0
        self._retry_at = -1e9
        self._next_at: float | None = None
        self._throttled_said = False
        self._task: asyncio.Task[None] | None = None

    # -- what the desk and the screen read ------------------------------------------------------------
    def not_open_reason(self, key: str) -> str | None:
        """Why the row ``key`` is NOT OPEN (REST could not settle it), or None."""
        entry = self.store.get(key)
        if entry is None or not entry.missing:
            return None
        if key in self._pending and key not in self._reasons:
            return "asking REST for its final status"
        return self._reasons.get(key)

    def resolving(self, request_id: str) -> bool:
        """A timed-out cancel REST is settling (no snapshot needed for it)."""
        return request_id in self._cancels

    def needs_snapshot(self, t: Tracked) -> bool:
        """A timed-out cancel the snapshot must settle (REST cannot, or there is no REST road)."""
        return t.request_id not in self._cancels

    @property
    def remembered(self) -> int:
        """Rows whose reason or last line is remembered (bounded: see :data:`MAX_REMEMBERED`)."""
        return len(self._said.keys() | self._reasons.keys())

    @property
    def busy(self) -> bool:
        """A REST question is in flight, or rows wait to be asked about."""
        return bool(self._pending) or (self._task is not None and not self._task.done())

    # -- events from the desk ---------------------------------------------------------------------------------
    def orders_gone(self, keys: Sequence[str], context: Context) -> None:
        """A snapshot no longer lists these rows (the store marked them NOT OPEN)."""
        if not keys:
            return
        if self.rest is None:
            why = f"no REST road ({self.rest_problem or 'not configured'})"
            for key in keys:
                self._unresolved(key, why)
            return
        for key in keys:
            self._pending.setdefault(key, context)
        self._retry_at = -1e9
        self.log.add(
            f"snapshot: {len(keys)} order(s) no longer listed; asking REST (order/status) for their final status",
            "info",
        )

    def cancel_timed_out(self, t: Tracked) -> bool:
        """An UNKNOWN cancel: True when REST will settle it (ask its order's status),
        False when the snapshot must (no REST road)."""
        if self.rest is None or t.action != "cancel-order" or not t.order_id:
            return False
        key = t.order_id
        self._cancels[t.request_id] = key
        self._pending.setdefault(key, Context.CANCEL)
        self._retry_at = -1e9
        return True

    def on_live(self, now: float) -> None:
        self._next_at = now + self.every if self.every > 0 else None

    def on_lost(self) -> None:
        self._next_at = None

    def tick(self, now: float, live: bool) -> None:
        """Start the REST work that is due (one task at a time)."""
        if len(self._said) > MAX_REMEMBERED or len(self._reasons) > MAX_REMEMBERED:
            self._forget_gone()
        if self._task is not None:
            if not self._task.done():
                return
            self._task = None
        if self._pending and now >= self._retry_at:
            self._task = asyncio.get_running_loop().create_task(self._resolve_pending(), name="blotter-reconcile")
        elif live and self._next_at is not None and now >= self._next_at:
            self._next_at = now + self.every
            self._task = asyncio.get_running_loop().create_task(self._reconcile(), name="blotter-reconcile")

    def _forget_gone(self) -> None:
        """Rows the store no longer holds (forgotten final orders) or that are settled."""
        for memo in (self._said, self._reasons):
            for key in [k for k in memo if (e := self.store.get(k)) is None or not e.missing]:
                del memo[key]

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    async def run_now(self) -> None:
        """One periodic reconcile, now (and the status questions it raises)."""
        await self._reconcile()

    # -- REST ----------------------------------------------------------------------------------------------------------
    def _fold(self, corrections: Sequence[Correction]) -> None:
        if not corrections:
            return
        now = self.clock()
        finals = self.store.apply_records([c.order for c in corrections], now)
        for text in self.store.take_notices():
            self.log.add(text, "error")
        for order in finals:
            self.tracker.on_order(order, now)
        for c in corrections:
            self._reasons.pop(c.key, None)
            self._said.pop(c.key, None)
            if c.text:
                self.log.add(c.text, "warn", order_id=c.key)
        self.stats.corrected += len(corrections)
        self.on_change()

    def _unresolved(self, key: str, reason: str, context: Context | None = None) -> None:
        entry = self.store.get(key)
        if entry is None:
            return
        shown = safe(key, 80)
        if entry.missing:
            self._reasons[key] = reason
            text = f"{shown} stays NOT OPEN: {reason}"
        elif context is Context.DRIFT:
            text = f"drift: {shown} was open here, not among the exchange's open orders; {reason}"
        else:
            return
        if self._said.get(key) != text:
            self._said[key] = text
            self.stats.unresolved += 1
            self.log.add(text, "warn", order_id=key)
            self.on_change()

    def _throttled(self, exc: RestThrottled) -> None:
        self._retry_at = self.clock() + THROTTLE_WAIT
        if not self._throttled_said:
            self._throttled_said = True
            self.log.add(f"reconcile postponed: {exc}", "warn")

    async def _resolve_pending(self) -> None:
        """Ask REST about every pending row, :data:`ORDER_STATUS_MAX_IDS` per call."""
        rest = self.rest
        assert rest is not None
        batch = dict(self._pending)
        keys = []
        for key in batch:
            entry = self.store.get(key)
            if entry is None or not _queryable(entry):
                self._pending.pop(key, None)
                if entry is not None:
                    self._unresolved(key, "no readable order id or symbol to ask REST about", batch[key])
                self._settle_cancels(key, None)
                continue
            keys.append(key)
        failed = False
        for i in range(0, len(keys), ORDER_STATUS_MAX_IDS):
            chunk = keys[i : i + ORDER_STATUS_MAX_IDS]
            ids = [self.store.get(k).order.order_id for k in chunk]  # type: ignore[union-attr]
            try:
                self.stats.status_calls += 1
                records = await rest.order_status(ids)
            except RestThrottled as exc:
                self._throttled(exc)
                return
            except RestRejected as exc:
                if len(ids) == 1 and exc.refusal.code == 300006:
                    records = []  # a single unknown id is an error, not an empty list
                else:
                    failed = True
                    self._failed(chunk, batch, f"REST refused the question: {exc}")
                    continue
            except RestCallError as exc:
                failed = True
                self._failed(chunk, batch, f"REST could not answer: {exc}")
                continue
            self._throttled_said = False
            self._answered(chunk, batch, records)
        if failed:
            self._failures += 1
            self._retry_at = self.clock() + min(2.0 ** (self._failures - 1), RETRY_MAX)
        else:
            self._failures = 0

    def _answered(self, keys: list[str], contexts: dict[str, Context], records: list[RestOrder]) -> None:
        by_context: dict[Context, list[str]] = {}
        for key in keys:
            by_context.setdefault(contexts[key], []).append(key)
        for context, group in by_context.items():
            out = resolve(self.store, group, records, context)
            self._fold(out.corrections)
            for u in out.unresolved:
                self._unresolved(u.key, u.reason, context)
            unresolved = {u.key for u in out.unresolved}
            for key in group:
                if self._pending.get(key) is context:
                    del self._pending[key]
                self._settle_cancels(key, None if key in unresolved else key in out.still_open)

    def _failed(self, keys: list[str], contexts: dict[str, Context], reason: str) -> None:
        """REST could not answer about ``keys``: they stay pending (retried with backoff);
        a timed-out cancel among them goes to the snapshot instead."""
        for key in keys:
            self._unresolved(key, reason, contexts[key])
            if contexts[key] is Context.CANCEL:
                self._pending.pop(key, None)
            self._settle_cancels(key, None, reason)

    def _settle_cancels(self, key: str, still_open: bool | None, why: str = UNKNOWN_TO_REST) -> None:
        """Timed-out cancels on ``key``: REST said it is open (``True``), it folded a final
        record (``False``: the tracker confirmed it), or it could not say (``None``:
        handed to the snapshot)."""
        now = self.clock()
        for rid, on in list(self._cancels.items()):
            if on != key:
                continue
            del self._cancels[rid]
            t = self.tracker.get(rid)
            if t is None or t.state is not State.TIMED_OUT or t.final_status is not None:
                continue
            entry = self.store.get(key)
            if still_open is None or entry is None:
                self._by_snapshot.add(rid)
                self.log.add(
                    f"{rid} REST could not settle this cancel ({why}); asking for a snapshot",
                    "warn",
                    request_id=rid,
                    order_id=key,
                )
                self.ask_snapshot()
            elif entry.is_open:
                self.tracker.settle_cancel(rid, True, now, "REST order status")

    async def _reconcile(self) -> None:
        """The periodic comparison: REST open orders against the store; then the status of
        what is open here and not there (and of rows still waiting for an answer)."""
        rest = self.rest
        if rest is None:
            self.ask_snapshot()  # no second road: the stream's snapshot is the comparison there is
            return
        asked = self.clock()
        try:
            self.stats.open_calls += 1
            records = await rest.open_orders()
        except RestThrottled as exc:
            self._throttled(exc)
            self._next_at = self.clock() + THROTTLE_WAIT
            return
        except RestCallError as exc:
            self.log.add(f"reconcile: REST open orders failed ({exc}); asking the stream for a snapshot", "warn")
            self.ask_snapshot()
            return
        self._throttled_said = False
        drift = compare_open(self.store, records, asked)
        self.stats.drift += sum(1 for c in drift.corrections if c.text) + len(drift.ended_here)
        self._fold(drift.corrections)
        for key in drift.ended_here:
            self._pending[key] = Context.DRIFT
        self.stats.runs += 1
        if self._pending:
            await self._resolve_pending()
