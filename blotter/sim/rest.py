"""The simulated exchange's REST side, written from the documentation (ADDENDUM §1–§3).

:class:`RestApi` answers the private futures endpoints the blotter uses, on the
simulator's :class:`~blotter.sim.book.Book`:

=========================================  ======  =============================================
path                                       method  what
=========================================  ======  =============================================
``/api/pro/v2/account/info``               GET     account group, ids, permissions
``/<grp>/api/pro/v2/futures/order/status`` GET     ``orderId`` = one id or several, comma-separated
``/<grp>/.../order/hist/current``          GET     ended orders, newest first (``symbol``, ``n``, ``executedOnly``)
``/<grp>/.../order/open``                  GET     open orders (``symbol`` filter, as the demo sends it)
``/<grp>/.../futures/order``               DELETE  cancel one: ``{id, orderId, symbol, time[, respInst]}``
``/<grp>/.../order/all``                   DELETE  cancel all, optional ``symbol``
``/<grp>/.../order/batch``                 DELETE  batch cancel: at most 10, all or nothing
``/<grp>/.../futures/position``            GET     collaterals and contracts
=========================================  ======  =============================================

Every call is signed as §1.2–§1.4 say (``x-auth-key``, ``x-auth-timestamp``,
``x-auth-signature`` over ``<timestamp>+<api-path>``, in the configured key form) and a
timestamp more than ``max_time_skew`` (30 s) from the server clock is refused.

Where the docs are silent the simulator is at least as hard on the client as the
exchange could be:

- errors come with **HTTP 200** and a non-zero ``code`` (the docs give no HTTP status;
  the official demo checks both), in the documented single-order error form;
- a GET's parameters are read from the query string only (a body on a GET is ignored);
- a cancel's reply is the **ACK** form (the order's state *before* the cancel, as in the
  live capture); the outcome follows as an order update;
- cancel-all answers the documented bare ``{"code": 0}``: no list of orders;
- a batch cancel's ACK says nothing per order: an id that is unknown or no longer
  open is simply not cancelled;
- ``order/status`` answers at most 10 ids per call (the maximum is undocumented) and
  leaves unknown ids out of a list; one unknown id alone is an error.

Fault switches (:class:`RestFaults`, changeable while serving): ``delay`` (slow),
``server_error`` (every call answered 5xx), ``drop_connections`` (read the request, close
without answering); "connection refused" is :meth:`RestServer.go_down`.

:func:`serve_rest` runs the API on its own loopback port (a small HTTP/1.1 server with
keep-alive), so it can be tested over real sockets before it shares the WebSocket's port.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, field_validator
from websockets.asyncio.server import ServerConnection

from blotter.protocol.rest import BATCH_CANCEL_MAX, ORDER_STATUS_MAX_IDS, api_path_of, signature
from blotter.protocol.signing import SigningError, now_ms

from .book import Book, SimOrder, fmt, spec_for
from .config import ERROR_REASONS, SimConfig

__all__ = [
    "RestApi",
    "RestCall",
    "RestFaults",
    "RestServer",
    "RequestHead",
    "parse_head",
    "render",
    "rest_connection",
    "serve_rest",
]

Answer = tuple[int, dict[str, str], bytes]
"""``(status, headers, body)`` of one HTTP answer."""

_JSON = {"Content-Type": "application/json"}
_ACCOUNT_ERROR = "Unable to find User Account Data"
_EXTRA_REASONS = {100004: "INVALID_REQUEST_DATA", 100009: "AUTHORIZATION_NEEDED"}
MAX_HEAD = 16 * 1024
MAX_BODY = 1024 * 1024


class RestFaults(BaseModel):
    """How the REST side misbehaves. All off by default; read at every call."""

    model_config = ConfigDict(validate_assignment=True, extra="forbid")

    delay: float = Field(0.0, ge=0, le=600, description="Seconds to wait before answering any call (slow REST).")
    server_error: int | None = Field(
        None, description="If set (500-599), every call is answered with this HTTP status."
    )
    drop_connections: bool = Field(False, description="Read each request, then close the connection without an answer.")

    @field_validator("server_error")
    @classmethod
    def _five_xx(cls, value: int | None) -> int | None:
        if value is not None and not 500 <= value <= 599:
            raise ValueError("server_error is an HTTP status from 500 to 599")
        return value


@dataclass(frozen=True)
class RestCall:
    """One request as the simulator received it (tests look at these)."""

    time_ns: int
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[list[tuple[str, str]], bytes], Any]


@dataclass(frozen=True)
class _Route:
    action: str
    handler: Handler


class _Refused(Exception):
    def __init__(self, code: int, message: str, info: dict[str, Any] | list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.info = info


def _reason(code: int) -> str:
    return ERROR_REASONS.get(code) or _EXTRA_REASONS.get(code, "")


def _json(status: int, payload: Any) -> Answer:
    return status, dict(_JSON), json.dumps(payload, separators=(",", ":")).encode("utf-8")


def _text(status: int, text: str) -> Answer:
    return status, {"Content-Type": "text/plain; charset=utf-8"}, (text + "\n").encode("utf-8")


class RestApi:
    """The REST endpoints over ``book``. ``publish(order)`` sends an order's new state on the
    WebSocket (``SimServer._publish``); without it, a change only takes the next ``sn``."""

    def __init__(
        self,
        book: Book,
        config: SimConfig,
        publish: Callable[[SimOrder], None] | None = None,
        faults: RestFaults | None = None,
    ) -> None:
        self.book = book
        self.config = config
        self.publish = publish
        self.faults = faults if faults is not None else RestFaults()
        self.calls: list[RestCall] = []

    # --- entry points ----------------------------------------------------------------------------------------

    async def answer(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """:meth:`handle`, with the ``delay`` and ``server_error`` faults applied (what a server calls)."""
        if self.faults.delay > 0:
            await asyncio.sleep(self.faults.delay)
        return self.fault_answer(method, path, query, headers, body) or self.handle(method, path, query, headers, body)

    def fault_answer(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Answer | None:
        """The ``server_error`` fault's answer (recorded like any call), or None when it is off."""
        if self.faults.server_error is None:
            return None
        self._record(method, path, query, headers, body)
        status = self.faults.server_error
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Server Error"
        html = f"<html><head><title>{status} {phrase}</title></head><body><h1>{status} {phrase}</h1></body></html>"
        return status, {"Content-Type": "text/html"}, html.encode()

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Answer one request: ``path`` without query, ``query`` the raw query string,
        ``headers`` by name (any case). Never raises."""
        self._record(method, path, query, headers, body)
        lower = {k.lower(): v for k, v in headers.items()}
        route = self._route(method, path)
        if not isinstance(route, _Route):
            return route
        action, handler = route.action, route.handler
        try:
            self._check_auth(path, lower)
            return _json(200, handler(parse_qsl(query, keep_blank_values=True), body if method != "GET" else b""))
        except _Refused as refused:
            return _json(200, self._error(action, refused))

    def _record(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> None:
        self.calls.append(
            RestCall(time.time_ns(), method, path, query, {k.lower(): v for k, v in headers.items()}, body)
        )

    # --- routing and authentication -----------------------------------------------------------------------

    def _route(self, method: str, path: str) -> _Route | Answer:
        if path == "/api/pro/v2/account/info":
            table: dict[tuple[str, str], _Route] = {
                ("GET", "v2/account/info"): _Route("account-info", self._account_info)
            }
            api_path = "v2/account/info"
        else:
            prefix = f"/{self.config.account_group}/api/pro/"
            if not path.startswith(prefix):
                return _text(404, "Not Found")
            api_path = path[len(prefix) :]
            table = {
                ("GET", "v2/futures/order/status"): _Route("order-status", self._order_status),
                ("GET", "v2/futures/order/hist/current"): _Route("order-hist-current", self._order_hist),
                ("GET", "v2/futures/order/open"): _Route("open-order", self._open_orders),
                ("DELETE", "v2/futures/order"): _Route("cancel-order", self._cancel_order),
                ("DELETE", "v2/futures/order/all"): _Route("cancel-all", self._cancel_all),
                ("DELETE", "v2/futures/order/batch"): _Route("batch-cancel-order", self._batch_cancel),
                ("GET", "v2/futures/position"): _Route("position", self._position),
            }
        found = table.get((method, api_path))
        if found is not None:
            return found
        allowed = sorted(m for m, p in table if p == api_path)
        if allowed:
            status, headers, body = _text(405, "Method Not Allowed")
            return status, {**headers, "Allow": ", ".join(allowed)}, body
        return _text(404, "Not Found")

    def _check_auth(self, path: str, headers: Mapping[str, str]) -> None:
        cfg = self.config
        key, stamp, sig = (headers.get(h) for h in ("x-auth-key", "x-auth-timestamp", "x-auth-signature"))
        if not key or not stamp or not sig:
            raise _Refused(100009, "Authorization is required: send x-auth-key, x-auth-timestamp and x-auth-signature")
        try:
            t = int(stamp)
        except ValueError:
            raise _Refused(100011, f"Invalid timestamp {stamp[:32]!r}: UTC milliseconds expected") from None
        server = now_ms()
        if abs(server - t) > cfg.max_time_skew * 1000:
            raise _Refused(
                100011,
                f"Invalid timestamp {t}: server time is {server}; the difference is greater than {cfg.max_time_skew:g} seconds",
            )
        if not hmac.compare_digest(key.encode(), cfg.api_key.encode()):
            raise _Refused(200006, _ACCOUNT_ERROR)
        try:
            expected = signature(cfg.api_secret, t, api_path_of(path) or "", cfg.secret_encoding)
        except SigningError:
            raise _Refused(200006, _ACCOUNT_ERROR) from None
        if not hmac.compare_digest(sig.encode(), expected.encode()):
            raise _Refused(200006, _ACCOUNT_ERROR)

    def _error(self, action: str, refused: _Refused) -> dict[str, Any]:
        """The documented error form (§2.11): top-level code, reason, message; ``info`` for order actions."""
        reply: dict[str, Any] = {
            "ac": "FUTURES",
            "accountId": self.config.account_id,
            "action": action,
            "code": refused.code,
        }
        if refused.info is not None:
            reply["info"] = refused.info
        reply["message"] = refused.message
        reply["reason"] = _reason(refused.code)
        return reply

    # --- parameters -------------------------------------------------------------------------------------------

    def _symbol(self, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or value not in self.config.symbols:
            raise _Refused(300012, "Invalid Product Symbol", {"symbol": str(value)[:40]})
        return value

    @staticmethod
    def _body(body: bytes, required: bool) -> dict[str, Any]:
        if not body.strip():
            if required:
                raise _Refused(100004, "Missing request body")
            return {}
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise _Refused(150001, "Require a valid json object") from None
        if not isinstance(data, dict):
            raise _Refused(150001, "Require a valid json object")
        return data

    def _cancel_item(self, item: Any) -> tuple[str, str, str, str]:
        """Checks one cancel item as §2.5 lists its fields; returns ``(id, orderId, symbol, respInst)``."""
        if not isinstance(item, dict):
            raise _Refused(100004, "A cancel item must be an object")
        rid = item.get("id", "")
        symbol = item.get("symbol")
        info = {"id": str(rid)[:40], "symbol": str(symbol)[:40]}
        if rid and not (isinstance(rid, str) and len(rid) >= 9 and rid.isascii() and rid.isalnum()):
            raise _Refused(100004, "id must be at least 9 letters and digits", info)
        oid = item.get("orderId")
        if not isinstance(oid, str) or not oid:
            raise _Refused(100004, "Missing required parameter: orderId", info)
        if not isinstance(symbol, str) or not symbol:
            raise _Refused(100004, "Missing required parameter: symbol", info)
        self._symbol(symbol)
        stamp = item.get("time")
        if isinstance(stamp, bool) or not isinstance(stamp, int):
            raise _Refused(100004, "Missing required parameter: time (UTC milliseconds)", info)
        if abs(now_ms() - stamp) > self.config.max_time_skew * 1000:
            raise _Refused(
                100011, f"Invalid time {stamp}: requests sent more than 30 seconds ago are not processed", info
            )
        resp_inst = item.get("respInst", "ACK")
        if resp_inst not in ("ACK", "ACCEPT", "DONE"):
            raise _Refused(100004, "respInst must be ACK, ACCEPT or DONE", info)
        return rid if isinstance(rid, str) else "", oid, symbol, resp_inst

    # --- endpoints --------------------------------------------------------------------------------------------------

    def _record_of(self, order: SimOrder) -> dict[str, Any]:
        return order.to_long(self.config.account_id)

    def _order_status(self, query: list[tuple[str, str]], body: bytes) -> dict[str, Any]:
        raw = dict(query).get("orderId")
        if not raw:
            raise _Refused(100004, "Missing required parameter: orderId")
        ids = [i for i in raw.split(",") if i]
        if not ids:
            raise _Refused(100004, "Missing required parameter: orderId")
        if len(ids) > ORDER_STATUS_MAX_IDS:
            raise _Refused(100004, f"Too many order ids: at most {ORDER_STATUS_MAX_IDS} per request")
        head = {"code": 0, "accountId": self.config.account_id, "ac": "FUTURES"}
        if "," not in raw:  # a single id: data is one object (§2.2)
            order = self.book.orders.get(raw)
            if order is None:
                raise _Refused(300006, f"Order not found: {raw[:64]}")
            return {**head, "data": self._record_of(order)}
        found = [self.book.orders[i] for i in dict.fromkeys(ids) if i in self.book.orders]
        return {**head, "data": [self._record_of(o) for o in found]}

    def _order_hist(self, query: list[tuple[str, str]], body: bytes) -> dict[str, Any]:
        params = dict(query)
        symbol = self._symbol(params.get("symbol"))
        n = 20
        if "n" in params:
            try:
                n = int(params["n"])
            except ValueError:
                raise _Refused(100004, "n must be a whole number") from None
            if not 1 <= n <= 1000:
                raise _Refused(100004, "n must be from 1 to 1000")
        executed = params.get("executedOnly", "false")
        if executed.lower() not in ("true", "false"):
            raise _Refused(100004, "executedOnly must be true or false")
        ended = [o for o in self.book.orders.values() if not o.is_open and (symbol is None or o.symbol == symbol)]
        if executed.lower() == "true":
            ended = [o for o in ended if o.filled_qty > 0]
        ended.sort(key=lambda o: (o.exec_ms, o.seq), reverse=True)
        return {"code": 0, "data": [self._record_of(o) for o in ended[:n]]}

    def _open_orders(self, query: list[tuple[str, str]], body: bytes) -> dict[str, Any]:
        symbol = self._symbol(dict(query).get("symbol"))
        return {"code": 0, "data": [self._record_of(o) for o in self.book.open_orders(symbol)]}

    def _refused_by_fault(self, action: str, info: dict[str, Any]) -> None:
        code = self.config.refuse_cancels
        if code is not None:
            raise _Refused(code, f"{_reason(code)}: {action} refused (simulator fault refuse_cancels={code})", info)

    def _cancel(self, order: SimOrder) -> None:
        self.book.clock.advance(3)
        order.cancel(self.book.clock.now())
        self.book.refresh(order)
        self._changed(order)

    def _changed(self, order: SimOrder) -> None:
        if self.publish is not None:
            self.publish(order)
        else:
            order.seq = self.book.next_sn()

    def _cancel_order(self, query: list[tuple[str, str]], body: bytes) -> dict[str, Any]:
        rid, oid, symbol, resp_inst = self._cancel_item(self._body(body, required=True))
        info = {"id": rid, "orderId": oid, "symbol": symbol}
        self._refused_by_fault("cancel-order", info)
        order = self.book.orders.get(oid)
        if order is None or order.symbol != symbol:
            raise _Refused(300006, f"Invalid order id: {oid[:64]}", info)
        if not order.is_open:
            raise _Refused(300006, f"Trying to cancel non-open order: {oid} is {order.status}", info)
        before = self._record_of(order)
        self._cancel(order)
        record = before if resp_inst == "ACK" else self._record_of(order)
        return {
            "code": 0,
            "data": {"meta": {"action": "cancel-order", "id": rid, "respInst": resp_inst}, "order": record},
        }

    def _cancel_all(self, query: list[tuple[str, str]], body: bytes) -> dict[str, Any]:
        data = self._body(body, required=False)
        symbol = self._symbol(data.get("symbol"))
        self._refused_by_fault("cancel-all", {"symbol": symbol or ""})
        for order in self.book.open_orders(symbol):
            self._cancel(order)
        return {"code": 0}

    def _batch_cancel(self, query: list[tuple[str, str]], body: bytes) -> dict[str, Any]:
        orders = self._body(body, required=True).get("orders")
        if not isinstance(orders, list) or not orders:
            raise _Refused(100004, "Missing required parameter: orders (a list of cancel items)")
        if len(orders) > BATCH_CANCEL_MAX:
            raise _Refused(
                300013, f"You may submit up to {BATCH_CANCEL_MAX} orders to cancel at a time: got {len(orders)}"
            )
        checked: list[tuple[str, str, str, str]] = []
        problems: list[dict[str, Any]] = []
        for item in orders:
            try:
                checked.append(self._cancel_item(item))
                rid, symbol = checked[-1][0], checked[-1][2]
                problems.append(
                    {
                        "code": 300013,
                        "id": rid,
                        "message": "Some invalid order in this batch.",
                        "reason": "INVALID_BATCH_ORDER",
                        "symbol": symbol,
                    }
                )
            except _Refused as refused:
                where = refused.info if isinstance(refused.info, dict) else {}
                problems.append(
                    {
                        "code": refused.code,
                        "id": where.get("id", ""),
                        "message": refused.message,
                        "reason": _reason(refused.code),
                        "symbol": where.get("symbol", ""),
                    }
                )
        if len(checked) < len(orders):  # all or nothing (§2.7)
            raise _Refused(300013, "Batch Order failed, please check each order info for detail.", problems)
        self._refused_by_fault("batch-cancel-order", {})
        now = now_ms()
        acks = []
        for rid, oid, symbol, _ in checked:
            acks.append({"id": rid, "orderId": oid, "orderType": "", "symbol": symbol, "timestamp": now})
            order = self.book.orders.get(oid)
            if order is not None and order.symbol == symbol and order.is_open:
                self._cancel(order)
        return {"code": 0, "data": {"meta": {"action": "batch-cancel-order", "respInst": "ACK"}, "orders": acks}}

    def _position(self, query: list[tuple[str, str]], body: bytes) -> dict[str, Any]:
        net: dict[str, tuple[Decimal, Decimal]] = {}
        for order in self.book.orders.values():
            if order.filled_qty > 0:
                sign = 1 if order.side == "Buy" else -1
                qty, cost = net.get(order.symbol, (Decimal(0), Decimal(0)))
                net[order.symbol] = (qty + sign * order.filled_qty, cost - sign * order.filled_qty * order.avg_price)
        contracts = []
        for symbol, (qty, cost) in sorted(net.items()):
            mark = spec_for(symbol).mid
            contracts.append(
                {
                    "symbol": symbol,
                    "side": "LONG" if qty > 0 else "SHORT" if qty < 0 else "NULL_VAL",
                    "position": fmt(qty),
                    "referenceCost": fmt(cost),
                    "unrealizedPnl": fmt(mark * qty + cost),
                    "realizedPnl": "0",
                    "avgOpenPrice": fmt(abs(cost / qty)) if qty else "0",
                    "marginType": "crossed",
                    "isolatedMargin": "0",
                    "leverage": "10",
                    "takeProfitPrice": "0",
                    "takeProfitTrigger": "market",
                    "stopLossPrice": "0",
                    "stopLossTrigger": "market",
                    "buyOpenOrderNotional": self._notional("Buy", symbol),
                    "sellOpenOrderNotional": self._notional("Sell", symbol),
                    "indexPrice": fmt(mark),
                    "markPrice": fmt(mark),
                }
            )
        return {
            "code": 0,
            "data": {
                "ac": "FUTURES",
                "accountId": self.config.account_id,
                "collaterals": [{"asset": "USDT", "balance": "100000", "discountFactor": "1", "referencePrice": "1"}],
                "contracts": contracts,
            },
        }

    def _notional(self, side: str, symbol: str) -> str:
        return fmt(sum((o.remaining * o.price for o in self.book.open_orders(symbol) if o.side == side), Decimal(0)))

    def _account_info(self, query: list[tuple[str, str]], body: bytes) -> dict[str, Any]:
        cfg = self.config
        return {
            "code": 0,
            "data": {
                "accountGroup": cfg.account_group,
                "email": "trader@sim.invalid",
                "expireTime": -1,
                "allowedIps": [],
                "cashAccount": [],
                "marginAccount": [],
                "futuresAccount": [cfg.account_id],
                "userUID": cfg.user_uid,
                "tradePermission": True,
                "transferPermission": False,
                "viewPermission": True,
                "limitQuota": 1000,
            },
        }


# --- a small HTTP/1.1 server ------------------------------------------------------------------------------------------


class RestServer:
    """:class:`RestApi` on its own port. Keep-alive HTTP/1.1, ``Content-Length`` bodies only.

    :meth:`go_down` stops listening and drops every connection (a client then sees
    "connection refused"); :meth:`come_up` listens on the same port again."""

    def __init__(self, api: RestApi, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self.api = api
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.connections_accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.ssl_context else 'http'}://{host}:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._server is not None

    async def come_up(self) -> None:
        if self._server is not None:
            return
        self._closing = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def go_down(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._closing.set()  # a handler inside the ``delay`` fault stops waiting
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        await server.wait_closed()

    close = go_down

    async def __aenter__(self) -> RestServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.go_down()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is to end."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        parsed = parse_head(head)
        if not isinstance(parsed, RequestHead):
            return await self._send(writer, parsed, close=True)
        body = await reader.readexactly(parsed.length) if parsed.length else b""
        if self.api.faults.drop_connections:
            self.api._record(parsed.method, parsed.path, parsed.query, parsed.headers, body)
            writer.transport.abort()
            return False
        if self.api.faults.delay > 0:
            closing = asyncio.ensure_future(self._closing.wait())
            await asyncio.wait([closing], timeout=self.api.faults.delay)
            closing.cancel()
            if self._closing.is_set():
                return False
        args = (parsed.method, parsed.path, parsed.query, parsed.headers, body)
        answer = self.api.fault_answer(*args) or self.api.handle(*args)
        return await self._send(writer, answer, parsed.close)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, answer: Answer, close: bool) -> bool:
        writer.write(render(answer, close))
        await writer.drain()
        return not close


@dataclass(frozen=True)
class RequestHead:
    """The request line and headers of one HTTP/1.1 request (header names lower-case)."""

    method: str
    path: str
    query: str
    version: str
    headers: dict[str, str]
    length: int

    @property
    def close(self) -> bool:
        return self.version != "HTTP/1.1" or self.headers.get("connection", "").lower() == "close"

    @property
    def is_upgrade(self) -> bool:
        """A WebSocket opening handshake (``Upgrade: websocket``), not a REST call."""
        return "websocket" in self.headers.get("upgrade", "").lower()


def parse_head(head: bytes) -> RequestHead | Answer:
    """``head`` (up to and including the blank line) as a :class:`RequestHead`, or the error
    answer for a request this server will not read (too large, malformed, chunked)."""
    if len(head) > MAX_HEAD:
        return _text(431, "Request Header Fields Too Large")
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ")
    except ValueError:
        return _text(400, "Bad Request")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:
        return _text(501, "Transfer-Encoding is not supported")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        return _text(400, "Bad Content-Length")
    if not 0 <= length <= MAX_BODY:
        return _text(413, "Payload Too Large")
    path, _, query = target.partition("?")
    return RequestHead(method, path, query, version, headers, length)


def render(answer: Answer, close: bool) -> bytes:
    """One HTTP/1.1 response, ``Content-Length`` framed."""
    status, headers, body = answer
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Unknown"
    lines = [f"HTTP/1.1 {status} {phrase}", f"Content-Length: {len(body)}", "Server: blotter-sim"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def rest_connection(api: RestApi) -> type[ServerConnection]:
    """A ``websockets`` server connection class that also answers REST, for
    ``serve(..., create_connection=rest_connection(api))``: REST on the WebSocket's port,
    as the exchange has it.

    Why not ``process_request``: websockets' request parser refuses any request with a
    body (``unsupported request body``), so the DELETE endpoints never reach it. This
    class looks at the first request's head itself: with ``Upgrade: websocket`` every byte
    goes to websockets unchanged; otherwise it reads the body, answers through
    :meth:`RestApi.answer` (faults included) and closes the connection (``Connection:
    close``: the opening-handshake timeout would otherwise cut a kept-alive connection).
    websockets sees a connection that closed before any request and ends it quietly."""

    class RestOrWebSocket(ServerConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head = bytearray()
            self._mode: str | None = None  # None: undecided; "ws"; "rest"

        def data_received(self, data: bytes) -> None:
            if self._mode == "ws":
                super().data_received(data)
                return
            if self._mode == "rest":
                return  # one request per connection; anything more is ignored
            self._head += data
            if not self._head[:1].isupper():
                # Not an HTTP request (a TLS ClientHello on a plain port, noise): websockets
                # answers it exactly as it would without REST on the port.
                self._mode = "ws"
                buffered, self._head = bytes(self._head), bytearray()
                super().data_received(buffered)
                return
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head) > MAX_HEAD:
                    self._reply(_text(431, "Request Header Fields Too Large"))
                return
            parsed = parse_head(bytes(self._head[: end + 4]))
            if isinstance(parsed, RequestHead) and parsed.is_upgrade:
                self._mode = "ws"
                buffered, self._head = bytes(self._head), bytearray()
                super().data_received(buffered)
                return
            if not isinstance(parsed, RequestHead):
                self._reply(parsed)
                return
            if len(self._head) < end + 4 + parsed.length:
                return  # the body is still coming
            self._mode = "rest"
            body = bytes(self._head[end + 4 : end + 4 + parsed.length])
            if api.faults.drop_connections:
                api._record(parsed.method, parsed.path, parsed.query, parsed.headers, body)
                self.transport.abort()
                return
            task = self.loop.create_task(api.answer(parsed.method, parsed.path, parsed.query, parsed.headers, body))
            task.add_done_callback(self._answered)

        def _answered(self, task: asyncio.Task[Answer]) -> None:
            if not task.cancelled() and task.exception() is None:
                self._reply(task.result())

        def _reply(self, answer: Answer) -> None:
            self._mode = "rest"
            if not self.transport.is_closing():
                self.transport.write(render(answer, close=True))
                self.transport.close()

    return RestOrWebSocket


async def serve_rest(
    api: RestApi, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
) -> RestServer:
    """Start serving ``api`` on ``host:port`` (0: any free port) and return the running server."""
    server = RestServer(api, host, port, ssl_context)
    await server.come_up()
    return server
