"""The desk: one session folded into the order store, the request tracker and the
event log. The TUI and the headless commands drive the same desk, so a cancel
from a script and a cancel from the keyboard are the same code.

Every inbound frame is folded synchronously as it arrives (no per-frame message
to the screen): the reader never waits for rendering, and a renderer polls
``store.version`` / ``tracker.version`` / ``log.last_seq`` once per frame.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any, ParamSpec, Protocol, TypeVar

from pydantic import Field, model_validator

from .collector import Collector
from .core import AccountState, EventLog, OrderEntry, OrderStore, RequestTracker, State, Tracked
from .core.orders import SnapshotFold
from .core.tracker import REST, WEBSOCKET, QueryState, SnapshotQueries, SnapshotQuery
from .net.endpoints import EndpointError, display_url
from .net.loop_thread import BookLock, LoopThread, run_urgent
from .net.rest import RestClient, RestSettings
from .net.session import ConnState, Session, SessionSettings
from .protocol import (
    AccountSnapshot,
    AccountSnapshotQuery,
    AccountUpdate,
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
    PlaceOrder,
    Request,
    RequestAck,
    RequestError,
    SubAck,
    Unknown,
    encode,
    parse,
)
from .protocol.errors import explain
from .protocol.messages import Order
from .protocol.parse import SnapshotSlices
from .protocol.rest import WS_THRESHOLDS, RequestCounter, Usage, ws_kind
from .protocol.signing import mask_key
from .reconcile import Context, Reconciler
from .roads import RestRoad

__all__ = ["CancelAllOutcome", "ConnState", "FlattenOutcome", "Desk", "DeskSettings", "Journal", "SnapshotState"]

SKEW_WARN_MS = 5000
MAX_UNKNOWN_TYPES = 50
"""Distinct unknown message types remembered (and logged once each); more are only counted."""
MAX_UNKNOWN_TYPE_CHARS = 64
SNAPSHOT_BACKOFF_MAX = 30.0
"""Longest wait between two open-orders queries while one is needed and they keep failing."""
RATE_WARN_SHARE = 0.5
"""The header shows a message type once the last minute used this share of its level-1
threshold (housekeeping yields from ``hold_at``, 80 %; cancels never do)."""
SNAPSHOT_HOLD_WAIT = 1.0
"""Wait before asking again for a snapshot held back near its threshold."""
SNAPSHOT_STEP_SECONDS = 0.002
"""Folding a big snapshot, the desk lets the rest of its loop run (a cancel) after this
much work: the cancel never waits behind a whole snapshot."""
SNAPSHOT_SLICE_ORDERS = 256
"""Records of an already read snapshot folded in one go; a snapshot with more is
folded a slice at a time."""
SNAPSHOT_GONE_STEP = 2048
"""Orders of the store looked at in one go when marking what a snapshot no longer lists."""

_log = logging.getLogger(__name__)


_log = logging.getLogger(__name__)
_P = ParamSpec("_P")
_T = TypeVar("_T")
_tasks: set[asyncio.Task[Any]] = set()


async def _as_coroutine(awaitable: Awaitable[_T]) -> _T:
    return await awaitable


def _start_task(loop: asyncio.AbstractEventLoop, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
    task = loop.create_task(factory())
    _tasks.add(task)  # (a reference, so the task is not collected before it ends)
    task.add_done_callback(_tasks.discard)


class SnapshotState(enum.Enum):
    """Whether the table holds the exchange's answer for this connection."""

    WAITING = "waiting for the open orders"
    LOADED = "loaded"


class Outcome(enum.Enum):
    """How a cancel-all-and-verify ended. Only VERIFIED is a clean book."""

    VERIFIED = "nothing left open"
    STILL_OPEN = "still open"
    REFUSED = "refused"
    TIMED_OUT = "timed out"
    NOT_SENT = "not sent"


@dataclass
class CancelAllOutcome:
    """The verdict of :meth:`Desk.cancel_all_and_verify`.

    ``verified`` is True only when an open-orders query asked after the last
    cancel-all was answered by the exchange for that scope, and the store then holds
    no open order in scope (whatever state it is in: every open order counts)."""

    symbol: str | None
    outcome: Outcome
    reason: str = ""
    """One line: what was refused or not answered (raw exchange text inside: pass it
    through :func:`blotter.core.text.safe` before output)."""
    requests: list[Tracked] = field(default_factory=list)
    """The cancel-all rounds sent, oldest first."""
    query: SnapshotQuery | None = None
    """The open-orders query that decided the verdict (None when none was answered)."""
    still_open: list[OrderEntry] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.outcome is Outcome.VERIFIED

    @property
    def request_id(self) -> str | None:
        return self.requests[-1].request_id if self.requests else None


@dataclass
class FlattenOutcome:
    """The verdict of :meth:`Desk.flatten_and_verify`.

    ``verified`` only when, after every close order was answered, the account channel
    (an account update or snapshot) or REST ``futures/position`` showed each position in
    scope at zero. ``left`` is what is still open: symbol → signed size."""

    symbol: str | None
    outcome: Outcome
    reason: str = ""
    """One line (raw exchange text inside: pass it through ``core.text.safe``)."""
    requests: list[Tracked] = field(default_factory=list)
    """One reduce-only market order per position, each under its own request id."""
    closed: list[str] = field(default_factory=list)
    """Symbols shown at zero."""
    left: dict[str, Decimal] = field(default_factory=dict)
    source: str = ""
    """Who said so: "account channel" or "REST"."""

    @property
    def verified(self) -> bool:
        return self.outcome is Outcome.VERIFIED


FLATTEN_EXEC_INST = "ReduceOnly"
"""``execInst`` of a close order: it can only shrink a position (PROTOCOL.md, enums)."""


class Journal(Protocol):
    """Where every frame sent and received is recorded (see :mod:`blotter.journal`)."""

    def record_sent(self, request: Request, text: str, wait: float = ...) -> None: ...
    def record_received(self, event: Event, raw: bytes | str, received_ns: int) -> None: ...
    def record_orders(self, orders: Sequence[Order], raws: Sequence[bytes], received_ns: int) -> None: ...
    def record_note(self, text: str, request_id: str | None = None, order_id: str | None = None) -> None: ...
    def take_notices(self) -> list[str]: ...
    def redact_auth(
        self, key: str | None = None, signature: str | None = None, timestamp: str | int | None = None
    ) -> None: ...


class DeskSettings(SessionSettings):
    """Everything a desk needs: its session's settings (inherited, not copied) plus the
    desk's own. Secrets are :class:`SecretStr`: never shown."""

    request_timeout: float = Field(
        5.0, gt=0, le=3600, description="Seconds for a request to be confirmed before it shows TIMEOUT."
    )
    stale_after: float = Field(
        10.0,
        gt=0,
        le=86400,
        description="Seconds without data before the table is marked STALE (a quiet connection is pinged "
        "after a third of it, so a healthy one never goes STALE).",
    )
    read_only: bool = Field(False, description="Disable every cancel key (monitoring screens).")
    cancel_on_hangup: bool = Field(
        False,
        description="Dead man's switch: cancel all open orders (and verify) on SIGHUP or SIGTERM, when the "
        "terminal goes away, or inside tmux or GNU screen when the last client has been detached for --hangup-grace.",
    )
    hangup_grace: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Seconds the last tmux or screen client may stay detached before the dead man's switch fires "
        "(a client re-attaching within them disarms the countdown).",
    )
    max_final_orders: int = Field(20_000, gt=0, description="Final orders kept in the store.")
    log_lines: int = Field(5000, gt=0, description="Lines kept by the event log.")
    resnapshot_min_interval: float = Field(
        2.0, ge=0, description="At most one automatic re-snapshot per this many seconds."
    )
    rest_url: str | None = Field(
        None,
        description="REST base URL, https://host[:port] (default: the WebSocket's host and port, https for wss, "
        "http only for a loopback simulator).",
    )
    account_group: int | None = Field(
        None,
        ge=0,
        le=999_999,
        description="Account group of your API key: builds the URL with --env, and is the REST account group "
        "when the WebSocket URL has none (REST /api/pro/v1/info returns it).",
    )
    rest_fallback_after: float = Field(
        1.0,
        ge=0,
        le=60,
        description="Seconds a WebSocket cancel-all may go without an ACK before it is repeated over REST (0: never).",
    )
    reconcile_every: float = Field(
        60.0,
        ge=0,
        le=86400,
        description="While live, compare the table with the exchange (REST) every this many seconds and "
        "correct any drift; 0 turns it off.",
    )

    @model_validator(mode="after")
    def _ping_when_quiet(self) -> DeskSettings:
        # A quiet market sends nothing for minutes: without a ping of our own within
        # stale_after, a healthy connection would read STALE (and cancels go by REST).
        if self.idle_ping is None:
            self.idle_ping = max(0.5, min(self.stale_after / 3, 3600.0))  # (the longest quiet gap: 1.5 x this + rtt)
        return self


