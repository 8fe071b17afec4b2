"""``parse(frame) -> Event``: any text frame from the exchange becomes one typed event.

Understands both response dialects (current ``m:"order"``/``code``; 2021
``status:"Ack"/"Err"`` with the id at top level or in ``info.id``, and a full order
record as ACK), the bare-array 2021 open-orders reply, ``connected`` keyed by ``m``
or ``op``, pings, pongs, sub acks, generic ``m:"error"``. It never raises on input
from the wire: unknown types become :class:`Unknown`, wrong fields
:class:`InvalidMessage`, non-JSON :class:`BadFrame`.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from .messages import (
    AccountSnapshot,
    AccountUpdate,
    AuthResult,
    BadFrame,
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
    SubAck,
    Unknown,
)

EXCERPT = 200
"""How much of a bad frame is kept for the log."""


def describe_error(exc: ValidationError) -> str:
    """One line naming what was wrong, without echoing the (possibly hostile) input."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "message"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = exc.error_count() - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _order_id_of(data: Any) -> str | None:
    if isinstance(data, dict):
        oid = data.get("orderId")
        if isinstance(oid, str) and oid:
            return oid
    return None


def parse(frame: str | bytes | bytearray | memoryview) -> Event:
    """Turn one WebSocket frame into a typed event. Never raises."""
    try:
        data = orjson.loads(frame)
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        if isinstance(frame, (bytes, bytearray, memoryview)):
            text = bytes(frame[:EXCERPT]).decode("utf-8", "replace")
        else:
            text = str(frame)[:EXCERPT]
        return BadFrame(text=text, error=f"not JSON: {str(exc).splitlines()[0][:120]}")
    try:
        return parse_value(data)
    except ValidationError as exc:  # a known message type with wrong fields
        return InvalidMessage(type=_type_of(data), error=describe_error(exc), order_id=_order_id_of(data), raw=data)
    except Exception as exc:  # noqa: BLE001 - the wire must never crash the reader
        return InvalidMessage(type=_type_of(data), error=f"{type(exc).__name__}: {exc}"[:200], raw=data)


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
    if m is None and data.get("op") == "connected":
        m = "connected"
    if not isinstance(m, str):
        m = None

    if m == "futures-order":
        return OrderUpdate(order=Order.model_validate(data))
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
        return AccountUpdate(data=data)
    if m == "futures-account-snapshot":
        return AccountSnapshot(request_id=_text(data.get("id")), code=_int(data.get("code"), 0), data=data.get("data"))
    if m is None and "op" in data:
        # A client request (``op:req``, ``op:ping``…) is never sent by the server.
        return Unknown(type=_text(data.get("op")) or "object", raw=data)
    if m is None and ("action" in data or "status" in data or "orderId" in data):
        return _request_reply(data)
    return Unknown(type=m or "object", raw=data)


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


def _orders_from(records: list[Any]) -> tuple[list[Order], list[str], list[str]]:
    orders: list[Order] = []
    rejected: list[str] = []
    rejected_ids: list[str] = []
    for index, record in enumerate(records):
        try:
            orders.append(Order.model_validate(record))
        except ValidationError as exc:
            oid = _order_id_of(record)
            shown = oid if oid is None or len(oid) <= 40 else oid[:40] + "…"  # never echo a hostile id whole
            rejected.append(f"record {index} ({shown or 'no orderId'}): {describe_error(exc)}")
            if oid:
                rejected_ids.append(oid)
    return orders, rejected, rejected_ids


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
    orders, rejected, rejected_ids = _orders_from(records)
    return OpenOrders(
        request_id=_text(data.get("id")),
        code=code,
        orders=orders,
        rejected=rejected,
        rejected_ids=rejected_ids,
        dialect="current",
    )


def _open_orders_2021(records: list[Any]) -> Event:
    """The 2021 reply is a bare JSON array of ``futures-order`` channel messages."""
    if records and not all(isinstance(r, dict) for r in records):
        return Unknown(type="array", raw=records)
    orders, rejected, rejected_ids = _orders_from(records)
    return OpenOrders(orders=orders, rejected=rejected, rejected_ids=rejected_ids, dialect="2021")
