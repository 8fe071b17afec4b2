"""The desk: one session folded into the order store, the request tracker and the
event log. The TUI and the headless commands drive the same desk, so a cancel
from a script and a cancel from the keyboard are the same code.

Every inbound frame is folded synchronously as it arrives (no per-frame message
to the screen): the reader never waits for rendering, and a renderer polls
``store.version`` / ``tracker.version`` / ``log.last_seq`` once per frame.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Protocol

from pydantic import Field

from .collector import Collector
from .core import EventLog, OrderStore, RequestTracker, State, Tracked
from .net.endpoints import display_url
from .protocol import (
    AuthResult,
    BadFrame,
    CancelAll,
    CancelOrder,
    Disconnected,
    Event,
    InvalidMessage,
    OpenOrders,
    OpenOrdersQuery,
    OrderUpdate,
    Request,
    RequestAck,
    RequestError,
    SubAck,
    Unknown,
)
from .protocol.messages import Order
from .protocol.signing import mask_key
from .net.session import ConnState, Session, SessionSettings

__all__ = ["ConnState", "Desk", "DeskSettings", "Journal"]

SKEW_WARN_MS = 5000
MAX_UNKNOWN_TYPES = 50
"""Distinct unknown message types remembered (and logged once each); more are only counted."""
MAX_UNKNOWN_TYPE_CHARS = 64


class Journal(Protocol):
    """Where every frame sent and received is recorded (see :mod:`blotter.journal`)."""

    def record_sent(self, request: Request, text: str) -> None: ...
    def record_received(self, event: Event, raw: str, received_ns: int) -> None: ...
    def record_note(self, text: str, request_id: str | None = None, order_id: str | None = None) -> None: ...


class DeskSettings(SessionSettings):
    """Everything a desk needs: its session's settings (inherited, not copied) plus the
    desk's own. Secrets are :class:`SecretStr`: never shown."""

    request_timeout: float = Field(
        5.0, gt=0, le=3600, description="Seconds for a request to be confirmed before it shows TIMEOUT."
    )
    stale_after: float = Field(
        10.0, gt=0, le=86400, description="Seconds without data before the table is marked STALE."
    )
    read_only: bool = Field(False, description="Disable every cancel key (monitoring screens).")
    cancel_on_hangup: bool = Field(
        False, description="Dead man's switch: cancel all open orders (and verify) on SIGHUP or SIGTERM."
    )
    max_final_orders: int = Field(20_000, gt=0, description="Final orders kept in the store.")
    log_lines: int = Field(5000, gt=0, description="Lines kept by the event log.")
    resnapshot_min_interval: float = Field(
        2.0, ge=0, description="At most one automatic re-snapshot per this many seconds."
    )


