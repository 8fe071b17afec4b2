"""The one async WebSocket session: connect, authenticate, subscribe, snapshot,
heartbeats, reconnect. It hands every frame, parsed, to a callback and never waits
on anything else while reading.

What it does not do: keep orders or requests. That is :mod:`blotter.core`, folded
by :class:`blotter.desk.Desk`, which owns a session.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urljoin

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from websockets.asyncio.client import connect
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from ..core.text import safe
from ..protocol import (
    AccountSnapshotQuery,
    Auth,
    AuthResult,
    Connected,
    Event,
    OpenOrdersQuery,
    Ping,
    Pong,
    PongReply,
    Request,
    RequestError,
    ServerPing,
    SubAck,
    Subscribe,
    encode,
    parse,
)
from ..protocol.messages import Order
from ..protocol.parse import (
    ORDER_FRAME,
    SLICED_BYTES,
    SNAPSHOT_FRAME,
    SnapshotPrecheck,
    SnapshotSlices,
    order_frame,
    snapshot_slices,
)
from ..protocol.signing import SigningError, auth_headers, check_key, now_ms, sign
from .endpoints import check_url, display_url, ssl_context
from .loop_thread import run_urgent
from .redaction import Redactor
from .transport import QueuedConnection, SendStalled

log = logging.getLogger(__name__)

_wire_log = logging.getLogger(__name__ + ".wire")
_wire_log.setLevel(logging.INFO)
"""The websockets library's logger for our connections. Pinned at INFO: at DEBUG the
library logs the upgrade headers (``x-auth-key``, ``x-auth-signature``) and every frame
(the ``op:auth`` one carries the key and signature), whatever the root level is."""


YIELD_EVERY = 0.0005
"""Seconds of folding frames after which the reader lets the rest of the app (a key
press, the screen) run. A key goes through a few message queues before its action
runs, each waiting at most this long for the reader."""


class ConnState(enum.Enum):
    CONNECTING = "connecting"
    AUTHENTICATING = "authenticating"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    AUTH_REFUSED = "auth refused"
    STOPPED = "stopped"


class SessionSettings(BaseModel):
    """What one WebSocket session needs. Each field is defined here once: the desk's
    settings extend this class and the command line's one settings model
    (:mod:`blotter.cli.settings`) takes its defaults and help text from these fields."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    url: str = Field(description="Full WebSocket URL of the private stream (ws:// only for loopback).")
    api_key: SecretStr = Field(description="API key.")
    api_secret: SecretStr = Field(description="API secret (never shown, never written).")
    secret_encoding: Literal["base64", "raw"] = Field(
        "base64", description="HMAC key form of the secret: base64-decoded, or its raw bytes."
    )
    auth_mode: Literal["headers", "op"] = Field(
        "headers", description="Authenticate with upgrade headers, or with an op:auth message after connecting."
    )
    ca_file: str | None = Field(None, description="Extra CA certificates (PEM) to trust for wss://.")
    ping_interval: float = Field(
        15.0, gt=0, le=3600, description="Seconds between our pings (the exchange wants 15-30 s)."
    )
    pong_timeout: float | None = Field(
        None,
        gt=0,
        description="Seconds without a pong before the connection is deemed dead (default 2 x ping_interval).",
    )
    idle_ping: float | None = Field(
        None,
        ge=0.5,
        le=3600,
        description="Seconds without any frame after which a ping goes at once, between the regular ones: on "
        "a quiet, healthy connection a pong then comes before a screen would call it stale (a desk sets "
        "a third of its stale_after). None: the regular pings only.",
    )
    open_timeout: float = Field(10.0, gt=0, description="Seconds to open the connection.")
    reply_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds to wait for `connected`, and then for the reply to op:auth: past that "
        "deadline the connection is dropped and re-opened with backoff.",
    )
    max_frame_bytes: int = Field(
        64 * 1024 * 1024,
        gt=0,
        description="Frames larger than this are refused (the connection is closed and re-opened).",
    )
    max_queue: int = Field(
        1024,
        gt=0,
        description="Frames queued before the client stops reading the socket (a deeper queue is older data on screen).",
    )
    send_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds within which everything sent must leave the process; past that the server "
        "is deemed to have stopped reading and the connection is replaced.",
    )
    close_timeout: float = Field(
        2.0, gt=0, description="Seconds the closing handshake may take before the socket is simply dropped."
    )
    backoff_initial: float = Field(
        0.25, gt=0, description="First reconnect delay in seconds (doubles up to backoff_max)."
    )
    backoff_max: float = Field(15.0, gt=0, description="Longest reconnect delay in seconds.")
    reconnect: bool = Field(True, description="Reconnect after the connection drops.")
    subscribe: tuple[str, ...] = Field(
        ("futures-order", "futures-account-update"), description="Channels subscribed after authentication."
    )
    snapshot_on_connect: bool = Field(True, description="Ask for the open orders after every (re)connect.")
    account_snapshot_on_connect: bool = Field(
        True, description="Ask for the account snapshot (collateral, positions) after every (re)connect."
    )