class Desk:
    def __init__(
        self,
        settings: DeskSettings,
        journal: Journal | None = None,
        clock: Callable[[], float] = time.monotonic,
        manage_gc: bool = True,
    ) -> None:
        self.settings = settings
        self.journal = journal
        self._clock = clock
        self.lock = BookLock()
        """The book lock. Held by the desk's loop whenever it runs (see :meth:`start_thread`);
        another thread takes it to read or change the store, tracker, log or account."""
        self._thread: LoopThread | None = None
        self._behind = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.log = EventLog(max_lines=settings.log_lines, lock=self.lock)
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
            on_snapshot=self._on_snapshot_frame,
            read_ahead=self._read_ahead,
        )
        if journal is not None:  # header-auth values never pass the journal as a frame: tell it
            self.session.redactor.on_login = lambda signature, timestamp: journal.redact_auth(
                signature=signature, timestamp=timestamp
            )
        self.endpoint_label = display_url(settings.url)
        self.key_label = mask_key(settings.api_key.get_secret_value())
        self.account: str | None = None
        self.account_state = AccountState()
        """Collateral and positions, from the account snapshot and updates (see :mod:`blotter.core.account`)."""
        self.read_only = settings.read_only
        self.cancel_on_hangup = settings.cancel_on_hangup
        self.hangup_countdown: float | None = None
        """When (this desk's clock) the dead man's switch fires unless a terminal comes
        back; set by :mod:`blotter.cli.hangup` while no tmux or screen client is attached."""
        self.hangup_note = ""
        """What the dead man's switch did last ("countdown disarmed", "FIRED: ..."), for the header,
        until ``hangup_note_until`` (this desk's clock; None: until the next note)."""
        self.hangup_note_until: float | None = None
        self.hangup_verdict: str | None = None
        """The verdict of a dead man's switch that fired and quit (the CLI prints it on exit)."""
        self.stale_after = settings.stale_after
        self.snapshot_count = 0
        self.queries = SnapshotQueries(self.log, timeout=settings.request_timeout)
        """Every open-orders query with its deadline and outcome."""
        self._book_loaded = False
        """An all-symbols snapshot was answered on this connection."""
        self._book_query: SnapshotQuery | None = None
        """The latest automatic query (the one the table waits for)."""
        self._snapshot_failures = 0
        self._next_snapshot_at = -1e9
        self._last_auto_snapshot = -1e9
        self._snapshot_due = False
        self._verifying: set[str] = set()
        self._snapshot_jobs: deque[tuple[SnapshotFold, Callable[[], Awaitable[None]]]] = deque()
        """Big snapshots waiting to be folded, in the order they came (see :meth:`_on_snapshot_frame`)."""
        self._snapshot_worker: asyncio.Task | None = None
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
        self.marks: dict[str, Decimal] = {}
        """Mark price by symbol, from REST ``futures/position`` (the WebSocket sends none)."""
        self.marks_wall_ms: int | None = None
        """When :attr:`marks` were answered (wall clock, ms): the screen says how old they are,
        since the PnL beside them comes live from the account channel."""
        self.rest_positions: dict[str, Decimal] = {}
        """Signed position by symbol as REST last said (a second opinion for the flatten verdict)."""
        self.rest_positions_at: float | None = None
        self._positions_poll: asyncio.Task | None = None
        self._positions_polled_at = -1e9
        self._marks_due = False
        """Ask REST for the marks once the account shows a position (set at every connect)."""
        self._rest_position_said = False
        self._flattening: dict[str, str] = {}
        """symbol → request id of its latest close order."""
        self.rest: RestClient | None = None
        """The second road to the exchange (REST on the same host), or None when it cannot be
        built (``rest_problem`` says why, and the log said so once)."""
        self.rest_problem: str | None = None
        try:
            self.rest = RestClient(
                RestSettings.from_ws_url(
                    settings.url,
                    settings.api_key,
                    settings.api_secret,
                    rest_url=settings.rest_url,
                    account_group=settings.account_group,
                    secret_encoding=settings.secret_encoding,
                    ca_file=settings.ca_file,
                    deadline=settings.request_timeout,
                ),
                clock=clock,
            )
        except EndpointError as exc:
            self.rest_problem = f"REST road unavailable: {exc}"
            self.log.add(self.rest_problem, "warn")
        self.limits = RequestCounter(WS_THRESHOLDS)
        """The client's own requests per kind in the last minute, both roads (the WebSocket's
        counted as they are sent, REST's by the REST client), against ADDENDUM §3.6."""
        if self.rest is not None:
            self.rest.counter = self.limits  # one count per kind, whichever road a request takes
        self._snapshot_held_said = False
        self.reconciler = Reconciler(
            store=self.store,
            tracker=self.tracker,
            log=self.log,
            rest=self.rest,
            rest_problem=self.rest_problem,
            limits=self.limits,
            clock=clock,
            every=settings.reconcile_every,
            on_change=self._reconciled,
            ask_snapshot=self._ask_snapshot,
        )
        """Reconciliation with the exchange (REST order status and open orders): see :mod:`blotter.reconcile`."""
        self.road = RestRoad(self)
        """Cancels, their confirmation and verification over REST while the stream is not live."""

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

    @property
    def snapshot_state(self) -> SnapshotState:
        """LOADED once the exchange answered an all-symbols open-orders query on this
        connection; until then the table is not loaded (the screen says so)."""
        return SnapshotState.LOADED if self._book_loaded else SnapshotState.WAITING

    @property
    def snapshot_wait(self) -> str:
        """What the table is waiting for, in words ("" once loaded)."""
        if self._book_loaded:
            return ""
        q = self._book_query
        if q is None or q.state is QueryState.WAITING or not self.session.connected:
            return SnapshotState.WAITING.value
        return f"{SnapshotState.WAITING.value} (last query {q.state.value}; asking again)"

    def not_open_reason(self, key: str) -> str | None:
        """Why the row ``key`` shows NOT OPEN (REST could not settle it), or None."""
        return self.reconciler.not_open_reason(key)

    @property
    def rate_warnings(self) -> list[Usage]:
        """Message types whose last minute used at least :data:`RATE_WARN_SHARE` of their
        level-1 threshold (what the header shows)."""
        return [
            u
            for u in self.limits.usage(self._clock()).values()
            if u.level1 and u.last_minute >= u.level1 * RATE_WARN_SHARE
        ]

    BEHIND_LAG = 0.2
    """Seconds the oldest frame not yet folded may wait before the desk counts as behind."""
    BEHIND_BYTES = 256 * 1024
    """Bytes the socket may hold unread (a few hundred order updates) before the desk
    counts as behind."""

    def behind(self) -> bool:
        """Frames wait to be folded (the oldest for over :attr:`BEHIND_LAG` seconds, the
        connection stopped reading, the socket holds more than :attr:`BEHIND_BYTES`
        unread, or a big snapshot is being folded): what the screen shows lags the wire. It ends only once well caught up
        (a quarter of each), so the header does not flicker at the edge."""
        session = self.session
        if self._folding_snapshot():  # a big snapshot is being folded a slice at a time
            self._behind = True
            return True
        if self._behind:
            self._behind = (
                session.read_paused or session.lag > self.BEHIND_LAG / 4 or session.unread > self.BEHIND_BYTES / 4
            )
        else:
            self._behind = session.read_paused or session.lag > self.BEHIND_LAG or session.unread > self.BEHIND_BYTES
        return self._behind

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
        self._loop = asyncio.get_running_loop()
        self._housekeeper = asyncio.create_task(self._housekeeping(), name="blotter-housekeeping")
        try:
            await self.session.run()
        finally:
            self._housekeeper.cancel()
            try:
                await self._housekeeper
            except (asyncio.CancelledError, Exception):
                pass
            self._changed.set()

    # -- the desk on a thread of its own ------------------------------------------------
    def start_thread(self, on_done: Callable[[BaseException | None], None] | None = None) -> None:
        """Run the desk (:meth:`run`) on an event loop in a thread of its own, holding
        :attr:`lock` while that loop works. From then on, every coroutine of the desk is
        run there: call them through :meth:`call` (awaitable from another loop) or
        :meth:`submit` (from any thread, nothing to wait for)."""
        if self._thread is not None:
            raise RuntimeError("the desk is already running on a thread")
        self._thread = LoopThread(self.run, self.lock, on_done=on_done)
        self.session.urgent = self._thread.urgent_jobs
        self._thread.start()

    def when_thread_done(self, callback: Callable[[BaseException | None], None]) -> None:
        """``callback(error)`` when the desk's thread ends (at once, here, if it already
        has): for a screen that comes up after the desk was started."""
        if self._thread is None:
            raise RuntimeError("the desk is not running on a thread")
        self._thread.when_done(callback)

    @property
    def threaded(self) -> bool:
        return self._thread is not None

    def join(self, timeout: float | None = None) -> None:
        """Wait for the desk's thread to end (after :meth:`stop`)."""
        if self._thread is not None:
            self._thread.join(timeout)

    async def call(self, fn: Callable[_P, Awaitable[_T]], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``await fn(*args, **kwargs)`` on the desk's loop, from whichever loop calls this.
        With the desk on its own thread the awaiting loop is free meanwhile; when that
        thread has ended, it runs here (stop, a last verdict)."""
        thread = self._thread
        if thread is None or not thread.running or asyncio.get_running_loop() is thread.loop:
            return await fn(*args, **kwargs)
        future = thread.submit(_as_coroutine(fn(*args, **kwargs)))
        if future is None:  # the thread ended meanwhile
            return await fn(*args, **kwargs)
        return await future

    def submit(self, fn: Callable[_P, Awaitable[Any]], *args: _P.args, **kwargs: _P.kwargs) -> bool:
        """Start ``fn(*args, **kwargs)`` on the desk's loop from any thread, without waiting
        (a cancel key: the screen's loop is not in the way). An error is logged. False
        when the desk is not running."""

        async def guarded() -> None:
            try:
                await fn(*args, **kwargs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.exception("desk call failed")
                self.log.add(f"internal error in {getattr(fn, '__name__', 'a call')}: {type(exc).__name__}", "error")

        thread = self._thread
        if thread is not None:
            if not thread.running:
                return False
            loop = thread.loop
            assert loop is not None
            try:
                asyncio.run_coroutine_threadsafe(guarded(), loop)
            except RuntimeError:
                return False
            return True
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        loop.call_soon_threadsafe(_start_task, loop, guarded)
        return True

    def submit_cancel(self, order_id: str) -> bool:
        """From any thread: cancel ``order_id`` (the cancel key). With the desk on its own
        thread the request is written at that loop's very next turn, ahead of whatever it
        has queued (:meth:`_cancel_at_once`); every case that needs a decision (not open,
        a cancel already in flight, REST road…) takes :meth:`cancel_order`, which says why."""
        thread = self._thread
        if thread is not None and thread.urgent(partial(self._cancel_at_once, order_id)):
            return True
        return self.submit(self.cancel_order, order_id)

    def _cancel_at_once(self, order_id: str) -> None:
        """On the desk's thread, between two turns of its loop, without the book lock: it
        only reads what that thread alone changes (store, tracker, session) and writes to
        the socket. The tracker, the request counts and the log follow on the loop, before
        anything it reads next (an ACK cannot be among it: the request has only just left)."""
        loop = self._loop
        if loop is None:
            return
        now = self._clock()
        entry = self.store.get(order_id)
        order = entry.order if entry is not None else None
        if (
            entry is None
            or order is None
            or self.read_only
            or not entry.is_open
            or not order.symbol
            or order.order_id.startswith("?")
            or self.tracker.cancel_for(order_id) is not None
            or self.cancel_road() != WEBSOCKET
            or not self.session.connected
        ):
            loop.call_soon(_start_task, loop, partial(self._cancel_guarded, order_id))
            return
        request = CancelOrder(order_id=order.order_id, symbol=order.symbol)
        text = encode(request)
        if self.journal is not None:
            # journaled before it can reach the exchange, unless a batch of received frames is
            # being written this very moment: then first in line for the writer thread (the
            # cancel never waits for the journal)
            self.journal.record_sent(request, text, wait=0)
        written = self.session.write_now(text)
        loop.call_soon(self._cancel_written, request, order_id, now, written)

    async def _cancel_guarded(self, order_id: str) -> None:
        try:
            await self.cancel_order(order_id)
        except Exception as exc:
            _log.exception("cancel failed")
            self.log.add(f"internal error in cancel: {type(exc).__name__}", "error", order_id=order_id)

    def _cancel_written(self, request: CancelOrder, order_id: str, now: float, written: bool) -> None:
        """The bookkeeping of a cancel :meth:`_cancel_at_once` wrote (on the loop, under the lock)."""
        self.limits.record(ws_kind(request.action), now)
        self.tracker.sent(request.request_id, "cancel-order", now, symbol=request.symbol, order_id=order_id)
        if not written:
            self.tracker.send_failed(request.request_id, self._clock(), self._offline_reason())
        self._changed.set()

    async def stop(self) -> None:
        thread = self._thread
        if thread is not None:
            if not thread.running:
                return  # its loop has ended: nothing left running to stop
            if asyncio.get_running_loop() is not thread.loop:
                await self.call(self.stop)
                return
        self._stop_snapshot_folds()
        if self._positions_poll is not None and not self._positions_poll.done():
            self._positions_poll.cancel()
        await self.session.stop()
        await self.reconciler.aclose()
        await self.road.close()
        if self.rest is not None:
            await self.rest.aclose()

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
            for t in timed_out:
                if not self.reconciler.cancel_timed_out(t):  # an UNKNOWN cancel: REST asks its order's status
                    self._snapshot_due = True
            self._changed.set()
        for q in self.queries.check_timeouts(now):
            self._query_failed(q, now)
        for t in self.tracker.all():
            if (
                t.action == "cancel-all"
                and t.request_id not in self._verifying
                and t.verdict is None
                and t.state in (State.CONFIRMED, State.TIMED_OUT)
            ):
                self._verifying.add(t.request_id)
                self._snapshot_due = True
        self.reconciler.tick(now, live=self.session.connected and self._book_loaded)
        if self.session.connected and self.account_state.loaded and self.open_positions():
            # the marks (REST only) once the account snapshot of this connection showed a
            # position, then at the reconcile pace; no position, no call
            every = self.settings.reconcile_every
            if self._marks_due or (every and now - self._positions_polled_at >= every):
                self._marks_due = False
                self.poll_positions_soon()
        if self._snapshot_wanted() and self.session.connected and now >= self._next_snapshot_at:
            book = self._book_query
            if book is not None and book.state is QueryState.WAITING:
                return  # its answer (or its timeout) comes first
            if self._snapshot_held(now):
                return
            self._snapshot_due = False
            self._last_auto_snapshot = now
            self._next_snapshot_at = now + self.settings.resnapshot_min_interval
            rid = await self.refresh()
            self._book_query = self.queries.get(rid)

    def _snapshot_wanted(self) -> bool:
        """A fresh all-symbols snapshot is needed: the table is not loaded, an unreadable
        update or a timeout asked for one, or a row is UNKNOWN (a timed-out cancel not yet settled)
        or a cancel-all awaits its verdict. Asked again, with backoff, until answered."""
        if self._snapshot_due or not self._book_loaded:
            return True
        for t in self.tracker.all():
            if (
                t.action == "cancel-order"
                and t.state is State.TIMED_OUT
                and t.final_status is None
                and self.reconciler.needs_snapshot(t)
            ):
                return True
            if (
                t.action == "cancel-all"
                and t.verdict is None
                and t.request_id in self._verifying
                and t.state in (State.CONFIRMED, State.TIMED_OUT)
            ):
                return True
        return False

    def _snapshot_held(self, now: float) -> bool:
        """An automatic snapshot near the open-orders threshold waits (housekeeping yields
        first, so that a cancel-all's verification still has room): said once per episode."""
        if self.limits.allows("open_orders", now):
            self._snapshot_held_said = False
            return False
        self._next_snapshot_at = now + SNAPSHOT_HOLD_WAIT
        if not self._snapshot_held_said:
            self._snapshot_held_said = True
            used = self.limits.count("open_orders", now)
            self.log.add(
                f"snapshot postponed: {used} open-orders requests in the last minute, near the threshold", "warn"
            )
        return True

    def _ask_snapshot(self) -> None:
        """Reconciliation's fallback when REST cannot answer: an all-symbols snapshot."""
        self._snapshot_due = True

    def _reconciled(self) -> None:
        self._changed.set()
        if self.on_folded is not None:
            self.on_folded()

    def _query_failed(self, q: SnapshotQuery, now: float) -> None:
        """A query refused or unanswered: the automatic ones are asked again with backoff."""
        self._changed.set()
        if q is not self._book_query:
            return
        self._snapshot_failures += 1
        delay = min(self.settings.resnapshot_min_interval * 2 ** (self._snapshot_failures - 1), SNAPSHOT_BACKOFF_MAX)
        delay = max(delay, 0.5)
        self._next_snapshot_at = now + delay
        self._snapshot_due = True
        self.log.add(
            f"{q.request_id} open-orders {q.state.value}: asking again in {delay:g} s", "warn", request_id=q.request_id
        )

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
            if self.state is ConnState.LIVE and self._book_loaded:
                return True
            await self.wait_changed(min(0.1, max(0.0, deadline - self._clock())))
        return False

    # -- requests ----------------------------------------------------------------------
    async def refresh(self, symbol: str | None = None) -> str | None:
        """Request a fresh open-orders snapshot. Returns its request id (None if not
        sent); its outcome is ``desk.queries.get(request_id)``."""
        q = await self.query_open_orders(symbol)
        return None if q.state is QueryState.NOT_SENT else q.request_id

    async def query_open_orders(self, symbol: str | None = None) -> SnapshotQuery:
        """Ask for the open orders (on ``symbol``): the query's record, which gets its
        outcome (answered, refused, timed out, lost) as frames arrive and time passes."""
        query = OpenOrdersQuery(symbol=symbol)
        q = self.queries.asked(query.request_id, symbol, self._clock())
        if not await self.session.send(query):
            self.queries.not_sent(q, self._clock(), self._offline_reason())
            self._snapshot_due = True
        return q

    async def fetch_open_orders(
        self, symbol: str | None = None, timeout: float | None = None, road: str | None = None
    ) -> SnapshotQuery:
        """Ask for the open orders and wait for the outcome (at most ``timeout`` s,
        default the request timeout). Only an ANSWERED query's scope is in the store
        as the exchange said. By ``road`` (default: whichever is up, see :meth:`cancel_road`)."""
        timeout = self.settings.request_timeout if timeout is None else timeout
        if (road or self.cancel_road()) == REST and self.rest is not None:
            return await self.road.fetch_open_orders(symbol, timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        q = await self.query_open_orders(symbol)
        while q.state is QueryState.WAITING:
            left = deadline - loop.time()
            if left <= 0:
                self.queries.expire(q, self._clock(), timeout)
                break
            await self.wait_changed(min(0.1, left))
        return q

    async def cancel_order(self, order_id: str, symbol: str | None = None) -> Tracked | None:
        """Cancel one order now, by whichever road is up (:meth:`cancel_road`). Returns the
        tracked request, or None when it was not sent — and then the log says why
        (read-only, duplicate, unknown). With both roads down the request is NOT SENT
        (one line; over REST that is known once the connection could not be made).

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
            self.log.add(
                f"cancel: {order_id} is on {entry.order.symbol}, not {symbol}; nothing sent", "error", order_id=order_id
            )
            return None
        if not entry.is_open:
            self.log.add(f"cancel: {order_id} is already {entry.status}; nothing sent", "warn", order_id=order_id)
            return None
        pending = self.tracker.pending_cancel(order_id)
        if pending is not None and pending.road == WEBSOCKET and self.cancel_road() == REST:
            # its road went down under it: the exchange may never have seen it; send it again over REST
            return await self._send_cancel(entry.order.order_id, entry.order.symbol, now, retry_of=pending.request_id)
        if pending is not None:
            self.log.add(
                f"{pending.request_id} already cancelling {order_id} ({pending.age(now):.1f} s ago); not re-sent",
                "warn",
                request_id=pending.request_id,
                order_id=order_id,
            )
            return None
        if entry.order.order_id.startswith("?") or not entry.order.symbol:  # an unreadable record (records area)
            self.log.add(
                f"cancel: {order_id} has no readable order id or symbol; nothing sent (cancel-all covers it)",
                "error",
                order_id=order_id,
            )
            return None
        return await self._send_cancel(entry.order.order_id, entry.order.symbol, now)  # (a row id may be id@symbol)

    async def _send_cancel(
        self, order_id: str, symbol: str, now: float, note: str = "", retry_of: str | None = None
    ) -> Tracked:
        previous = self.tracker.timed_out_cancel(order_id)
        if retry_of is None and previous is not None:
            retry_of = previous.request_id
        if self.cancel_road() == REST:
            tracked = self.road.cancel_order(order_id, symbol, now, note, retry_of=retry_of)
            self._changed.set()
            return tracked
        request = CancelOrder(order_id=order_id, symbol=symbol)
        if not self.session.connected:  # one line, never "sent" then "NOT SENT"
            tracked = self.tracker.not_sent(
                request.request_id,
                "cancel-order",
                now,
                self.ws_down_reason(),
                symbol=symbol,
                order_id=order_id,
                retry_of=retry_of,
            )
            self._changed.set()
            return tracked
        tracked = self.tracker.sent(
            request.request_id,
            "cancel-order",
            now,
            symbol=symbol,
            order_id=order_id,
            retry_of=retry_of,
            note=note,
        )
        if not await self.session.send(request):
            self.tracker.send_failed(request.request_id, self._clock(), self._offline_reason())
        self._changed.set()
        return tracked

    async def cancel_all(self, symbol: str | None = None) -> Tracked | None:
        """Cancel every open order (on ``symbol``); the housekeeping then asks for a
        fresh snapshot and logs the verdict (over REST, the REST road asks REST).
        With neither road up: one NOT SENT line, nothing sent."""
        return await self._send_cancel_all(symbol, verify=True)

    async def _send_cancel_all(self, symbol: str | None, verify: bool) -> Tracked | None:
        """Cancel-all by whichever road is up (the WebSocket first). Over the WebSocket, with
        no ACK within ``rest_fallback_after`` seconds it is repeated over REST; ``verify``:
        a REST cancel-all asks REST for its verdict itself."""
        now = self._clock()
        if self.read_only:
            self.log.add("read-only: cancel keys are disabled", "warn")
            return None
        targets = {e.order_id for e in self.store.open_by_symbol(symbol)}
        blind = self.snapshot_count == 0  # no snapshot yet: the targets say nothing of what is open
        if self.cancel_road() == REST:
            tracked = self.road.cancel_all(symbol, targets, now, verify, blind=blind)
            self._changed.set()
            return tracked
        request = CancelAll(symbol=symbol)
        if not self.session.connected:
            tracked = self.tracker.not_sent(
                request.request_id, "cancel-all", now, self.ws_down_reason(), symbol=symbol, targets=targets
            )
            self._changed.set()
            return tracked
        tracked = self.tracker.sent(request.request_id, "cancel-all", now, symbol=symbol, targets=targets, blind=blind)
        if not await self.session.send(request):
            self.tracker.send_failed(request.request_id, self._clock(), self._offline_reason())
        elif self.rest is not None and self.settings.rest_fallback_after > 0:
            self.road.repeat_cancel_all(tracked, self.settings.rest_fallback_after, verify)
        self._changed.set()
        return tracked

    async def cancel_all_and_verify(
        self, symbol: str | None = None, rounds: int = 1, timeout: float | None = None
    ) -> CancelAllOutcome:
        """THE cancel-all-and-verify: the quit dialog, the dead man's switch and the
        headless ``cancel-all`` all call this and stop on the same condition.

        Each round sends cancel-all, waits for it to be answered and its orders to end
        (or the request timeout), then asks for the open orders on the same scope. The
        book is clean (VERIFIED) only when that query was answered by the exchange and
        the store holds no open order in scope — every open order counts, whatever its
        state. A refused cancel-all or query is REFUSED, one not answered in time is
        TIMED_OUT, one that could not be sent NOT_SENT; orders still open after
        ``rounds`` rounds are STILL_OPEN. ``timeout`` bounds the whole call (default:
        two request timeouts per round plus one)."""
        per_step = self.settings.request_timeout
        loop = asyncio.get_running_loop()
        total = per_step * (2 * max(rounds, 1) + 1) + 1 if timeout is None else timeout
        deadline = loop.time() + total
        result = CancelAllOutcome(symbol=symbol, outcome=Outcome.STILL_OPEN)
        scope = symbol or "ALL symbols"

        def _settled(t: Tracked) -> bool:
            return t.state in (State.REFUSED, State.CONFIRMED, State.TIMED_OUT, State.FAILED)

        async def until(done: Callable[[], bool]) -> bool:
            while not done():
                left = deadline - loop.time()
                if left <= 0:
                    return False
                await self.wait_changed(min(0.1, left))
            return True

        for _ in range(max(rounds, 1)):
            if self.read_only:
                self.log.add("read-only: cancel keys are disabled", "warn")
                result.outcome, result.reason = Outcome.NOT_SENT, "read-only: cancel keys are disabled"
                return result
            tracked = await self._send_cancel_all(symbol, verify=False)
            assert tracked is not None
            result.requests.append(tracked)
            self._verifying.add(tracked.request_id)  # this call asks for the verdict's snapshot itself
            if tracked.state is State.FAILED:
                result.outcome, result.reason = Outcome.NOT_SENT, f"cancel-all {scope} not sent: {tracked.message}"
                return result
            # answered (refused, or ACKed and its orders final), or its timeout; or its repeat over REST
            await until(partial(self._round_settled, tracked))
            repeat = self.road.repeats.get(tracked.request_id)
            road = None
            if repeat is not None and (_settled(repeat) or not _settled(tracked)):
                self._verifying.add(repeat.request_id)
                result.requests.append(repeat)
                tracked, road = repeat, REST  # the stream did not answer: verify by REST too
            if tracked.state is State.REFUSED:
                result.outcome = Outcome.REFUSED
                result.reason = (
                    f"{tracked.request_id} cancel-all {scope} refused: "
                    f"ERR {tracked.code} {tracked.reason} {tracked.message}".rstrip()
                )
                await self._verdict_query(result, symbol, deadline, loop, keep_outcome=True, road=road)
                return result
            if tracked.state is State.FAILED:
                result.outcome, result.reason = Outcome.NOT_SENT, f"cancel-all {scope} not sent: {tracked.message}"
                return result
            if not await self._verdict_query(result, symbol, deadline, loop, road=road):
                return result
            if result.verified:
                return result
        return result

    async def _verdict_query(
        self,
        result: CancelAllOutcome,
        symbol: str | None,
        deadline: float,
        loop: asyncio.AbstractEventLoop,
        keep_outcome: bool = False,
        road: str | None = None,
    ) -> bool:
        """Ask for the open orders on ``symbol`` and set the verdict from the answer.
        False when there is no answer (refused, not sent, timed out): then the outcome
        says so (unless ``keep_outcome``: a refused cancel-all stays REFUSED, and the
        answer, if any, only lists what is still open)."""
        left = deadline - loop.time()
        if left <= 0:
            q = None
        else:
            q = await self.fetch_open_orders(symbol, timeout=min(left, self.settings.request_timeout), road=road)
        scope = symbol or "ALL symbols"
        if q is not None and q.state is QueryState.ANSWERED:
            result.query = q
            result.still_open = list(self.store.open_by_symbol(symbol))
            if not keep_outcome:
                if result.still_open:
                    result.outcome = Outcome.STILL_OPEN
                    result.reason = f"{len(result.still_open)} order(s) still open on {scope}"
                elif q.rejected:
                    result.outcome = Outcome.STILL_OPEN
                    result.reason = f"{q.rejected} record(s) in the open orders could not be read"
                else:
                    result.outcome, result.reason = Outcome.VERIFIED, ""
            return True
        if keep_outcome:
            return False
        if q is None:
            result.outcome = Outcome.TIMED_OUT
            result.reason = f"no time left to ask for the open orders on {scope}"
        elif q.state is QueryState.REFUSED:
            result.outcome = Outcome.REFUSED
            result.reason = f"{q.request_id} open-orders {scope} refused: ERR {q.reason}"
        elif q.state is QueryState.NOT_SENT:
            result.outcome = Outcome.NOT_SENT
            result.reason = f"{q.request_id} open-orders {scope} not sent: {q.reason}"
        else:
            result.outcome = Outcome.TIMED_OUT
            result.reason = f"{q.request_id} open-orders {scope} not answered ({q.reason})"
        return False

    def _round_settled(self, t: Tracked) -> bool:
        """A cancel-all-and-verify round is settled: its cancel-all answered (refused, or
        confirmed), timed out or not sent — or its repeat over REST (after no ACK on the
        WebSocket) confirmed or refused."""
        done = (State.REFUSED, State.CONFIRMED, State.TIMED_OUT, State.FAILED)
        repeat = self.road.repeats.get(t.request_id)
        if repeat is not None:
            return repeat.state in done or t.state in (State.CONFIRMED, State.REFUSED)
        return t.state in done

    def cancel_all_leftovers(self) -> tuple[Tracked | None, list[str]]:
        """The latest cancel-all and those of its targets that are still open. A blind one
        (sent before any snapshot: no targets) takes those its verdict found open that
        were created before it was sent: orders placed since are not touched."""
        for t in reversed(self.tracker.all()):
            if t.action == "cancel-all":
                left = []
                for order_id in sorted(t.targets or (t.still_open if t.blind else ())):
                    entry = self.store.get(order_id)
                    if entry is None or not entry.is_open:
                        continue
                    created = entry.order.create_time_ms
                    if t.blind and (created is None or created > t.sent_wall_ms):
                        continue
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
            self.log.add(
                f"{t.request_id} retry: still in flight; wait for its verdict", "warn", request_id=t.request_id
            )
            return []
        if not left:
            self.log.add(
                f"{t.request_id} retry: none of its orders is still open; nothing sent", "info", request_id=t.request_id
            )
            return []
        if self.cancel_road() == REST:
            pairs = []
            for order_id in left:
                entry = self.store.get(order_id)
                if entry is not None and entry.order.symbol and not entry.order.order_id.startswith("?"):
                    pairs.append((entry.order.order_id, entry.order.symbol))
            return self.road.batch_cancel(pairs, t, self._clock()) if pairs else []
        if not self.session.connected:
            self.log.add(
                f"{t.request_id} retry: {len(left)} order(s) still open: NOT SENT: {self.ws_down_reason()}",
                "error",
                request_id=t.request_id,
            )
            return []
        self.log.add(
            f"{t.request_id} retry: cancelling the {len(left)} order(s) still open", "warn", request_id=t.request_id
        )
        sent = []
        for order_id in left:
            tracked = await self.cancel_order(order_id)
            if tracked is not None:
                sent.append(tracked)
        return sent

    # -- positions -------------------------------------------------------------------
    def open_positions(self, symbol: str | None = None) -> dict[str, Decimal]:
        """Signed size of every position not at zero (on ``symbol``), as the account channel said."""
        out: dict[str, Decimal] = {}
        for sym, pos in self.account_state.positions.items():
            if (symbol is None or sym == symbol) and pos.position:
                out[sym] = pos.position
        return out

    def poll_positions_soon(self) -> None:
        """Ask REST ``futures/position`` in the background (mark prices; a second opinion on
        the positions). At most one call at a time; never on the cancel path."""
        if self._positions_poll is not None and not self._positions_poll.done():
            return
        self._positions_polled_at = self._clock()
        self._positions_poll = asyncio.create_task(self.poll_positions(), name="blotter-positions")

    async def poll_positions(self) -> bool:
        """REST ``futures/position`` (ADDENDUM §2.8): mark prices and the positions. False
        (and one log line) when there is no REST road or the call failed."""
        if self.rest is None:
            if not self._rest_position_said:
                self._rest_position_said = True
                self.log.add(
                    f"positions: no mark prices, no REST road ({self.rest_problem or 'not configured'})", "warn"
                )
            return False
        try:
            reply = await self.rest.position()
        except Exception as exc:  # every REST failure is a RestCallError; nothing here may kill the loop
            self.log.add(f"positions: REST futures/position failed: {exc}", "warn")
            return False
        marks: dict[str, Decimal] = {}
        sizes: dict[str, Decimal] = {}
        for c in reply.contracts:
            if c.mark_price is not None and c.mark_price > 0:  # the doc sample's "-1": none
                marks[c.symbol] = c.mark_price
            sizes[c.symbol] = c.position or Decimal(0)
        self.marks = marks
        self.marks_wall_ms = time.time_ns() // 1_000_000
        self.rest_positions = sizes
        self.rest_positions_at = self._clock()
        self._changed.set()
        return True

    async def flatten(self, symbol: str) -> Tracked | None:
        """Close the position on ``symbol``: a reduce-only MARKET order of exactly its size
        on the opposite side. Returns the tracked request, or None when nothing was sent
        (read-only, no position, a close already in flight: the log says why)."""
        now = self._clock()
        if self.read_only:
            self.log.add("read-only: flatten is disabled", "warn")
            return None
        size = self.open_positions(symbol).get(symbol)
        if not size:
            self.log.add(f"flatten: no position on {symbol}; nothing sent", "warn")
            return None
        pending = self.tracker.get(self._flattening.get(symbol, ""))
        if pending is not None and pending.in_flight:
            self.log.add(
                f"{pending.request_id} already closing {symbol}; not re-sent", "warn", request_id=pending.request_id
            )
            return None
        side = "sell" if size > 0 else "buy"
        request = PlaceOrder(symbol=symbol, side=side, qty=abs(size), order_type="market", exec_inst=FLATTEN_EXEC_INST)
        note = f"flatten: {side} {abs(size)} market {FLATTEN_EXEC_INST}"
        self._flattening[symbol] = request.request_id
        if not self.session.connected:
            tracked = self.tracker.not_sent(
                request.request_id, "place-order", now, f"{note}: {self._offline_reason()}", symbol=symbol
            )
            self._changed.set()
            return tracked
        tracked = self.tracker.sent(request.request_id, "place-order", now, symbol=symbol, note=note)
        if not await self.session.send(request):
            self.tracker.send_failed(request.request_id, self._clock(), self._offline_reason())
        self._changed.set()
        return tracked

    async def _load_account(self, deadline: float, loop: asyncio.AbstractEventLoop) -> bool:
        """The account snapshot (asked at connect; asked again here if none came)."""
        if self.account_state.loaded:
            return True
        await self.session.send(AccountSnapshotQuery())
        while not self.account_state.loaded:
            left = deadline - loop.time()
            if left <= 0:
                return False
            await self.wait_changed(min(0.1, left))
        return True

    async def flatten_and_verify(
        self, symbol: str | None = None, rounds: int = 2, timeout: float | None = None
    ) -> FlattenOutcome:
        """Close every position (on ``symbol``), each with its own reduce-only market
        order under its own request id, and verify: VERIFIED only when the account channel
        (or, failing that, REST ``futures/position``) shows each one at zero. Reduce-only:
        it never opens or flips a position. Positions left after a round are closed again
        (up to ``rounds``). The sibling of :meth:`cancel_all_and_verify` (same outcomes)."""
        per_step = self.settings.request_timeout
        loop = asyncio.get_running_loop()
        total = per_step * (2 * max(rounds, 1) + 1) + 1 if timeout is None else timeout
        deadline = loop.time() + total
        result = FlattenOutcome(symbol=symbol, outcome=Outcome.STILL_OPEN)
        scope = symbol or "ALL symbols"
        if self.read_only:
            self.log.add("read-only: flatten is disabled", "warn")
            result.outcome, result.reason = Outcome.NOT_SENT, "read-only: flatten is disabled"
            return result
        if not self.session.connected:
            result.outcome, result.reason = Outcome.NOT_SENT, f"flatten {scope} not sent: {self._offline_reason()}"
            self.log.add(result.reason, "error")
            return result
        if not await self._load_account(deadline, loop):
            result.outcome, result.reason = Outcome.TIMED_OUT, "the account snapshot was not answered"
            return result
        start = dict(self.open_positions(symbol))
        self.log.add(f"flatten {scope}: {len(start)} position(s) open", "warn" if start else "info")
        refused: list[Tracked] = []
        for _ in range(max(rounds, 1)):
            targets = self.open_positions(symbol)
            if not targets:
                break
            sent = [t for t in [await self.flatten(sym) for sym in sorted(targets)] if t is not None]
            result.requests.extend(sent)
            failed = [t for t in sent if t.state is State.FAILED]
            if failed:
                result.outcome, result.reason = Outcome.NOT_SENT, f"flatten {scope} not sent: {failed[0].message}"
                self._flatten_report(result, start, symbol)
                return result
            settled_at: list[float] = []

            def done(
                sent: list[Tracked] = sent, targets: dict[str, Decimal] = targets, settled_at: list[float] = settled_at
            ) -> bool:
                if not all(t.state.final for t in sent):
                    return False
                if not settled_at:
                    settled_at.append(loop.time())
                still = self.open_positions(symbol).keys() & targets.keys()
                return not still or loop.time() - settled_at[0] > per_step

            while not done():
                left = deadline - loop.time()
                if left <= 0:
                    break
                await self.wait_changed(min(0.1, left))
            refused = [t for t in sent if t.state is State.REFUSED]
            if refused or loop.time() >= deadline:
                break
        left_now = self.open_positions(symbol)
        if not left_now:
            result.outcome, result.source = Outcome.VERIFIED, "account channel"
        elif await self.poll_positions() and not any(self.rest_positions.get(s) for s in left_now):
            result.outcome, result.source = Outcome.VERIFIED, "REST"
        elif refused:
            t = refused[0]
            result.outcome = Outcome.REFUSED
            result.reason = f"{t.request_id} close {t.symbol} refused: ERR {explain(t.code, t.reason, t.message)}"
        elif any(t.state is State.TIMED_OUT for t in result.requests) or loop.time() >= deadline:
            result.outcome = Outcome.TIMED_OUT
            result.reason = f"{len(left_now)} position(s) on {scope} not shown closed in time"
        else:
            result.outcome = Outcome.STILL_OPEN
            result.reason = f"{len(left_now)} position(s) still open on {scope}"
        self._flatten_report(result, start, symbol)
        return result

    def _flatten_report(self, result: FlattenOutcome, start: dict[str, Decimal], symbol: str | None) -> None:
        """Each position at zero, or what is left: in the outcome and the log."""
        left = self.open_positions(symbol)
        if result.verified:
            left = {}
        result.left = left
        result.closed = [s for s in sorted(start) if s not in left]
        for s in result.closed:
            self.log.add(f"flatten: {s} position is 0 ({result.source or 'account channel'})", "ok")
        for s, size in sorted(left.items()):
            self.log.add(f"flatten: {s} position still {size} open", "error")
        if result.verified:
            self.log.add(f"flatten {symbol or 'ALL symbols'}: verified flat ({result.source})", "ok")
        self._changed.set()

    def _hint_retry(self, t: Tracked) -> None:
        """After the latest cancel-all left orders open, say how to retry them."""
        if not self.retry_hint or t.action != "cancel-all":
            return
        latest, left = self.cancel_all_leftovers()
        if latest is t and left:
            self.log.add(
                f"{t.request_id} {len(left)} order(s) still open: {self.retry_hint}", "error", request_id=t.request_id
            )

    def _offline_reason(self) -> str:
        detail = f": {self.session.detail}" if self.session.detail else ""
        return f"not connected ({self.session.state.value}{detail})"

    # -- the roads: whichever is up (see blotter/roads.py) ----------------------------------------
    def cancel_road(self) -> str | None:
        """The road a cancel takes now: the WebSocket while it is live and not stale, else
        REST (when the desk has a REST client), else None (nothing can be sent)."""
        if self.session.connected and not self.is_stale():
            return WEBSOCKET
        if self.rest is not None:
            return REST
        return WEBSOCKET if self.session.connected else None

    def ws_down_reason(self) -> str:
        """Why the WebSocket is not the road now, in words (with why REST is not, when it is not)."""
        if self.session.connected:
            age = self.frame_age()
            why = f"the stream is stale (no data for {age:.0f} s)" if age is not None else "the stream is stale"
        else:
            why = self._offline_reason()
        if self.rest is None and self.rest_problem:
            why += f"; {self.rest_problem}"
        return why

    def changed(self) -> None:
        """Something a waiting caller or the screen may care about changed."""
        self._changed.set()

    def fold_orders(self, orders: list[Order], now: float, source: str = "") -> None:
        """Order records the exchange gave in answer to a query (``source``, e.g. REST order
        status): folded by the store's one rule for query answers (:meth:`OrderStore.apply_records`:
        never an older record over a newer one; a NOT OPEN row is settled), the final ones
        to the request tracker — the same path reconciliation takes."""
        finals = self.store.apply_records(orders, now)
        self._log_store_notices()
        for order in finals:
            self.tracker.on_order(order, now, source)
        self._reconciled()

    def fold_snapshot(self, snap: OpenOrders) -> None:
        """An open-orders answer from elsewhere than the stream (REST), folded as a snapshot."""
        self._on_snapshot(snap, self._clock())
        self._changed.set()
        if self.on_folded is not None:
            self.on_folded()

    def mark_verifying(self, request_id: str) -> None:
        """A cancel-all whose verdict its sender asks for itself."""
        self._verifying.add(request_id)

    # -- inbound -------------------------------------------------------------------------
    async def _on_live(self) -> None:
        """Connected, authenticated, subscribed: ask for the snapshot (it covers
        whatever was missed while the connection was down)."""
        now = self._clock()
        self.queries.connection_lost(now)
        self._book_loaded = False
        self._snapshot_failures = 0
        self.reconciler.on_live(now)
        if self._snapshot_held(now):
            return  # the housekeeping asks once the type has room again
        self._next_snapshot_at = now + self.settings.resnapshot_min_interval
        self._last_auto_snapshot = now
        rid = await self.refresh()
        self._book_query = self.queries.get(rid)
        self._marks_due = True

    def _on_state(self, state: ConnState, detail: str) -> None:
        level = {"live": "ok", "auth refused": "error", "reconnecting": "warn"}.get(state.value, "info")
        text = f"connection: {state.value}"
        if state is ConnState.RECONNECTING:
            text += f" (attempt {self.session.attempt})"
            self.counts["disconnects"] += 1
            self.tracker.on_connection_lost(self._clock())
            self.reconciler.on_lost()
        if detail and state in (ConnState.RECONNECTING, ConnState.AUTH_REFUSED, ConnState.STOPPED):
            text += f": {detail}"
        self.log.add(text, level)  # type: ignore[arg-type]
        if self.journal is not None:
            self.journal.record_note(text)
        self._changed.set()

    def _on_sent(self, request: Request, text: str) -> None:
        self.limits.record(ws_kind(request.action), self._clock())
        if self.journal is not None:
            self.journal.record_sent(request, text)

    def _on_orders(self, orders: list[Order], raws: list[bytes], received_ns: int) -> None:
        """A run of ``futures-order`` frames (the session's hot path), folded in order."""
        self.counts["frames"] += len(orders)
        journal = self.journal
        if journal is not None:
            journal.record_orders(orders, raws, received_ns)
        self._fold_orders(orders, self._clock())

    def _fold_orders(self, orders: list[Order], now: float, source: str = "") -> None:
        """Order updates into the store; final ones to the request tracker."""
        finals, unreadable = self.store.apply_updates(orders, now)
        self._log_store_notices()
        on_final = self.tracker.on_order
        for order in finals:
            on_final(order, now, source)
        if unreadable:  # what that order is now is unknown (a jump in sn is never a reason)
            self._snapshot_due = True
        if self.account is None:
            for order in orders:
                if order.account_id:
                    self.account = order.account_id
                    break
        self._changed.set()
        if self.on_folded is not None:
            self.on_folded()

    def _log_store_notices(self) -> None:
        """What the store had to say (unreadable records, an id on two symbols, its cap)."""
        for text in self.store.take_notices():
            self.log.add(text, "error")

    def _on_frame(self, event: Event, raw: bytes, received_ns: int) -> None:
        self.counts["frames"] += 1
        if self.journal is not None:
            self.journal.record_received(event, raw, received_ns)
        now = self._clock()
        if isinstance(event, OrderUpdate):
            self._fold_orders([event.order], now)
            return
        if isinstance(event, OpenOrders):
            if len(event.orders) > SNAPSHOT_SLICE_ORDERS or self._snapshot_jobs or self._folding_snapshot():
                # big, or behind a big one still being folded: a slice at a time, in order
                fold = self.store.begin_snapshot(now)
                self._queue_snapshot(
                    fold,
                    partial(self._fold_in_slices, fold, event.request_id, event.orders, None, self.session.connections),
                )
            else:
                self._on_snapshot(event, now)
                if self.on_folded is not None:
                    self.on_folded()
        elif isinstance(event, RequestAck):
            if self.tracker.on_ack(event, now) is None and event.request_id not in self.queries:
                self.log.add(
                    f"{event.request_id or '-'} ACK {event.action or ''} for an unknown request".strip(),
                    "info",
                    request_id=event.request_id,
                    order_id=event.order_id,
                )
        elif isinstance(event, RequestError):
            self._on_error(event, now)
        elif isinstance(event, (AccountSnapshot, AccountUpdate)):
            self.account_state.apply(event, now)
        elif isinstance(event, Disconnected):
            self.log.add(f"server: disconnected {event.code} {event.reason} {event.info}".rstrip(), "warn")
        elif isinstance(event, InvalidMessage):
            self.counts["invalid"] += 1
            self.log.add(f"rejected {event.type} message: {event.error}", "warn", order_id=event.order_id)
        elif isinstance(event, BadFrame):
            self.counts["bad_frames"] += 1
            self.log.add(f"bad frame from server ({event.error}): {event.text[:80]}", "warn")
        elif isinstance(event, Unknown):
            self.counts["unknown"] += 1
            # Bounded: a server inventing a new type per frame must not grow this map or the log.
            kind_name = event.type[:MAX_UNKNOWN_TYPE_CHARS]
            seen = self._unknown_types.get(kind_name)
            if seen is not None:
                self._unknown_types[kind_name] = seen + 1
            elif len(self._unknown_types) < MAX_UNKNOWN_TYPES:
                self._unknown_types[kind_name] = 1
                self.log.add(f"ignored message of unknown type {kind_name!r} (further ones not logged)", "info")
            elif not self._unknown_overflow:
                self._unknown_overflow = True
                self.log.add(
                    f"ignored messages of more than {MAX_UNKNOWN_TYPES} unknown types; no longer logging them", "warn"
                )
        elif isinstance(event, AuthResult) and not event.ok:
            self.log.add(f"auth refused: {event.code} {event.error}", "error")
        elif isinstance(event, SubAck) and not event.ok:
            self.log.add(f"subscription to {event.channel} refused: {event.code} {event.error}", "error")
        self._changed.set()

    def _on_error(self, err: RequestError, now: float) -> None:
        refused = self.tracker.on_error(err, now)
        if refused is not None:
            self._hint_retry(refused)
            return
        q = self.queries.refused(err.request_id, err.code, explain(err.code, err.reason, err.message), now)
        if q is not None:
            self._query_failed(q, now)
            return
        self.log.add(
            f"{err.request_id or '-'} server error: ERR {explain(err.code, err.reason, err.message)}",
            "error",
            request_id=err.request_id,
            order_id=err.order_id,
        )

    def _on_snapshot(self, snap: OpenOrders, now: float) -> None:
        """An open-orders answer folded in one go (a small one: see :meth:`_fold_in_slices`)."""
        fold = self.store.begin_snapshot(now)
        q, after_reconnect = self._snapshot_scope(fold, snap.request_id)
        fold.add(snap.orders)
        self._snapshot_folded(fold, q, after_reconnect, now)

    def _snapshot_scope(self, fold: SnapshotFold, request_id: str | None) -> tuple[SnapshotQuery | None, bool]:
        """The query a snapshot answers (its scope and when it was asked for go to
        ``fold``), and whether it is the first full one after a (re)connect."""
        # by id; 2021 dialect (a bare array, no id): the oldest query not yet answered
        q = self.queries.match(request_id)
        if q is not None and q.state is not QueryState.ANSWERED:
            fold.symbol, fold.requested_at = q.symbol, q.asked_at
        else:
            q = None
            fold.symbol, fold.requested_at = None, fold.now
        # the first full snapshot after a (re)connect: what it no longer lists ended while disconnected
        return q, q is not None and fold.symbol is None and not self._book_loaded

    def _snapshot_folded(
        self, fold: SnapshotFold, q: SnapshotQuery | None, after_reconnect: bool, now: float, connection: int = -1
    ) -> None:
        """A snapshot's records are in: mark what it no longer lists, resolve the requests
        it settles, answer its query, say so."""
        symbol = fold.symbol
        gone = fold.finish()
        self._log_store_notices()
        self.reconciler.orders_gone(gone, Context.RECONNECT if after_reconnect else Context.SNAPSHOT)
        open_ids = fold.open_keys  # store keys, as the targets
        if self.account is None and fold.account_id:
            self.account = fold.account_id
        for t in self.tracker.resolve_with_snapshot(open_ids, now, symbol):
            if t.still_open:
                self._hint_retry(t)
        if q is not None:
            self.queries.answered(q, now, len(open_ids), fold.unreadable)
            if symbol is None and connection in (-1, self.session.connections):
                # (not one read on a connection since replaced: the new one asked for its own)
                self._book_loaded = True
                self._snapshot_failures = 0
        self.snapshot_count += 1
        self.collector.after_snapshot(fold.records, self.snapshot_count == 1, now)
        scope = symbol or "all symbols"
        self.log.add(f"snapshot: {len(open_ids)} open orders ({scope})", "info")

    # -- big snapshots, a slice at a time ---------------------------------------------------
    def _on_snapshot_frame(self, slices: SnapshotSlices, raw: bytes, received_ns: int) -> None:
        """A big open-orders reply, handed over unread by the session: read and folded by
        a task, a slice at a time, after any snapshot still being folded. The frames
        after it are folded as they come meanwhile (the store's fold keeps them right:
        see :class:`~blotter.core.orders.SnapshotFold`)."""
        now = self._clock()
        fold = self.store.begin_snapshot(now)  # from now on it learns what the stream updates
        self._queue_snapshot(
            fold,
            partial(
                self._fold_in_slices, fold, slices.request_id, slices, (raw, received_ns), self.session.connections
            ),
        )

    def _read_ahead(self) -> Callable[[], object] | None:
        """A big frame starts to arrive: read its records as they come when the store holds
        nothing (the first snapshot: what is read is what the store will hold; nothing is
        folded before the whole reply is checked). The collector then treats it as a
        snapshot being folded: no middle or full collection (two full ones, 40–60 ms each,
        came in the middle of it), and what the parts left alive collected young and
        frozen every few parts (the function returned). Should the frame not be a reply
        after all, the collector stays so until the next snapshot is folded."""
        if len(self.store) or self._folding_snapshot():
            return None
        self.collector.before_snapshot()
        return self.collector.snapshot_slice

    def _folding_snapshot(self) -> bool:
        return self._snapshot_worker is not None and not self._snapshot_worker.done()

    def _queue_snapshot(self, fold: SnapshotFold, job: Callable[[], Awaitable[None]]) -> None:
        self._snapshot_jobs.append((fold, job))
        if not self._folding_snapshot():
            self._snapshot_worker = asyncio.get_running_loop().create_task(
                self._fold_snapshots(), name="blotter-snapshot-fold"
            )

    async def _fold_snapshots(self) -> None:
        jobs = self._snapshot_jobs
        while jobs:
            _fold, job = jobs.popleft()
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("folding a snapshot failed")

    def _stop_snapshot_folds(self) -> None:
        while self._snapshot_jobs:
            self._snapshot_jobs.popleft()[0].close()  # (it no longer listens to the stream)
        if self._snapshot_worker is not None:
            self._snapshot_worker.cancel()

    async def _fold_in_slices(
        self,
        fold: SnapshotFold,
        request_id: str | None,
        source: SnapshotSlices | list[Order],
        frame: tuple[bytes, int] | None,
        connection: int,
    ) -> None:
        """Fold one snapshot (``source``: its reply unread, or its orders), giving the loop
        back every :data:`SNAPSHOT_STEP_SECONDS`. ``frame`` (raw, received_ns): the reply
        still to be journaled. ``fold`` was begun when it came (its ``now`` is the time of
        each change it makes), on the session's ``connection``-th connection."""
        clock = time.perf_counter
        deadline = clock() + SNAPSHOT_STEP_SECONDS
        now = fold.now
        urgent = self.session.urgent  # (a cancel key: run between two parts, not only between two steps)
        self.collector.before_snapshot()
        try:
            if isinstance(source, SnapshotSlices):
                while (checked := source.check()) is None:
                    if urgent:
                        run_urgent(urgent)
                    if clock() >= deadline:
                        await asyncio.sleep(0)
                        deadline = clock() + SNAPSHOT_STEP_SECONDS
                if not checked:  # not one JSON document after all: read (and reported) as any frame is
                    fold.close()
                    assert frame is not None
                    self.counts["frames"] -= 1  # (counted again there)
                    self._on_frame(parse(frame[0]), frame[0], frame[1])
                    return
                read = source.read
            else:
                slices = (source[i : i + SNAPSHOT_SLICE_ORDERS] for i in range(0, len(source), SNAPSHOT_SLICE_ORDERS))
                read = partial(next, slices, None)
            if frame is not None:
                self.counts["frames"] += 1
            q, after_reconnect = self._snapshot_scope(fold, request_id)
            keep: list[Order] | None = [] if frame is not None and self.journal is not None else None
            while (orders := read()) is not None:
                fold.add(orders, keep)
                if urgent:
                    run_urgent(urgent)
                if clock() >= deadline:
                    await self._snapshot_pause()
                    deadline = clock() + SNAPSHOT_STEP_SECONDS
            while not fold.mark_gone(SNAPSHOT_GONE_STEP):
                if urgent:
                    run_urgent(urgent)
                if clock() >= deadline:
                    await self._snapshot_pause()
                    deadline = clock() + SNAPSHOT_STEP_SECONDS
            if frame is not None and self.journal is not None:
                raw, received_ns = frame
                event = OpenOrders.model_construct(
                    request_id=request_id, code=0, orders=keep if keep is not None else [], dialect="current"
                )
                self.journal.record_received(event, raw, received_ns)
            self._snapshot_folded(fold, q, after_reconnect, now, connection)
        finally:
            fold.close()
        self._changed.set()
        if self.on_folded is not None:
            self.on_folded()

    async def _snapshot_pause(self) -> None:
        """Between two slices: what is folded so far is shown, and the loop runs the rest."""
        self.collector.snapshot_slice()
        self._log_store_notices()
        self._changed.set()
        if self.on_folded is not None:
            self.on_folded()
        await asyncio.sleep(0)
