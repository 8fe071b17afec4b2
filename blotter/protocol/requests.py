"""Outbound messages: what the blotter sends, and ``encode(request) -> str``.

Each request model knows its wire form (:meth:`to_wire`). Credentials in
:class:`Auth` are :class:`~pydantic.SecretStr`, so a repr, a log line or an
exception never shows them; only :func:`encode` reveals them, on the wire.
"""

from __future__ import annotations

import itertools
import re
import secrets
import string
from decimal import Decimal
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from .signing import now_ms

REQUEST_ID_RE = re.compile(r"^\w[\w\-]*\w$")
MAX_REQUEST_ID = 32

_ALPHABET = string.ascii_lowercase + string.digits
_PROCESS_TOKEN = "".join(secrets.choice(_ALPHABET) for _ in range(5))
_counter = itertools.count(1)


def new_request_id(prefix: str = "r") -> str:
    """A request id unique in this process (and, by a random per-process token,
    very likely across processes): ``<prefix>-<token>-<n>``, e.g. ``co-k3f9x-17``.

    Always matches ``^\\w[\\w\\-]*\\w$`` and is at most 32 characters."""
    prefix = re.sub(r"[^\w]", "", prefix)[:8] or "r"
    rid = f"{prefix}-{_PROCESS_TOKEN}-{next(_counter)}"
    assert REQUEST_ID_RE.match(rid) and len(rid) <= MAX_REQUEST_ID
    return rid


def valid_request_id(rid: str) -> bool:
    return len(rid) <= MAX_REQUEST_ID and REQUEST_ID_RE.match(rid) is not None


class Request(BaseModel):
    """Base of every outbound message."""

    model_config = ConfigDict(frozen=True)
    action: ClassVar[str] = ""

    def to_wire(self) -> dict[str, Any]:  # pragma: no cover - every subclass overrides
        raise NotImplementedError


def _rid(prefix: str) -> Any:
    return Field(default_factory=lambda: new_request_id(prefix))


class Auth(Request):
    action: ClassVar[str] = "auth"
    request_id: str = _rid("au")
    time_ms: int = Field(ge=0, lt=2**63)
    api_key: SecretStr
    signature: SecretStr

    def to_wire(self) -> dict[str, Any]:
        return {
            "op": "auth",
            "id": self.request_id,
            "t": self.time_ms,
            "key": self.api_key.get_secret_value(),
            "sig": self.signature.get_secret_value(),
        }


class Subscribe(Request):
    action: ClassVar[str] = "sub"
    request_id: str = _rid("sb")
    channel: str

    def to_wire(self) -> dict[str, Any]:
        return {"op": "sub", "id": self.request_id, "ch": self.channel}


class Unsubscribe(Request):
    action: ClassVar[str] = "unsub"
    request_id: str = _rid("us")
    channel: str

    def to_wire(self) -> dict[str, Any]:
        return {"op": "unsub", "id": self.request_id, "ch": self.channel}


class Ping(Request):
    action: ClassVar[str] = "ping"

    def to_wire(self) -> dict[str, Any]:
        return {"op": "ping"}


class PongReply(Request):
    """Our answer to the server's ping."""

    action: ClassVar[str] = "pong"

    def to_wire(self) -> dict[str, Any]:
        return {"op": "pong"}


class CancelOrder(Request):
    action: ClassVar[str] = "cancel-order"
    request_id: str = _rid("co")
    order_id: str
    symbol: str
    time_ms: int = Field(default_factory=now_ms, ge=0, lt=2**63)

    def to_wire(self) -> dict[str, Any]:
        return {
            "op": "req",
            "action": "cancel-order",
            "ac": "futures",
            "id": self.request_id,
            "args": {"time": self.time_ms, "orderId": self.order_id, "symbol": self.symbol},
        }


class CancelAll(Request):
    action: ClassVar[str] = "cancel-all"
    request_id: str = _rid("ca")
    symbol: str | None = None
    time_ms: int = Field(default_factory=now_ms, ge=0, lt=2**63)

    def to_wire(self) -> dict[str, Any]:
        args: dict[str, Any] = {"time": self.time_ms}
        if self.symbol:
            args["symbol"] = self.symbol
        return {"op": "req", "action": "cancel-all", "ac": "futures", "id": self.request_id, "args": args}


class OpenOrdersQuery(Request):
    action: ClassVar[str] = "futures-open-orders"
    request_id: str = _rid("oo")
    symbol: str | None = None
    time_ms: int = Field(default_factory=now_ms, ge=0, lt=2**63)

    def to_wire(self) -> dict[str, Any]:
        args: dict[str, Any] = {"time": self.time_ms}
        if self.symbol:
            args["symbol"] = self.symbol
        return {"op": "req", "action": "futures-open-orders", "ac": "futures", "id": self.request_id, "args": args}


class AccountSnapshotQuery(Request):
    action: ClassVar[str] = "futures-account-snapshot"
    request_id: str = _rid("as")

    def to_wire(self) -> dict[str, Any]:
        return {"op": "req", "action": "futures-account-snapshot", "ac": "futures", "id": self.request_id}


