"""The exchange's private REST API (futures v2), sans I/O: sign, build, parse.

Everything here is pure: a :class:`RestRequest` says what to send (method, path,
query, JSON body) and which path to sign; :func:`signed_headers` adds the
authentication headers for one moment; the ``parse_*`` functions turn a reply's
bytes into typed models. The HTTP client is :mod:`blotter.net.rest`, the simulator's
side :mod:`blotter.sim.rest`.

Facts from ``ADDENDUM.md`` §1–§3 (the reference where it differs from PROTOCOL.md):

- **Signing** (§1.3): ``base64(HMAC-SHA256(key, "<timestamp>+<api-path>"))`` where the
  api-path is the URL path after ``/api/pro/`` — no account group, no query, no body.
  The same timestamp goes into ``x-auth-timestamp``; the server refuses one more than
  30 s away from its clock. Place and cancel share ``v2/futures/order``; only the
  method tells them apart.
- **Key form** (§1.4): every REST example in the docs uses the secret's raw UTF-8
  bytes, the official demo base64-decodes it; no doc says which the server wants, so
  both are selectable (:data:`~blotter.protocol.signing.SecretEncoding`).
- **Parameters** (§1.6): GET endpoints take a query string, DELETE endpoints a JSON body.
- **Errors** (§2.11): a non-zero ``code`` can arrive with HTTP 200; an error carries
  top-level ``reason`` and ``message`` (and, for a batch, a per-order ``info`` list).

Strings from the wire are data: they are kept as they came and never put into an
exception's message here (the net layer words messages through ``core.text.safe``).
Amounts are :class:`~decimal.Decimal` parsed from the exchange's exact text (JSON
numbers are read as Decimal too, never through float).
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlencode

from annotated_types import Ge
from pydantic import AliasChoices, AllowInfNan, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .errors import ERROR_CODES, ErrorCode, code_text, is_auth_code
from .messages import CANCELED, FILLED, REJECTED, Order
from .signing import SecretEncoding, now_ms, sign_message

__all__ = [
    "ACCOUNT_INFO",
    "API_PREFIX",
    "BATCH_CANCEL_MAX",
    "ERROR_CODES",
    "ORDER_STATUS_MAX_IDS",
    "THRESHOLDS",
    "WS_KINDS",
    "WS_THRESHOLDS",
    "AccountInfo",
    "BatchCancelItem",
    "BatchCancelReply",
    "CancelAllReply",
    "CancelItem",
    "Collateral",
    "ContractPosition",
    "ErrorCode",
    "ItemError",
    "OrderActionReply",
    "OrderListReply",
    "Positions",
    "RequestCounter",
    "RestError",
    "RestFormatError",
    "RestInputError",
    "RestOrder",
    "RestRefusal",
    "RestRequest",
    "RiskLimitInfo",
    "Threshold",
    "Usage",
    "account_info",
    "api_path_of",
    "batch_cancel",
    "batch_cancel_chunks",
    "cancel_all",
    "cancel_order",
    "code_text",
    "decode",
    "is_auth_code",
    "new_cancel_id",
    "open_orders",
    "order_hist_current",
    "order_status",
    "order_status_chunks",
    "parse_account_info",
    "parse_balance_history",
    "parse_batch_cancel",
    "parse_cancel_all",
    "parse_order_action",
    "parse_order_list",
    "parse_order_status",
    "parse_position",
    "parse_risk_limit_info",
    "position",
    "prehash",
    "refusal_of",
    "signature",
    "signed_headers",
    "ws_kind",
]

API_PREFIX = "/api/pro/"
"""Every private path is ``/<grp>/api/pro/<api-path>`` (account info: ``/api/pro/<api-path>``)."""

ORDER_STATUS = "v2/futures/order/status"
ORDER_HIST_CURRENT = "v2/futures/order/hist/current"
ORDER_OPEN = "v2/futures/order/open"
ORDER = "v2/futures/order"
ORDER_ALL = "v2/futures/order/all"
ORDER_BATCH = "v2/futures/order/batch"
POSITION = "v2/futures/position"
ACCOUNT_INFO = "v2/account/info"

BATCH_CANCEL_MAX = 10
"""§2.7: "You may submit up to 10 orders to cancel at a time. Server will respond with
error if you submit more than 10 orders.\""""

ORDER_STATUS_MAX_IDS = 10
"""§2.2 does not document a maximum number of ids per status call. The client asks for at
most this many per call (the batch-cancel cap, the only documented per-call cap)."""

CANCEL_ID_MIN, CANCEL_ID_MAX = 9, 32
"""§2.5: the cancel ``id`` is ">=9 chars (letter and digit number only)". No maximum is
documented; 32 is the order-id length, and the WebSocket refuses longer client ids."""

_ALNUM = string.ascii_letters + string.digits
_CANCEL_ID = re.compile(r"^[A-Za-z0-9]+$")
_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_/.]{0,31}$")
_ORDER_ID = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")


# --- errors --------------------------------------------------------------------------------------------------


class RestError(Exception):
    """Base of every error this module raises. Messages never carry a secret, and
    never carry wire text (see the module docstring)."""


class RestInputError(RestError, ValueError):
    """A request the blotter will not build (an order id with a comma, 11 cancels in one
    batch...). The message is one line saying what to do."""


class RestFormatError(RestError):
    """A reply that is not the documented shape (not JSON, a field of the wrong type).
    ``body`` keeps the first bytes received, as data."""

    def __init__(self, what: str, body: bytes = b"") -> None:
        super().__init__(f"the exchange's REST reply is not the documented shape: {what}")
        self.body = body[:512]


@dataclass(frozen=True)
class ItemError:
    """One order's error in a batch error's ``info`` list (§2.11)."""

    code: int | None
    reason: str
    message: str
    request_id: str
    symbol: str


class RestRefusal(RestError):
    """The exchange answered with a non-zero ``code`` (§2.11).

    ``reason``, ``message`` and ``items`` are the exchange's text, as data: show them
    only through the one sanitiser. ``str(refusal)`` holds the code and this module's
    readable wording of it (:func:`code_text`), nothing from the wire."""

    def __init__(
        self,
        code: int | None,
        reason: str = "",
        message: str = "",
        action: str = "",
        items: tuple[ItemError, ...] = (),
        http_status: int | None = None,
    ) -> None:
        self.code = code
        self.reason = reason
        self.message = message
        self.action = action
        self.items = items
        self.http_status = http_status
        label = "no code" if code is None else str(code)
        super().__init__(f"the exchange refused the request: {label} ({code_text(code)})")

    @property
    def is_auth(self) -> bool:
        """True if the exchange refused the credentials (not the request)."""
        return is_auth_code(self.code)


# --- signing (§1.2–§1.4) ------------------------------------------------------------------------------------------


def prehash(timestamp_ms: int, api_path: str) -> str:
    """``"<timestamp>+<api-path>"``, exactly as §1.3 prints it."""
    return f"{timestamp_ms}+{api_path}"


def signature(secret: str, timestamp_ms: int, api_path: str, encoding: SecretEncoding) -> str:
    """The ``x-auth-signature`` for ``api_path`` at ``timestamp_ms`` (raises :class:`SigningError`,
    secret-free, if the secret cannot be used in the chosen key form)."""
    return sign_message(secret, prehash(timestamp_ms, api_path), encoding)


# --- requests (§2) -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestRequest:
    """One REST call, not yet signed.

    ``api_path`` is what is signed; :attr:`path` is what goes on the request line.
    ``kind`` names the call for the rate counter; ``emergency`` calls (cancels) are never
    held back by the client's own housekeeping."""

    method: Literal["GET", "DELETE"]
    api_path: str
    account_group: int | None
    kind: str
    query: tuple[tuple[str, str], ...] = ()
    body: Mapping[str, Any] | None = None
    emergency: bool = False

    @property
    def path(self) -> str:
        if self.account_group is None:
            return f"{API_PREFIX}{self.api_path}"
        return f"/{self.account_group}{API_PREFIX}{self.api_path}"

    @property
    def target(self) -> str:
        """Path and query string, as on the request line."""
        return f"{self.path}?{urlencode(self.query)}" if self.query else self.path

    def body_bytes(self) -> bytes | None:
        if self.body is None:
            return None
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8")


