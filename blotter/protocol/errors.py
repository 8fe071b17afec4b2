"""The exchange's error codes, in one table (ADDENDUM §3.7), with readable reasons.

The futures v2 docs have no error table: this is the spot table (the same gateway),
the codes seen in futures samples, and ccxt's REST-era codes. REST refusals
(:mod:`blotter.protocol.rest`), WebSocket errors (the log lines of
:mod:`blotter.core.tracker`) and the simulator's refusals all read this one table.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["AUTH_CODES", "ERROR_CODES", "ErrorCode", "code_text", "explain", "is_auth_code", "readable"]


@dataclass(frozen=True)
class ErrorCode:
    """One documented error code: the exchange's ``reason`` word, a readable sentence,
    and where it is documented (``table``: the spot table; ``futures``: a futures page or
    sample; ``ccxt``: REST-era codes only ccxt knows)."""

    code: int
    reason: str
    text: str
    source: Literal["table", "futures", "ccxt"] = "table"


def _codes(source: Literal["table", "futures", "ccxt"], rows: Iterable[tuple[int, str, str]]) -> dict[int, ErrorCode]:
    return {code: ErrorCode(code, reason, text, source) for code, reason, text in rows}


ERROR_CODES: dict[int, ErrorCode] = {
    **_codes(
        "table",
        (
            (100001, "INVALID_HTTP_INPUT", "the HTTP request is invalid"),
            (100002, "DATA_NOT_AVAILABLE", "some required data is missing"),
            (100003, "KEY_CONFLICT", "the same key exists already"),
            (100004, "INVALID_REQUEST_DATA", "the HTTP request contains an invalid field or argument"),
            (100005, "INVALID_WS_REQUEST_DATA", "the WebSocket request contains an invalid field or argument"),
            (100006, "INVALID_ARGUMENT", "an argument is invalid"),
            (100007, "ENCRYPTION_ERROR", "something went wrong with data encryption"),
            (100008, "SYMBOL_ERROR", "the symbol does not exist or is not valid for the request"),
            (100009, "AUTHORIZATION_NEEDED", "authorization is required for this request"),
            (100010, "INVALID_OPERATION", "the action is invalid or not allowed for the account"),
            (100011, "INVALID_TIMESTAMP", "not a valid timestamp (is this computer's clock right?)"),
            (100012, "INVALID_STR_FORMAT", "a text field has the wrong format"),
            (100013, "INVALID_NUM_FORMAT", "a number has the wrong format"),
            (100101, "UNKNOWN_ERROR", "an unknown error"),
            (150001, "INVALID_JSON_FORMAT", "the request is not a valid JSON object"),
            (200001, "AUTHENTICATION_FAILED", "authentication failed"),
            (200002, "TOO_MANY_ATTEMPTS", "too many failed attempts"),
            (200003, "ACCOUNT_NOT_FOUND", "the account does not exist"),
            (200004, "ACCOUNT_NOT_SETUP", "the account is not set up properly"),
            (200005, "ACCOUNT_ALREADY_EXIST", "the account already exists"),
            (200006, "ACCOUNT_ERROR", "an account error (for a login: the key or signature was not accepted)"),
            (200007, "CODE_NOT_FOUND", "verification code not found"),
            (200008, "CODE_EXPIRED", "the verification code expired"),
            (200009, "CODE_MISMATCH", "the verification code does not match"),
            (200010, "PASSWORD_ERROR", "wrong password"),
            (200011, "CODE_GEN_FAILED", "the required code was not generated in time"),
            (200012, "FAKE_COKE_VERIFY", "verification failed"),
            (200013, "SECURITY_ALERT", "security alert"),
            (200014, "RESTRICTED_ACCOUNT", "the account is restricted for this activity (trading or withdrawal)"),
            (200015, "PERMISSION_DENIED", "the API key lacks the permission for this operation"),
            (300001, "INVALID_PRICE", "the order price is invalid"),
            (300002, "INVALID_QTY", "the order quantity is invalid"),
            (300003, "INVALID_SIDE", "the order side is invalid"),
            (300004, "INVALID_NOTIONAL", "the notional is too small or too large"),
            (300005, "INVALID_TYPE", "the order type is invalid"),
            (300006, "INVALID_ORDER_ID", "the order id is invalid (unknown, or not open)"),
            (300007, "INVALID_TIME_IN_FORCE", "the time in force is invalid"),
            (300008, "INVALID_ORDER_PARAMETER", "an order parameter is invalid"),
            (300009, "TRADING_VIOLATION", "trading violation on the account or asset"),
            (300011, "INVALID_BALANCE", "not enough balance for the trade"),
            (300012, "INVALID_PRODUCT", "not a product the exchange supports (check the symbol)"),
            (300013, "INVALID_BATCH_ORDER", "some or all orders in the batch are invalid"),
            (300020, "TRADING_RESTRICTED", "trading is restricted on the account or asset"),
            (300021, "TRADING_DISABLED", "trading is disabled on the account or asset"),
            (300031, "NO_MARKET_PRICE", "no market price for a market order"),
            (310001, "INVALID_MARGIN_BALANCE", "not enough margin balance"),
            (310002, "INVALID_MARGIN_ACCOUNT", "not a valid account for margin trading"),
            (310003, "MARGIN_TOO_RISKY", "leverage is too high"),
            (310004, "INVALID_MARGIN_ASSET", "this asset does not support margin trading"),
            (310005, "INVALID_REFERENCE_PRICE", "there is no valid reference price"),
            (510001, "SERVER_ERROR", "the exchange's server had an error"),
            (900001, "HUMAN_CHALLENGE", "the human challenge was not passed"),
        ),
    ),
    **_codes(
        "futures",
        (
            (300014, "TICK_SIZE_VIOLATION", "the order price is not a multiple of the tick size"),
            (320008, "FUTURES_TOO_RISKY", "the futures account's exposure is above the acceptable level"),
            (100014, "MAX_REQ_COUNT_PER_IP", "too many requests from this IP address (rate limit)"),
            (300019, "DUPLICATED_CANCEL", "duplicated cancel request, or cancelling an order that is not open"),
        ),
    ),
    **_codes(
        "ccxt",
        (
            (1900, "INVALID_HTTP_INPUT", "invalid HTTP request input"),
            (2100, "API_KEY_FAILURE", "the API key or signature was not accepted"),
            (5002, "INVALID_SYMBOL", "invalid symbol"),
            (6001, "TRADING_DISABLED", "trading is disabled on the symbol"),
            (6010, "INSUFFICIENT_BALANCE", "not enough balance"),
            (60060, "ORDER_DONE", "the order is already filled or canceled"),
            (600503, "NOTIONAL_TOO_SMALL", "the notional is too small"),
        ),
    ),
}
"""Every error code ADDENDUM §3.7 lists: the spot table (the futures docs have none),
codes seen in futures samples, and ccxt's REST-era codes."""

