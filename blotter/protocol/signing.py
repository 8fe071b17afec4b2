"""Request signing: ``base64(HMAC-SHA256(key_bytes, "<t>+<path>"))``.

The exchange documentation is ambiguous about ``key_bytes``: the official Python
demos (and ccxt) use ``base64decode(secret)``, the shell examples use the secret's
raw UTF-8 bytes. Both are supported; ``base64`` is the default.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Literal

SecretEncoding = Literal["base64", "raw"]
SECRET_ENCODINGS: tuple[str, ...] = ("base64", "raw")
STREAM_PATH = "v2/stream"


class SigningError(ValueError):
    """The secret cannot be used with the chosen key form. Never carries the secret."""


def key_bytes(secret: str, encoding: SecretEncoding = "base64") -> bytes:
    """The HMAC key for ``secret`` in the given key form."""
    if encoding == "raw":
        return secret.encode("utf-8")
    if encoding == "base64":
        try:
            return base64.b64decode(secret.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise SigningError(
                "the API secret is not valid base64; if your secret is used as raw bytes, "
                'use --secret-encoding raw (config: secret_encoding = "raw")'
            ) from None
    raise SigningError(f"unknown secret encoding {encoding!r}; use base64 or raw")


def sign_message(secret: str, message: str, encoding: SecretEncoding = "base64") -> str:
    """``base64(HMAC-SHA256(key_bytes(secret), message))``."""
    digest = hmac.new(key_bytes(secret, encoding), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign(secret: str, timestamp_ms: int, encoding: SecretEncoding = "base64", path: str = STREAM_PATH) -> str:
    """The signature the WebSocket API wants for ``timestamp_ms``: over ``"<t>+v2/stream"``."""
    return sign_message(secret, f"{timestamp_ms}+{path}", encoding)


def now_ms() -> int:
    """Current UTC time in milliseconds, as the exchange wants it."""
    return time.time_ns() // 1_000_000


def _usable_key(api_key: str) -> bool:
    return bool(api_key) and all("!" <= c <= "~" for c in api_key)


def check_key(api_key: str) -> None:
    """Raise :class:`SigningError` (never quoting the key) unless ``api_key`` is
    printable ASCII without spaces: anything else cannot go in a header (CR/LF would
    split it) and is not a key the exchange issues."""
    if not _usable_key(api_key):
        raise SigningError(
            "the API key is empty or contains spaces, line breaks or other control characters; "
            "check ASCENDEX_API_KEY (or api_key in the config file)"
        )


def auth_headers(
    api_key: str, secret: str, encoding: SecretEncoding = "base64", timestamp_ms: int | None = None
) -> dict[str, str]:
    """Upgrade headers that authenticate the WebSocket connection itself."""
    check_key(api_key)
    t = now_ms() if timestamp_ms is None else timestamp_ms
    return {
        "x-auth-key": api_key,
        "x-auth-timestamp": str(t),
        "x-auth-signature": sign(secret, t, encoding),
    }


def mask_key(api_key: str) -> str:
    """A key as it may be shown: first and last four characters only. A key that is
    not printable ASCII without spaces shows none of its characters (its ends could
    be a line break or an escape sequence)."""
    if not _usable_key(api_key):
        return "(unusable key)" if api_key else ""
    if len(api_key) <= 8:
        return "*" * len(api_key)
    return f"{api_key[:4]}…{api_key[-4:]}"