def signed_headers(
    request: RestRequest, api_key: str, secret: str, encoding: SecretEncoding, timestamp_ms: int | None = None
) -> dict[str, str]:
    """The headers of §1.2 for ``request`` at ``timestamp_ms`` (now if None): ``x-auth-key``,
    ``x-auth-timestamp`` (the same value that is signed), ``x-auth-signature``, and
    ``Accept`` / ``Content-Type`` as the docs' curl example sends them."""
    t = now_ms() if timestamp_ms is None else timestamp_ms
    headers = {
        "Accept": "application/json",
        "x-auth-key": api_key,
        "x-auth-timestamp": str(t),
        "x-auth-signature": signature(secret, t, request.api_path, encoding),
    }
    if request.body is not None:
        headers["Content-Type"] = "application/json"
    return headers


def api_path_of(path: str) -> str | None:
    """The signed api-path of a request path: the part after ``/api/pro/`` (no group, no
    query), or None if the path has no ``/api/pro/``."""
    path = path.split("?", 1)[0]
    head, sep, tail = path.partition(API_PREFIX)
    if not sep:
        return None
    return tail


def _group(account_group: int) -> int:
    if isinstance(account_group, bool) or not isinstance(account_group, int) or account_group < 0:
        raise RestInputError("the account group must be a whole number, 0 or more (see your API key's account info)")
    return account_group


def _symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
        raise RestInputError("a symbol is letters, digits and '-', e.g. BTC-PERP")
    return symbol


def _order_id(order_id: str) -> str:
    if not isinstance(order_id, str) or not _ORDER_ID.match(order_id):
        raise RestInputError("an order id is 1-64 letters, digits, '-' or '_' (no commas or spaces)")
    return order_id


def _time(time_ms: int) -> int:
    if isinstance(time_ms, bool) or not isinstance(time_ms, int) or not 0 <= time_ms < 2**63:
        raise RestInputError("time must be UTC milliseconds since the epoch")
    return time_ms