class PlaceOrder(Request):
    action: ClassVar[str] = "place-order"
    request_id: str = _rid("po")
    symbol: str
    side: str  # "buy" | "sell"
    qty: Decimal
    price: Decimal | None = None
    order_type: str = "limit"
    time_ms: int = Field(default_factory=now_ms, ge=0, lt=2**63)
    client_order_id: str | None = None
    post_only: bool = False
    time_in_force: str | None = None
    stop_price: Decimal | None = None
    exec_inst: str | None = None
    resp_inst: str = "ACK"

    def to_wire(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "time": self.time_ms,
            "symbol": self.symbol,
            "orderQty": str(self.qty),
            "orderType": self.order_type,
            "side": self.side,
            "postOnly": self.post_only,
            "respInst": self.resp_inst,
        }
        if self.price is not None:
            # ``orderPrice``: the REST parameter table (which the WebSocket page refers to),
            # the official demo and ccxt; only the WebSocket page's example says ``price``
            # (ADDENDUM §3.5)
            args["orderPrice"] = str(self.price)
        if self.client_order_id:
            args["id"] = self.client_order_id
        if self.time_in_force:
            args["timeInForce"] = self.time_in_force
        if self.stop_price is not None:
            args["stopPrice"] = str(self.stop_price)
        if self.exec_inst:
            args["execInst"] = self.exec_inst
        return {"op": "req", "action": "place-order", "ac": "futures", "id": self.request_id, "args": args}


def encode(request: Request) -> str:
    """The text frame for ``request``."""
    return orjson.dumps(request.to_wire()).decode("utf-8")


class RequestFormatError(ValueError):
    """A client frame that is not a well-formed request (used by the simulator)."""


def _decimal(value: Any, name: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except Exception:
        raise RequestFormatError(f"{name} is not a number") from None
    if not result.is_finite():
        raise RequestFormatError(f"{name} is not a finite number")
    return result


def request_from_wire(data: Any) -> Request:
    """The inverse of :meth:`Request.to_wire`: a decoded client frame as a request model.

    Raises :class:`RequestFormatError` with a one-line reason for anything else."""
    try:
        return _request_from_wire(data)
    except ValidationError as exc:  # a field of the wrong type (e.g. args.symbol: 5)
        first = exc.errors(include_input=False, include_url=False)[0]
        loc = ".".join(str(p) for p in first.get("loc", ())) or "request"
        raise RequestFormatError(f"{loc}: {first.get('msg', 'invalid')}") from None


def _request_from_wire(data: Any) -> Request:
    if not isinstance(data, dict):
        raise RequestFormatError("request is not a JSON object")
    op = data.get("op")
    rid = data.get("id")
    kw: dict[str, Any] = {"request_id": rid} if isinstance(rid, str) and rid else {}
    if op == "ping":
        return Ping()
    if op == "pong":
        return PongReply()
    if op == "auth":
        try:
            return Auth(time_ms=int(data["t"]), api_key=str(data["key"]), signature=str(data["sig"]), **kw)
        except (KeyError, TypeError, ValueError, OverflowError):
            raise RequestFormatError("auth needs t, key and sig") from None
    if op in ("sub", "unsub"):
        ch = data.get("ch")
        if not isinstance(ch, str) or not ch:
            raise RequestFormatError(f"{op} needs ch")
        return (Subscribe if op == "sub" else Unsubscribe)(channel=ch, **kw)
    if op != "req":
        raise RequestFormatError(f"unknown op {op!r}")
    action = data.get("action")
    args = data.get("args")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise RequestFormatError("args is not an object")
    if "time" in args:
        try:
            kw["time_ms"] = int(args["time"])
        except (TypeError, ValueError, OverflowError):
            raise RequestFormatError("args.time is not an integer") from None
    symbol = args.get("symbol") or None
    if action == "cancel-order":
        if not isinstance(args.get("orderId"), str) or not isinstance(args.get("symbol"), str):
            raise RequestFormatError("cancel-order needs args.orderId and args.symbol")
        return CancelOrder(order_id=args["orderId"], symbol=args["symbol"], **kw)
    if action == "cancel-all":
        return CancelAll(symbol=symbol, **kw)
    if action == "futures-open-orders":
        return OpenOrdersQuery(symbol=symbol, **kw)
    if action == "futures-account-snapshot":
        kw.pop("time_ms", None)
        return AccountSnapshotQuery(**kw)
    if action == "place-order":
        # both are documented (§3.5): the REST table's ``orderPrice`` (the parameters the
        # WebSocket page refers to) first, the WebSocket example's ``price`` otherwise
        price = args.get("orderPrice", args.get("price"))
        try:
            return PlaceOrder(
                symbol=str(args["symbol"]),
                side=str(args["side"]),
                qty=_decimal(args["orderQty"], "orderQty"),
                price=None if price in (None, "") else _decimal(price, "price"),
                order_type=str(args.get("orderType", "limit")),
                client_order_id=args.get("id"),
                post_only=bool(args.get("postOnly", False)),
                time_in_force=args.get("timeInForce"),
                stop_price=None if args.get("stopPrice") in (None, "") else _decimal(args["stopPrice"], "stopPrice"),
                exec_inst=args.get("execInst"),
                resp_inst=str(args.get("respInst", "ACK")),
                **kw,
            )
        except KeyError as exc:
            raise RequestFormatError(f"place-order needs args.{exc.args[0]}") from None
    raise RequestFormatError(f"unknown action {action!r}")