class AuthRefused(Exception):
    """The exchange refused our credentials. The message is one line, secret-free."""


class RateLimited(Exception):
    """HTTP 429 at the upgrade: try again, but not before ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


MAX_RETRY_AFTER = 600.0
"""A ``Retry-After`` longer than this (seconds) is not believed."""


REDIRECTS = (300, 301, 302, 303, 307, 308)


class _connect_no_redirects(connect):
    """websockets' ``connect`` that never follows a redirect.

    websockets follows up to 10 redirects and strips only ``Authorization``,
    ``Cookie`` and ``Proxy-Authorization`` from a cross-origin hop: our
    ``x-auth-*`` headers (enough to log in as the user for 30 s) would go to
    whatever host the ``Location`` names, without our endpoint rules. The
    private stream has one configured endpoint; a redirect is reported instead
    (see :func:`describe_failure`)."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


FrameHandler = Callable[[Event, bytes, int], None]
"""``handler(event, raw, received_ns)`` — called for every inbound frame; ``raw`` is
the message as received (UTF-8 bytes for a text frame)."""
StateHandler = Callable[["ConnState", str], None]
OrdersHandler = Callable[[list[Order], list[bytes], int], None]
"""``handler(orders, raws, received_ns)`` — a run of consecutive ``futures-order``
frames, folded in one call (the burst's hot path); ``received_ns`` is when the first
of them was read from the socket."""
SnapshotHandler = Callable[[SnapshotSlices, bytes, int], None]
"""``handler(slices, raw, received_ns)`` — a big open-orders reply (over
:data:`~blotter.protocol.parse.SLICED_BYTES`), handed over unread: read at once, it
would hold the event loop for most of a second. The handler reads it a slice at a
time (:class:`~blotter.protocol.parse.SnapshotSlices`) while this session goes on
reading the frames after it."""
SentHandler = Callable[[Request, str], None]
"""``on_sent(request, text)`` — called just before a frame is handed to the socket
(so the audit journal holds every request the exchange may have received)."""


@dataclass
class _PingTrack:
    sent: list[float] = field(default_factory=list)