def _cancel_id(request_id: str) -> str:
    if (
        not isinstance(request_id, str)
        or not CANCEL_ID_MIN <= len(request_id) <= CANCEL_ID_MAX
        or not _CANCEL_ID.match(request_id)
    ):
        raise RestInputError(
            f"a REST cancel id is {CANCEL_ID_MIN}-{CANCEL_ID_MAX} letters and digits only (the exchange's rule)"
        )
    return request_id


def new_cancel_id(prefix: str = "rc") -> str:
    """A fresh cancel ``id``: letters and digits only, 20 characters (§2.5 wants >= 9)."""
    head = "".join(c for c in prefix if c in _ALNUM)[:8]
    return head + "".join(secrets.choice(_ALNUM) for _ in range(20 - len(head)))


def order_status(account_group: int, order_ids: Sequence[str]) -> RestRequest:
    """``GET /<grp>/api/pro/v2/futures/order/status?orderId=a,b`` for 1 to
    :data:`ORDER_STATUS_MAX_IDS` ids (use :func:`order_status_chunks` for more)."""
    ids = [_order_id(o) for o in order_ids]
    if not ids:
        raise RestInputError("order status needs at least one order id")
    if len(ids) > ORDER_STATUS_MAX_IDS:
        raise RestInputError(f"ask for at most {ORDER_STATUS_MAX_IDS} order ids per status call")
    return RestRequest("GET", ORDER_STATUS, _group(account_group), "order_status", (("orderId", ",".join(ids)),))


def order_status_chunks(account_group: int, order_ids: Sequence[str]) -> list[RestRequest]:
    """Status calls for any number of ids, :data:`ORDER_STATUS_MAX_IDS` per call, duplicates asked once."""
    ids = list(dict.fromkeys(order_ids))
    step = ORDER_STATUS_MAX_IDS
    return [order_status(account_group, ids[i : i + step]) for i in range(0, len(ids), step)]


def order_hist_current(
    account_group: int, symbol: str | None = None, n: int | None = None, executed_only: bool | None = None
) -> RestRequest:
    """``GET .../order/hist/current`` with the optional ``symbol``, ``n``, ``executedOnly`` (§2.3).
    ``executedOnly`` is written ``True``/``False``, as the official demo sends it."""
    query: list[tuple[str, str]] = []
    if symbol is not None:
        query.append(("symbol", _symbol(symbol)))
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise RestInputError("n (the number of orders) must be a whole number, 1 or more")
        query.append(("n", str(n)))
    if executed_only is not None:
        query.append(("executedOnly", "True" if executed_only else "False"))
    return RestRequest("GET", ORDER_HIST_CURRENT, _group(account_group), "order_hist_current", tuple(query))


def open_orders(account_group: int, symbol: str | None = None) -> RestRequest:
    """``GET .../order/open``; ``symbol`` is not documented but the official demo sends it (§2.4)."""
    query = (("symbol", _symbol(symbol)),) if symbol is not None else ()
    return RestRequest("GET", ORDER_OPEN, _group(account_group), "open_orders", query)


def position(account_group: int) -> RestRequest:
    """``GET .../futures/position`` (§2.8)."""
    return RestRequest("GET", POSITION, _group(account_group), "position")


def account_info() -> RestRequest:
    """``GET /api/pro/v2/account/info``: no account group in the path (§2.1)."""
    return RestRequest("GET", ACCOUNT_INFO, None, "account_info")


@dataclass(frozen=True)
class CancelItem:
    """One order to cancel: its id and symbol, the request ``id`` to echo, and ``time``."""

    order_id: str
    symbol: str
    request_id: str = field(default_factory=new_cancel_id)
    time_ms: int = field(default_factory=now_ms)

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": _cancel_id(self.request_id),
            "orderId": _order_id(self.order_id),
            "symbol": _symbol(self.symbol),
            "time": _time(self.time_ms),
        }


def cancel_order(account_group: int, item: CancelItem) -> RestRequest:
    """``DELETE /<grp>/api/pro/v2/futures/order`` with ``{id, orderId, symbol, time}`` (§2.5);
    ``respInst`` is left to its documented default, ``ACK``."""
    return RestRequest("DELETE", ORDER, _group(account_group), "cancel_order", body=item.to_wire(), emergency=True)


def cancel_all(account_group: int, symbol: str | None = None) -> RestRequest:
    """``DELETE .../order/all`` with ``{"symbol": ...}`` or ``{}`` for every symbol (§2.6)."""
    body = {"symbol": _symbol(symbol)} if symbol is not None else {}
    return RestRequest("DELETE", ORDER_ALL, _group(account_group), "cancel_all", body=body, emergency=True)


def batch_cancel(account_group: int, items: Sequence[CancelItem]) -> RestRequest:
    """``DELETE .../order/batch`` with ``{"orders": [...]}``: 1 to 10 items, all or nothing (§2.7)."""
    if not items:
        raise RestInputError("a batch cancel needs at least one order")
    if len(items) > BATCH_CANCEL_MAX:
        raise RestInputError(f"a batch cancel takes at most {BATCH_CANCEL_MAX} orders; split it (batch_cancel_chunks)")
    body = {"orders": [item.to_wire() for item in items]}
    return RestRequest("DELETE", ORDER_BATCH, _group(account_group), "batch_cancel", body=body, emergency=True)


