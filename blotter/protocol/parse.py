"""``parse(frame) -> Event``: any text frame from the exchange becomes one typed event.

Understands both response dialects (current ``m:"order"``/``code``; 2021
``status:"Ack"/"Err"`` with the id at top level or in ``info.id``, and a full order
record as ACK), the bare-array 2021 open-orders reply, ``connected`` keyed by ``m``
or ``op``, pings, pongs, sub acks, generic ``m:"error"``. It never raises on input
from the wire: unknown types become :class:`Unknown`, wrong fields
:class:`InvalidMessage` — except in an order record, which is never dropped: one the
blotter cannot read is an :meth:`Order.unreadable` order — non-JSON :class:`BadFrame`.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, Strict, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from .messages import (
    AMOUNT_FIELDS,
    FINAL_STATUSES,
    ID_PATTERN,
    INT64,
    MAX_FRACTION_DIGITS,
    MAX_INT_DIGITS,
    OPEN_STATUSES,
    ORDER_FIELDS,
    SIDES,
    AccountSnapshot,
    AccountUpdate,
    AuthResult,
    BadFrame,
    BrokenText,
    Connected,
    Disconnected,
    Event,
    InvalidMessage,
    OpenOrders,
    Order,
    OrderUpdate,
    Pong,
    RequestAck,
    RequestError,
    ServerPing,
    Side,
    Status,
    SubAck,
    Unknown,
    describe_error,
)

EXCERPT = 200
"""How much of a bad frame is kept for the log."""


def _order_id_of(data: Any) -> str | None:
    if isinstance(data, dict):
        oid = data.get("orderId")
        if isinstance(oid, str) and oid:
            return oid
    return None


def parse(frame: str | bytes | bytearray | memoryview) -> Event:
    """Turn one WebSocket frame into a typed event. Never raises."""
    if type(frame) is bytes:
        if frame.startswith(ORDER_FRAME):
            order = order_frame(frame)
            if order is not None:
                return OrderUpdate(order)
        elif frame.startswith(SNAPSHOT_FRAME):
            snapshot = snapshot_frame(frame)
            if snapshot is not None:
                return snapshot
    try:
        data = orjson.loads(frame)
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        data = _lenient(frame, exc)
        if data is not _NOT_JSON:
            return _parse_data(data)
        if isinstance(frame, (bytes, bytearray, memoryview)):
            text = bytes(frame[:EXCERPT]).decode("utf-8", "replace")
        else:
            text = str(frame)[:EXCERPT]
        return BadFrame(text=text, error=f"not JSON: {str(exc).splitlines()[0][:120]}")
    return _parse_data(data)


def _parse_data(data: Any) -> Event:
    try:
        return parse_value(data)
    except ValidationError as exc:  # a known message type with wrong fields
        return InvalidMessage(type=_type_of(data), error=describe_error(exc), order_id=_order_id_of(data), raw=data)
    except Exception as exc:
        return InvalidMessage(type=_type_of(data), error=f"{type(exc).__name__}: {exc}"[:200], raw=data)


_NOT_JSON = object()


def _lenient(frame: Any, exc: Exception) -> Any:
    """JSON that orjson refuses only for a lone surrogate escape (``"\\ud800"``): read
    by the standard library, each string holding one replaced by a :class:`BrokenText`,
    so that one odd record makes that record unreadable, not the whole frame."""
    if "surrogate" not in str(exc) or isinstance(frame, str):  # (a str frame is never from the wire's bytes)
        return _NOT_JSON
    try:
        data = json.loads(bytes(frame) if isinstance(frame, (bytearray, memoryview)) else frame)
    except (ValueError, TypeError, RecursionError):
        return _NOT_JSON
    return _mend(data, 0)


def _mend(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return BrokenText(value)
        return value
    if depth > 64:
        return value
    if isinstance(value, list):
        return [_mend(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {
            (k if isinstance(_mend(k, depth), str) else BrokenText(k).text): _mend(v, depth + 1)
            for k, v in value.items()
        }
    return value


def _type_of(data: Any) -> str:
    if isinstance(data, dict):
        for key in ("m", "op", "action"):
            value = data.get(key)
            if isinstance(value, str):
                return value
        return "object"
    if isinstance(data, list):
        return "array"
    return type(data).__name__


def parse_value(data: Any) -> Event:
    """Classify already-decoded JSON. May raise :class:`ValidationError`; :func:`parse` catches it."""
    if isinstance(data, list):
        return _open_orders_2021(data)
    if not isinstance(data, dict):
        return Unknown(type=type(data).__name__, raw=data)

    m = data.get("m")
    if m is None and data.get("op") in ("connected", "ping"):  # the schema spells a server ping with ``op``
        m = data["op"]
    if not isinstance(m, str):
        m = None

    if m == "futures-order":
        order = _channel_order(data)
        if order is None:  # anything unusual: the validator decides; unreadable is kept as such
            order = Order.read(data)
        return OrderUpdate(order)
    if m == "ping":
        return ServerPing.model_validate(data)
    if m == "pong":
        return Pong.model_validate(data)
    if m == "order":
        return _request_reply(data)
    if m == "futures-open-orders":
        return _open_orders(data)
    if m == "connected":
        return Connected.model_validate(data)
    if m == "disconnected":
        return Disconnected.model_validate(data)
    if m == "auth":
        return AuthResult.model_validate(data)
    if m in ("sub", "unsub"):
        return SubAck.model_validate({**data, "op": m})
    if m == "error":
        return _generic_error(data)
    if m == "futures-account-update":
        return AccountUpdate.model_validate(data)
    if m == "futures-account-snapshot":
        code = _int(data.get("code"), 0)
        if code:  # no error reply is documented (§3.2); one in the common form is a refusal
            return _generic_error({**data, "action": "futures-account-snapshot"})
        return AccountSnapshot.model_validate(data)
    if m is None and "op" in data:
        # A client request (``op:req``, ``op:ping``…) is never sent by the server.
        return Unknown(type=_text(data.get("op")) or "object", raw=data)
    if m is None and ("action" in data or "status" in data or "orderId" in data):
        return _request_reply(data)
    return Unknown(type=m or "object", raw=data)


# -- the fast paths for order records -------------------------------------------------------------
#
# ``futures-order`` is the one message that comes in bursts (100,000+ a second), and
# validating its 20 aliased fields through :class:`OrderRecord` was most of the cost of
# a frame. The fast paths below build the very same :class:`Order` for the records the
# exchange actually sends — every value of the plain JSON type its field wants, every
# amount a plain decimal — and return None for anything else, so that the validator
# handles (and accepts, or keeps as unreadable with its own words) every unusual record exactly as
# before. ``tests/bench/test_fast_paths.py`` checks they agree, field by field, on
# generated and hostile input.
#
# Amounts are kept as the exchange's text once checked to be plain decimals; an
# :class:`Order` turns one into a Decimal the first time it is read.

_FIELDS = ORDER_FIELDS
_CHANNEL_KEYS = (
    "orderId",
    "s",
    "sd",
    "st",
    "ot",
    "p",
    "q",
    "cfq",
    "ap",
    "sp",
    "lp",
    "lq",
    "sn",
    "t",
    "ct",
    "a",
    "ei",
    "f",
    "fa",
    "err",
)
"""The wire key of each of :data:`_FIELDS` in the ``futures-order`` channel message."""
_REPLY_KEYS = (
    "orderId",
    "symbol",
    "side",
    "status",
    "orderType",
    "price",
    "orderQty",
    "cumFilledQty",
    "avgFilledPx",
    "stopPrice",
    "lastPx",
    "lastQty",
    "seqNum",
    "lastExecTime",
    "time",
    "accountId",
    "execInst",
    "fee",
    "feeAsset",
    "errorCode",
)
"""The same in the long-key records of request replies (the open-orders snapshot)."""
_CHANNEL_IGNORED = frozenset({"m", "e", "ac", "spb", "cf"})
_REPLY_IGNORED = frozenset(
    {"ac", "stopBy", "cumFee", "posStopLossPrice", "posStopLossTrigger", "posTakeProfitPrice", "posTakeProfitTrigger"}
)
"""Keys of each form that no :class:`Order` field reads (none of them is an alias)."""
_FORMS = {
    "channel": (dict(zip(_CHANNEL_KEYS, _FIELDS, strict=False)), _CHANNEL_IGNORED),
    "reply": (dict(zip(_REPLY_KEYS, _FIELDS, strict=False)), _REPLY_IGNORED),
}
assert _FIELDS == (
    "order_id",
    "symbol",
    "side",
    "status",
    "order_type",
    "price",
    "qty",
    "filled_qty",
    "avg_price",
    "stop_price",
    "last_price",
    "last_qty",
    "seq",
    "exec_time_ms",
    "create_time_ms",
    "account_id",
    "exec_inst",
    "fee",
    "fee_asset",
    "error",
)
_SHAPES: dict[tuple[str, tuple[str, ...]], bool] = {}
"""(form, key order of a record) → whether the fast path applies. Bounded: a server
inventing key orders only adds entries up to the cap; past it, such records take the
validator."""
_MAX_SHAPES = 64


def _shape_ok(form: str, keys: tuple[str, ...]) -> bool:
    """Every key is one of the form's keys (so no field is named twice through two
    aliases, nothing unknown) and every field is there."""
    fields, ignored = _FORMS[form]
    names: set[str] = set()
    ok = True
    for key in keys:
        name = fields.get(key)
        if name is not None:
            names.add(name)
        elif key not in ignored:
            ok = False
            break
    ok = ok and len(names) == len(_FIELDS)
    if len(_SHAPES) < _MAX_SHAPES:
        _SHAPES[(form, keys)] = ok
    return ok


def _plain_decimal(value: str) -> bool:
    """Digits with at most one inner '.', nothing else, within the bounds of
    :data:`~blotter.protocol.messages.AMOUNT_RE`: what the exchange writes."""
    if not (value.isascii() and value.replace(".", "0", 1).isdigit()):
        return False
    dot = value.find(".")
    if dot < 0:
        return len(value) <= MAX_INT_DIGITS
    return 0 < dot <= MAX_INT_DIGITS and 0 < len(value) - dot - 1 <= MAX_FRACTION_DIGITS


def _odd(values: dict[str, Any]) -> bool:
    """What the validator refuses beyond each value's form: a minus sign on a zero fee,
    a filled quantity above the order quantity (amounts here are text, blank or None)."""
    fee = values["fee"]
    if fee and fee[0] == "-" and not fee.strip("-0."):
        return True
    filled = values["filled_qty"]
    if not filled or filled == "0":
        return False
    qty = values["qty"]
    return bool(qty) and filled != qty and Decimal(filled) > Decimal(qty)


class _Slow(Exception):
    """A value the fast path does not vouch for: the validator decides."""


def _amount(value: Any) -> str | None:
    """An ``Amount`` as the text an :class:`Order` keeps: None for absent or blank, the
    text itself when it is a plain non-negative decimal; _Slow otherwise."""
    if value is None:
        return None
    if type(value) is not str:
        raise _Slow
    if _plain_decimal(value):
        return _intern(value)
    if value.strip() == "":
        return None
    raise _Slow


def _signed(value: Any) -> str | None:
    """A ``SignedAmount``: like :func:`_amount`, and a leading minus sign is allowed."""
    if value is None:
        return None
    if type(value) is not str:
        raise _Slow
    digits = value[1:] if value[:1] == "-" else value
    if digits and _plain_decimal(digits):
        return value  # "-0" is caught by _odd
    if value.strip() == "":
        return None
    raise _Slow


def _channel_order(data: dict[str, Any]) -> Order | None:
    """The :class:`Order` of a plain ``futures-order`` message, or None (use the validator)."""
    return _fast_order(data, "channel", _CHANNEL_KEYS)


def _reply_order(data: Any) -> Order | None:
    """The :class:`Order` of a plain long-key record (open-orders snapshot), or None."""
    if type(data) is not dict:
        return None
    return _fast_order(data, "reply", _REPLY_KEYS)


_intern = sys.intern
_STATUSES = FINAL_STATUSES | OPEN_STATUSES
_SIDES = frozenset(SIDES)


def _fast_order(data: dict[str, Any], form: str, k: tuple[str, ...]) -> Order | None:
    shape_key = (form, tuple(data))
    ok = _SHAPES.get(shape_key)
    if ok is None:
        ok = _shape_ok(*shape_key)
    if not ok:
        return None
    get = data.get
    order_id = get(k[0])
    symbol = get(k[1])
    side = get(k[2])
    status = get(k[3])
    if (
        type(order_id) is not str
        or type(symbol) is not str
        or type(side) is not str
        or type(status) is not str
        or not 0 < len(order_id) <= 64
        or not order_id.isalnum()
        or not order_id.isascii()  # (others: validator)
        or not 0 < len(symbol) <= 64
        or status not in _STATUSES
        or side not in _SIDES
    ):
        return None
    order_type = get(k[4])
    seq = get(k[12])
    exec_ms = get(k[13])
    create_ms = get(k[14])
    account = get(k[15])
    exec_inst = get(k[16])
    fee_asset = get(k[18])
    error = get(k[19])
    if (
        type(order_type) is not str
        or (seq is not None and type(seq) is not int)
        or (exec_ms is not None and type(exec_ms) is not int)
        or (create_ms is not None and type(create_ms) is not int)
        or (seq is not None and not INT64[0] <= seq <= INT64[1])
        or (exec_ms is not None and not INT64[0] <= exec_ms <= INT64[1])
        or (create_ms is not None and not INT64[0] <= create_ms <= INT64[1])
        or (account is not None and type(account) is not str)
        or (exec_inst is not None and type(exec_inst) is not str)
        or (fee_asset is not None and type(fee_asset) is not str)
        or (error is not None and type(error) is not str)
    ):
        return None
    try:
        values = {
            "order_id": order_id,
            "symbol": _intern(symbol),
            "side": _intern(side),
            "status": _intern(status),
            "order_type": _intern(order_type),
            "price": _amount(get(k[5])),
            "qty": _amount(get(k[6])),
            "filled_qty": _amount(get(k[7])),
            "avg_price": _amount(get(k[8])),
            "stop_price": _amount(get(k[9])),
            "last_price": _amount(get(k[10])),
            "last_qty": _amount(get(k[11])),
            "seq": seq,
            "exec_time_ms": exec_ms,
            "create_time_ms": create_ms,
            "account_id": None if account is None else _intern(account),
            "exec_inst": None if exec_inst is None else _intern(exec_inst),
            "fee": _signed(get(k[17])),
            "fee_asset": None if fee_asset is None else _intern(fee_asset),
            "error": None if error is None else _intern(error),
        }
    except _Slow:
        return None
    if _odd(values):
        return None
    return Order._of(values)


# -- the fastest path: a whole ``futures-order`` frame, decoded and checked in one call --------------
#
# pydantic-core decodes the JSON and checks every field in one pass (and shares one
# copy of each short, repeated string), several times faster than ``orjson.loads``
# followed by the checks above. It reads the 20 short keys; a record that has them
# all is read by :meth:`OrderRecord.model_validate` from those same keys (every
# field's short key is its first alias), whatever else it holds. Anything else — a
# key missing, a value of another type, an amount that is not a plain decimal, a
# duplicate ``m`` that is not ``futures-order`` — returns None, and the frame takes
# the general path, which decides and words the error.
#
# Its JSON reader accepts a little more than orjson: ``NaN``/``Infinity`` literals,
# numbers beyond float range, integers beyond 64 bits. In a key the blotter reads, the
# field's type refuses them (and the general path calls the frame bad); in a key it
# ignores, the order is read where the general path would have called the frame not
# JSON. Looking for them cost 0.9 µs a frame (a quarter of the whole check), and
# nothing the blotter shows depends on them.

_S = Annotated[str, StringConstraints(min_length=1, max_length=64)]
_DIGITS = rf"[0-9]{{1,{MAX_INT_DIGITS}}}(?:\.[0-9]{{1,{MAX_FRACTION_DIGITS}}})?"
_AMOUNT_TEXT = Annotated[str, StringConstraints(pattern=rf"^(?:{_DIGITS})?$")]
_SIGNED_TEXT = Annotated[str, StringConstraints(pattern=rf"^(?:-?{_DIGITS})?$")]
_INT64 = Annotated[int, Strict(), Field(ge=INT64[0], le=INT64[1])]
_ID = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
_TYPES = {
    "order_id": _ID,
    "symbol": _S,
    "side": Side,
    "status": Status,
    "seq": _INT64,
    "exec_time_ms": _INT64,
    "create_time_ms": _INT64,
    "fee": _SIGNED_TEXT,
} | {name: _AMOUNT_TEXT for name in AMOUNT_FIELDS - {"fee"}}
_ChannelRecord = TypedDict(  # type: ignore[misc]
    "_ChannelRecord",
    {"m": Literal["futures-order"]}
    | {
        name: Annotated[_TYPES.get(name, str), Field(validation_alias=key)]
        for name, key in zip(_FIELDS, _CHANNEL_KEYS, strict=False)
    },
    total=False,
)
_channel_record = TypeAdapter(_ChannelRecord).validator.validate_json
_COMPLETE = len(_FIELDS) + 1
ORDER_FRAME = b'{"m":"futures-order"'
"""How a ``futures-order`` frame starts, as the exchange writes it (``m`` first)."""


def order_frame(frame: bytes) -> Order | None:
    """The :class:`Order` of a plain ``futures-order`` frame (one starting with
    :data:`ORDER_FRAME`), or None: then :func:`parse` decides what the frame is."""
    try:
        values = _channel_record(frame)
    except ValidationError:
        return None
    if len(values) != _COMPLETE:
        return None
    del values["m"]
    if _odd(values):
        return None
    return Order._of(values)  # a blank amount stays "" (read as None)


# -- the same for the open-orders snapshot: the whole reply in one call ------------------------------
#
# A snapshot of 100,000 orders is a 57 MB frame: orjson and the dict path took 2.2 s
# (the screen frozen all along); this takes 0.6 s. Records are read by their long
# keys; a record that also holds one of the short keys (each short key comes before
# the long one among a field's aliases, so the validator would read it instead) or
# lacks a field sends the whole frame to the general path, which reads each record
# on its own and words what is wrong with a bad one.

_ReplyRecord = TypedDict(  # type: ignore[misc]
    "_ReplyRecord",
    {
        name: Annotated[_TYPES.get(name, str), Field(validation_alias=key)]
        for name, key in zip(_FIELDS, _REPLY_KEYS, strict=False)
    }
    | {f"short_{key}": Annotated[Any, Field(validation_alias=key)] for key in _CHANNEL_KEYS if key != "orderId"},
    total=False,
)


class _Snapshot(TypedDict, total=False):
    m: Literal["futures-open-orders"]
    id: str
    code: Literal[0]
    data: list[_ReplyRecord]


_snapshot = TypeAdapter(_Snapshot).validator.validate_json
SNAPSHOT_FRAME = b'{"m":"futures-open-orders"'
"""How an open-orders reply starts, as the exchange writes it (``m`` first)."""


def snapshot_frame(frame: bytes) -> OpenOrders | None:
    """The :class:`OpenOrders` of a plain open-orders reply, or None: then
    :func:`parse` decides what the frame is."""
    try:
        envelope = _snapshot(frame)
    except ValidationError:
        return None
    if len(envelope) != 4:
        return None
    complete = len(_FIELDS)
    last = _FIELDS[-1]
    of = Order._of
    orders = []
    for values in envelope["data"]:
        # Every field, and none of the short keys: the values come out in the order of the
        # fields above, so the last one is the last field only when no short key follows it.
        if len(values) != complete or next(reversed(values)) != last or _odd(values):
            return None
        orders.append(of(values))
    return OpenOrders.model_construct(request_id=envelope["id"], code=0, orders=orders, dialect="current")


# -- a big open-orders reply, read a slice at a time --------------------------------------------------
#
# Read in one call, a 100,000-order reply holds whoever reads it for 0.7 s, and its
# 100,000 records are all alive at once. :class:`SnapshotSlices` reads the records a
# part of about :data:`CHUNK_BYTES` at a time, each part through the same fast path
# (or, for a part with an unusual record, the general path's reading of each record),
# so a caller can fold one part and let other work run before reading the next.
#
# The frame must be the reply as the exchange writes it: ``m`` first, then only
# ``code`` (0), ``id`` and ``ac`` with plain values, ``data`` last and the records in
# it written without spaces. Parts are cut at ``},{``; a cut that falls inside a string
# makes a part that is not JSON, and the part is taken longer (twice as long each
# time) until it is. Everything is checked (:meth:`SnapshotSlices.check`) before the
# first record is read, so a broken frame is found before anything is folded: then
# :func:`parse` decides what the frame is, as for any other frame.

SLICED_BYTES = 256 * 1024
"""An open-orders reply longer than this is worth reading a slice at a time."""
CHUNK_BYTES = 32 * 1024
"""About how much of a reply one part is (about 60 records: well under a millisecond)."""

_SNAPSHOT_HEAD = re.compile(
    rb'\{"m":"futures-open-orders"((?:,"(?:code|id|ac)":(?:-?[0-9]+|null|"[^"\\]*"))*),"data":\['
)


class _AnyObject(TypedDict, total=False):
    pass


_objects = TypeAdapter(list[_AnyObject]).validator.validate_json
"""Checks that a part is JSON (the records' values are not built: 5x faster than reading them)."""
_reply_records = TypeAdapter(list[_ReplyRecord]).validator.validate_json
_any_values = TypeAdapter(list[Any]).validator.validate_json


def _json_list(data: bytes) -> list[Any] | None:
    """``data`` read as :func:`parse` reads a frame (orjson, else the lone-surrogate
    reading), or None when it is not JSON."""
    try:
        value = orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        value = _lenient(data, exc)
        if value is _NOT_JSON:
            return None
    return value if isinstance(value, list) else None


def _is_json(data: bytes) -> bool:
    try:
        _objects(data)
    except ValidationError as exc:
        if all(e["type"] != "json_invalid" for e in exc.errors(include_url=False, include_input=False)):
            return True  # JSON, with records that are not objects (each becomes an unreadable order)
        return _json_list(data) is not None
    return True


class SnapshotSlices:
    """A plain open-orders reply, read a part at a time. Pure: no I/O, no clock.

    First :meth:`check` until it says True (or False: the frame is not what it
    seemed, give it to :func:`parse`), then :meth:`read` until it returns None. Each
    call does one part's work. The orders are those :func:`parse` would have given,
    in the same order."""

    __slots__ = (
        "request_id",
        "size",
        "prechecked",
        "_frame",
        "_start",
        "_end",
        "_checked",
        "_cuts",
        "_read",
        "_chunk",
        "_ready",
    )

    def __init__(
        self,
        frame: bytes,
        start: int,
        end: int,
        request_id: str | None,
        chunk: int,
        checked: SnapshotPrecheck | None = None,
    ) -> None:
        self.request_id = request_id
        self.size = len(frame)
        """Bytes of the whole frame."""
        self._frame = frame
        self._start = start
        self._end = end
        self._checked = start
        """Where the records not yet checked begin."""
        self._cuts: list[tuple[int, int]] = []
        """The parts checked: (start, end) in the frame."""
        self._read = 0
        self._chunk = chunk
        self.prechecked = 0
        """Bytes of records checked while the frame arrived (:class:`SnapshotPrecheck`)."""
        self._ready: list[list[Order] | None] | None = None
        """The orders of the first parts, read while the frame arrived (``read_ahead``)."""
        if checked is not None and checked.start == start and checked.chunk == chunk and checked.checked <= end:
            self._cuts = checked.cuts
            self._checked = checked.checked
            self.prechecked = checked.checked - start
            if checked.orders is not None:
                self._ready = checked.orders

    @property
    def checked(self) -> bool:
        return self._checked >= self._end

    def check(self) -> bool | None:
        """Check the next part is JSON: None while there is more to check, True when the
        whole frame is (read it with :meth:`read`), False when it is not."""
        if self._checked >= self._end:
            return True
        frame, a, end = self._frame, self._checked, self._end
        target = a + self._chunk
        while True:
            cut = frame.find(b"},{", target, end)
            b = end if cut < 0 else cut + 1
            if _is_json(b"[" + frame[a:b] + b"]"):
                self._cuts.append((a, b))
                self._checked = b + 1 if b < end else end
                return True if b >= end else None
            if b >= end:
                self._frame = b""
                return False
            target = a + 2 * (b - a)  # the cut was in a string: a longer part (amortised: linear)

    def read(self) -> list[Order] | None:
        """The orders of the next part (after :meth:`check` said True); None when done
        (or when the frame is not all checked good)."""
        if self._checked < self._end or self._read >= len(self._cuts):
            self._frame = b""  # (the caller may still hold the frame; this reader no longer does)
            self._ready = None
            return None
        i = self._read
        self._read += 1
        ready = self._ready
        if ready is not None and i < len(ready):
            orders = ready[i]
            ready[i] = None  # (the part's orders are the caller's now)
            if orders is not None:
                return orders
        a, b = self._cuts[i]
        orders = _read_part(b"[" + self._frame[a:b] + b"]")
        assert orders is not None  # (checked: JSON)
        return orders


def _read_part(data: bytes) -> list[Order] | None:
    """The orders of one part of a reply (``data``: its records in ``[]``), or None when
    ``data`` is not JSON (a cut that fell in a string)."""
    try:
        records = _reply_records(data)
    except ValidationError:
        records = None
    if records is not None:
        complete = len(_FIELDS)
        last = _FIELDS[-1]
        of = Order._of
        orders = []
        for values in records:
            if len(values) != complete or next(reversed(values)) != last or _odd(values):
                break  # (see snapshot_frame)
            orders.append(of(values))
        else:
            return orders
    elif not _is_json(data):
        return None
    # An unusual record: every record of this part is read as the general path reads it.
    loaded = _json_list(data)
    if loaded is None:  # JSON to pydantic-core only (a literal orjson refuses): read as it reads it
        loaded = _any_values(data)
    return _orders_from(loaded)


def snapshot_slices(
    frame: bytes, chunk: int = CHUNK_BYTES, checked: SnapshotPrecheck | None = None
) -> SnapshotSlices | None:
    """A :class:`SnapshotSlices` for a plain current-dialect open-orders reply with
    records (see above), or None: then :func:`parse` reads the frame in one go.
    ``checked``: the same frame's :class:`SnapshotPrecheck`, whose parts need no
    second check."""
    if type(frame) is not bytes or not frame.startswith(SNAPSHOT_FRAME) or not frame.endswith(b"]}"):
        return None
    head = _SNAPSHOT_HEAD.match(frame)
    if head is None:
        return None
    end = len(frame) - 2
    if head.end() >= end:
        return None  # no records
    try:
        envelope = orjson.loads(frame[: head.end() - len(b',"data":[')] + b"}")
    except orjson.JSONDecodeError:
        return None
    code = envelope.get("code", 0)
    request_id = envelope.get("id")
    if (
        type(code) is not int
        or code != 0
        or not isinstance(request_id, (str, type(None)))
        or len(envelope) != head.group(1).count(b'":') + 1  # no key twice
    ):
        return None
    return SnapshotSlices(frame, head.end(), end, request_id, chunk, checked)


HEAD_BYTES = 4096
"""An open-orders reply whose records do not start within this many bytes is checked
after it arrived (its head is a few dozen bytes)."""


PAUSE_PARTS = 16
"""Parts read ahead between two calls of a :class:`SnapshotPrecheck`'s ``pause``."""
CARRY_LIMIT = 4 * 1024 * 1024
"""Bytes a :class:`SnapshotPrecheck` keeps unchecked at most (each read adds to them:
a part that never checks must not make each read copy the frame so far)."""


class SnapshotPrecheck:
    """:meth:`SnapshotSlices.check`, done while the reply arrives. Pure: no I/O.

    A 100,000-order reply is a 57 MB frame that takes 0.1 s or more to come in, a read
    at a time, and checking it (every part JSON) 0.09 s once it is in: the records can
    only be folded after that, so the first complete table came that much later. The
    transport hands each read of a big frame to :meth:`feed`; the parts whose bytes
    have all arrived are checked there, cut exactly where :meth:`SnapshotSlices.check`
    cuts them (the first ``},{`` past the part's target, a part twice as long when a cut
    fell in a string), so what :func:`snapshot_slices` builds on it — the remaining
    parts checked, then read — is what it builds without it.

    Anything unexpected (a frame that is not an open-orders reply, a head not in the
    first read) makes it idle: the frame is then checked after it arrived, as before."""

    __slots__ = (
        "size",
        "chunk",
        "start",
        "checked",
        "cuts",
        "orders",
        "_carry",
        "_base",
        "_target",
        "_idle",
        "_pause",
        "_unpaused",
    )

    def __init__(
        self, size: int, chunk: int = CHUNK_BYTES, read_ahead: bool = False, pause: Callable[[], object] | None = None
    ) -> None:
        self.size = size
        """Bytes of the whole frame (its payload)."""
        self.chunk = chunk
        self.start = -1
        """Where the records begin (-1 until the first read)."""
        self.checked = -1
        """Where the records not yet checked begin."""
        self.cuts: list[tuple[int, int]] = []
        self.orders: list[list[Order] | None] | None = [] if read_ahead else None
        """With ``read_ahead``, each part is read as it is checked (reading it checks it:
        one pass instead of two) and its orders kept here, one list per cut, for
        :meth:`SnapshotSlices.read`. Nothing is folded before the whole frame is checked;
        the desk asks for it only when its store is empty (the first snapshot: the
        orders are the store's anyway), as a re-snapshot's records mostly repeat what
        the store holds and would only be held twice."""
        self._pause = pause
        """Called after every :data:`PAUSE_PARTS` parts read ahead (the desk collects and
        freezes what they left alive, as between two slices of a fold)."""
        self._unpaused = 0
        self._carry = b""
        """What arrived from ``_base`` on (not checked yet)."""
        self._base = 0
        self._target = -1
        self._idle = size <= SLICED_BYTES

    @property
    def idle(self) -> bool:
        return self._idle

    def feed(self, data: bytes | memoryview) -> None:
        """The next bytes of the frame, in order, from its first byte."""
        if self._idle:
            return
        self._carry += data
        if self.start < 0:  # the head: in the first read, or the first few
            first = self._carry
            head = _SNAPSHOT_HEAD.match(first) if first.startswith(SNAPSHOT_FRAME) else None
            if head is None:
                if len(first) >= HEAD_BYTES or not (
                    first.startswith(SNAPSHOT_FRAME) or SNAPSHOT_FRAME.startswith(first)
                ):
                    self._idle = True  # not an open-orders reply (or not a plain one)
                    self._carry = b""
                return
            self.start = self.checked = head.end()
        carry, base, chunk = self._carry, self._base, self.chunk
        a = self.checked
        target = self._target if self._target >= 0 else a + chunk
        kept = self.orders
        while True:
            cut = carry.find(b"},{", target - base)
            if cut < 0:
                break
            b = base + cut + 1
            part = b"[" + carry[a - base : cut + 1] + b"]"
            if kept is not None:
                orders = _read_part(part)
                good = orders is not None
                if good:
                    kept.append(orders)
                    self._unpaused += 1
                    if self._unpaused >= PAUSE_PARTS and self._pause is not None:
                        self._unpaused = 0
                        self._pause()
            else:
                good = _is_json(part)
            if good:
                self.cuts.append((a, b))
                a = b + 1
                target = a + chunk
            else:
                target = a + 2 * (b - a)  # the cut was in a string: a longer part
        self.checked = a
        self._target = target
        if a > base:
            self._carry = carry = carry[a - base :]
            self._base = a
        if len(carry) > CARRY_LIMIT:  # a part that will not check (or a huge record): after arrival
            self._idle = True
            self._carry = b""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _int(value: Any, default: int | None = None) -> int | None:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default


def _request_reply(data: dict[str, Any]) -> Event:
    """A reply to ``op:req`` in either dialect: ACK or error."""
    info = data.get("info")
    info = info if isinstance(info, dict) else {}
    request_id = _text(data.get("id")) or _text(info.get("id"))
    action = _text(data.get("action"))
    symbol = _text(info.get("symbol", data.get("symbol")))
    status = data.get("status")
    dialect = "2021" if status is not None and "code" not in data else "current"

    top_code = _int(data.get("code"))
    info_code = _int(info.get("code"))
    reason = info.get("reason", data.get("reason"))
    is_error = (
        (top_code is not None and top_code != 0)
        or (info_code is not None and info_code != 0)
        or bool(reason)
        or status == "Err"
    )
    if is_error:
        message = info.get("errorMsg", info.get("message", data.get("message", "")))
        return RequestError(
            request_id=request_id,
            action=action,
            code=top_code if top_code not in (None, 0) else info_code,
            reason=_text(reason) or "",
            message=_text(message) or "",
            symbol=symbol,
            order_id=_text(info.get("orderId")) or None,
            dialect=dialect,
        )

    order = None
    if "orderId" in data and ("status" in data or "st" in data) and ("side" in data or "sd" in data):
        # 2021: the ACK is the order record itself.
        order = Order.model_validate(data)
    order_id = _text(info.get("orderId")) or (order.order_id if order else None) or None
    return RequestAck(
        request_id=request_id,
        action=action,
        order_id=order_id,
        symbol=symbol or (order.symbol if order else None) or None,
        order=order,
        dialect=dialect,
    )


def _generic_error(data: dict[str, Any]) -> RequestError:
    info = data.get("info")
    if isinstance(info, dict):
        message = info.get("message", info.get("errorMsg", ""))
    else:
        message = info if info is not None else ""
    return RequestError(
        request_id=_text(data.get("id")),
        action=_text(data.get("action")),
        code=_int(data.get("code")),
        reason=_text(data.get("reason")) or "",
        message=_text(message) or "",
    )


def _orders_from(records: list[Any]) -> list[Order]:
    """Every record of a snapshot as an order: the ones the blotter cannot read (a
    value out of form, not even an object) as :meth:`Order.unreadable` ones, so the
    exchange's open order is never lost."""
    orders: list[Order] = []
    for record in records:
        order = _reply_order(record)
        if order is None and type(record) is dict:  # the 2021 reply lists channel messages
            order = _channel_order(record)
        if order is None:  # anything unusual: the validator decides (and words the error)
            order = Order.read(record) if isinstance(record, dict) else Order.unreadable(record, "not an order record")
        orders.append(order)
    return orders


def _open_orders(data: dict[str, Any]) -> Event:
    code = _int(data.get("code"), 0) or 0
    records = data.get("data")
    if code != 0:
        info = data.get("info")
        info = info if isinstance(info, dict) else {}
        return RequestError(
            request_id=_text(data.get("id")),
            action="futures-open-orders",
            code=code,
            reason=_text(data.get("reason", info.get("reason"))) or "",
            message=_text(info.get("errorMsg", info.get("message", data.get("message", "")))) or "",
        )
    if records is None:
        records = []
    if not isinstance(records, list):
        return InvalidMessage(type="futures-open-orders", error="data: not a list", raw=data)
    return OpenOrders(request_id=_text(data.get("id")), code=code, orders=_orders_from(records), dialect="current")


def _open_orders_2021(records: list[Any]) -> Event:
    """The 2021 reply is a bare JSON array of ``futures-order`` channel messages."""
    if records and not all(isinstance(r, dict) for r in records):
        return Unknown(type="array", raw=records)
    return OpenOrders(orders=_orders_from(records), dialect="2021")
