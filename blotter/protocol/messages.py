"""Inbound messages: what the exchange sends, as typed, validated models.

Python names are readable (``filled_qty``); the wire names (``cfq`` on the order
channel, ``cumFilledQty`` in request replies) are aliases, so one model reads both
forms. Prices and quantities are :class:`~decimal.Decimal`, never float.

Every inbound field is treated as optional unless an order cannot be shown without
it; unknown fields are ignored. :func:`blotter.protocol.parse.parse` turns any frame
into one of the models below and never raises.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from annotated_types import Ge
from pydantic import AliasChoices, AllowInfNan, BaseModel, BeforeValidator, ConfigDict, Field

# Order status values (the exchange's words).
NEW = "New"
PARTIALLY_FILLED = "PartiallyFilled"
FILLED = "Filled"
CANCELED = "Canceled"
REJECTED = "Rejected"
PENDING_NEW = "PendingNew"
FINAL_STATUSES = frozenset({FILLED, CANCELED, REJECTED})
OPEN_STATUSES = frozenset({NEW, PARTIALLY_FILLED, PENDING_NEW})

Dialect = Literal["current", "2021"]


def _blank_to_none(value: Any) -> Any:
    """The exchange writes an absent number as ``""`` in places; treat it as absent."""
    if isinstance(value, str) and value.strip() == "":
        return None
    return value


def _to_text(value: Any) -> Any:
    """Free text from the exchange: keep strings, render numbers and other JSON as text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return str(value)
    return repr(value)


# The constraints sit on the Decimal itself, not on ``Decimal | None``: applied to the
# optional type they would also be applied to None (an absent or blank number), and fail.
Amount = Annotated[Annotated[Decimal, Ge(0), AllowInfNan(False)] | None, BeforeValidator(_blank_to_none)]
"""A non-negative exact decimal, or absent."""
SignedAmount = Annotated[Annotated[Decimal, AllowInfNan(False)] | None, BeforeValidator(_blank_to_none)]
"""An exact decimal that may be negative (a fee, a rebate), or absent."""
Text = Annotated[str, BeforeValidator(_to_text)]
OptText = Annotated[str | None, BeforeValidator(_to_text)]
NonEmpty = Annotated[str, Field(min_length=1)]
Short = Annotated[str, Field(min_length=1, max_length=64)]
"""Ids, symbols, sides and statuses: never long (order ids are 32 characters); a
longer value is not an order, it is hostile input, and the record is rejected."""


class Message(BaseModel):
    """Base of every inbound model: unknown wire fields are ignored, never an error."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Order(Message):
    """One order record: the ``futures-order`` channel form (short keys) or the
    request-reply form (long keys). Both validate into the same model."""

    order_id: Short = Field(validation_alias=AliasChoices("orderId", "order_id"))
    symbol: Short = Field(validation_alias=AliasChoices("s", "symbol"))
    side: Short = Field(validation_alias=AliasChoices("sd", "side"))
    status: Short = Field(validation_alias=AliasChoices("st", "status"))
    order_type: Text = Field("", validation_alias=AliasChoices("ot", "orderType", "order_type"))
    price: Amount = Field(None, validation_alias=AliasChoices("p", "price", "orderPrice"))
    qty: Amount = Field(None, validation_alias=AliasChoices("q", "orderQty", "qty"))
    filled_qty: Amount = Field(None, validation_alias=AliasChoices("cfq", "cumFilledQty", "filled_qty"))
    avg_price: Amount = Field(None, validation_alias=AliasChoices("ap", "avgFilledPx", "avg_price"))
    stop_price: Amount = Field(None, validation_alias=AliasChoices("sp", "stopPrice", "stop_price"))
    last_price: Amount = Field(None, validation_alias=AliasChoices("lp", "lastPx", "last_price"))
    last_qty: Amount = Field(None, validation_alias=AliasChoices("lq", "lastQty", "last_qty"))
    seq: int | None = Field(None, validation_alias=AliasChoices("sn", "seqNum", "seq"))
    exec_time_ms: int | None = Field(None, validation_alias=AliasChoices("t", "lastExecTime", "exec_time_ms"))
    create_time_ms: int | None = Field(None, validation_alias=AliasChoices("ct", "time", "create_time_ms"))
    account_id: OptText = Field(None, validation_alias=AliasChoices("a", "accountId", "account_id"))
    exec_inst: OptText = Field(None, validation_alias=AliasChoices("ei", "execInst", "exec_inst"))
    fee: SignedAmount = Field(None, validation_alias=AliasChoices("f", "fee"))
    fee_asset: OptText = Field(None, validation_alias=AliasChoices("fa", "feeAsset", "fee_asset"))
    error: OptText = Field(None, validation_alias=AliasChoices("err", "errorCode", "error"))

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def is_open(self) -> bool:
        return self.status not in FINAL_STATUSES


class Connected(Message):
    """``{"m":"connected","type":"auth"|"unauth"}`` (some pages spell ``m`` as ``op``)."""

    kind: Literal["connected"] = "connected"
    type: Text = ""

    @property
    def authenticated(self) -> bool:
        return self.type == "auth"


class Disconnected(Message):
    """The server is about to drop the session, and says why."""

    kind: Literal["disconnected"] = "disconnected"
    code: int | None = None
    reason: Text = ""
    info: Text = ""


class ServerPing(Message):
    """``{"m":"ping","hp":3}``: answer with ``{"op":"pong"}``."""

    kind: Literal["ping"] = "ping"
    hp: int | None = None


class Pong(Message):
    """Reply to our ping; ``ts`` is the server's clock (ms)."""

    kind: Literal["pong"] = "pong"
    code: int | None = 0
    ts: int | None = None
    hp: int | None = None


