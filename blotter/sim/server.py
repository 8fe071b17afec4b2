"""The simulated exchange: a real ``websockets`` server on loopback.

Why a real server and not a fake session: the blotter's session code, the demo and
the benchmarks then exercise the same sockets, upgrade headers, close frames and
timing a trader's session meets — only the counterparty is local and scriptable.

Shape of one connection::

    process_request   path and header auth (HTTP 404 / 401 before any upgrade)
    _serve_client     reads frames, records them in ``received``, answers them
    _Client.writer    the only task that writes: one FIFO per client keeps the
                      order "ACK before the update it causes" and sn order intact,
                      and is where the transmission faults (silent, drop_every,
                      malformed_every) live
    _Client.keepalive server pings, hp countdown, ``disconnected`` on missed pongs

The order flow of "other sessions" (:mod:`blotter.sim.flow`) runs as one task per
server; every order update goes to every authenticated connection subscribed to
``futures-order``, so several clients of the account all see the stream.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response as HttpResponse

from blotter.protocol.requests import (
    AccountSnapshotQuery,
    Auth,
    CancelAll,
    CancelOrder,
    OpenOrdersQuery,
    Ping,
    PlaceOrder,
    PongReply,
    RequestFormatError,
    Subscribe,
    Unsubscribe,
    request_from_wire,
    valid_request_id,
)
from blotter.protocol.signing import SigningError, now_ms, sign

from . import odd
from .book import CANCELED, FILLED, NEW, PENDING_NEW, REJECTED, Book, Clock, SequenceCounter, SimOrder, spec_for
from .config import ERROR_REASONS, SimConfig
from .flow import OrderFlow
from .rest import RestApi, RestFaults, rest_connection

__all__ = ["ReceivedFrame", "SimServer", "MALFORMED_FRAME", "DISCONNECTED_MESSAGE"]

ORDER_CHANNEL = "futures-order"
ACCOUNT_CHANNEL = "futures-account-update"
CHANNELS = frozenset({ORDER_CHANNEL, ACCOUNT_CHANNEL})
ORDER_ACTIONS = frozenset({"cancel-order", "cancel-all", "place-order"})
REDUCE_ONLY = frozenset(
    {
        "ReduceOnly",
        "PostReduceOnly",
        "ReduceOnlyMarket",
        "ReduceOnlyMark",
        "ReduceOnlyRef",
        "PostReduceMarket",
        "PostReduceMark",
        "PostReduceRef",
    }
)
"""The ``execInst`` values that can only shrink a position (PROTOCOL.md enums, by their names)."""

MALFORMED_FRAME = '{"m":"futures-order","sn":'
"""What ``malformed_every`` sends: a truncated JSON object, as a broken proxy might deliver."""

DISCONNECTED_MESSAGE: dict[str, Any] = {
    "m": "disconnected",
    "code": 100005,
    "reason": "INVALID_WS_REQUEST_DATA",
    "info": "Session is disconnected due to missing pong message from the client",
}

_ACCOUNT_ERROR = "Unable to find User Account Data"


@dataclass(frozen=True)
class ReceivedFrame:
    """One frame a client sent, as the server saw it.

    ``time_ns`` is :func:`time.time_ns` at receipt (benchmarks measure key-to-wire
    latency with it); ``data`` is the decoded JSON, or None if the frame was not JSON;
    ``client`` numbers the connection (1, 2, … in accept order)."""

    time_ns: int
    data: Any
    text: str
    client: int


def _dumps(message: Any) -> str:
    return orjson.dumps(message).decode("utf-8")


class _Client:
    """One connection: its auth state, subscriptions, outbound queue and keep-alive state."""

    def __init__(self, sim: SimServer, ws: ServerConnection, number: int, authed: bool) -> None:
        self.sim = sim
        self.ws = ws
        self.number = number
        self.authed = authed
        self.subs: set[str] = set()
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.alive = True
        self.sent = 0
        self.hp = sim.config.ping_hp
        self.missed = 0
        self.awaiting_pong = False
        self.last_client_ping = -math.inf
        self.done = asyncio.get_running_loop().create_future()

    def send(self, message: Any) -> None:
        """Queue a message (dict/list, or already-encoded text) for the writer task."""
        if self.alive:
            self.queue.put_nowait(message if isinstance(message, str) else _dumps(message))

    def abort(self) -> None:
        """Drop the TCP connection without a close handshake, as a failing network does."""
        self.alive = False
        transport = self.ws.transport
        if transport is not None:
            transport.abort()

    async def writer(self) -> None:
        try:
            while True:
                text = await self.queue.get()
                try:
                    if self.sim.config.silent:
                        continue  # silent: dropped, not queued for later
                    cfg = self.sim.config
                    self.sent += 1
                    if cfg.malformed_every and self.sent % cfg.malformed_every == 0:
                        await self.ws.send(MALFORMED_FRAME)
                    await self.ws.send(text)
                    if cfg.drop_every and self.sent % cfg.drop_every == 0:
                        self.abort()
                        return
                finally:
                    self.queue.task_done()
        except ConnectionClosed:
            return
        finally:
            self.alive = False
            self._drain()

    def _drain(self) -> None:
        """Mark queued messages as handled, so :meth:`SimServer.emit_updates` never waits on a dead client."""
        while True:
            try:
                self.queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            self.queue.task_done()

    async def flushed(self, timeout: float) -> None:
        """Wait until the writer has handled everything queued so far (or the client is gone)."""
        join = asyncio.ensure_future(self.queue.join())
        try:
            await asyncio.wait([join, self.done], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            join.cancel()

    def on_liveness(self) -> None:
        """A pong, or a client ping: the client is alive, health points are restored."""
        self.awaiting_pong = False
        self.missed = 0
        self.hp = self.sim.config.ping_hp

    async def keepalive(self) -> None:
        """Server pings. Each unanswered ping costs one hp; ``max_missed_pongs`` unanswered
        pings in a row end the session with the documented ``disconnected`` message.
        While client pings arrive (``client_ping_quiet``) the server does not ping."""
        while self.alive:
            cfg = self.sim.config
            await asyncio.sleep(cfg.ping_interval if cfg.ping_interval > 0 else 0.25)
            cfg = self.sim.config
            if cfg.ping_interval <= 0 or cfg.silent:
                continue
            if time.monotonic() - self.last_client_ping < cfg.client_ping_quiet:
                continue
            if self.awaiting_pong:
                self.missed += 1
                self.hp = max(self.hp - 1, 0)
                if self.missed >= cfg.max_missed_pongs:
                    self.send(DISCONNECTED_MESSAGE)
                    await self.flushed(timeout=2.0)
                    self.alive = False
                    await self.ws.close(1000, "missing pong")
                    return
            self.awaiting_pong = True
            self.send({"m": "ping", "hp": self.hp})


class SimServer:
    """The simulated AscendEX futures exchange on a real WebSocket port.

    Use as ``async with SimServer(config) as sim:`` or ``await sim.start()`` /
    ``await sim.stop()``. The account's book exists from construction (so
    :meth:`open_orders` works before start); ``config.seed``, ``symbols``,
    ``initial_orders`` and ``fixed_time_ms`` are read then. Every other field is
    read at the moment it matters, so it can be changed while the server runs.
    """

    def __init__(self, config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config if config is not None else SimConfig()
        self.host = host
        self._requested_port = port
        self.seed = self.config.seed if self.config.seed is not None else random.SystemRandom().randrange(2**32)
        self.clock = Clock(self.config.fixed_time_ms)
        self.sn = SequenceCounter(self.seed)
        """The one sequence counter of this exchange (every account's ``sn`` and ``seqNum``)."""
        self.book = Book(self.config.account_id, self.config.user_uid, self.clock, self.sn)
        self.flow = OrderFlow(self.book, self.config.symbols, self.seed, self.config.initial_orders)
        self.rest = RestApi(
            self.book,
            self.config,
            publish=self._publish,
            faults=RestFaults(
                delay=self.config.rest_delay,
                server_error=self.config.rest_error,
                drop_connections=self.config.rest_down,
            ),
        )
        """The REST endpoints, served on the WebSocket's own port (``rest.faults`` switch at run time;
        ``rest.calls`` is what it received)."""
        self.flow.initial(self.config.initial_orders)
        self.received: list[ReceivedFrame] = []
        self._waiters: list[tuple[Callable[[ReceivedFrame], bool], asyncio.Future[ReceivedFrame]]] = []
        self._clients: set[_Client] = set()
        self._header_auth: dict[ServerConnection, bool] = {}
        self._next_client = 0
        self._updates = 0
        self.dropped_updates: list[str] = []
        """``drop_updates_every``: the order id of each update sent to nobody, in order."""
        self._spoiled: dict[str, str] = {}
        """``odd_records``: order id -> its oddity (assigned at each open-orders reply)."""
        self._flow_paused = False
        self._server: Server | None = None
        self._flow_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port: int = port

    # --- lifecycle -------------------------------------------------------------------------------------

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind and start serving (and start the order flow). Raises OSError if the port is taken."""
        if self._server is not None:
            return
        self._server = await serve(
            self._serve_client,
            self.host,
            self._requested_port,
            process_request=self._process_request,
            create_connection=rest_connection(self.rest),  # REST on the same port, as the exchange has it
            ssl=self._ssl_context(),
            ping_interval=None,  # keep-alive is the exchange's JSON ping, not WebSocket ping frames
            compression=None,  # cheaper for benchmarks; clients that offer deflate simply don't get it
            close_timeout=1.0,
            server_header="blotter-sim",
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._flow_task = asyncio.create_task(self._run_flow(), name="sim-flow")

    async def stop(self) -> None:
        """Stop the flow, close every connection and the listening socket. Idempotent."""
        tasks = list(self._tasks)
        if self._flow_task is not None:
            tasks.append(self._flow_task)
            self._flow_task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), timeout=3.0)
        except TimeoutError:
            for client in list(self._clients):
                client.abort()
        for waiter in self._waiters:
            if not waiter[1].done():
                waiter[1].cancel()

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.config.tls_cert is None or self.config.tls_key is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        return context

    @property
    def url(self) -> str:
        """``ws://host:port/<grp>/api/pro/v2/stream`` (``wss://`` with TLS)."""
        scheme = "wss" if self.config.tls_cert is not None else "ws"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{self.config.stream_path}"

    @property
    def connection_count(self) -> int:
        """Open WebSocket connections."""
        return len(self._clients)

    @property
    def authenticated_count(self) -> int:
        """Open connections that are authenticated (by headers or ``op:auth``)."""
        return sum(1 for c in self._clients if c.authed)

    # --- what tests look at ------------------------------------------------------------------------------

    @property
    def orders(self) -> dict[str, SimOrder]:
        """Every order the account ever had, by order id, final ones included."""
        return self.book.orders

    def open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """The open orders as long-form wire records (``orderId``, ``seqNum``, ``status``, …:
        the same dicts a current-dialect ``futures-open-orders`` reply carries)."""
        return [o.to_long(self.config.account_id) for o in self.book.open_orders(symbol)]

    def requests(self, action: str | None = None) -> list[ReceivedFrame]:
        """Received ``op:req`` frames, optionally of one ``action``."""
        return [
            f
            for f in self.received
            if isinstance(f.data, dict)
            and f.data.get("op") == "req"
            and (action is None or f.data.get("action") == action)
        ]

    async def wait_for(self, predicate: Callable[[ReceivedFrame], bool], timeout: float = 5.0) -> ReceivedFrame:
        """The first received frame (already received or still to come) matching ``predicate``.
        Raises :class:`TimeoutError` after ``timeout`` seconds."""
        for frame in self.received:
            if predicate(frame):
                return frame
        future: asyncio.Future[ReceivedFrame] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._waiters.remove(entry)

    def _record(self, frame: ReceivedFrame) -> None:
        self.received.append(frame)
        for predicate, future in self._waiters:
            if future.done():
                continue
            try:
                if predicate(frame):
                    future.set_result(frame)
            except Exception as exc:
                future.set_exception(exc)

    # --- controls -----------------------------------------------------------------------------------------

    def set_silent(self, silent: bool) -> None:
        """Send nothing at all while ``silent`` (flow, pings, replies are dropped, not queued)."""
        self.config.silent = silent

    def pause_flow(self) -> None:
        """Stop the order flow of other sessions (requests are still answered)."""
        self._flow_paused = True

    def resume_flow(self) -> None:
        self._flow_paused = False

    @property
    def rest_url(self) -> str:
        """The REST base, ``http://host:port`` (``https://`` with TLS): the WebSocket's own port."""
        scheme = "https" if self.config.tls_cert is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def refuse_websocket(self, refused: bool = True) -> None:
        """While ``refused``, WebSocket upgrades are answered HTTP 503 and (when switching on)
        every open stream is dropped; REST keeps answering. The stream outage drill."""
        self.config.ws_refused = refused
        if refused:
            await self.drop_connections()

    async def drop_connections(self) -> None:
        """Abort every client connection (no close frame), and wait until the server has noticed."""
        clients = list(self._clients)
        for client in clients:
            client.abort()
        if clients:
            await asyncio.wait([c.done for c in clients], timeout=2.0)

    def end_order(
        self,
        order_id: str,
        status: str,
        fill_qty: Decimal | str | None = None,
        *,
        error: str = "",
        publish: bool = True,
    ) -> SimOrder:
        """End an open order as the matching engine or another session would, while the test
        decides what the client hears. ``Filled``: what is left fills at the order's price.
        ``Canceled``: after a partial fill of ``fill_qty`` if given. ``Rejected``: ``error``
        says why (a stop order refused at its trigger), after a partial fill if given.

        Every change takes the account's next ``sn``. With ``publish`` it goes to the
        connected subscribers only — none while the client is disconnected: the outage
        drill; without it the update is lost (a stream that silently misses an order's end)."""
        order = self.book.orders[order_id]
        if not order.is_open:
            raise ValueError(f"{order_id} is already {order.status}")
        if status not in (FILLED, CANCELED, REJECTED):
            raise ValueError("status is Filled, Canceled or Rejected")
        price = order.price or self.flow.mids.get(order.symbol, spec_for(order.symbol).mid)

        def emit() -> None:
            self.book.refresh(order)
            if publish:
                self._publish(order)
            else:
                self._updates += 1
                order.seq = self.book.next_sn()

        if fill_qty is not None and status != FILLED:
            self.clock.advance(1)
            order.fill(Decimal(fill_qty), price, self.clock.now())
            emit()
        self.clock.advance(1)
        if status == FILLED:
            order.fill(order.remaining, price, self.clock.now())
        elif status == CANCELED:
            order.cancel(self.clock.now())
        else:
            order.cancel(self.clock.now())
            order.status = REJECTED
            order.error = error
        emit()
        return order

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until every connection's writer has handled everything queued so far
        (sent it, or dropped it while silent). Lets tests order events without sleeping."""
        await asyncio.gather(*(c.flushed(timeout=timeout) for c in list(self._clients)))

    async def emit_updates(self, n: int) -> None:
        """Publish ``n`` order lifecycle updates as fast as possible, then return once every
        subscribed connection has been handed all of them (benchmarks)."""
        published = 0
        while published < n:
            for order in self.flow.step():
                if published >= n:
                    break
                self._publish(order)
                published += 1
            if published % 512 == 0:
                await asyncio.sleep(0)
        await self.flush(timeout=60.0)

    # --- publishing ------------------------------------------------------------------------------------------

    def _publish(self, order: SimOrder) -> None:
        """Give ``order``'s current state the counter's next ``sn`` and send it to subscribers.
        This is where the sequence faults act: ``skip_sn_every`` makes the counter jump
        far (a billion) before an update, ``repeat_sn_every`` sends an update twice, and
        ``drop_updates_every`` sends an update to nobody (the order changed in the book;
        the clients never hear of it)."""
        cfg = self.config
        self._updates += 1
        far = bool(cfg.skip_sn_every and self._updates % cfg.skip_sn_every == 0)
        order.seq = self.book.next_sn(far)
        if cfg.drop_updates_every and self._updates % cfg.drop_updates_every == 0:
            self.dropped_updates.append(order.order_id)
            self._publish_account()  # (only the order update is lost)
            return
        oddity = (self._spoiled or self._spoil_assign()).get(order.order_id) if cfg.odd_records else None
        if oddity is None:
            text = _dumps(order.to_short(cfg.account_id))
        else:
            text = odd.encode(_dumps(odd.spoil(order.to_short(cfg.account_id), oddity, long_keys=False)))
        repeat = bool(cfg.repeat_sn_every and self._updates % cfg.repeat_sn_every == 0)
        for client in list(self._clients):
            if client.authed and ORDER_CHANNEL in client.subs:
                client.send(text)
                if repeat:
                    client.send(text)
        self._publish_account()

    async def _run_flow(self) -> None:
        """``config.rate`` events per second, on a fixed schedule (no drift, no catch-up storms)."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            rate = self.config.rate
            if rate <= 0 or self._flow_paused:
                await asyncio.sleep(0.05)
                next_at = loop.time()
                continue
            next_at += 1.0 / rate
            delay = next_at - loop.time()
            if delay < -1.0:
                next_at = loop.time()
            await asyncio.sleep(max(delay, 0.0))
            if self._flow_paused or self.config.rate <= 0:
                continue
            for order in self.flow.step():
                self._publish(order)

    # --- the opening handshake ---------------------------------------------------------------------------------

    def _check_credentials(self, key: str | None, timestamp: Any, signature: str | None) -> tuple[int, str] | None:
        """None if the credentials are good, else ``(code, message)`` as the exchange would say it."""
        cfg = self.config
        if not key or timestamp is None or not signature:
            return 200006, _ACCOUNT_ERROR
        try:
            t = int(timestamp)
        except (TypeError, ValueError):
            return 100011, f"Invalid timestamp: {str(timestamp)[:32]!r} is not a UTC time in milliseconds"
        server = now_ms()
        if abs(server - t) > cfg.max_time_skew * 1000:
            return 100011, (
                f"Invalid timestamp {t}: server time is {server}, requests older or newer than "
                f"{cfg.max_time_skew:g} s are refused"
            )
        if not hmac.compare_digest(key.encode(), cfg.api_key.encode()):
            return 200006, _ACCOUNT_ERROR
        try:
            expected = sign(cfg.api_secret, t, cfg.secret_encoding)
        except SigningError:
            return 200006, _ACCOUNT_ERROR
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return 200006, _ACCOUNT_ERROR
        return None

    def _process_request(self, connection: ServerConnection, request: HttpRequest) -> HttpResponse | None:
        """Before the upgrade: only the account-group path exists (404 elsewhere); upgrade headers,
        if any are sent, must authenticate (401 otherwise — no WebSocket at all)."""
        if urlsplit(request.path).path != self.config.stream_path:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        if self.config.ws_refused:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable\n")
        headers: Headers = request.headers
        key = headers.get("x-auth-key")
        timestamp = headers.get("x-auth-timestamp")
        signature = headers.get("x-auth-signature")
        if key is None and timestamp is None and signature is None:
            self._header_auth[connection] = False
            return None
        problem = self._check_credentials(key, timestamp, signature)
        if problem is not None:
            code, message = problem
            body = {"code": code, "reason": ERROR_REASONS.get(code, ""), "message": message}
            return connection.respond(HTTPStatus.UNAUTHORIZED, _dumps(body) + "\n")
        self._header_auth[connection] = True
        return None

    # --- one connection ---------------------------------------------------------------------------------

    async def _serve_client(self, ws: ServerConnection) -> None:
        self._next_client += 1
        client = _Client(self, ws, self._next_client, self._header_auth.pop(ws, False))
        self._clients.add(client)
        writer = asyncio.create_task(client.writer(), name=f"sim-writer-{client.number}")
        keepalive = asyncio.create_task(client.keepalive(), name=f"sim-keepalive-{client.number}")
        client.send({"m": "connected", "type": "auth" if client.authed else "unauth"})
        try:
            async for message in ws:
                received = time.time_ns()
                text = message if isinstance(message, str) else bytes(message).decode("utf-8", "replace")
                try:
                    data = orjson.loads(text)
                except orjson.JSONDecodeError:
                    data = None
                frame = ReceivedFrame(time_ns=received, data=data, text=text, client=client.number)
                self._record(frame)
                self._on_frame(client, frame)
        except ConnectionClosed:
            pass
        finally:
            client.alive = False
            self._clients.discard(client)
            keepalive.cancel()
            writer.cancel()
            await asyncio.gather(writer, keepalive, return_exceptions=True)
            client._drain()
            if not client.done.done():
                client.done.set_result(None)

    def _on_frame(self, client: _Client, frame: ReceivedFrame) -> None:
        data = frame.data
        if data is None:
            client.send(
                {
                    "m": "error",
                    "code": 150001,
                    "reason": "INVALID_JSON_FORMAT",
                    "info": f"Invalid JSON: {frame.text[:40]!r}",
                }
            )
            return
        rid = data.get("id") if isinstance(data, dict) else None
        if rid is not None and not (isinstance(rid, str) and valid_request_id(rid)):
            client.send(
                self._generic_error(
                    None, 100005, f"Invalid request id {str(rid)[:40]!r}: use ^\\w[\\w\\-]*\\w$, at most 32 characters"
                )
            )
            return
        try:
            request = request_from_wire(data)
        except RequestFormatError as exc:
            client.send(self._generic_error(rid, 100005, str(exc)))
            return

        if isinstance(request, Ping):
            if self.config.no_pong:
                return
            client.last_client_ping = time.monotonic()
            client.on_liveness()
            client.send({"m": "pong", "code": 0, "ts": now_ms(), "hp": client.hp})
        elif isinstance(request, PongReply):
            client.on_liveness()
        elif isinstance(request, Auth):
            self._on_auth(client, rid, request)
        elif isinstance(request, (Subscribe, Unsubscribe)):
            self._on_sub(client, rid, request)
        elif not client.authed:
            client.send(
                self._generic_error(rid, 100009, "Authorization is needed for this request: authenticate first")
            )
        elif self.config.ignore_requests:
            return
        else:
            self._on_request(client, rid, data, request)

    def _on_auth(self, client: _Client, rid: str | None, request: Auth) -> None:
        problem = self._check_credentials(
            request.api_key.get_secret_value(), request.time_ms, request.signature.get_secret_value()
        )
        if problem is None:
            client.authed = True
            client.send({"m": "auth", "id": rid, "code": 0})
        else:
            code, message = problem
            client.send({"m": "auth", "id": rid, "code": code, "err": message})

    def _on_sub(self, client: _Client, rid: str | None, request: Subscribe | Unsubscribe) -> None:
        op = "sub" if isinstance(request, Subscribe) else "unsub"
        if not client.authed:
            client.send(self._generic_error(rid, 100009, f"Authorization is needed to subscribe to {request.channel}"))
            return
        if request.channel not in CHANNELS:
            client.send(
                {
                    "m": op,
                    "id": rid,
                    "ch": request.channel,
                    "code": 100005,
                    "err": f"Unknown channel {request.channel[:40]!r}",
                }
            )
            return
        if op == "sub":
            client.subs.add(request.channel)
        else:
            client.subs.discard(request.channel)
        client.send({"m": op, "id": rid, "ch": request.channel, "code": 0})

    # --- requests (op:req) ----------------------------------------------------------------------------------

    def _generic_error(self, rid: str | None, code: int, info: str) -> dict[str, Any]:
        return {"m": "error", "id": rid, "code": code, "reason": ERROR_REASONS.get(code, ""), "info": info}

    def _order_error(
        self, action: str, rid: str | None, code: int, message: str, symbol: str = "", order_id: str | None = None
    ) -> dict[str, Any]:
        """An order action refused, in the configured dialect."""
        reason = ERROR_REASONS.get(code, "")
        if self.config.dialect == "2021":
            info = {"code": code, "id": rid or order_id or "", "message": message, "symbol": symbol, "reason": reason}
            return {
                "accountId": self.config.account_id,
                "ac": "FUTURES",
                "action": action,
                "status": "Err",
                "info": info,
            }
        reply: dict[str, Any] = {"m": "order", "action": action, "ac": "FUTURES", "code": code}
        if rid is not None:
            reply["id"] = rid
        reply["info"] = {"symbol": symbol, "reason": reason, "errorMsg": message}
        return reply

    def _on_request(self, client: _Client, rid: str | None, data: dict[str, Any], request: Any) -> None:
        action = data.get("action", "")
        raw_args = data.get("args")
        args: dict[str, Any] = raw_args if isinstance(raw_args, dict) else {}
        if "time" in args:
            skew_ms = self.config.max_time_skew * 1000
            server = now_ms()
            if abs(server - int(args["time"])) > skew_ms:
                message = (
                    f"Invalid timestamp {args['time']}: server time is {server}, requests older or newer "
                    f"than {self.config.max_time_skew:g} s are refused"
                )
                if action in ORDER_ACTIONS:
                    client.send(self._order_error(action, rid, 100011, message, str(args.get("symbol", ""))))
                else:
                    client.send(self._generic_error(rid, 100011, message))
                return
        if action in ORDER_ACTIONS and self.config.ack_delay > 0:
            task = asyncio.create_task(self._delayed(self.config.ack_delay, client, rid, request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        self._answer(client, rid, request)

    async def _delayed(self, delay: float, client: _Client, rid: str | None, request: Any) -> None:
        await asyncio.sleep(delay)
        self._answer(client, rid, request)

    def _answer(self, client: _Client, rid: str | None, request: Any) -> None:
        if isinstance(request, CancelOrder):
            self._cancel_order(client, rid, request)
        elif isinstance(request, CancelAll):
            self._cancel_all(client, rid, request)
        elif isinstance(request, PlaceOrder):
            self._place_order(client, rid, request)
        elif isinstance(request, OpenOrdersQuery):
            self._open_orders_reply(client, rid, request)
        elif isinstance(request, AccountSnapshotQuery):
            self._account_snapshot(client, rid)

    def _refused(self, action: str) -> tuple[int, str] | None:
        code = self.config.refuse_cancels
        if code is None:
            return None
        return code, f"{ERROR_REASONS.get(code, 'ERROR')}: {action} refused (simulator fault refuse_cancels={code})"

    def _cancel_order(self, client: _Client, rid: str | None, request: CancelOrder) -> None:
        action = "cancel-order"
        refused = self._refused(action)
        if refused is not None:
            client.send(self._order_error(action, rid, *refused, symbol=request.symbol, order_id=request.order_id))
            return
        oid = request.order_id
        order = self.book.orders.get(oid)
        if order is None or order.symbol != request.symbol or not order.is_open:
            if len(oid) > 32:
                message = f"Client Order Id too Long: {oid[:64]}"
            elif order is not None and not order.is_open:
                message = f"Order is already {order.status}: {oid}"
            else:
                message = f"Invalid Client Order Id: {oid[:64]}"
            client.send(self._order_error(action, rid, 300006, message, symbol=request.symbol, order_id=oid))
            return
        if self.config.dialect == "2021":
            client.send(order.to_long(self.config.account_id))  # its status before the cancel; no request id
        else:
            client.send(
                {
                    "m": "order",
                    "action": action,
                    "ac": "FUTURES",
                    "id": rid,
                    "code": 0,
                    "info": {"orderId": oid, "symbol": order.symbol},
                }
            )
        self.clock.advance(3)
        order.cancel(self.clock.now())
        self.book.refresh(order)
        self._publish(order)

    def _cancel_all(self, client: _Client, rid: str | None, request: CancelAll) -> None:
        action = "cancel-all"
        symbol = request.symbol or ""
        refused = self._refused(action)
        if refused is not None:
            client.send(self._order_error(action, rid, *refused, symbol=symbol))
            return
        if symbol and symbol not in self.config.symbols:
            client.send(self._order_error(action, rid, 300012, "Invalid Product Symbol", symbol=symbol))
            return
        if self.config.dialect == "2021":
            client.send(
                {
                    "m": "order",
                    "accountId": self.config.account_id,
                    "ac": "FUTURES",
                    "action": action,
                    "status": "Ack",
                    "info": {
                        "symbol": symbol,
                        "orderType": "NULL_VAL",
                        "timestamp": now_ms(),
                        "id": rid or "",
                        "orderId": "",
                    },
                }
            )
        else:
            client.send(
                {"m": "order", "code": 0, "action": action, "ac": "FUTURES", "id": rid, "info": {"symbol": symbol}}
            )
        self.clock.advance(3)
        now = self.clock.now()
        for order in self.book.open_orders(symbol or None):
            order.cancel(now)
            self.book.refresh(order)
            self._publish(order)

    def _place_order(self, client: _Client, rid: str | None, request: PlaceOrder) -> None:
        action = "place-order"
        symbol = request.symbol

        def refuse(code: int, message: str) -> None:
            client.send(self._order_error(action, rid, code, message, symbol=symbol))

        if symbol not in self.config.symbols:
            return refuse(300012, "Invalid Product Symbol")
        spec = spec_for(symbol)
        side = request.side.strip().lower()
        if side not in ("buy", "sell"):
            return refuse(300003, f"Invalid order side: {request.side[:20]!r}")
        kind = request.order_type.strip().lower().replace("_", "").replace("-", "")
        order_type = {"limit": "Limit", "market": "Market", "stoplimit": "StopLimit", "stopmarket": "StopMarket"}.get(
            kind
        )
        if order_type is None:
            return refuse(300005, f"Invalid order type: {request.order_type[:20]!r}")
        if not spec.on_step(request.qty):
            return refuse(
                300002, f"Invalid order quantity {request.qty}: must be a positive multiple of {spec.qty_step}"
            )
        price = request.price or Decimal(0)
        if order_type in ("Limit", "StopLimit") and not spec.on_tick(price):
            return refuse(300001, f"Invalid order price {request.price}: must be a positive multiple of {spec.tick}")
        stop = request.stop_price or Decimal(0)
        if order_type.startswith("Stop") and not spec.on_tick(stop):
            return refuse(300008, "Stop orders need a positive stopPrice on tick")

        qty = request.qty
        exec_inst = request.exec_inst or ("Post" if request.post_only else "NULL_VAL")
        if exec_inst in REDUCE_ONLY:
            # Reduce-only can only shrink a position (the enum's name; the docs define
            # nothing more). With nothing to reduce it is refused; larger than the
            # position, it is trimmed to the position's size (the docs are silent; issue 15).
            pos = self.book.account.positions.get(symbol)
            held = pos.position if pos is not None else Decimal(0)
            if held == 0 or (held > 0) == (side == "buy"):
                return refuse(300008, f"Reduce-only order would not reduce the position on {symbol} ({held})")
            qty = min(qty, abs(held))

        self.clock.advance(2)
        now = self.clock.now()
        cid = request.client_order_id or ""
        tail = cid[-9:] if len(cid) >= 9 and cid.isalnum() else self.flow.tail()
        order = SimOrder(
            order_id=self.book.order_id(now, tail),
            symbol=symbol,
            side="Buy" if side == "buy" else "Sell",
            order_type=order_type,
            price=price if order_type in ("Limit", "StopLimit") else Decimal(0),
            qty=qty,
            status=PENDING_NEW if order_type.startswith("Stop") else NEW,
            create_ms=now,
            exec_ms=now,
            stop_price=stop,
            stop_by="ref-px" if order_type.startswith("Stop") else "",
            exec_inst=exec_inst,
        )
        self.book.add(order)
        if self.config.dialect == "2021":
            client.send(order.to_long(self.config.account_id, status="Ack"))  # seqNum -1, like the documented sample
        else:
            client.send(
                {
                    "m": "order",
                    "code": 0,
                    "id": rid,
                    "action": action,
                    "ac": "FUTURES",
                    "info": {"orderId": order.order_id, "symbol": symbol},
                }
            )
        self._publish(order)
        if order_type == "Market":
            self.clock.advance(1)
            order.fill(order.qty, self.flow.mids[symbol] if symbol in self.flow.mids else spec.mid, self.clock.now())
            self.book.refresh(order)
            self._publish(order)

    def _open_orders_reply(self, client: _Client, rid: str | None, request: OpenOrdersQuery) -> None:
        fault = self.config.open_orders_fault
        if fault == "ignore":
            return
        if fault == "garble":
            client.send(f'{{"m":"futures-open-orders","code":0,"id":{_dumps(rid)},"ac":"FUTURES","data":[{{"orderId":')
            return
        symbol = request.symbol
        if symbol and symbol not in self.config.symbols:
            client.send(
                {
                    "m": "futures-open-orders",
                    "code": 300012,
                    "id": rid,
                    "ac": "FUTURES",
                    "info": {"symbol": symbol, "reason": "INVALID_PRODUCT", "errorMsg": "Invalid Product Symbol"},
                }
            )
            return
        orders = self.book.open_orders(symbol)
        account = self.config.account_id
        spoiled = self._spoil_assign()
        if self.config.dialect == "2021":
            records = [o.to_short(account) for o in orders]
        else:
            records = [o.to_long(account) for o in orders]
        if spoiled:
            records = self._spoil(records, orders, spoiled, long_keys=self.config.dialect != "2021")
        if self.config.dialect == "2021":
            client.send(odd.encode(_dumps(records)))
        else:
            client.send(
                odd.encode(_dumps({"m": "futures-open-orders", "code": 0, "id": rid, "ac": "FUTURES", "data": records}))
            )

    def _spoil_assign(self) -> dict[str, str]:
        """``odd_records``: which open orders carry which oddity (the first ones by id)."""
        oddities = self.config.odd_records
        if not oddities:
            self._spoiled = {}
            return self._spoiled
        ids = sorted(o.order_id for o in self.book.open_orders())
        self._spoiled = dict(zip(ids, oddities, strict=False))
        return self._spoiled

    def _spoil(
        self, records: list[dict[str, Any]], orders: list[SimOrder], spoiled: dict[str, str], long_keys: bool
    ) -> list[dict[str, Any]]:
        out = []
        for record, order in zip(records, orders, strict=False):
            oddity = spoiled.get(order.order_id)
            if oddity is None:
                out.append(record)
                continue
            out.append(odd.spoil(record, oddity, long_keys))
            if oddity == "same-id-other-symbol" and long_keys:
                other = odd.twin(record, self.config.symbols)
                if other is not None:
                    out.append(other)
        return out

    def _mark(self, symbol: str) -> Decimal:
        """The mark price the account's unrealized PnL is reckoned at: the flow's mid."""
        return self.flow.mids.get(symbol) or spec_for(symbol).mid

    def _positions_wire(self, symbols: Any) -> list[dict[str, Any]]:
        positions = self.book.account.positions
        return [positions[s].to_wire(self._mark(s)) for s in symbols if s in positions]

    def _account_snapshot(self, client: _Client, rid: str | None) -> None:
        """The reply as documented (ADDENDUM §3.2): no ``code``, no ``data`` wrapper;
        ``col`` and ``pos`` at the top level, every position of the account."""
        account = self.book.account
        client.send(
            {
                "m": "futures-account-snapshot",
                "id": rid,
                "e": "ClientRequest",
                "t": now_ms(),
                "acc": self.config.account_id,
                "ac": "FUTURES",
                "sn": self.book.next_sn(),
                "col": account.collaterals_wire(),
                "pos": self._positions_wire(sorted(account.positions)),
            }
        )

    def _publish_account(self) -> None:
        """After fills: one ``futures-account-update`` (ADDENDUM §3.3) with every collateral
        and the positions that changed (the docs do not say whether an update lists every
        position; listing only the changed ones is the harder case for a client)."""
        changed = self.book.account.take_changed()
        if not changed:
            return
        subscribed = [c for c in self._clients if c.authed and ACCOUNT_CHANNEL in c.subs]
        if not subscribed:
            self.book.next_sn()  # the exchange's counter moves whether anyone listens or not
            return
        text = _dumps(
            {
                "m": "futures-account-update",
                "e": "ExecutionReport",
                "t": now_ms(),
                "acc": self.config.account_id,
                "at": "FUTURES",
                "sn": self.book.next_sn(),
                "id": f"r{self.clock.now():011x}{self.config.user_uid}{self._updates % 10**9:09d}",
                "col": self.book.account.collaterals_wire(),
                "pos": self._positions_wire(changed),
            }
        )
        for client in subscribed:
            client.send(text)
