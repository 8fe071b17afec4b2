"""Inbound messages: what the exchange sends, as typed, validated models.

Python names are readable (``filled_qty``); the wire names (``cfq`` on the order
channel, ``cumFilledQty`` in request replies) are aliases, so one model reads both
forms. Prices and quantities are :class:`~decimal.Decimal`, never float.

Every inbound field is treated as optional unless an order cannot be shown without
it; unknown fields are ignored. :func:`blotter.protocol.parse.parse` turns any frame
into one of the models below and never raises.
"""

from __future__ import annotations

import hashlib
import re
import sys
from decimal import Decimal
from typing import Annotated, Any, Literal, cast

import orjson
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticUndefined

# Order status values (the exchange's words, exactly: a status that only resembles one of
# them, ``Canceled\u200b`` or ``canceled``, is not a status the blotter knows).
NEW = "New"
PARTIALLY_FILLED = "PartiallyFilled"
FILLED = "Filled"
CANCELED = "Canceled"
REJECTED = "Rejected"
PENDING_NEW = "PendingNew"
ACK = "Ack"
"""Seen in a live place ACK (ADDENDUM §2.9): the order was received, not yet New."""
FINAL_STATUSES = frozenset({FILLED, CANCELED, REJECTED})
OPEN_STATUSES = frozenset({NEW, PARTIALLY_FILLED, PENDING_NEW, ACK})
UNREADABLE = "Unreadable"
"""Status of an :class:`Order` the blotter could not read (see :attr:`Order.problem`).
Not a final status: an unreadable order counts as open everywhere."""
SIDES = ("Buy", "Sell")
Status = Literal["New", "PartiallyFilled", "Filled", "Canceled", "Rejected", "PendingNew", "Ack"]
Side = Literal["Buy", "Sell"]

MAX_INT_DIGITS = 24
MAX_FRACTION_DIGITS = 30
"""Bounds of an amount: at most this many digits before and after the point. Prices
and quantities on the exchange have a handful; a longer number is not an amount."""
AMOUNT_RE = re.compile(rf"[0-9]{{1,{MAX_INT_DIGITS}}}(?:\.[0-9]{{1,{MAX_FRACTION_DIGITS}}})?")
"""A plain decimal as the exchange writes one (ADDENDUM §2.9): ASCII digits, at most
one inner point. No sign, exponent, underscore, space, other digits, ``NaN``."""
INT64 = (-(2**63), 2**64 - 1)
"""Range of the integer fields (sequence numbers, times)."""

Dialect = Literal["current", "2021"]


def _amount(value: Any) -> Decimal | None:
    """An amount: a plain decimal string (:data:`AMOUNT_RE`), or absent (None, or
    blank: the exchange writes an absent number as ``""`` in places)."""
    if value is None:
        return None
    if type(value) is Decimal:  # made in Python (never from the wire): the same bounds
        if not AMOUNT_RE.fullmatch(str(value)):
            raise ValueError(f"not a plain decimal of at most {MAX_INT_DIGITS}.{MAX_FRACTION_DIGITS} digits")
        return value
    if type(value) is not str:
        raise ValueError("not a decimal string")
    if AMOUNT_RE.fullmatch(value):
        return Decimal(value)
    if value.strip() == "":
        return None
    raise ValueError(f"not a plain decimal of at most {MAX_INT_DIGITS}.{MAX_FRACTION_DIGITS} digits")


def _signed_amount(value: Any) -> Decimal | None:
    """Like :func:`_amount`, and a leading minus sign on a non-zero amount (a rebate)."""
    if type(value) is Decimal and value.is_signed():
        value = str(value)
    if type(value) is str and value[:1] == "-":
        amount = _amount(value[1:])
        if not amount:  # "-", "-0", "-0.00": no such number on the exchange
            raise ValueError("not a plain decimal (a minus sign on nothing or on zero)")
        return -amount
    return _amount(value)


def _int64(value: Any) -> int | None:
    if value is None or (type(value) is int and INT64[0] <= value <= INT64[1]):
        return value
    if type(value) is int:
        raise ValueError("integer out of range")
    raise ValueError("not an integer")