class AuthResult(Message):
    """Reply to ``op:auth``; ``code`` 0 is success."""

    kind: Literal["auth"] = "auth"
    request_id: OptText = Field(None, alias="id")
    code: int = 0
    error: Text = Field("", alias="err")

    @property
    def ok(self) -> bool:
        return self.code == 0


class SubAck(Message):
    """Reply to ``op:sub`` / ``op:unsub``."""

    kind: Literal["sub"] = "sub"
    op: str = "sub"
    request_id: OptText = Field(None, alias="id")
    channel: Text = Field("", alias="ch")
    code: int = 0
    error: Text = Field("", alias="err")

    @property
    def ok(self) -> bool:
        return self.code == 0


class OrderUpdate(Message):
    """One ``futures-order`` channel message."""

    kind: Literal["order-update"] = "order-update"
    order: Order


class OpenOrders(Message):
    """The ``futures-open-orders`` snapshot: the current reply, or the 2021 bare array.

    ``rejected`` lists records that were in the reply but invalid (one line each),
    with their order ids where one could be read, so a store never mistakes a
    rejected record for an order that is gone."""

    kind: Literal["open-orders"] = "open-orders"
    request_id: OptText = None
    code: int = 0
    orders: list[Order] = Field(default_factory=list)
    rejected: list[str] = Field(default_factory=list)
    rejected_ids: list[str] = Field(default_factory=list)
    dialect: Dialect = "current"


class RequestAck(Message):
    """The gateway accepted a request (``cancel-order``, ``cancel-all``, ``place-order``…).

    In the 2021 dialect the ACK of ``cancel-order``/``place-order`` is a full order
    record without the request id: then ``request_id`` is None, ``order`` holds the
    record and ``order_id`` says which order it is about."""

    kind: Literal["ack"] = "ack"
    request_id: OptText = None
    action: OptText = None
    order_id: OptText = None
    symbol: OptText = None
    order: Order | None = None
    dialect: Dialect = "current"


class RequestError(Message):
    """The gateway refused a request, or a generic ``m:"error"`` reply."""

    kind: Literal["error"] = "error"
    request_id: OptText = None
    action: OptText = None
    code: int | None = None
    reason: Text = ""
    message: Text = ""
    symbol: OptText = None
    order_id: OptText = None
    dialect: Dialect = "current"


class AccountUpdate(Message):
    """``futures-account-update``: balances and positions (kept as received)."""

    kind: Literal["account-update"] = "account-update"
    data: dict[str, Any] = Field(default_factory=dict)


class AccountSnapshot(Message):
    """Reply to ``futures-account-snapshot`` (kept as received)."""

    kind: Literal["account-snapshot"] = "account-snapshot"
    request_id: OptText = None
    code: int = 0
    data: Any = None


class Unknown(Message):
    """A well-formed frame of a type the blotter does not use. Harmless; logged."""

    kind: Literal["unknown"] = "unknown"
    type: Text = ""
    raw: Any = None


class InvalidMessage(Message):
    """A frame of a known type whose fields are wrong (a price that is not a number,
    a negative quantity, a missing order id…). It is rejected and logged; nothing
    else is affected."""

    kind: Literal["invalid"] = "invalid"
    type: Text = ""
    error: Text = ""
    order_id: OptText = None
    raw: Any = None


class BadFrame(Message):
    """A frame that is not JSON (or not text). ``text`` is a bounded excerpt."""

    kind: Literal["bad-frame"] = "bad-frame"
    text: Text = ""
    error: Text = ""


Event = (
    Connected
    | Disconnected
    | ServerPing
    | Pong
    | AuthResult
    | SubAck
    | OrderUpdate
    | OpenOrders
    | RequestAck
    | RequestError
    | AccountUpdate
    | AccountSnapshot
    | Unknown
    | InvalidMessage
    | BadFrame
)