def batch_cancel_chunks(account_group: int, items: Sequence[CancelItem]) -> list[RestRequest]:
    """Batch cancels of at most :data:`BATCH_CANCEL_MAX` items each, in order."""
    step = BATCH_CANCEL_MAX
    return [batch_cancel(account_group, items[i : i + step]) for i in range(0, len(items), step)]


# --- rate limits (§3.6) ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """Messages per minute: at ``level1`` the exchange ignores the type for 15 minutes, at
    ``level2`` it kills the session and bans the IP for 15 minutes (§3.6). ``key`` is the
    documented threshold key it is counted against."""

    key: str
    level1: int
    level2: int


THRESHOLDS: dict[str, Threshold] = {
    "cancel_order": Threshold("cancel_order", 8000, 10000),
    "cancel_all": Threshold("cancel_all", 8000, 10000),
    "batch_cancel": Threshold("batch_cancel_order", 10000, 10000),
    "open_orders": Threshold("futures_open_orders", 10000, 10000),
}
"""The documented thresholds are the WebSocket's (§3.6); no REST limit is published for the
order, position or account endpoints. **Inference:** each REST call counts against the
WebSocket key of the same action. Calls with no such key (status, history, position,
account info) have no documented threshold; a caller can give its own."""


WS_KINDS: dict[str, str] = {
    "auth": "admin",
    "ping": "admin",
    "pong": "admin",
    "sub": "sub",
    "unsub": "sub",
    "cancel-order": "cancel_order",
    "cancel-all": "cancel_all",
    "place-order": "place_order",
    "futures-open-orders": "open_orders",
    "futures-account-snapshot": "account_snapshot",
}
"""WebSocket request (``op`` or ``action``) -> the kind it is counted as. The documented
groups share one count ("All the operations fall into same op/req group will share a
threshold", §3.6): ``auth``/``ping``/``pong`` are one kind, ``sub``/``unsub`` another.
The open-orders query and REST ``order/open`` are one kind, as are the cancels of both
roads (**inference**, as for :data:`THRESHOLDS`: counting them together is the cautious side)."""

WS_THRESHOLDS: dict[str, Threshold] = {
    **THRESHOLDS,
    "admin": Threshold("auth/ping/pong", 800, 1000),
    "sub": Threshold("sub/unsub", 150, 200),
    "place_order": Threshold("place_order", 8000, 10000),
    "account_snapshot": Threshold("futures_account_snapshot", 10000, 10000),
}
"""Every documented threshold of §3.6 the blotter's own requests fall under, by kind
(:data:`WS_KINDS` for the WebSocket, :attr:`RestRequest.kind` for REST)."""


def ws_kind(action: str) -> str:
    """The kind a WebSocket request is counted as (its action when not listed)."""
    return WS_KINDS.get(action, action)


@dataclass(frozen=True)
class Usage:
    """One message type's use: calls in the last minute, and its thresholds (None: none documented)."""

    kind: str
    last_minute: int
    level1: int | None
    level2: int | None

    @property
    def share(self) -> float | None:
        """``last_minute / level1`` (None without a threshold)."""
        return None if not self.level1 else self.last_minute / self.level1


class RequestCounter:
    """Requests per message type in a sliding 60-second window, against thresholds.

    Pure: the caller passes the time (monotonic seconds). :meth:`allows` says whether a
    non-emergency request may go now: not once its type has used ``hold_at`` of its level-1
    threshold. Emergency requests are always allowed — the cancel never waits for the
    blotter's own housekeeping — and are counted like the rest."""

    WINDOW = 60.0

    def __init__(self, thresholds: Mapping[str, Threshold] | None = None, hold_at: float = 0.8) -> None:
        if not 0 < hold_at <= 1:
            raise RestInputError("hold_at is a share of the level-1 threshold, above 0 and at most 1")
        self.thresholds = dict(THRESHOLDS if thresholds is None else thresholds)
        self.hold_at = hold_at
        self._times: dict[str, deque[float]] = {}
        self.totals: dict[str, int] = {}

    def _window(self, kind: str, now: float) -> deque[float]:
        times = self._times.setdefault(kind, deque())
        while times and times[0] <= now - self.WINDOW:
            times.popleft()
        return times

    def record(self, kind: str, now: float) -> None:
        self._window(kind, now).append(now)
        self.totals[kind] = self.totals.get(kind, 0) + 1

    def count(self, kind: str, now: float) -> int:
        return len(self._window(kind, now))

    def allows(self, kind: str, now: float, emergency: bool = False) -> bool:
        if emergency:
            return True
        threshold = self.thresholds.get(kind)
        if threshold is None:
            return True
        return self.count(kind, now) < threshold.level1 * self.hold_at

    def usage(self, now: float) -> dict[str, Usage]:
        """Every type counted so far or with a threshold, by kind."""
        kinds = sorted(set(self._times) | set(self.thresholds))
        result: dict[str, Usage] = {}
        for kind in kinds:
            t = self.thresholds.get(kind)
            result[kind] = Usage(kind, self.count(kind, now), t.level1 if t else None, t.level2 if t else None)
        return result


# --- replies ----------------------------------------------------------------------------------------------------------


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and value.strip() == "":
        return None
    return value


def _text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    raise ValueError("expected text")


def _exact(value: Any) -> Any:
    """An amount: the exchange's text, or a JSON number (already a Decimal or int); never a float."""
    value = _blank_to_none(value)
    if isinstance(value, float):
        raise ValueError("an amount must be exact text, not a binary float")
    return value


Amount = Annotated[Annotated[Decimal, AllowInfNan(False)] | None, BeforeValidator(_exact)]
"""An exact decimal (signed: positions, costs and fees can be negative; the docs'
``markPrice`` sample is ``"-1"``), or absent / blank."""
Price = Annotated[Annotated[Decimal, Ge(0), AllowInfNan(False)] | None, BeforeValidator(_exact)]
"""A non-negative exact decimal, or absent / blank."""
Text = Annotated[str | None, BeforeValidator(_text)]
Short = Annotated[str, Field(min_length=1, max_length=64)]
OptShort = Annotated[Annotated[str, Field(max_length=64)] | None, BeforeValidator(_text)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


def _f(*names: str) -> Any:
    return Field(None, validation_alias=AliasChoices(*names))


class RestOrder(_Model):
    """The long order record (§2.9) of status, history, open-orders and cancel replies.

    Only ``orderId`` is required: the documented multi-id status sample elides every other
    field, and the open-orders sample lacks ``execInst`` and the ``pos*`` fields. An absent
    field is None (or ``""`` for text the exchange writes blank)."""

    order_id: Short = Field(validation_alias=AliasChoices("orderId", "order_id"))
    account_category: OptShort = _f("ac", "account_category")
    account_id: OptShort = _f("accountId", "account_id")
    seq_num: int | None = _f("seqNum", "seq_num")
    create_time_ms: int | None = _f("time", "create_time_ms")
    order_type: OptShort = _f("orderType", "order_type")
    exec_inst: OptShort = _f("execInst", "exec_inst")
    side: OptShort = _f("side")
    symbol: OptShort = _f("symbol")
    price: Price = _f("price", "orderPrice")
    qty: Price = _f("orderQty", "qty")
    stop_price: Price = _f("stopPrice", "stop_price")
    stop_by: OptShort = _f("stopBy", "stop_by")
    status: OptShort = _f("status")
    exec_time_ms: int | None = _f("lastExecTime", "exec_time_ms")
    last_price: Price = _f("lastPx", "last_price")
    last_qty: Price = _f("lastQty", "last_qty")
    avg_price: Price = _f("avgFilledPx", "avg_price")
    filled_qty: Price = _f("cumFilledQty", "filled_qty")
    fee: Amount = _f("fee")
    cum_fee: Amount = _f("cumFee", "cum_fee")
    fee_asset: OptShort = _f("feeAsset", "fee_asset")
    error_code: Text = _f("errorCode", "error_code")
    pos_stop_loss_price: Amount = _f("posStopLossPrice", "pos_stop_loss_price")
    pos_stop_loss_trigger: OptShort = _f("posStopLossTrigger", "pos_stop_loss_trigger")
    pos_take_profit_price: Amount = _f("posTakeProfitPrice", "pos_take_profit_price")
    pos_take_profit_trigger: OptShort = _f("posTakeProfitTrigger", "pos_take_profit_trigger")
    liquidity_ind: OptShort = _f("liquidityInd", "liquidity_ind")

    @property
    def is_final(self) -> bool:
        """Filled, Canceled or Rejected: the record is the order's end."""
        return self.status in (FILLED, CANCELED, REJECTED)

    @property
    def is_complete(self) -> bool:
        """True if the record says enough to show the order (the elided sample does not)."""
        return all(v is not None for v in (self.symbol, self.side, self.status))


class OrderListReply(_Model):
    """Status (one or several ids), current history, open orders: a list of records.

    ``single`` is True when ``data`` was one object (status of a single id, §2.2)."""

    code: int
    account_id: OptShort = _f("accountId", "account_id")
    account_category: OptShort = _f("ac", "account_category")
    orders: tuple[RestOrder, ...] = ()
    single: bool = False


class ActionMeta(_Model):
    action: OptShort = None
    request_id: OptShort = _f("id", "request_id")
    resp_inst: OptShort = _f("respInst", "resp_inst")


class OrderActionReply(_Model):
    """Cancel one order (and place order): ``data.meta`` and ``data.order`` (§2.5).

    In the default ACK mode ``order.status`` is the order's state when the cancel was
    accepted (live capture: ``New``), not its outcome; the outcome comes later (§2.10)."""

    code: int
    meta: ActionMeta
    order: RestOrder | None = None


class CancelAllReply(_Model):
    """``{"code": 0}`` as documented, or the live form with ``data.action`` and ``data.info.symbol`` (§2.6).
    It lists no cancelled orders."""

    code: int
    account_id: OptShort = None
    action: OptShort = None
    symbol: OptShort = None


class BatchCancelItem(_Model):
    request_id: OptShort = _f("id", "request_id")
    order_id: OptShort = _f("orderId", "order_id")
    order_type: OptShort = _f("orderType", "order_type")
    symbol: OptShort = None
    timestamp_ms: int | None = _f("timestamp", "timestamp_ms")


class BatchCancelReply(_Model):
    """Batch cancel ACK (§2.7): echoes of each item, no per-order outcome."""

    code: int
    meta: ActionMeta
    orders: tuple[BatchCancelItem, ...] = ()


class Collateral(_Model):
    asset: Short
    balance: Amount = None
    discount_factor: Amount = _f("discountFactor", "discount_factor")
    reference_price: Amount = _f("referencePrice", "reference_price")


class ContractPosition(_Model):
    """One contract of ``GET futures/position`` (§2.8), every documented field."""

    symbol: Short
    side: OptShort = None
    position: Amount = None
    reference_cost: Amount = _f("referenceCost", "reference_cost")
    unrealized_pnl: Amount = _f("unrealizedPnl", "unrealized_pnl")
    realized_pnl: Amount = _f("realizedPnl", "realized_pnl")
    avg_open_price: Amount = _f("avgOpenPrice", "avg_open_price")
    margin_type: OptShort = _f("marginType", "margin_type")
    isolated_margin: Amount = _f("isolatedMargin", "isolated_margin")
    leverage: Amount = None
    take_profit_price: Amount = _f("takeProfitPrice", "take_profit_price")
    take_profit_trigger: OptShort = _f("takeProfitTrigger", "take_profit_trigger")
    stop_loss_price: Amount = _f("stopLossPrice", "stop_loss_price")
    stop_loss_trigger: OptShort = _f("stopLossTrigger", "stop_loss_trigger")
    buy_open_order_notional: Amount = _f("buyOpenOrderNotional", "buy_open_order_notional")
    sell_open_order_notional: Amount = _f("sellOpenOrderNotional", "sell_open_order_notional")
    index_price: Amount = _f("indexPrice", "index_price")
    mark_price: Amount = _f("markPrice", "mark_price")


class Positions(_Model):
    code: int
    account_category: OptShort = _f("ac", "account_category")
    account_id: OptShort = _f("accountId", "account_id")
    collaterals: tuple[Collateral, ...] = ()
    contracts: tuple[ContractPosition, ...] = ()


class AccountInfo(_Model):
    """``GET /api/pro/v2/account/info`` (§2.1): where the account group comes from."""

    code: int
    account_group: int = Field(validation_alias=AliasChoices("accountGroup", "account_group"), ge=0)
    email: Text = None
    expire_time_ms: int | None = _f("expireTime", "expire_time_ms")
    allowed_ips: tuple[str, ...] = Field((), validation_alias=AliasChoices("allowedIps", "allowed_ips"))
    cash_accounts: tuple[str, ...] = Field((), validation_alias=AliasChoices("cashAccount", "cash_accounts"))
    margin_accounts: tuple[str, ...] = Field((), validation_alias=AliasChoices("marginAccount", "margin_accounts"))
    futures_accounts: tuple[str, ...] = Field((), validation_alias=AliasChoices("futuresAccount", "futures_accounts"))
    user_uid: OptShort = _f("userUID", "user_uid")
    trade_permission: bool | None = _f("tradePermission", "trade_permission")
    transfer_permission: bool | None = _f("transferPermission", "transfer_permission")
    view_permission: bool | None = _f("viewPermission", "view_permission")
    limit_quota: int | None = _f("limitQuota", "limit_quota")


class WsBanStatus(_Model):
    is_banned: bool | None = _f("isBanned", "is_banned")
    banned_until_ms: int | None = _f("bannedUntil", "banned_until_ms")
    violation_code: int | None = _f("violationCode", "violation_code")
    reason: Text = None


class RiskLimitInfo(_Model):
    """``GET /api/pro/v2/risk-limit-info`` (§3.6), current (v2) or deprecated (v1) shape.
    ``level1``/``level2`` map each threshold key to messages per minute."""

    code: int
    ip: Text = None
    status: WsBanStatus
    level1: dict[str, int] = {}
    level2: dict[str, int] = {}
    max_sessions_per_ip_account_group: int | None = None
    max_sessions_per_ip_total: int | None = None
    window_minutes: int | None = None
    max_requests: int | None = None


class BalanceEntry(_Model):
    asset: Short
    cur_balance: Amount = _f("curBalance", "cur_balance")
    delta_qty: Amount = _f("deltaQty", "delta_qty")
    data_type: OptShort = _f("dataType", "data_type")


class BalanceEvent(_Model):
    sn: int | None = None
    transact_time_ms: int | None = _f("transactTime", "transact_time_ms")
    event_type: OptShort = _f("eventType", "event_type")
    order_id: OptShort = _f("orderId", "order_id")
    order_type: OptShort = _f("orderType", "order_type")
    side: OptShort = None
    liquidity_ind: OptShort = _f("liquidityInd", "liquidity_ind")
    data: tuple[BalanceEntry, ...] = ()


class BalanceHistory(_Model):
    """``api/pro/data/v1/futures/balance/history`` (the sample the docs give; 8 calls a minute)."""

    account_id: OptShort = None
    account_category: OptShort = None
    balance: tuple[BalanceEvent, ...] = ()
    order: tuple[BalanceEvent, ...] = ()


# --- parsing --------------------------------------------------------------------------------------------------------


M = TypeVar("M", bound=BaseModel)


def decode(body: bytes) -> Any:
    """A reply body as JSON, numbers as exact Decimal; :class:`RestFormatError` if it is not JSON."""
    try:
        return json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RestFormatError("not JSON", body) from None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,12}", value.strip()):
        return int(value)
    return None


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)[:512]