class BrokenText:
    """A JSON string that is not text: it holds a lone surrogate escape (``"\\ud800"``),
    which no terminal, log or journal can write. The lenient reader of
    :mod:`blotter.protocol.parse` puts one in its place (its escaped form kept for the
    raw record); every field refuses it, so its record is unreadable."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text.encode("utf-8", "backslashreplace").decode("utf-8")

    def __repr__(self) -> str:
        return f"BrokenText({self.text!r})"


def _to_text(value: Any) -> Any:
    """Free text from the exchange: keep strings, render numbers and other JSON as text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, BrokenText):
        raise ValueError("not text (a lone surrogate escape)")
    if isinstance(value, (int, float, bool)):
        return str(value)
    return repr(value)


Amount = Annotated[Decimal | None, PlainValidator(_amount)]
"""A non-negative exact decimal, bounded (:data:`AMOUNT_RE`), or absent."""
SignedAmount = Annotated[Decimal | None, PlainValidator(_signed_amount)]
"""The same, that may be negative (a fee, a rebate), or absent."""
Int64 = Annotated[int | None, PlainValidator(_int64)]
Text = Annotated[str, BeforeValidator(_to_text)]
OptText = Annotated[str | None, BeforeValidator(_to_text)]
ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
"""A readable order id: the exchange's are 32 letters and digits (ADDENDUM §2.9).
Nothing else is sent back to the exchange in a cancel; an id with other characters
makes its record unreadable (and ``?`` and ``@`` stay free for the blotter's own keys)."""
OrderId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Short = Annotated[str, Field(min_length=1, max_length=64)]
"""Ids, symbols, sides and statuses: never long (order ids are 32 characters); a
longer value is not an order, it is hostile input, and the record is unreadable."""


class Message(BaseModel):
    """Base of every inbound model: unknown wire fields are ignored, never an error."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class OrderRecord(Message):
    """The validator of one order record: the ``futures-order`` channel form (short
    keys) or the request-reply form (long keys). Both validate into the same fields.

    :class:`Order` is what the rest of the blotter holds; this model decides (and
    words the error) for every record the fast paths of :mod:`blotter.protocol.parse`
    do not vouch for, and defines the fields (``Order.model_fields``). Only what the
    exchange documents is read: exact statuses and sides, plain bounded decimals,
    64-bit integers, ids of letters, digits and ``_.:-``; anything else makes the
    record unreadable (:meth:`Order.read`)."""

    order_id: OrderId = Field(validation_alias=AliasChoices("orderId", "order_id"))
    symbol: Short = Field(validation_alias=AliasChoices("s", "symbol"))
    side: Side = Field(validation_alias=AliasChoices("sd", "side"))
    status: Status = Field(validation_alias=AliasChoices("st", "status"))
    order_type: Text = Field("", validation_alias=AliasChoices("ot", "orderType", "order_type"))
    price: Amount = Field(None, validation_alias=AliasChoices("p", "price", "orderPrice"))
    qty: Amount = Field(None, validation_alias=AliasChoices("q", "orderQty", "qty"))
    filled_qty: Amount = Field(None, validation_alias=AliasChoices("cfq", "cumFilledQty", "filled_qty"))
    avg_price: Amount = Field(None, validation_alias=AliasChoices("ap", "avgFilledPx", "avg_price"))
    stop_price: Amount = Field(None, validation_alias=AliasChoices("sp", "stopPrice", "stop_price"))
    last_price: Amount = Field(None, validation_alias=AliasChoices("lp", "lastPx", "last_price"))
    last_qty: Amount = Field(None, validation_alias=AliasChoices("lq", "lastQty", "last_qty"))
    seq: Int64 = Field(None, validation_alias=AliasChoices("sn", "seqNum", "seq"))
    exec_time_ms: Int64 = Field(None, validation_alias=AliasChoices("t", "lastExecTime", "exec_time_ms"))
    create_time_ms: Int64 = Field(None, validation_alias=AliasChoices("ct", "time", "create_time_ms"))
    account_id: OptText = Field(None, validation_alias=AliasChoices("a", "accountId", "account_id"))
    exec_inst: OptText = Field(None, validation_alias=AliasChoices("ei", "execInst", "exec_inst"))
    fee: SignedAmount = Field(None, validation_alias=AliasChoices("f", "fee"))
    fee_asset: OptText = Field(None, validation_alias=AliasChoices("fa", "feeAsset", "fee_asset"))
    error: OptText = Field(None, validation_alias=AliasChoices("err", "errorCode", "error"))

    @model_validator(mode="after")
    def _filled_within_qty(self) -> OrderRecord:
        if self.filled_qty is not None and self.qty is not None and self.filled_qty > self.qty:
            raise ValueError("cumFilledQty: above the order quantity")
        return self


def describe_error(exc: ValidationError) -> str:
    """One line naming what was wrong, without echoing the (possibly hostile) input."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "record"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg[:120]}")
    more = exc.error_count() - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


