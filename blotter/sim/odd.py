"""Odd order records: the ``odd_records`` fault.

The documentation says what a record holds (ADDENDUM §2.9): amounts as plain decimal
strings, statuses and sides from short lists, 32-character ids. Nothing stops a real
exchange (a bug, a proxy, an impersonator) from sending something else, so the
simulator can: each oddity below spoils one open order's record — in every
open-orders reply and every ``futures-order`` update about it — in one way a client
must not misread. The order itself stays open in the book: the exchange still
lists it, and a client that drops the record it cannot read lies about what is open.
"""

from __future__ import annotations

from typing import Any, Literal

Oddity = Literal[
    "nan-avg-price",
    "long-symbol",
    "negative-stop",
    "lone-surrogate",
    "zero-width-status",
    "zero-width-side",
    "huge-exponent",
    "exponent-price",
    "full-width-digits",
    "arabic-indic-digits",
    "underscore-qty",
    "hex-price",
    "negative-zero",
    "filled-above-qty",
    "number-not-string",
    "no-order-id",
    "same-id-other-symbol",
]
ODDITIES: tuple[str, ...] = Oddity.__args__  # type: ignore[attr-defined]

_SURROGATE_MARK = "\x00sim-lone-surrogate\x00"
"""Put where a lone surrogate escape goes; :func:`encode` writes the escape itself
(no JSON encoder writes one from a Python string)."""

# (long key, short key, value) of each oddity that replaces one value.
_VALUE: dict[str, tuple[str, str, Any]] = {
    "nan-avg-price": ("avgFilledPx", "ap", "NaN"),
    "long-symbol": ("symbol", "s", "BTC-PERP-" + "X" * 120),
    "negative-stop": ("stopPrice", "sp", "-5"),
    "lone-surrogate": ("accountId", "a", _SURROGATE_MARK),
    "zero-width-status": ("status", "st", "Canceled\u200b"),
    "zero-width-side": ("side", "sd", "Buy\u200b"),
    "huge-exponent": ("price", "p", "1e999999999999999999"),
    "exponent-price": ("price", "p", "1e99999999"),
    "full-width-digits": ("orderQty", "q", "\uff11\uff10"),
    "arabic-indic-digits": ("orderQty", "q", "\u0661\u0660"),
    "underscore-qty": ("orderQty", "q", "1_000"),
    "hex-price": ("price", "p", "0x10"),
    "negative-zero": ("price", "p", "-0"),
    "number-not-string": ("price", "p", 64000.5),
}


def spoil(record: dict[str, Any], oddity: str, long_keys: bool) -> dict[str, Any]:
    """A copy of ``record`` (long keys for replies, short for the channel) with ``oddity``."""
    record = dict(record)
    if oddity in _VALUE:
        long_key, short_key, value = _VALUE[oddity]
        record[long_key if long_keys else short_key] = value
    elif oddity == "filled-above-qty":
        qty, filled = ("orderQty", "cumFilledQty") if long_keys else ("q", "cfq")
        record[filled] = record[qty] + "1"  # e.g. 0.5 -> 0.51, 3 -> 31: always above
    elif oddity == "no-order-id":
        record.pop("orderId", None)
    # "same-id-other-symbol" leaves the record as it is: see :func:`twin`
    return record


def twin(record: dict[str, Any], symbols: list[str]) -> dict[str, Any] | None:
    """For ``same-id-other-symbol``: another order with the same id on another symbol
    (long keys), or None when there is only one symbol."""
    others = [s for s in symbols if s != record["symbol"]]
    if not others:
        return None
    return {**record, "symbol": others[0], "orderQty": "7", "cumFilledQty": "0"}


def encode(text: str) -> str:
    """Encoded JSON text with each lone-surrogate mark turned into the escape ``\\udc80``."""
    if "sim-lone-surrogate" not in text:
        return text
    return text.replace('"\\u0000sim-lone-surrogate\\u0000"', '"\\udc80"')