def refusal_of(data: Any, http_status: int | None = None) -> RestRefusal | None:
    """The :class:`RestRefusal` a decoded reply stands for, or None if it is a success.

    A success has ``code`` 0 (as a number or ``"0"``). Any other ``code``, or a ``message``
    with no ``code`` (ccxt's rule, §2.11), is a refusal; its ``info`` list (batch errors)
    becomes :attr:`RestRefusal.items`."""
    if not isinstance(data, dict):
        return None
    code_raw = data.get("code")
    code = _int_or_none(code_raw)
    if code == 0:
        return None
    if code_raw is None and "message" not in data and "reason" not in data:
        return None
    items: list[ItemError] = []
    info = data.get("info")
    if isinstance(info, list):
        for entry in info[:100]:
            if isinstance(entry, dict):
                items.append(
                    ItemError(
                        code=_int_or_none(entry.get("code")),
                        reason=_str(entry.get("reason")),
                        message=_str(entry.get("message") or entry.get("errorMsg")),
                        request_id=_str(entry.get("id")),
                        symbol=_str(entry.get("symbol")),
                    )
                )
    message = data.get("message")
    if message is None and isinstance(info, dict):
        message = info.get("errorMsg") or info.get("message")
    if message is None:
        message = data.get("err")
    return RestRefusal(
        code,
        reason=_str(data.get("reason")),
        message=_str(message),
        action=_str(data.get("action")),
        items=tuple(items),
        http_status=http_status,
    )


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _checked(body: bytes) -> dict[str, Any]:
    data = decode(body)
    refusal = refusal_of(data)
    if refusal is not None:
        raise refusal
    if not isinstance(data, dict):
        raise RestFormatError("not a JSON object", body)
    if "code" not in data:
        raise RestFormatError("no code", body)
    return data