ORDER_FIELDS: tuple[str, ...] = tuple(OrderRecord.model_fields)
AMOUNT_FIELDS: frozenset[str] = frozenset(
    {"price", "qty", "filled_qty", "avg_price", "stop_price", "last_price", "last_qty", "fee"}
)
_SLOT_FIELDS = ("order_id", "symbol", "side", "status", "seq", "create_time_ms")
_intern = sys.intern
_new = object.__new__


def _decimal(text: str) -> Decimal | None:
    """An amount kept as the exchange's text, already checked to be a plain decimal
    (digits, at most one inner '.', maybe a leading '-' for a fee) or blank."""
    return Decimal(text) if text else None


class Order:
    """One order, validated: the fields of :class:`OrderRecord`, read as attributes.

    Not a pydantic model: one is made per frame of a burst (100,000+ a second). The
    fields the store, the view and the table read on every update are slots; the
    others are read from the record's values. The amounts are exact decimals: a fast
    path may keep one as the exchange's text, already checked to be a plain decimal,
    and it becomes a :class:`~decimal.Decimal` the first time it is read (most
    amounts of most updates are never read: only rows on screen are drawn).

    Build one with :meth:`model_validate` (or ``Order(**fields)``), which validates
    through :class:`OrderRecord` and raises its ``ValidationError``."""

    __slots__ = (*_SLOT_FIELDS, "_v")
    model_fields = OrderRecord.model_fields

    order_id: str
    symbol: str
    side: str
    status: str
    seq: int | None
    create_time_ms: int | None

    def __init__(self, **data: Any) -> None:
        self._set(_texts_shared(OrderRecord(**data).__dict__))

    @classmethod
    def model_validate(cls, data: Any) -> Order:
        return cls._of(_texts_shared(OrderRecord.model_validate(data).__dict__))

    @classmethod
    def read(cls, record: Any) -> Order:
        """The order of ``record``: validated, or else :meth:`unreadable`. Never raises."""
        try:
            return cls.model_validate(record)
        except ValidationError as exc:
            return cls.unreadable(record, describe_error(exc), exc)

    @classmethod
    def unreadable(cls, record: Any, problem: str, error: ValidationError | None = None) -> Order:
        """An order the blotter could not read, in status :data:`UNREADABLE`.

        Each field that is readable on its own keeps its value; the others are None
        (``""`` for the symbol, side and type). With no readable order id, the id is
        ``?`` and a hash of the record (:func:`unreadable_id`): a real id never holds
        a ``?`` (:data:`ID_PATTERN`), and the same record always gets the same id, so a
        snapshot that lists it again keeps one row. :attr:`problem` says what was wrong
        (one line, without the input); :attr:`raw` is the record as JSON text, cut at
        :data:`RAW_LIMIT` characters (not sanitised: escape it before any output)."""
        data = record if isinstance(record, dict) else {}
        raw = raw_json(record)
        values = _readable_fields(data, error)
        values["order_id"] = values["order_id"] or unreadable_id(raw)
        for name in ("symbol", "side", "order_type"):
            values[name] = values[name] or ""
        values["status"] = UNREADABLE
        values["problem"] = problem
        values["raw"] = raw if len(raw) <= RAW_LIMIT else raw[:RAW_LIMIT] + "…"
        return cls._of(_texts_shared(values))

    @classmethod
    def _of(cls, values: dict[str, Any]) -> Order:
        """An order from values already checked: every field of :data:`ORDER_FIELDS`,
        amounts as Decimal, None, or plain-decimal text (the fast paths)."""
        order = _new(cls)
        order._set(values)
        return order

    def _set(self, values: dict[str, Any]) -> None:
        self._v = values
        self.order_id = values["order_id"]
        self.symbol = values["symbol"]
        self.side = values["side"]
        self.status = values["status"]
        self.seq = values["seq"]
        self.create_time_ms = values["create_time_ms"]

    # the other fields (properties below): order_type, exec_time_ms, account_id,
    # exec_inst, fee_asset, error, and the amounts
    order_type: str
    exec_time_ms: int | None
    account_id: str | None
    exec_inst: str | None
    fee_asset: str | None
    error: str | None
    price: Decimal | None
    qty: Decimal | None
    filled_qty: Decimal | None
    avg_price: Decimal | None
    stop_price: Decimal | None
    last_price: Decimal | None
    last_qty: Decimal | None
    fee: Decimal | None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def problem(self) -> str | None:
        """What made the record unreadable (one line, no input echoed), or None."""
        return self._v.get("problem")

    @property
    def raw(self) -> str | None:
        """An unreadable record as received (JSON text, bounded, NOT sanitised), or None."""
        return self._v.get("raw")

    @property
    def is_open(self) -> bool:
        return self.status not in FINAL_STATUSES

    def model_dump(self) -> dict[str, Any]:
        """Every field by name, amounts as Decimal."""
        return {name: getattr(self, name) for name in ORDER_FIELDS}

    def __eq__(self, other: object) -> bool:
        if type(other) is not Order:
            return NotImplemented
        return self is other or (
            self.model_dump() == other.model_dump() and self.problem == other.problem and self.raw == other.raw
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "Order(" + ", ".join(f"{k}={v!r}" for k, v in self.model_dump().items()) + ")"

    # pydantic: a field typed ``Order`` (``OpenOrders.orders``, ``RequestAck.order``)
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            cls._coerce, serialization=core_schema.plain_serializer_function_ser_schema(lambda o: o.model_dump())
        )

    @classmethod
    def _coerce(cls, value: Any) -> Order:
        if type(value) is cls:
            return value
        if isinstance(value, dict):
            return cls.model_validate(value)
        raise ValueError("not an order record")