class Session:
    def __init__(
        self,
        settings: SessionSettings,
        on_frame: FrameHandler,
        on_state: StateHandler | None = None,
        on_sent: SentHandler | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_live: Callable[[], Awaitable[None]] | None = None,
        on_orders: OrdersHandler | None = None,
        on_snapshot: SnapshotHandler | None = None,
        read_ahead: Callable[[], Callable[[], object] | None] | None = None,
    ) -> None:
        check_url(settings.url)
        self._read_ahead = read_ahead
        """Asked when a big frame starts to arrive: a function to call every few parts to
        read an open-orders reply's records as they arrive, or None to only check them
        (see :class:`~blotter.protocol.parse.SnapshotPrecheck`)."""
        self.settings = settings
        self._on_frame = on_frame
        self._on_state = on_state or (lambda state, detail: None)
        self._on_sent = on_sent or (lambda request, text: None)
        self._on_live = on_live
        self._on_orders = on_orders
        self._on_snapshot = on_snapshot
        self._clock = clock
        self._ssl = ssl_context(settings.url, settings.ca_file)
        self._ws: QueuedConnection | None = None
        self.redactor = Redactor(settings.api_key.get_secret_value())
        """The one redaction rule for everything this session hands up (see :mod:`blotter.net.redaction`)."""
        self._stopping = asyncio.Event()
        self.state = ConnState.CONNECTING
        self.detail = ""
        self.attempt = 0
        self.connections = 0
        self.rtt_ms: float | None = None
        self.skew_ms: int | None = None
        self.last_frame_at: float | None = None
        self.frames_received = 0
        self.lag = 0.0
        """Seconds the oldest frame received and not yet folded has waited (0: caught up)."""
        self.read_paused = False
        """The connection stopped reading: ``max_queue`` frames wait to be folded, more in the socket."""
        self.unread = 0
        """Bytes the socket held unread when the last run of frames was folded."""
        self.urgent: collections.deque[Callable[[], object]] | None = None
        """On a loop thread of its own (:class:`~blotter.net.loop_thread.LoopThread`), its
        urgent jobs: run between two frames, not only between two turns of the loop."""
        self._pings = _PingTrack()
        self._closing_reason: str | None = None
        self._last_pong_at: float | None = None
        self.live = asyncio.Event()

    # -- state -----------------------------------------------------------------
    def _set_state(self, state: ConnState, detail: str = "") -> None:
        detail = safe(self.redactor.text(detail), 400)  # often wire text (a close reason, an error)
        self.state = state
        self.detail = detail
        if state is ConnState.LIVE:
            self.live.set()
        else:
            self.live.clear()
        self._on_state(state, detail)

    @property
    def connected(self) -> bool:
        return self._ws is not None and self.state is ConnState.LIVE

    # -- sending ---------------------------------------------------------------
    async def send(self, request: Request) -> bool:
        """Send now. False (and nothing sent) unless the session is live: a request
        never goes out before authentication and subscription are done.

        Never waits for the network (a coroutine only for its callers' sake): the
        frame is written and this returns; a server that does not read it gets
        ``send_timeout`` seconds before the connection is dropped and replaced
        (:class:`~blotter.net.transport.QueuedConnection`). The outcome of the
        request is then what the tracker makes of a lost connection."""
        if self.state is not ConnState.LIVE:
            return False
        return self._send(request)

    def write_now(self, text: str) -> bool:
        """Write an already encoded request on the live connection, and nothing else (no
        callback): the desk's urgent cancel, which journals it itself before and counts it
        after. False, nothing written, unless live."""
        ws = self._ws
        if self.state is not ConnState.LIVE or ws is None:
            return False
        return ws.send_text_now(text)

    def _send(self, request: Request) -> bool:
        """Send on whatever connection is open (the handshake and keep-alive use this)."""
        ws = self._ws
        if ws is None:
            return False
        text = encode(request)
        self._on_sent(request, text)  # journaled (committed) before it can reach the exchange
        if not ws.send_text_now(text):
            return False
        return True

    # -- the loop --------------------------------------------------------------
    async def run(self) -> None:
        """Connect and keep connecting until :meth:`stop` (or auth is refused)."""
        delay = self.settings.backoff_initial
        while not self._stopping.is_set():
            forced: float | None = None  # a rate limit's wait, instead of the backoff's
            if self.attempt == 0:
                # A reconnect is already in RECONNECTING (set below, before the wait): setting it
                # again would report (and count) the same disconnect twice.
                self._set_state(ConnState.CONNECTING, self.detail)
            self._closing_reason = None
            try:
                await self._connect_once()
                delay = self.settings.backoff_initial  # it was up: start the backoff again
                self.detail = self._closing_reason or "connection closed"  # not a stale reason from before
            except AuthRefused as exc:
                self._set_state(ConnState.AUTH_REFUSED, str(exc))
                return
            except RateLimited as exc:
                # Hammering a rate limit only extends it: its Retry-After, else the longest backoff.
                forced = exc.retry_after if exc.retry_after is not None else self.settings.backoff_max
                self.detail = str(exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # When we closed the connection ourselves (no pong), that is the reason, not
                # the close frame the server echoed back.
                self.detail = self._closing_reason or describe_failure(exc, self.settings.url)
            finally:
                self._ws = None
            if self._stopping.is_set() or not self.settings.reconnect:
                break
            self.attempt += 1
            self._set_state(ConnState.RECONNECTING, self.detail)
            if forced is not None:
                wait, delay = forced, self.settings.backoff_max
            else:
                wait = min(self.settings.backoff_max, delay) * random.uniform(0.5, 1.0)
                delay = min(self.settings.backoff_max, delay * 2)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=wait)
            except TimeoutError:
                pass
        self._set_state(ConnState.STOPPED, self.detail)

    async def stop(self) -> None:
        self._stopping.set()
        ws = self._ws
        if ws is not None:
            await self._close(ws)

    async def _unless_stopped(self, opening: Awaitable[object]) -> object | None:
        """``await opening``, unless :meth:`stop` comes first: then it is cancelled and this
        is None (a stop never waits for ``open_timeout`` on a server that does not answer)."""
        task = asyncio.ensure_future(opening)
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            stopping.cancel()
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.wait({task})  # (its end, whatever it is, is given up; our own cancel still raises)
        if not task.cancelled():
            task.exception()  # (retrieved: never "exception was never retrieved")
        return None

    async def _close(self, ws: QueuedConnection, code: int = 1000, reason: str = "") -> None:
        """The closing handshake, bounded: a server that does not read cannot hold it up."""
        try:
            await asyncio.wait_for(ws.close(code, reason), self.settings.close_timeout)
        except Exception:
            ws.transport.abort()

    async def _connect_once(self) -> None:
        s = self.settings
        headers = None
        try:
            check_key(s.api_key.get_secret_value())  # before anything is sent, in either auth mode
            if s.auth_mode == "headers":
                headers = auth_headers(s.api_key.get_secret_value(), s.api_secret.get_secret_value(), s.secret_encoding)
                self.redactor.add_login(headers["x-auth-signature"], int(headers["x-auth-timestamp"]))
        except SigningError as exc:
            raise AuthRefused(str(exc)) from None
        try:
            opened = await self._unless_stopped(
                _connect_no_redirects(
                    s.url,
                    additional_headers=headers,
                    ssl=self._ssl,
                    open_timeout=s.open_timeout,
                    close_timeout=s.close_timeout,
                    ping_interval=None,  # the exchange has its own JSON pings
                    max_size=s.max_frame_bytes,
                    max_queue=s.max_queue,
                    compression=None,
                    proxy=None,
                    user_agent_header="blotter",
                    logger=_wire_log,
                    create_connection=functools.partial(  # type: ignore[arg-type]
                        QueuedConnection,
                        send_timeout=s.send_timeout,
                        watch=self.redactor.needles(),
                        # a big open-orders reply is checked while it arrives (its records
                        # can be folded that much sooner: SnapshotPrecheck)
                        big_frames=self._big_frame if self._on_snapshot is not None else None,
                    ),
                )
            )
        except InvalidStatus as exc:
            code = exc.response.status_code
            if code == 401:
                raise AuthRefused(self._auth_hint("HTTP 401")) from None
            if code == 403:
                other = "raw" if s.secret_encoding == "base64" else "base64"
                raise AuthRefused(
                    "HTTP 403 forbidden at the WebSocket upgrade: an IP ban or a geo block is possible, "
                    f"or a wrong key or key form ({s.secret_encoding} used; try --secret-encoding {other})"
                ) from None
            if code == 429:
                retry_after = _retry_after(exc.response.headers.get("Retry-After"))
                when = f"{retry_after if retry_after is not None else s.backoff_max:g} s"
                raise RateLimited(
                    f"HTTP 429 rate limited at the WebSocket upgrade; trying again in {when}", retry_after
                ) from None
            raise
        if opened is None:
            return  # stopped while the connection was being opened
        ws = opened
        assert isinstance(ws, QueuedConnection)
        if self._stopping.is_set():  # opened just as stop() came: it did not see this one
            await self._close(ws)
            return
        self._ws = ws
        self.connections += 1
        try:
            self._set_state(ConnState.AUTHENTICATING)
            await self._handshake(ws)
            for channel in s.subscribe:
                self._send(Subscribe(channel=channel))
            self._set_state(ConnState.LIVE)
            if self._on_live is not None:
                await self._on_live()
            elif s.snapshot_on_connect:
                await self.send(OpenOrdersQuery())
            if s.account_snapshot_on_connect:
                await self.send(AccountSnapshotQuery())  # after the open orders: those come first
            pinger = asyncio.create_task(self._pinger(ws), name="blotter-pinger")
            try:
                await self._read(ws)
            finally:
                pinger.cancel()
                try:
                    await pinger
                except (asyncio.CancelledError, Exception):
                    pass
        finally:
            self._ws = None
            await self._close(ws)

    def _auth_hint(self, what: str) -> str:
        other = "raw" if self.settings.secret_encoding == "base64" else "base64"
        return (
            f"authentication refused ({what}) with the {self.settings.secret_encoding} key form; "
            f"check the API key and secret, or try --secret-encoding {other}"
        )

    async def _next(self, ws: QueuedConnection) -> Event:
        await asyncio.wait_for(ws.wait_messages(), timeout=self.settings.reply_timeout)
        received_ns = ws.head_arrival_ns()
        return self._deliver(ws.messages.popleft(), received_ns, ws.tainted)

    def _deliver(self, raw: bytes, received_ns: int, tainted: bool = False) -> Event:
        if tainted:
            raw = self.redactor.frame(raw)
        self.last_frame_at = self._clock()
        self.frames_received += 1
        event = parse(raw)
        try:
            self._on_frame(event, raw, received_ns)
        except Exception:
            log.exception("frame handler failed")
        return event

    async def _handshake(self, ws: QueuedConnection) -> None:
        """Wait for ``connected``; authenticate by message when not yet authenticated.
        Each wait has one deadline (``reply_timeout``), however many other frames (pings)
        the server sends meanwhile; an ``m:"error"`` reply to the login is a refusal at once."""
        s = self.settings
        try:
            async with asyncio.timeout(s.reply_timeout):
                while True:
                    event = await self._next(ws)
                    if isinstance(event, Connected):
                        break
                    if isinstance(event, ServerPing):
                        self._send(PongReply())
        except TimeoutError:
            raise TimeoutError(f"no 'connected' message within {s.reply_timeout:g} s; reconnecting") from None
        if event.authenticated:
            return
        t = now_ms()
        try:
            sig = sign(s.api_secret.get_secret_value(), t, s.secret_encoding)
        except SigningError as exc:
            raise AuthRefused(str(exc)) from None
        request = Auth(time_ms=t, api_key=s.api_key, signature=SecretStr(sig))
        self.redactor.add_login(sig, t)
        ws.watch(self.redactor.needles())
        self._send(request)
        ours = (None, request.request_id)
        try:
            async with asyncio.timeout(s.reply_timeout):
                while True:
                    event = await self._next(ws)
                    if isinstance(event, AuthResult) and event.request_id in ours:
                        if event.ok:
                            return
                        raise AuthRefused(self._auth_hint(f"code {event.code} {event.error}".strip()))
                    if isinstance(event, RequestError) and event.request_id in ours:
                        what = f"code {event.code} {event.reason} {event.message}".replace("code None ", "")
                        raise AuthRefused(self._auth_hint(" ".join(what.split())))
                    if isinstance(event, ServerPing):
                        self._send(PongReply())
        except TimeoutError:
            raise TimeoutError(f"no reply to the login (op:auth) within {s.reply_timeout:g} s; reconnecting") from None

    async def _read(self, ws: QueuedConnection) -> None:
        # In a burst the queue never runs dry, so this loop would hold the event loop
        # for thousands of frames and a key press (a cancel) would wait behind all of
        # them. It lets the rest of the app run every ``YIELD_EVERY`` seconds of folding.
        #
        # With an ``on_orders`` handler, runs of plain ``futures-order`` frames are read
        # here and handed over in one call per run: at 100,000+ frames a second, a few
        # Python calls per frame are a good part of the cost of a frame. Every other
        # frame (and an order frame the fast reader does not vouch for) goes through
        # ``parse`` and ``on_frame``, in the order received.
        #
        # A big open-orders reply goes to ``on_snapshot`` unread (see SnapshotHandler).
        #
        # A connection that brought back a secret (see :mod:`blotter.net.redaction`) is
        # ``tainted``: all its frames go the general way, redacted first.
        clock = time.perf_counter
        messages = ws.messages
        deliver = self._deliver
        read_order = order_frame
        while True:
            try:
                await ws.wait_messages()
            except ConnectionClosedOK:
                return
            tainted = ws.tainted
            on_orders = None if tainted else self._on_orders
            on_snapshot = None if tainted else self._on_snapshot
            deadline = clock() + YIELD_EVERY
            orders: list[Order] = []
            raws: list[bytes] = []
            received_ns = 0
            urgent = self.urgent
            while messages:
                if urgent:  # a cancel key: out before the next frame is folded
                    run_urgent(urgent)
                raw = messages[0]
                if on_orders is not None and raw.startswith(ORDER_FRAME):
                    order = read_order(raw)
                    if order is not None:
                        if not orders:
                            received_ns = ws.head_arrival_ns()
                        messages.popleft()
                        orders.append(order)
                        raws.append(raw)
                        if len(orders) & 63 == 0 and clock() >= deadline:
                            break
                        continue
                if orders:
                    self._fold_orders(orders, raws, received_ns)
                    orders, raws = [], []
                received = ws.head_arrival_ns()
                messages.popleft()
                big = len(raw) > SLICED_BYTES
                checked = ws.watched(raw) if big else None  # (taken whichever way the frame goes)
                if on_snapshot is not None and big and raw.startswith(SNAPSHOT_FRAME):
                    slices = snapshot_slices(raw, checked=checked if isinstance(checked, SnapshotPrecheck) else None)
                    if slices is not None:
                        self._hand_snapshot(slices, raw, received)
                        if clock() >= deadline:
                            break
                        continue
                event = deliver(raw, received, tainted)
                kind = type(event)
                if kind is ServerPing:
                    self._send(PongReply())
                elif kind is Pong:
                    self._on_pong(event)  # type: ignore[arg-type]
                elif kind is SubAck and not event.ok:  # type: ignore[union-attr]
                    self.detail = safe(f"subscription to {event.channel} refused: {event.code} {event.error}", 400)  # type: ignore[union-attr]
                if clock() >= deadline:
                    break
            if orders:
                self._fold_orders(orders, raws, received_ns)
            # how far behind the wire the folding is: the oldest frame still waiting, and
            # whether the socket itself holds more (read paused)
            self.lag = (time.time_ns() - ws.head_arrival_ns()) / 1e9 if messages else 0.0
            self.read_paused = ws.read_paused
            self.unread = ws.unread_bytes()
            ws.caught_up()
            if messages:
                await asyncio.sleep(0)

    def _big_frame(self, size: int) -> SnapshotPrecheck:
        """The watcher of a big frame arriving: an open-orders reply is checked as it comes
        (and read too, when ``read_ahead`` says so)."""
        pause = self._read_ahead() if self._read_ahead is not None and size > SLICED_BYTES else None
        return SnapshotPrecheck(size, read_ahead=pause is not None, pause=pause)

    def _hand_snapshot(self, slices: SnapshotSlices, raw: bytes, received_ns: int) -> None:
        self.last_frame_at = self._clock()
        self.frames_received += 1
        try:
            self._on_snapshot(slices, raw, received_ns)  # type: ignore[misc]
        except Exception:
            log.exception("snapshot handler failed")

    def _fold_orders(self, orders: list[Order], raws: list[bytes], received_ns: int) -> None:
        self.last_frame_at = self._clock()
        self.frames_received += len(orders)
        try:
            self._on_orders(orders, raws, received_ns)  # type: ignore[misc]
        except Exception:
            log.exception("orders handler failed")

    def _on_pong(self, pong: Pong) -> None:
        now = self._clock()
        self._last_pong_at = now
        if self._pings.sent:
            sent = self._pings.sent.pop(0)
            self.rtt_ms = (now - sent) * 1000.0
            self._pings.sent.clear()
        if pong.ts:
            server_ms = pong.ts * 1000 if pong.ts < 100_000_000_000 else pong.ts  # some pages give seconds
            local_ms = now_ms() - (self.rtt_ms or 0) / 2
            self.skew_ms = int(server_ms - local_ms)

    async def _pinger(self, ws: QueuedConnection) -> None:
        """Our own pings: measure round-trip time and clock skew, and detect a
        server that stopped answering (then drop the connection to reconnect)."""
        s = self.settings
        pong_timeout = s.pong_timeout or 2 * s.ping_interval
        idle = s.idle_ping if s.idle_ping is not None and s.idle_ping < s.ping_interval else None
        tick = idle / 2 if idle is not None else s.ping_interval
        clock = self._clock
        self._last_pong_at = last_ping = clock()
        self._ping_now()
        while True:
            await asyncio.sleep(tick)
            now = clock()
            if self._last_pong_at is not None and now - self._last_pong_at > pong_timeout:
                self.detail = self._closing_reason = f"no pong for {pong_timeout:g} s; reconnecting"
                await self._close(ws, 1011, "no pong")
                return
            since_ping = now - last_ping
            quiet = idle is not None and since_ping >= idle and now - (self.last_frame_at or last_ping) >= idle
            if since_ping >= s.ping_interval - tick / 2 or quiet:
                last_ping = now
                self._ping_now()

    def _ping_now(self) -> None:
        self._pings.sent.append(self._clock())
        del self._pings.sent[:-4]
        self._send(Ping())