def _validate(model: type[M], value: Any, body: bytes) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        errors = exc.errors()
        if not errors:
            raise RestFormatError("invalid", body) from None
        where = ".".join(str(p) for p in errors[0]["loc"]) or "reply"
        raise RestFormatError(f"{where}: {errors[0]['msg']}", body) from None


def parse_order_status(body: bytes) -> OrderListReply:
    """``order/status``: ``data`` is one object for a single id, a list for several (§2.2)."""
    data = _checked(body)
    records = data.get("data")
    single = isinstance(records, dict)
    if single:
        records = [records]
    if not isinstance(records, list):
        raise RestFormatError("data is neither an order record nor a list", body)
    return _validate(
        OrderListReply,
        {
            "code": data["code"],
            "accountId": data.get("accountId"),
            "ac": data.get("ac"),
            "orders": records,
            "single": single,
        },
        body,
    )


def parse_order_list(body: bytes) -> OrderListReply:
    """``order/hist/current`` and ``order/open``: ``data`` is a list of records (§2.3, §2.4)."""
    data = _checked(body)
    records = data.get("data", [])
    if not isinstance(records, list):
        raise RestFormatError("data is not a list", body)
    return _validate(OrderListReply, {"code": data["code"], "orders": records}, body)


def parse_order_action(body: bytes) -> OrderActionReply:
    """Cancel one order (or place one): ``data.meta`` and ``data.order`` (§2.5)."""
    data = _checked(body)
    inner = data.get("data")
    if not isinstance(inner, dict) or not isinstance(inner.get("meta"), dict):
        raise RestFormatError("no data.meta", body)
    return _validate(OrderActionReply, {"code": data["code"], "meta": inner["meta"], "order": inner.get("order")}, body)