def _texts_shared(values: dict[str, Any]) -> dict[str, Any]:
    """One copy of each short, repeated text (symbol, side…): 100,000 orders must fit
    in a few hundred MB. Interned strings are freed with their last order."""
    for name in ("symbol", "side", "status", "order_type", "account_id", "exec_inst", "fee_asset", "error"):
        value = values[name]
        if type(value) is str:
            values[name] = _intern(value)
    return values


RAW_LIMIT = 2000
"""Characters of an unreadable record kept for the raw view."""


def raw_json(record: Any) -> str:
    """``record`` as JSON text (keys sorted), :class:`BrokenText` as its escaped form."""
    try:
        return orjson.dumps(
            record, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=_json_default
        ).decode()
    except (TypeError, ValueError):
        return repr(record)


def _json_default(value: Any) -> Any:
    if isinstance(value, BrokenText):
        return value.text
    raise TypeError


def unreadable_id(raw: str) -> str:
    """The id of an unreadable record without a readable order id: ``?`` and 12 hex digits."""
    return "?" + hashlib.blake2b(raw.encode("utf-8", "backslashreplace"), digest_size=6).hexdigest()


def _field_validator(name: str) -> Any:
    info = OrderRecord.model_fields[name]
    kind: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return TypeAdapter(kind).validate_python


_FIELD_ALIASES = {
    name: tuple(info.validation_alias.choices)  # type: ignore[union-attr]
    for name, info in OrderRecord.model_fields.items()
}
_FIELD_VALIDATORS = {name: _field_validator(name) for name in OrderRecord.model_fields}
_ALIAS_FIELD = {alias: name for name, aliases in _FIELD_ALIASES.items() for alias in aliases}


_PLACEHOLDERS = {"order_id": "x", "symbol": "x", "side": "Buy", "status": "New"}
"""Stand-ins for the required fields while the readable ones are validated in one pass."""