AUTH_CODES = frozenset({100009, 200001, 200006, 2100})
"""Codes that mean "these credentials were not accepted" (a wrong key form looks like this)."""


def code_text(code: int | None) -> str:
    """``"TICK_SIZE_VIOLATION: the order price is not a multiple of the tick size"``; a code
    not in the table is said to be so, by group (§3.7: group = code / 10000)."""
    if code is None:
        return "no error code given"
    known = ERROR_CODES.get(code)
    if known is not None:
        return f"{known.reason}: {known.text}"
    groups = {
        10: "general",
        15: "format",
        20: "authentication",
        30: "order",
        31: "margin",
        32: "futures",
        50: "system",
        51: "system",
        90: "behaviour",
    }
    group = groups.get(code // 10000)
    return f"undocumented {group} error" if group else "undocumented error code"


def is_auth_code(code: int | None) -> bool:
    return code in AUTH_CODES


def readable(code: int | None) -> str:
    """The readable sentence of ``code`` alone (``"the order price is invalid"``), or what
    kind of undocumented code it is; ``""`` when there is no code."""
    if code is None:
        return ""
    known = ERROR_CODES.get(code)
    if known is not None:
        return known.text
    return code_text(code)


def explain(code: int | None, reason: str = "", message: str = "") -> str:
    """One refusal in words for the log: ``300006 INVALID_ORDER_ID <message> (the order id
    is invalid (unknown, or not open))``. The exchange's own reason word is kept when it
    sent one (else the table's, else ``-``); the readable sentence comes from the table.
    ``reason`` and ``message`` are wire text: sanitise the line before output."""
    known = ERROR_CODES.get(code) if code is not None else None
    word = reason or (known.reason if known is not None else "") or "-"
    head = word if code is None else f"{code} {word}"
    if code is None and word == "-" and not message:
        head = "-"
    line = f"{head} {message}".rstrip()
    words = readable(code)
    return f"{line} ({words})" if words else line