def parse_cancel_all(body: bytes) -> CancelAllReply:
    """``{"code":0}`` (documented) or the live form with ``data`` (§2.6)."""
    data = _checked(body)
    inner = data.get("data")
    if inner is None:
        inner = {}
    if not isinstance(inner, dict):
        raise RestFormatError("data is not an object", body)
    info = _obj(inner.get("info"))
    return _validate(
        CancelAllReply,
        {
            "code": data["code"],
            "account_id": inner.get("accountId"),
            "action": inner.get("action"),
            "symbol": info.get("symbol"),
        },
        body,
    )


def parse_batch_cancel(body: bytes) -> BatchCancelReply:
    """Batch cancel ACK: ``data.meta`` and ``data.orders`` (§2.7)."""
    data = _checked(body)
    inner = data.get("data")
    if not isinstance(inner, dict) or not isinstance(inner.get("meta"), dict):
        raise RestFormatError("no data.meta", body)
    return _validate(
        BatchCancelReply, {"code": data["code"], "meta": inner["meta"], "orders": inner.get("orders") or []}, body
    )


def _data_object(model: type[M], body: bytes) -> M:
    """A reply whose ``data`` is one object, read as ``model`` (with the reply's ``code``)."""
    data = _checked(body)
    inner = data.get("data")
    if not isinstance(inner, dict):
        raise RestFormatError("data is not an object", body)
    return _validate(model, {**inner, "code": data["code"]}, body)