def _readable_fields(data: dict[str, Any], error: ValidationError | None) -> dict[str, Any]:
    """Each field of ``data`` that is readable on its own (the others None). With the
    ``error`` the validator raised, the fields it names are set aside and the rest are
    validated in one pass (an unreadable record costs about as much as a readable one);
    otherwise, or when that pass fails too, field by field."""
    if error is not None:
        bad = {
            _ALIAS_FIELD.get(str(e["loc"][0])) for e in error.errors(include_url=False, include_input=False) if e["loc"]
        }
        named = {name for name in bad if name is not None}
        if named and len(named) == len(bad):  # every error names a field of the record
            drop = {alias for name in named for alias in _FIELD_ALIASES[name]}
            cleaned = {k: v for k, v in data.items() if k not in drop}
            cleaned.update((name, _PLACEHOLDERS[name]) for name in named if name in _PLACEHOLDERS)
            try:
                values = OrderRecord.model_validate(cleaned).__dict__
            except ValidationError:
                pass
            else:
                for name in named:
                    values[name] = None
                return values
    return {name: _readable_field(data, name) for name in ORDER_FIELDS}


def _readable_field(data: dict[str, Any], name: str) -> Any:
    """The value of field ``name`` in ``data`` read alone (its first alias present, as
    the validator does), or its default when absent, or None when it is not readable."""
    for alias in _FIELD_ALIASES[name]:
        if alias in data:
            try:
                return _FIELD_VALIDATORS[name](data[alias])
            except (ValidationError, ValueError, TypeError):
                return None
    default = OrderRecord.model_fields[name].default
    return None if default is PydanticUndefined else default


def _plain_property(name: str) -> property:
    def get(self: Order) -> Any:
        return self._v[name]

    get.__name__ = name
    return property(get)


def _amount_property(name: str) -> property:
    def get(self: Order) -> Decimal | None:
        values = self._v
        value = values[name]
        if type(value) is str:
            value = values[name] = _decimal(value)
        return cast("Decimal | None", value)

    get.__name__ = name
    return property(get)


for _name in ORDER_FIELDS:
    if _name in AMOUNT_FIELDS:
        setattr(Order, _name, _amount_property(_name))
    elif _name not in _SLOT_FIELDS:
        setattr(Order, _name, _plain_property(_name))
del _name


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


class OrderUpdate:
    """One ``futures-order`` channel message: the order record it carries.

    Not a pydantic model on purpose: it is made once per frame of a burst (100,000+ a
    second) around an already validated :class:`Order`, and a model instance costs five
    times as much to make. Immutable by convention, compared by its order."""

    __slots__ = ("order",)
    kind: Literal["order-update"] = "order-update"

    def __init__(self, order: Order) -> None:
        self.order = order

    def __eq__(self, other: object) -> bool:
        return type(other) is OrderUpdate and other.order == self.order

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"OrderUpdate(order={self.order!r})"


class OpenOrders(Message):
    """The ``futures-open-orders`` snapshot: the current reply, or the 2021 bare array.

    Every record of the reply is in ``orders``: one the blotter cannot read is an
    :meth:`Order.unreadable` one (status :data:`UNREADABLE`, counted open), so a
    store never mistakes an odd record for an order that is gone."""

    kind: Literal["open-orders"] = "open-orders"
    request_id: OptText = None
    code: int = 0
    orders: list[Order] = Field(default_factory=list)
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


class Collateral(Message):
    """One collateral balance of the futures account (``col[]``, ADDENDUM §3.2–§3.3)."""

    asset: Short = Field(validation_alias=AliasChoices("a", "asset"))
    """Collateral asset code (``a``)."""
    balance: SignedAmount = Field(None, validation_alias=AliasChoices("b", "balance"))
    """Collateral balance (``b``)."""
    discount_factor: Amount = Field(None, validation_alias=AliasChoices("f", "discountFactor", "discount_factor"))
    """Discount factor (``f``)."""