class Desk:
    def __init__(self, settings: DeskSettings, journal: Journal | None = None,
                 clock: Callable[[], float] = time.monotonic, manage_gc: bool = True) -> None:
        self.settings = settings
        self.journal = journal
        self._clock = clock
        self.log = EventLog(max_lines=settings.log_lines)
        self.store = OrderStore(max_final=settings.max_final_orders)
        self.tracker = RequestTracker(self.log, timeout=settings.request_timeout)
        self.session = Session(
            settings,  # a DeskSettings is the session's settings plus the desk's own
            on_frame=self._on_frame,
            on_state=self._on_state,
            on_sent=self._on_sent,
            clock=clock,
            on_live=self._on_live,
            on_orders=self._on_orders,
        )
        self.endpoint_label = display_url(settings.url)
        self.key_label = mask_key(settings.api_key.get_secret_value())
        self.account: str | None = None
        self.read_only = settings.read_only
        self.cancel_on_hangup = settings.cancel_on_hangup
        self.stale_after = settings.stale_after
        self.snapshot_count = 0
        self._snapshot_requests: dict[str, tuple[str | None, float]] = {}
        """In-flight open-orders queries: request id → (symbol or None for all, time asked)."""
        self._last_auto_snapshot = -1e9
        self._snapshot_due = False
        self._verifying: set[str] = set()
        self._unknown_types: dict[str, int] = {}
        self._unknown_overflow = False
        self.retry_hint: str | None = None
        """Set by a screen that offers the one-key retry (e.g. "press R to cancel them
        again"): logged when a cancel-all leaves orders open."""
        self._changed = asyncio.Event()
        self._housekeeper: asyncio.Task | None = None
        self.on_folded: Callable[[], None] | None = None
        """Called after frames changed the store (a screen keeps its sorted view in step,
        a slice at a time, instead of all at once when it redraws)."""
        self.collector = Collector(enabled=manage_gc)
        """When the cyclic garbage collector may run (never in a burst): see :mod:`blotter.collector`."""
        self.counts: dict[str, int] = {"frames": 0, "bad_frames": 0, "invalid": 0, "unknown": 0, "disconnects": 0}

    # -- state for the screen ------------------------------------------------------
    @property
    def clock(self) -> Callable[[], float]:
        """The monotonic clock every age and timeout of this desk is measured with."""
        return self._clock

    @property
    def state(self) -> ConnState:
        return self.session.state

    @property
    def attempt(self) -> int:
        return self.session.attempt

    @property
    def detail(self) -> str:
        return self.session.detail

    @property
    def rtt_ms(self) -> float | None:
        return self.session.rtt_ms

    @property
    def skew_ms(self) -> int | None:
        return self.session.skew_ms

    @property
    def skew_warning(self) -> bool:
        return self.skew_ms is not None and abs(self.skew_ms) > SKEW_WARN_MS

    @property
    def last_frame_at(self) -> float | None:
        return self.session.last_frame_at

    def is_stale(self, now: float | None = None) -> bool:
        """No frame for longer than ``stale_after`` (or none yet once connected)."""
        now = self._clock() if now is None else now
        last = self.session.last_frame_at
        if last is None:
            return False
        return now - last > self.stale_after

    def frame_age(self, now: float | None = None) -> float | None:
        last = self.session.last_frame_at
        if last is None:
            return None
        return (self._clock() if now is None else now) - last

    # -- running ---------------------------------------------------------------------
    async def run(self) -> None:
        """The connection loop plus housekeeping (timeouts, re-snapshots) until stop()."""
        self._housekeeper = asyncio.create_task(self._housekeeping(), name="blotter-housekeeping")
        try:
            await self.session.run()
        finally:
            self._housekeeper.cancel()
            try:
                await self._housekeeper
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            self._changed.set()

    async def stop(self) -> None:
        await self.session.stop()

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            await self.tick()

    async def tick(self) -> None:
        """Timeouts, UNKNOWN resolution, cancel-all verdicts, pending re-snapshots."""
        now = self._clock()
        self.collector.tick(now, self.session.last_frame_at)
        if self.journal is not None:  # summarised or dropped frames, waiting for a lock, stopped
            for text in self.journal.take_notices():
                self.log.add(text, "error" if text.startswith("journal: stopped") else "warn")
        timed_out = self.tracker.check_timeouts(now)
        if timed_out:
            self._snapshot_due = True
            self._changed.set()
        for t in self.tracker.all():
            if (
                t.action == "cancel-all"
                and t.request_id not in self._verifying
                and t.verdict is None
                and t.state in (State.CONFIRMED, State.TIMED_OUT)
            ):
                self._verifying.add(t.request_id)
                self._snapshot_due = True
        if self._snapshot_due and self.session.connected and now - self._last_auto_snapshot >= self.settings.resnapshot_min_interval:
            self._snapshot_due = False
            self._last_auto_snapshot = now
            await self.refresh()

    async def wait_changed(self, timeout: float | None = None) -> None:
        """For headless callers: wait until something was folded (or timeout)."""
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            pass

    async def wait_live(self, timeout: float) -> bool:
        """Wait until live with a first snapshot loaded, or auth refused/timeout."""
        deadline = self._clock() + timeout
        while self._clock() < deadline:
            if self.state is ConnState.AUTH_REFUSED or self.state is ConnState.STOPPED:
                return False
            if self.state is ConnState.LIVE and self.snapshot_count > 0:
                return True
            await self.wait_changed(min(0.1, max(0.0, deadline - self._clock())))
        return False

    # -- requests ----------------------------------------------------------------------
    async def refresh(self, symbol: str | None = None) -> str | None:
        """Request a fresh open-orders snapshot. Returns its request id (None if not sent)."""
        query = OpenOrdersQuery(symbol=symbol)
        self._snapshot_requests[query.request_id] = (symbol, self._clock())
        if not await self.session.send(query):
            self._snapshot_requests.pop(query.request_id, None)
            self._snapshot_due = True
            return None
        return query.request_id

    async def cancel_order(self, order_id: str, symbol: str | None = None) -> Tracked | None:
        """Cancel one order now. Returns the tracked request, or None when it was not
        sent — and then the log says why (read-only, duplicate, unknown, offline).

        With ``symbol``, an order the store does not know is cancelled anyway (the
        headless command: the exchange gives the verdict)."""
        now = self._clock()
        if self.read_only:
            self.log.add("read-only: cancel keys are disabled", "warn", order_id=order_id)
            return None
        entry = self.store.get(order_id)
        if entry is None:
            if symbol is None:
                self.log.add(f"cancel: unknown order {order_id}; nothing sent", "warn", order_id=order_id)
                return None
            return await self._send_cancel(order_id, symbol, now, note="(not among the open orders)")
        if symbol is not None and entry.order.symbol != symbol:
            self.log.add(f"cancel: {order_id} is on {entry.order.symbol}, not {symbol}; nothing sent", "error", order_id=order_id)
            return None
        if not entry.is_open:
            self.log.add(f"cancel: {order_id} is already {entry.status}; nothing sent", "warn", order_id=order_id)
            return None
        pending = self.tracker.pending_cancel(order_id)
        if pending is not None:
            self.log.add(
                f"{pending.request_id} already cancelling {order_id} ({pending.age(now):.1f} s ago); not re-sent",
                "warn", request_id=pending.request_id, order_id=order_id,
            )
            return None
        return await self._send_cancel(order_id, entry.order.symbol, now)

    async def _send_cancel(self, order_id: str, symbol: str, now: float, note: str = "") -> Tracked:
        previous = self.tracker.timed_out_cancel(order_id)
        request = CancelOrder(order_id=order_id, symbol=symbol)
        tracked = self.tracker.sent(
            request.request_id, "cancel-order", now, symbol=symbol, order_id=order_id,
            retry_of=previous.request_id if previous is not None else None, note=note,
        )
        if not await self.session.send(request):
            self.tracker.send_failed(request.request_id, self._clock(), self._offline_reason())
        self._changed.set()
        return tracked

    async def cancel_all(self, symbol: str | None = None) -> Tracked | None:
        """Cancel every open order (on ``symbol``), then verify with a fresh snapshot."""
        now = self._clock()
        if self.read_only:
            self.log.add("read-only: cancel keys are disabled", "warn")
            return None
        targets = {e.order_id for e in self.store.open_by_symbol(symbol)}
        request = CancelAll(symbol=symbol)
        tracked = self.tracker.sent(request.request_id, "cancel-all", now, symbol=symbol, targets=targets)
        if not await self.session.send(request):
            self.tracker.send_failed(request.request_id, self._clock(), self._offline_reason())
        self._changed.set()
        return tracked

    def cancel_all_leftovers(self) -> tuple[Tracked | None, list[str]]:
        """The latest cancel-all and those of its targets that are still open."""
        for t in reversed(self.tracker.all()):
            if t.action == "cancel-all":
                left = []
                for order_id in sorted(t.targets):
                    entry = self.store.get(order_id)
                    if entry is not None and entry.is_open:
                        left.append(order_id)
                return t, left
        return None, []

    async def retry_cancel_all(self) -> list[Tracked]:
        """The one-key retry after a cancel-all that left orders open (refused, timed
        out, or a verdict with orders still open): cancel each of them again, each
        under its own request id. Orders placed since are not touched."""
        if self.read_only:
            self.log.add("read-only: cancel keys are disabled", "warn")
            return []
        t, left = self.cancel_all_leftovers()
        if t is None:
            self.log.add("retry: no cancel-all was sent; nothing to retry", "warn")
            return []
        if t.in_flight:
            self.log.add(f"{t.request_id} retry: still in flight; wait for its verdict", "warn", request_id=t.request_id)
            return []
        if not left:
            self.log.add(f"{t.request_id} retry: none of its orders is still open; nothing sent", "info",
                         request_id=t.request_id)
            return []
        self.log.add(f"{t.request_id} retry: cancelling the {len(left)} order(s) still open", "warn",
                     request_id=t.request_id)
        sent = []
        for order_id in left:
            tracked = await self.cancel_order(order_id)
            if tracked is not None:
                sent.append(tracked)
        return sent

    def _hint_retry(self, t: Tracked) -> None:
        """After the latest cancel-all left orders open, say how to retry them."""
        if not self.retry_hint or t.action != "cancel-all":
            return
        latest, left = self.cancel_all_leftovers()
        if latest is t and left:
            self.log.add(f"{t.request_id} {len(left)} order(s) still open: {self.retry_hint}", "error",
                         request_id=t.request_id)

    def _offline_reason(self) -> str:
        detail = f": {self.session.detail}" if self.session.detail else ""
        return f"not connected ({self.session.state.value}{detail})"

    # -- inbound -------------------------------------------------------------------------
    async def _on_live(self) -> None:
        """Connected, authenticated, subscribed: forget the old ``sn`` (the snapshot
        covers whatever was missed) and ask for the snapshot."""
        self.store.reset_sequence()
        self._snapshot_requests.clear()
        await self.refresh()

    def _on_state(self, state: ConnState, detail: str) -> None:
        level = {"live": "ok", "auth refused": "error", "reconnecting": "warn"}.get(state.value, "info")
        text = f"connection: {state.value}"
        if state is ConnState.RECONNECTING:
            text += f" (attempt {self.session.attempt})"
            self.counts["disconnects"] += 1
            self.tracker.on_connection_lost(self._clock())
        if detail and state in (ConnState.RECONNECTING, ConnState.AUTH_REFUSED, ConnState.STOPPED):
            text += f": {detail}"
        self.log.add(text, level)  # type: ignore[arg-type]
        if self.journal is not None:
            self.journal.record_note(text)
        self._changed.set()

    def _on_sent(self, request: Request, text: str) -> None:
        if self.journal is not None:
            self.journal.record_sent(request, text)

    def _on_orders(self, orders: list[Order], raws: list[bytes], received_ns: int) -> None:
        """A run of ``futures-order`` frames (the session's hot path), folded in order."""
        self.counts["frames"] += len(orders)
        journal = self.journal
        if journal is not None:
            for order, raw in zip(orders, raws):
                journal.record_received(OrderUpdate(order), raw, received_ns)
        self._fold_orders(orders, self._clock())

    def _fold_orders(self, orders: list[Order], now: float) -> None:
        """Order updates into the store; final ones to the request tracker."""
        finals, gap = self.store.apply_updates(orders, now)
        on_final = self.tracker.on_order
        for order in finals:
            on_final(order, now)
        if gap:
            self._snapshot_due = True
        if self.account is None:
            for order in orders:
                if order.account_id:
                    self.account = order.account_id
                    break
        self._changed.set()
        if self.on_folded is not None:
            self.on_folded()

    def _on_frame(self, event: Event, raw: bytes, received_ns: int) -> None:
        self.counts["frames"] += 1
        if self.journal is not None:
            self.journal.record_received(event, raw, received_ns)
        now = self._clock()
        kind = type(event)
        if kind is OrderUpdate:
            self._fold_orders([event.order], now)  # type: ignore[union-attr]
            return
        if kind is OpenOrders:
            self._on_snapshot(event, now)  # type: ignore[arg-type]
            if self.on_folded is not None:
                self.on_folded()
        elif kind is RequestAck:
            if self.tracker.on_ack(event, now) is None and event.request_id not in self._snapshot_requests:  # type: ignore[union-attr]
                self.log.add(f"{event.request_id or '-'} ACK {event.action or ''} for an unknown request".strip(), "info",  # type: ignore[union-attr]
                             request_id=event.request_id, order_id=event.order_id)  # type: ignore[union-attr]
        elif kind is RequestError:
            self._on_error(event, now)  # type: ignore[arg-type]
        elif kind is Disconnected:
            self.log.add(f"server: disconnected {event.code} {event.reason} {event.info}".rstrip(), "warn")  # type: ignore[union-attr]
        elif kind is InvalidMessage:
            self.counts["invalid"] += 1
            self.log.add(f"rejected {event.type} message: {event.error}", "warn", order_id=event.order_id)  # type: ignore[union-attr]
        elif kind is BadFrame:
            self.counts["bad_frames"] += 1
            self.log.add(f"bad frame from server ({event.error}): {event.text[:80]}", "warn")  # type: ignore[union-attr]
        elif kind is Unknown:
            self.counts["unknown"] += 1
            # Bounded: a server inventing a new type per frame must not grow this map or the log.
            kind_name = event.type[:MAX_UNKNOWN_TYPE_CHARS]  # type: ignore[union-attr]
            seen = self._unknown_types.get(kind_name)
            if seen is not None:
                self._unknown_types[kind_name] = seen + 1
            elif len(self._unknown_types) < MAX_UNKNOWN_TYPES:
                self._unknown_types[kind_name] = 1
                self.log.add(f"ignored message of unknown type {kind_name!r} (further ones not logged)", "info")
            elif not self._unknown_overflow:
                self._unknown_overflow = True
                self.log.add(f"ignored messages of more than {MAX_UNKNOWN_TYPES} unknown types; no longer logging them", "warn")
        elif kind is AuthResult and not event.ok:  # type: ignore[union-attr]
            self.log.add(f"auth refused: {event.code} {event.error}", "error")  # type: ignore[union-attr]
        elif kind is SubAck and not event.ok:  # type: ignore[union-attr]
            self.log.add(f"subscription to {event.channel} refused: {event.code} {event.error}", "error")  # type: ignore[union-attr]
        self._changed.set()

    def _on_error(self, err: RequestError, now: float) -> None:
        refused = self.tracker.on_error(err, now)
        if refused is not None:
            self._hint_retry(refused)
            return
        if err.request_id in self._snapshot_requests:
            self._snapshot_requests.pop(err.request_id, None)
            self._snapshot_due = True
            self.log.add(f"{err.request_id} open-orders snapshot refused: ERR {err.code} {err.reason} {err.message}".rstrip(),
                         "error", request_id=err.request_id)
            return
        self.log.add(f"{err.request_id or '-'} server error: ERR {err.code} {err.reason} {err.message}".rstrip(), "error",
                     request_id=err.request_id, order_id=err.order_id)

    def _on_snapshot(self, snap: OpenOrders, now: float) -> None:
        symbol: str | None = None
        requested_at: float | None = now
        if snap.request_id is not None and snap.request_id in self._snapshot_requests:
            symbol, requested_at = self._snapshot_requests.pop(snap.request_id)
        elif snap.request_id is None and self._snapshot_requests:
            # 2021 dialect: a bare array, no id: the oldest query in flight.
            first = next(iter(self._snapshot_requests))
            symbol, requested_at = self._snapshot_requests.pop(first)
        for line in snap.rejected:
            self.log.add(f"snapshot: rejected {line}", "warn")
        gone = self.store.apply_snapshot(snap.orders, now, symbol=symbol, rejected_ids=snap.rejected_ids,
                                         requested_at=requested_at)
        for order_id in gone:
            self.log.add(f"order {order_id} is no longer open (not in the snapshot; final status never received)",
                         "warn", order_id=order_id)
        open_ids = {o.order_id for o in snap.orders if o.is_open}
        if self.account is None:
            for o in snap.orders:
                if o.account_id:
                    self.account = o.account_id
                    break
        for t in self.tracker.resolve_with_snapshot(open_ids, now, symbol):
            if t.still_open:
                self._hint_retry(t)
        self.snapshot_count += 1
        self.collector.after_snapshot(len(snap.orders), self.snapshot_count == 1, now)
        scope = symbol or "all symbols"
        self.log.add(f"snapshot: {len(open_ids)} open orders ({scope})", "info")