def describe_failure(exc: BaseException, url: str = "") -> str:
    """One line for a connection failure, no traceback, no secrets (``url``: the one
    that was connected to, against which a redirect's ``Location`` is read)."""
    if isinstance(exc, ConnectionClosed):
        if isinstance(exc.__cause__, SendStalled):
            return f"{exc.__cause__}; reconnecting"
        rcvd, sent = exc.rcvd, exc.sent
        if sent is not None and (rcvd is None or exc.rcvd_then_sent is False):
            # We closed it (a frame over max_frame_bytes, a protocol error): say so, not "lost".
            if sent.code == 1009:
                return f"frame refused: {sent.reason or 'too big'} (max_frame_bytes); reconnecting"
            return f"connection closed by the client ({sent.code} {sent.reason})".replace(" )", ")")
        if rcvd is not None:
            return f"connection closed by server ({rcvd.code} {rcvd.reason})".replace(" )", ")")
        return "connection lost"
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status in REDIRECTS:
            location = exc.response.headers.get("Location", "")
            target = safe(display_url(urljoin(url, location)), 200) if location else "(no Location)"
            return f"the server redirected to {target}; redirects are not followed on the private stream"
        return f"server refused the WebSocket upgrade: HTTP {status}"
    if isinstance(exc, InvalidURI):
        return "bad URL"
    if isinstance(exc, InvalidHandshake):
        return f"WebSocket handshake failed: {exc}"
    if isinstance(exc, TimeoutError):
        return str(exc) or "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the exchange/simulator running?)"
    if isinstance(exc, OSError):
        import ssl

        if isinstance(exc, ssl.SSLCertVerificationError):
            why = str(exc.verify_message or exc).rstrip(".")
            if exc.verify_code in (62, 64):  # host name / IP address mismatch: a CA file would not help
                return f"TLS certificate rejected: {why}; check the host in the URL"
            return f"TLS certificate rejected: {why}; use --ca-file for a private CA"
        return f"cannot connect: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def _retry_after(value: str | None) -> float | None:
    """Seconds from an HTTP ``Retry-After`` given in seconds (a date is not trusted)."""
    try:
        seconds = float(value or "")
    except ValueError:
        return None
    if not 0 <= seconds <= MAX_RETRY_AFTER:
        return None
    return seconds