def parse_position(body: bytes) -> Positions:
    """``futures/position``: collaterals and contracts (§2.8)."""
    return _data_object(Positions, body)


def parse_account_info(body: bytes) -> AccountInfo:
    """``account/info`` (§2.1)."""
    return _data_object(AccountInfo, body)


def parse_risk_limit_info(body: bytes) -> RiskLimitInfo:
    """``risk-limit-info``, current (v2) and deprecated (v1) forms (§3.6)."""
    data = _checked(body)
    inner = data.get("data")
    ws = inner.get("webSocket") if isinstance(inner, dict) else None
    if not isinstance(inner, dict) or not isinstance(ws, dict):
        raise RestFormatError("no data.webSocket", body)
    status = ws["status"] if isinstance(ws.get("status"), dict) else ws
    thresholds = _obj(ws.get("messageThreshold"))
    limits = _obj(ws.get("limits"))
    level1 = {**_obj(thresholds.get("level1OpThreshold")), **_obj(thresholds.get("level1ReqThreshold"))}
    level2 = {**_obj(thresholds.get("level2OpThreshold")), **_obj(thresholds.get("level2ReqThreshold"))}
    return _validate(
        RiskLimitInfo,
        {
            "code": data["code"],
            "ip": inner.get("ip"),
            "status": status,
            "level1": level1,
            "level2": level2,
            "max_sessions_per_ip_account_group": limits.get("maxWebSocketSessionsPerIpAccountGroup"),
            "max_sessions_per_ip_total": limits.get("maxWebSocketSessionsPerIpTotal", ws.get("maxSessionPerIp")),
            "window_minutes": ws.get("windowSizeInMinutes"),
            "max_requests": ws.get("maxNumRequests"),
        },
        body,
    )


def parse_balance_history(body: bytes) -> BalanceHistory:
    """The balance-history sample: ``meta``, ``balance`` and ``order`` event lists (no ``code``)."""
    data = decode(body)
    refusal = refusal_of(data)
    if refusal is not None:
        raise refusal
    if not isinstance(data, dict):
        raise RestFormatError("not a JSON object", body)
    meta = _obj(data.get("meta"))
    return _validate(
        BalanceHistory,
        {
            "account_id": meta.get("accountId"),
            "account_category": meta.get("ac"),
            "balance": data.get("balance") or [],
            "order": data.get("order") or [],
        },
        body,
    )


# --- REST records as the blotter's orders --------------------------------------------------------------------

_MAX_INT_DIGITS, _MAX_FRACTION_DIGITS = 24, 30
"""The bounds of an amount the blotter reads (see :mod:`blotter.protocol.messages`)."""


def _amount_text(value: Decimal | None) -> str | None:
    """An amount as plain decimal text, for :meth:`Order.read` to check like any wire
    amount. One outside the bounds is never formatted in full (``1e999999999`` would be
    a billion digits): it becomes text the reader refuses, so the order is UNREADABLE."""
    if value is None:
        return None
    if not value.is_finite():
        return "out-of-range"
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if value.adjusted() >= _MAX_INT_DIGITS or exponent < -_MAX_FRACTION_DIGITS:
        return "out-of-range"
    return format(value, "f")


def order_from_rest(record: RestOrder) -> Order:
    """The blotter's :class:`Order` for a REST long record (§2.9): the same fields, read by
    the same strict rules as a WebSocket record (:meth:`Order.read`), so what REST says and
    what the stream says fold into the store alike. A record the blotter cannot read is an
    UNREADABLE order, as on the stream; one that elides the fields a row needs (the
    documented multi-id status sample does) is unreadable too — check
    :attr:`RestOrder.is_complete` first where that matters."""
    wire: dict[str, Any] = {
        "orderId": record.order_id,
        "symbol": record.symbol,
        "side": record.side,
        "status": record.status,
        "orderType": record.order_type or "",
        "price": _amount_text(record.price),
        "orderQty": _amount_text(record.qty),
        "cumFilledQty": _amount_text(record.filled_qty),
        "avgFilledPx": _amount_text(record.avg_price),
        "stopPrice": _amount_text(record.stop_price),
        "lastPx": _amount_text(record.last_price),
        "lastQty": _amount_text(record.last_qty),
        "seqNum": record.seq_num,
        "lastExecTime": record.exec_time_ms,
        "time": record.create_time_ms,
        "accountId": record.account_id,
        "execInst": record.exec_inst,
        "fee": _amount_text(record.cum_fee if record.cum_fee is not None else record.fee),
        "feeAsset": record.fee_asset,
        "errorCode": record.error_code or None,
    }
    return Order.read({k: v for k, v in wire.items() if v is not None})
