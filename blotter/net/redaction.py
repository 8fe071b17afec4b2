"""What the session hands up never carries the login: the API key, the signatures it
sent and their timestamps (a signature with its timestamp logs in as the user for
30 s) are redacted wherever a server puts them back — an auth or error reply, a close
reason, an order field, a handshake failure.

One rule, applied to two shapes:

- :meth:`Redactor.text` for a line (a connection detail, an error): the key becomes
  its mask (``kEyQ…6Ga1``), a signature ``[signature]``, a login timestamp
  ``[auth timestamp]``.
- :meth:`Redactor.frame` for a raw JSON frame, before it is parsed: every string in
  it (keys and values) gets :meth:`text`, so escapes (``\\u0041``, ``\\/``) cannot hide
  a secret; a frame without anything to redact is returned as it is.

The reader does not pay for this per frame: the connection scans each read from the
socket for the :meth:`needles` (and for any backslash) and marks itself *tainted*;
only a tainted connection's frames go through :meth:`frame` (see
:mod:`blotter.net.transport`). The journal has its own redaction
(``blotter.journal.redaction``) for what it stores.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from ..protocol.signing import mask_key

MIN_KEY_CHARS = 8
"""A shorter key is not looked for (it would match ordinary text; no real key is that short)."""
LOGINS_KEPT = 16
"""Signatures (with their timestamps) remembered: the current connection's and a few before."""
SCANNED_LOGINS = 2
"""Signatures a read from the socket is scanned for: this connection's and the one before."""


class Redactor:
    def __init__(self, api_key: str) -> None:
        self._key = api_key if len(api_key) >= MIN_KEY_CHARS else ""
        self._masked = mask_key(api_key)
        self._logins: deque[tuple[str, str]] = deque(maxlen=LOGINS_KEPT)
        self._needles: tuple[bytes, ...] = ()
        self.on_login: Callable[[str, int], None] | None = None
        """Told every login (signature, timestamp) too: the desk hands them to the journal,
        which never sees header-auth values as a frame and must redact them as well."""
        self._rebuild()

    def add_login(self, signature: str, timestamp_ms: int) -> None:
        """A signature about to be sent (upgrade headers or ``op:auth``)."""
        self._logins.append((signature, str(timestamp_ms)))
        self._rebuild()
        if self.on_login is not None:
            self.on_login(signature, timestamp_ms)

    def _rebuild(self) -> None:
        # Scanned for on every read, so as few as do the job: the key and the latest
        # signatures. Not the timestamps (no secret alone; with their signature, that
        # one is found) nor escaped forms (the scan flags any backslash).
        found: list[str] = [self._key] if self._key else []
        found += [signature for signature, _ in list(self._logins)[-SCANNED_LOGINS:]]
        self._needles = tuple(dict.fromkeys(n.encode() for n in found if n))

    def needles(self) -> tuple[bytes, ...]:
        """What a read from the socket is scanned for (a backslash is looked for too):
        about 0.1 µs per 250-byte frame, under 1% of a frame's cost in a burst."""
        return self._needles

    def text(self, value: str) -> str:
        if self._key and self._key in value:
            value = value.replace(self._key, self._masked)
        for signature, timestamp in self._logins:
            if signature in value:
                value = value.replace(signature, "[signature]")
            if timestamp in value:
                value = value.replace(timestamp, "[auth timestamp]")
        return value

    def frame(self, raw: bytes) -> bytes:
        """``raw`` with every secret in its strings redacted (``raw`` itself when none is there)."""
        if b"\\" not in raw and not any(needle in raw for needle in self._needles):
            return raw
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            text = raw.decode("utf-8", "replace")
            redacted = self.text(text)
            return raw if redacted == text else redacted.encode()
        clean = self._walk(data)
        return raw if clean == data else orjson.dumps(clean)

    def _walk(self, value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if depth > 64:  # deeper than any exchange message (orjson goes to 1024): not walked, dropped
            return "[nested too deep]"
        if isinstance(value, dict):
            return {self.text(k): self._walk(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v, depth + 1) for v in value]
        return value