class Position(Message):
    """One contract position (``pos[]``, ADDENDUM §3.3): every documented key, with the
    official demo's long names as Python names. Amounts are exact; absent ones None."""

    symbol: Short = Field(validation_alias=AliasChoices("s", "symbol"))
    """Contract symbol (``s``)."""
    side: OptText = Field(None, validation_alias=AliasChoices("sd", "side"))
    """``LONG`` / ``SHORT`` / ``NULL_VAL`` (``sd``)."""
    position: SignedAmount = Field(None, validation_alias=AliasChoices("pos", "position"))
    """Signed: positive long, negative short (``pos``)."""
    reference_cost: SignedAmount = Field(None, validation_alias=AliasChoices("rc", "referenceCost", "reference_cost"))
    """Reference cost (``rc``); unrealized PnL = mark price × position + reference cost."""
    unrealized_pnl: SignedAmount = Field(None, validation_alias=AliasChoices("up", "unrealizedPnl", "unrealized_pnl"))
    realized_pnl: SignedAmount = Field(None, validation_alias=AliasChoices("rp", "realizedPnl", "realized_pnl"))
    avg_open_price: Amount = Field(None, validation_alias=AliasChoices("aop", "avgOpenPrice", "avg_open_price"))
    buy_open_order_notional: Amount = Field(
        None, validation_alias=AliasChoices("boon", "buyOpenOrderNotional", "buy_open_order_notional")
    )
    sell_open_order_notional: Amount = Field(
        None, validation_alias=AliasChoices("soon", "sellOpenOrderNotional", "sell_open_order_notional")
    )
    margin_type: OptText = Field(None, validation_alias=AliasChoices("mt", "marginType", "margin_type"))
    """``crossed`` / ``isolated`` (the docs also write ``cross``) (``mt``)."""
    isolated_margin: SignedAmount = Field(
        None, validation_alias=AliasChoices("iw", "isolatedMargin", "isolated_margin")
    )
    leverage: Amount = Field(None, validation_alias=AliasChoices("lev", "leverage"))
    take_profit_price: Amount = Field(None, validation_alias=AliasChoices("tp", "takeProfitPrice", "take_profit_price"))
    """Take profit price (by position exit order) (``tp``)."""
    take_profit_trigger: OptText = Field(
        None, validation_alias=AliasChoices("tpt", "takeProfitTrigger", "take_profit_trigger")
    )
    stop_loss_price: Amount = Field(None, validation_alias=AliasChoices("sl", "stopLossPrice", "stop_loss_price"))
    """Stop loss price (by position exit order) (``sl``)."""
    stop_loss_trigger: OptText = Field(
        None, validation_alias=AliasChoices("slt", "stopLossTrigger", "stop_loss_trigger")
    )


class _AccountMessage(Message):
    """What the account snapshot reply and the account update share (ADDENDUM §3.2–§3.3)."""

    request_id: OptText = Field(None, validation_alias=AliasChoices("id", "request_id"))
    event: OptText = Field(None, validation_alias=AliasChoices("e", "event"))
    """``ClientRequest`` (snapshot) or ``ExecutionReport`` (update)."""
    time_ms: Int64 = Field(None, validation_alias=AliasChoices("t", "time_ms"))
    """Server time, UTC milliseconds."""
    account_id: OptText = Field(None, validation_alias=AliasChoices("acc", "account_id"))
    account_category: OptText = Field(None, validation_alias=AliasChoices("ac", "at", "account_category"))
    """``FUTURES``: the snapshot spells the key ``ac``, the update ``at`` (both read)."""
    seq: Int64 = Field(None, validation_alias=AliasChoices("sn", "seq"))
    """Sequence number (``sn``): strictly increasing for each account."""
    collaterals: list[Collateral] = Field(default_factory=list, validation_alias=AliasChoices("col", "collaterals"))
    positions: list[Position] = Field(default_factory=list, validation_alias=AliasChoices("pos", "positions"))


class AccountUpdate(_AccountMessage):
    """``futures-account-update``: collateral balances and contract positions.
    ``request_id`` is "request ID for this account update". Whether it lists every
    position or only changed ones is not documented: fold it as a change."""

    kind: Literal["account-update"] = "account-update"


class AccountSnapshot(_AccountMessage):
    """Reply to ``futures-account-snapshot``: the whole account. No ``code`` and no
    ``data`` wrapper exist (ADDENDUM §3.2); ``request_id`` echoes the request's id."""

    kind: Literal["account-snapshot"] = "account-snapshot"


class Unknown(Message):
    """A well-formed frame of a type the blotter does not use. Harmless; logged."""

    kind: Literal["unknown"] = "unknown"
    type: Text = ""
    raw: Any = None


class InvalidMessage(Message):
    """A frame of a known type whose fields are wrong (a reply whose code is not a
    number…). It is rejected and logged; nothing else is affected. (An order record
    is never rejected: see :meth:`Order.unreadable`.)"""

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
