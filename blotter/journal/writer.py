"""The audit journal: every frame sent and received, appended to a SQLite file.

Why it is built this way:

- **The screen and the cancel path never wait for the disk.** ``record_*`` only
  appends a small tuple to an in-memory deque (no encoding, no I/O, no lock held
  while writing). A daemon writer thread owns the SQLite connection and drains the
  deque in batches, one transaction per batch (every ``interval`` seconds, sooner
  when ``batch_rows`` are waiting).
- **Memory stays bounded.** Past ``max_pending`` waiting rows, further rows are
  dropped and counted; the writer records a note saying how many were lost.
- **A broken journal is visible, never fatal.** ``Journal.open`` raises
  :class:`JournalError` with a one-line message; a later write failure is kept in
  :attr:`Journal.error` and the journal stops writing.
- **Secrets are never written.** An ``auth`` frame is stored with the key masked
  and no signature; configured secrets (``redact``) are masked wherever they
  appear, inbound frames included; ``x-auth-*`` header values are masked.
- **A SIGKILL loses at most the batch in flight.** WAL mode with
  ``synchronous=NORMAL``: every committed batch survives a killed process.

Several processes (the TUI and a headless command) may write one journal at once:
each row carries a per-process ``session`` token, and replies are matched to
requests within the session that sent them.

The query side (:func:`read_history`, :func:`format_history`, :func:`history_json`,
:func:`parse_since`) backs ``blotter journal``.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import orjson
from pydantic import SecretStr

from ..protocol.messages import CANCELED, FINAL_STATUSES, OrderUpdate
from ..protocol.requests import Auth
from ..protocol.signing import mask_key

__all__ = [
    "Journal",
    "JournalError",
    "Reply",
    "RequestHistory",
    "SCHEMA_VERSION",
    "format_history",
    "format_time",
    "history_json",
    "parse_since",
    "read_history",
]

SCHEMA_VERSION = 1

COLUMNS = (
    "ts_ms", "direction", "kind", "action", "request_id", "order_id", "symbol",
    "status", "code", "reason", "message", "raw", "session",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS frames (
    id         INTEGER PRIMARY KEY,
    ts_ms      INTEGER NOT NULL,
    direction  TEXT NOT NULL,
    kind       TEXT,
    action     TEXT,
    request_id TEXT,
    order_id   TEXT,
    symbol     TEXT,
    status     TEXT,
    code       INTEGER,
    reason     TEXT,
    message    TEXT,
    raw        TEXT,
    session    TEXT
);
CREATE INDEX IF NOT EXISTS frames_request_id ON frames(request_id);
CREATE INDEX IF NOT EXISTS frames_order_id ON frames(order_id);
CREATE INDEX IF NOT EXISTS frames_ts_ms ON frames(ts_ms);
"""

_INSERT = f"INSERT INTO frames ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"

BUSY_TIMEOUT_MS = 5000
OPEN_TIMEOUT = 20.0
"""How long :meth:`Journal.open` waits for the writer to have the file open."""

_AUTH_OP = re.compile(r'"op"\s*:\s*"auth"')
_X_AUTH = re.compile(r"""(?i)(x-auth-[\w-]*["']?\s*[:=]\s*["']?)([^\s"',;}\]]+)""")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class JournalError(Exception):
    """The journal cannot be opened or read. The message is one line, fit to show."""


def _one_line(exc: BaseException | str) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror.lower() if exc.strerror[:1].isupper() and exc.strerror[1:2].islower() else exc.strerror
    else:
        text = str(exc) if not isinstance(exc, str) else exc
    text = " ".join(text.split())
    if not text and isinstance(exc, BaseException):
        text = type(exc).__name__
    return text[:300]


# -- opening ---------------------------------------------------------------------------
def _make_dirs(directory: Path) -> None:
    """Create ``directory`` and missing parents, each new one with mode 700."""
    missing: list[Path] = []
    d = directory
    while not d.exists():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            pass


def _create_file(path: Path) -> None:
    """The journal file, created with mode 600 (an existing one is tightened to 600)."""
    if path.is_dir():
        raise JournalError(f"cannot open journal {path}: it is a directory")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.name == "posix" and os.fstat(fd).st_mode & 0o077:
            try:
                os.fchmod(fd, 0o600)
            except OSError:
                pass
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        try:
            if os.name == "posix" and side.exists() and side.stat().st_mode & 0o077:
                side.chmod(0o600)
        except OSError:
            pass


def _connect_for_writing(path: Path) -> sqlite3.Connection:
    """Open (creating if need be) the journal and check its schema. Raises JournalError."""
    try:
        _make_dirs(path.parent)
        _create_file(path)
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except JournalError:
        raise
    except (OSError, sqlite3.Error) as exc:
        raise JournalError(f"cannot open journal {path}: {_one_line(exc)}") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise JournalError(f"cannot open journal {path}: the file system does not support WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
        _check_schema(conn, path)
    except JournalError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise JournalError(f"cannot open journal {path}: {_one_line(exc)}") from None
    return conn


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        version = int(row[0]) if row else None
    except (TypeError, ValueError):
        version = None
    if version is None:
        raise JournalError(f"{path} is not a blotter journal (no schema version)")
    if version > SCHEMA_VERSION:
        raise JournalError(f"journal {path} has schema version {version}; this blotter understands up to {SCHEMA_VERSION}")
    have = {r[1] for r in conn.execute("PRAGMA table_info(frames)")}
    missing = [c for c in ("id", *COLUMNS) if c not in have]
    if missing:
        raise JournalError(f"{path} is not a blotter journal (table frames lacks {', '.join(missing)})")


# -- rows ------------------------------------------------------------------------------
def _int64(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _encodable(text: str) -> str:
    """Text SQLite will take: lone surrogates (never valid UTF-8) become U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


REDACTED = "[redacted]"


class _Redactor:
    """Replaces secrets by their masks, and ``x-auth-*`` header values by ``***``."""

    MAX_SIGNATURES = 4

    def __init__(self, values: Iterable[str]) -> None:
        self.fixed: dict[str, str] = {}
        for v in values:
            self.add(v)
        self.signatures: deque[str] = deque(maxlen=self.MAX_SIGNATURES)

    def add(self, value: str, masked: bool = True) -> None:
        """Replace ``value`` wherever it appears: by its mask (an API key: first and
        last four characters) or, with ``masked=False`` (a secret), entirely."""
        if value and value not in self.fixed:
            replacement = mask_key(value) if masked else REDACTED
            self.fixed[value] = replacement
            escaped = value.replace("/", "\\/")  # as some JSON encoders write it
            if escaped != value:
                self.fixed[escaped] = replacement

    def add_signature(self, sig: str) -> None:
        if sig and sig not in self.signatures:
            self.signatures.append(sig)

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        if not isinstance(text, str):
            text = str(text)
        for needle, mask in self.fixed.items():
            if needle in text:
                text = text.replace(needle, mask)
        for sig in self.signatures:
            if sig in text:
                text = text.replace(sig, "***")
                if "\\/" not in sig:
                    text = text.replace(sig.replace("/", "\\/"), "***")
        if "x-auth-" in text.lower():  # (a burst's frames never hold one: skip the search)
            text = _X_AUTH.sub(r"\1***", text)
        return _encodable(text)


def _secret_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value)


_Item = tuple[str, int, Any, Any]
"""(direction, wall-clock ns, request/event/note text, raw text or (request_id, order_id))."""


class Journal:
    """The audit journal. Make one with :meth:`Journal.open`.

    ``record_*`` may be called from any thread and never blocks or raises;
    ``flush`` and ``close`` wait (bounded) for the writer thread."""

    def __init__(self, path: Path, *, redact: Iterable[Any] = (), mask: Iterable[Any] = (), session: str | None = None,
                 interval: float = 0.05, batch_rows: int = 500, max_pending: int = 200_000,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.path = path
        self._clock = clock
        self.session = session or f"{os.getpid()}-{secrets.token_hex(3)}"
        self.endpoint: str | None = None
        """The exchange URL of this session (see :meth:`open`)."""
        self.error: str | None = None
        """Why the journal stopped writing (one line), or None while it works."""
        self.dropped = 0
        """Rows not recorded because the writer fell more than ``max_pending`` behind."""
        self.written = 0
        """Rows committed by this journal (notes included)."""
        self._interval = interval
        self._batch_rows = max(1, batch_rows)
        self._max_pending = max_pending
        self._redact = _Redactor(())
        for value in mask:
            self._redact.add(_secret_text(value), masked=True)
        for value in redact:
            self._redact.add(_secret_text(value), masked=False)
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._ready = threading.Event()
        self._open_error: str | None = None
        self._closing = False
        self._stopped = False
        self._dropped_reported = 0
        self._thread = threading.Thread(target=self._run, name=f"journal-writer {path.name}", daemon=True)

    # -- life cycle --------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str], *, redact: Iterable[str | SecretStr | None] = (),
             mask: Iterable[str | SecretStr | None] = (),
             session: str | None = None, interval: float = 0.05, batch_rows: int = 500,
             max_pending: int = 200_000, clock: Callable[[], int] = time.time_ns,
             endpoint: str | None = None) -> Journal:
        """Open (or create) the journal at ``path`` and start its writer thread.

        ``redact``: secrets (the API secret) replaced by ``[redacted]`` wherever they
        would be written; ``mask``: API keys, shown as their first and last four
        characters. ``clock`` (wall-clock ns) stamps sent frames and notes; received
        frames carry their own receive time. Raises :class:`JournalError` (one line)
        if the file cannot be used (the caller shows it and runs without a journal).
        ``endpoint``: the exchange URL this session talks to (without credentials),
        recorded first so every session's rows say where they came from."""
        journal = cls(Path(path).expanduser(), redact=[r for r in redact if r is not None],
                      mask=[m for m in mask if m is not None], session=session,
                      interval=interval, batch_rows=batch_rows, max_pending=max_pending, clock=clock)
        journal._thread.start()
        if not journal._ready.wait(OPEN_TIMEOUT):
            journal._closing = True
            journal._stopped = True
            raise JournalError(f"cannot open journal {journal.path}: timed out waiting for the database lock")
        if journal._open_error is not None:
            journal._thread.join(1.0)
            raise JournalError(journal._open_error)
        atexit.register(journal.close)
        journal.endpoint = endpoint
        if endpoint:
            journal.record_note(f"session {journal.session} endpoint {endpoint}")
        return journal

    @property
    def pending(self) -> int:
        """Rows waiting for the writer."""
        return len(self._queue)

    @property
    def closed(self) -> bool:
        return self._closing

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything recorded so far is committed. False if it was not
        (timeout, or the writer stopped: see :attr:`error`)."""
        if self._stopped or not self._thread.is_alive():
            return not self._queue and self.error is None
        done = threading.Event()
        self._queue.append(done)
        self._wake.set()
        if not done.wait(timeout):
            return False
        return self.error is None

    def close(self, timeout: float = 5.0) -> None:
        """Write what is pending and stop the writer (waits at most ``timeout`` s).
        Never raises; a problem is left in :attr:`error`. Safe to call twice."""
        try:
            atexit.unregister(self.close)
        except Exception:  # noqa: BLE001
            pass
        if self._closing and not self._thread.is_alive():
            return
        self._closing = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive() and self.error is None:
            self.error = f"journal close timed out after {timeout:g} s; {len(self._queue)} rows may not be recorded"

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- recording (caller thread: append only) ----------------------------------------
    def _put(self, item: _Item) -> None:
        if self._stopped or self._closing:
            return
        q = self._queue
        n = len(q)
        if n >= self._max_pending:
            self.dropped += 1
            return
        q.append(item)
        if n + 1 == self._batch_rows:
            self._wake.set()

    def record_sent(self, request: Any, text: str) -> None:
        """A frame handed to the socket. An auth frame is stored masked, without signature."""
        self._put(("sent", self._clock(), request, text))

    def record_received(self, event: Any, raw: str, received_ns: int) -> None:
        """An inbound frame, its parsed event and its wall-clock receive time (ns)."""
        self._put(("received", received_ns, event, raw))

    def record_note(self, text: str, request_id: str | None = None, order_id: str | None = None) -> None:
        """A line of our own: connection changes, warnings."""
        self._put(("note", self._clock(), text, (request_id, order_id)))

    # -- writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        try:
            conn = _connect_for_writing(self.path)
        except JournalError as exc:
            self._open_error = str(exc)
            self._stopped = True
            self._ready.set()
            return
        except Exception as exc:  # noqa: BLE001
            self._open_error = f"cannot open journal {self.path}: {_one_line(exc)}"
            self._stopped = True
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop(conn)
        except Exception as exc:  # noqa: BLE001 - the journal must never take the app down
            self._fail(exc)
        finally:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
            self._release_waiters()

    def _loop(self, conn: sqlite3.Connection) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            closing = self._closing
            while True:
                rows, markers = self._take()
                dropped = self.dropped - self._dropped_reported
                if dropped > 0:
                    rows.append(self._note_row(
                        self._clock() // 1_000_000,
                        f"journal: {dropped} frame(s) not recorded (the writer fell more than "
                        f"{self._max_pending} rows behind)",
                    ))
                if rows:
                    try:
                        self._write_with_retry(conn, rows)
                    except Exception as exc:  # noqa: BLE001
                        self._fail(exc)
                        for m in markers:
                            m.set()
                        return
                    self.written += len(rows)
                    self._dropped_reported += max(dropped, 0)
                for m in markers:
                    m.set()
                if not self._queue:
                    break
            if closing:
                return

    def _take(self) -> tuple[list[tuple], list[threading.Event]]:
        rows: list[tuple] = []
        markers: list[threading.Event] = []
        q = self._queue
        while q and len(rows) < self._batch_rows:
            item = q.popleft()
            if isinstance(item, threading.Event):
                markers.append(item)
                continue
            rows.append(self._row(item))
        return rows, markers

    def _write_with_retry(self, conn: sqlite3.Connection, rows: list[tuple]) -> None:
        for attempt in range(3):
            try:
                self._write_batch(conn, rows)
                return
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or attempt == 2:
                    raise

    def _write_batch(self, conn: sqlite3.Connection, rows: list[tuple]) -> None:
        """One transaction for one batch."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise

    def _fail(self, exc: BaseException) -> None:
        lost = sum(1 for item in self._queue if not isinstance(item, threading.Event))
        self.error = f"journal write failed: {_one_line(exc)}; journaling stopped ({lost} pending rows not recorded)"
        self._stopped = True
        self._release_waiters()

    def _release_waiters(self) -> None:
        """Wake every flush() still waiting; drop rows that will never be written."""
        if not self._stopped and not self._closing:
            return
        while self._queue:
            try:
                item = self._queue.popleft()
            except IndexError:
                break
            if isinstance(item, threading.Event):
                item.set()
            elif self.error is None:
                self.dropped += 1  # raced with close(): counted, never silently lost

    # -- rows (writer thread) ------------------------------------------------------------
    def _row(self, item: _Item) -> tuple:
        direction, ns, obj, extra = item
        ts = int(ns) // 1_000_000
        try:
            if direction == "sent":
                return self._sent_row(ts, obj, extra)
            if direction == "received":
                return self._received_row(ts, obj, extra)
            rid, oid = extra
            return (ts, "note", "note", None, self._text(rid), self._text(oid), None, None, None, None,
                    self._redact(self._text(obj)), None, self.session)
        except Exception as exc:  # noqa: BLE001 - one odd frame must not stop the journal
            return (ts, direction, "unrecordable", None, None, None, None, None, None,
                    f"{type(exc).__name__}", f"could not record this frame: {_one_line(exc)}"[:300], None, self.session)

    def _note_row(self, ts: int, text: str) -> tuple:
        return (ts, "note", "note", None, None, None, None, None, None, None, text, None, self.session)

    @staticmethod
    def _text(value: Any) -> str | None:
        if value is None:
            return None
        return value if isinstance(value, str) else str(value)

    def _sent_row(self, ts: int, request: Any, text: str) -> tuple:
        action = getattr(type(request), "action", None) or None
        is_auth = isinstance(request, Auth) or action == "auth" or bool(_AUTH_OP.search(text or ""))
        if isinstance(request, Auth):
            self._redact.add(request.api_key.get_secret_value())
            self._redact.add_signature(request.signature.get_secret_value())
        raw = self._sanitize_sent(text, is_auth)
        return (
            ts, "sent", "request", self._text(action) if not is_auth else "auth",
            self._text(getattr(request, "request_id", None)),
            self._text(getattr(request, "order_id", None)),
            self._text(getattr(request, "symbol", None)),
            None, None, None, None, raw, self.session,
        )

    def _sanitize_sent(self, text: Any, is_auth: bool) -> str | None:
        if not isinstance(text, str):
            text = bytes(text).decode("utf-8", "replace") if isinstance(text, (bytes, bytearray, memoryview)) else str(text)
        if is_auth or '"sig"' in text or '"key"' in text:
            try:
                data = orjson.loads(text)
            except orjson.JSONDecodeError:
                data = None
            if isinstance(data, dict):
                if is_auth or "sig" in data or "key" in data:
                    self._redact.add_signature(str(data.get("sig") or ""))
                    data.pop("sig", None)
                    if "key" in data:
                        key = str(data["key"])
                        self._redact.add(key)
                        data["key"] = mask_key(key)
                    text = orjson.dumps(data).decode("utf-8")
            elif is_auth:
                return '{"op":"auth","withheld":"an auth frame that is not a JSON object"}'
        return self._redact(text)

    def _received_row(self, ts: int, event: Any, raw: Any) -> tuple:
        if type(event) is OrderUpdate:  # the burst's frames: the same row, without the search below
            order = event.order
            if isinstance(raw, (bytes, bytearray, memoryview)):
                raw = bytes(raw).decode("utf-8", "replace")
            r = self._redact
            return (ts, "received", "order-update", None, None, r(order.order_id), r(order.symbol), r(order.status),
                    None, None, None, r(raw), self.session)
        g = getattr
        kind = g(event, "kind", None) or type(event).__name__
        action = g(event, "action", None)
        request_id = g(event, "request_id", None)
        order_id = g(event, "order_id", None)
        symbol = g(event, "symbol", None)
        status = None
        code = g(event, "code", None)
        reason = message = None
        order = g(event, "order", None)
        if order is not None:
            order_id = order_id or g(order, "order_id", None)
            symbol = symbol or g(order, "symbol", None)
            status = g(order, "status", None)
        if kind == "error":
            reason, message = g(event, "reason", None) or None, g(event, "message", None) or None
        elif kind == "disconnected":
            reason, message = g(event, "reason", None) or None, g(event, "info", None) or None
        elif kind == "auth":
            action, reason = "auth", g(event, "error", None) or None
        elif kind == "sub":
            action, reason = g(event, "op", None) or "sub", g(event, "error", None) or None
            message = g(event, "channel", None) or None
        elif kind == "open-orders":
            action = "futures-open-orders"
            orders = g(event, "orders", None) or []
            rejected = g(event, "rejected", None) or []
            message = f"{len(orders)} open" + (f", {len(rejected)} rejected" if rejected else "")
        elif kind == "account-snapshot":
            action = "futures-account-snapshot"
        elif kind in ("invalid", "bad-frame"):
            reason = g(event, "error", None) or None
            message = g(event, "type", None) or None
        elif kind == "unknown":
            message = g(event, "type", None) or None
        if isinstance(raw, (bytes, bytearray, memoryview)):
            raw = bytes(raw).decode("utf-8", "replace")
        r, t = self._redact, self._text
        return (
            ts, "received", t(kind), r(t(action)), r(t(request_id)), r(t(order_id)), r(t(symbol)), r(t(status)),
            _int64(code), r(t(reason)), r(t(message)), r(t(raw)), self.session,
        )


# -- query side --------------------------------------------------------------------------
_SINCE = re.compile(r"^\s*(\d{1,12})\s*([smhd])\s*$", re.IGNORECASE)
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}

CANCEL_ALL_WINDOW_MS = 60_000
"""A cancel-all collects Canceled updates until the next snapshot, or this long."""


def parse_since(text: str) -> int:
    """``30s`` / ``10m`` / ``2h`` / ``1d`` → milliseconds ago."""
    m = _SINCE.match(text or "")
    if not m or int(m.group(1)) == 0:
        raise JournalError(f"bad --since value {text!r}: use a positive number and a unit, e.g. 30s, 10m, 2h or 1d")
    return int(m.group(1)) * _UNIT_MS[m.group(2).lower()]


@dataclass
class Reply:
    """One frame that answered or confirmed a request."""

    ts_ms: int
    elapsed_ms: int
    kind: str
    action: str | None = None
    order_id: str | None = None
    symbol: str | None = None
    status: str | None = None
    code: int | None = None
    reason: str | None = None
    message: str | None = None

    @property
    def refused(self) -> bool:
        if self.kind == "error":
            return True
        return self.kind in ("auth", "sub", "open-orders", "account-snapshot") and self.code not in (None, 0)

    def describe(self, request_order_id: str | None = None) -> str:
        if self.kind == "ack":
            return "ACK" + (f" (order {self.status})" if self.status else "")
        if self.kind == "error":
            parts = ["ERR", str(self.code) if self.code is not None else "", self.reason or ""]
            head = " ".join(p for p in parts if p)
            return f"{head}: {self.message}" if self.message else head
        if self.kind == "order-update":
            text = f"order {self.status or '?'}"
            if self.order_id and self.order_id != request_order_id:
                text += f" {self.order_id}" + (f" {self.symbol}" if self.symbol else "")
            return text
        if self.kind == "open-orders":
            return f"snapshot ({self.message})" if self.message else "snapshot"
        if self.kind == "note":
            return f"note: {self.message}"
        if self.kind in ("auth", "sub", "account-snapshot"):
            name = {"auth": "auth", "sub": self.action or "sub", "account-snapshot": "account snapshot"}[self.kind]
            if self.refused:
                return " ".join(p for p in (name, "refused", str(self.code), self.reason or "") if p)
            return f"{name} ok"
        return self.kind


@dataclass
class RequestHistory:
    """One request's life as the journal saw it: what was sent, and what came back."""

    request_id: str
    ts_ms: int
    action: str | None
    symbol: str | None
    order_id: str | None
    session: str | None
    replies: list[Reply] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """A word or three: ``canceled``, ``refused``, ``acked, 3 canceled``, ``no reply``…"""
        if any(r.refused for r in self.replies):
            return "refused"
        finals = [r for r in self.replies if r.kind == "order-update"]
        acked = any(r.kind == "ack" for r in self.replies)
        if self.action == "cancel-order":
            if finals:
                return (finals[0].status or "final").lower()
            return "acked, not confirmed" if acked else "no reply"
        if self.action == "cancel-all":
            if acked:
                return f"acked, {len(finals)} canceled"
            return f"no reply, {len(finals)} canceled" if finals else "no reply"
        if acked:
            return "acked"
        return "answered" if self.replies else "no reply"


_ROW = "id, ts_ms, kind, action, request_id, order_id, symbol, status, code, reason, message, session"


def _connect_for_reading(path: str | os.PathLike[str]) -> sqlite3.Connection:
    p = Path(path).expanduser()
    if not p.exists():
        raise JournalError(f"no journal at {p} (nothing recorded yet, or --no-journal was used)")
    if p.is_dir():
        raise JournalError(f"cannot read journal {p}: it is a directory")
    try:
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _check_schema(conn, p)
    except JournalError:
        raise
    except sqlite3.Error as exc:
        msg = _one_line(exc)
        if "no such table" in msg:
            raise JournalError(f"{p} is not a blotter journal") from None
        raise JournalError(f"cannot read journal {p}: {msg}") from None
    return conn


def _reply(row: tuple, sent_ts: int) -> Reply:
    _id, ts, kind, action, _rid, oid, sym, status, code, reason, message, _session = row
    return Reply(ts_ms=ts, elapsed_ms=ts - sent_ts, kind=kind or "?", action=action, order_id=oid, symbol=sym,
                 status=status, code=code, reason=reason, message=message)


def read_history(path: str | os.PathLike[str], since_ms: int | None = None, request_id: str | None = None,
                 order_id: str | None = None, *, now_ms: int | None = None) -> list[RequestHistory]:
    """Requests sent (in the last ``since_ms`` ms, if given), each with every reply
    and confirmation that came back, oldest first.

    Replies are matched within the session (process) that sent the request: by
    request id (ACK, ERR, snapshot…); for ``cancel-order`` also the order-channel
    update that made the order final (and a 2021-dialect ACK that carries only the
    order id); for ``cancel-all`` the Canceled updates that followed until the next
    open-orders snapshot (or :data:`CANCEL_ALL_WINDOW_MS`).

    ``order_id`` keeps the requests about that order: its cancels, and cancel-alls
    that canceled it."""
    conn = _connect_for_reading(path)
    try:
        return _read_history(conn, since_ms, request_id, order_id, now_ms)
    except sqlite3.Error as exc:
        raise JournalError(f"cannot read journal {path}: {_one_line(exc)}") from None
    finally:
        conn.close()


def _read_history(conn: sqlite3.Connection, since_ms: int | None, request_id: str | None,
                  order_id: str | None, now_ms: int | None) -> list[RequestHistory]:
    where = ["direction = 'sent'", "request_id IS NOT NULL"]
    params: list[Any] = []
    if since_ms is not None:
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        where.append("ts_ms >= ?")
        params.append(max(0, now - since_ms))
    if request_id is not None:
        where.append("request_id = ?")
        params.append(request_id)
    if order_id is not None:
        where.append("(order_id = ? OR action = 'cancel-all')")
        params.append(order_id)
    sent_rows = conn.execute(
        f"SELECT {_ROW} FROM frames WHERE {' AND '.join(where)} ORDER BY ts_ms, id", params
    ).fetchall()

    histories: list[RequestHistory] = []
    for row in sent_rows:
        sid, ts, _kind, action, rid, oid, sym, *_rest, session = row
        h = RequestHistory(request_id=rid, ts_ms=ts, action=action, symbol=sym, order_id=oid, session=session)
        replies: dict[int, tuple] = {}
        for r in conn.execute(
            f"SELECT {_ROW} FROM frames WHERE request_id = ? AND direction IN ('received', 'note') "
            "AND session IS ? AND id > ?",
            (rid, session, sid),
        ):
            replies[r[0]] = r
        if action == "cancel-order" and oid:
            if not any(r[2] in ("ack", "error") for r in replies.values()):
                r = conn.execute(  # 2021 dialect: the ACK is the order record, without the request id
                    f"SELECT {_ROW} FROM frames WHERE order_id = ? AND kind = 'ack' AND request_id IS NULL "
                    "AND direction = 'received' AND session IS ? AND id > ? ORDER BY id LIMIT 1",
                    (oid, session, sid),
                ).fetchone()
                if r is not None:
                    replies[r[0]] = r
            final = sorted(FINAL_STATUSES)
            r = conn.execute(
                f"SELECT {_ROW} FROM frames WHERE order_id = ? AND kind = 'order-update' AND direction = 'received' "
                f"AND session IS ? AND id > ? AND status IN ({', '.join('?' * len(final))}) ORDER BY id LIMIT 1",
                (oid, session, sid, *final),
            ).fetchone()
            if r is not None:
                replies[r[0]] = r
        elif action == "cancel-all":
            answered = [r for r in replies.values() if r[2] in ("ack", "error")]
            refused = any(r[2] == "error" for r in answered)
            if not refused:
                after = max((r[0] for r in answered), default=sid)
                cap = ts + CANCEL_ALL_WINDOW_MS
                snap = conn.execute(
                    f"SELECT {_ROW} FROM frames WHERE kind = 'open-orders' AND direction = 'received' "
                    "AND session IS ? AND id > ? AND ts_ms BETWEEN ? AND ? ORDER BY id LIMIT 1",
                    (session, after, ts, cap),
                ).fetchone()
                q = (f"SELECT {_ROW} FROM frames WHERE kind = 'order-update' AND status = ? AND direction = 'received' "
                     "AND session IS ? AND id > ? AND ts_ms >= ? AND ts_ms <= ?")
                args: list[Any] = [CANCELED, session, sid, ts, cap]
                if snap is not None:
                    q += " AND id < ?"
                    args.append(snap[0])
                    replies[snap[0]] = snap
                if sym:
                    q += " AND symbol = ?"
                    args.append(sym)
                for r in conn.execute(q, args):
                    replies[r[0]] = r
        h.replies = [_reply(replies[k], ts) for k in sorted(replies, key=lambda k: (replies[k][1], k))]
        if order_id is not None and h.order_id != order_id:
            if not any(r.order_id == order_id for r in h.replies):
                continue
            h.replies = [r for r in h.replies if r.kind != "order-update" or r.order_id == order_id]
        histories.append(h)
    return histories


def _clean(text: Any) -> str:
    """Exchange text is data: control characters (terminal escapes) are shown, not obeyed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def format_time(ts_ms: int, utc: bool = False) -> str:
    seconds, ms = divmod(ts_ms, 1000)
    dt = datetime.fromtimestamp(seconds, timezone.utc) if utc else datetime.fromtimestamp(seconds)
    return f"{dt:%Y-%m-%d %H:%M:%S}.{ms:03d}"


def format_history(histories: Iterable[RequestHistory], utc: bool = False) -> list[str]:
    """Human lines: one per request sent, then one indented line per reply."""
    lines: list[str] = []
    for h in histories:
        head = [format_time(h.ts_ms, utc), h.request_id, "sent", h.action or "?"]
        if h.symbol:
            head.append(h.symbol)
        if h.order_id:
            head.append(h.order_id)
        lines.append(_clean(" ".join(head)) + f"  → {h.outcome}")
        if not h.replies:
            lines.append("    (no reply recorded)")
        for r in h.replies:
            lines.append(_clean(f"    +{r.elapsed_ms} ms {r.describe(h.order_id)}"))
    return lines


def _iso(ts_ms: int) -> str:
    seconds, ms = divmod(ts_ms, 1000)
    return f"{datetime.fromtimestamp(seconds, timezone.utc):%Y-%m-%dT%H:%M:%S}.{ms:03d}Z"


def history_json(histories: Iterable[RequestHistory]) -> list[dict[str, Any]]:
    """One JSON-able dict per request (for ``--json``: one JSON line each)."""
    out: list[dict[str, Any]] = []
    for h in histories:
        out.append({
            "request_id": h.request_id,
            "time": _iso(h.ts_ms),
            "ts_ms": h.ts_ms,
            "action": h.action,
            "symbol": h.symbol,
            "order_id": h.order_id,
            "session": h.session,
            "outcome": h.outcome,
            "replies": [
                {
                    "time": _iso(r.ts_ms),
                    "ts_ms": r.ts_ms,
                    "elapsed_ms": r.elapsed_ms,
                    "kind": r.kind,
                    "summary": r.describe(h.order_id),
                    "action": r.action,
                    "order_id": r.order_id,
                    "symbol": r.symbol,
                    "status": r.status,
                    "code": r.code,
                    "reason": r.reason,
                    "message": r.message,
                }
                for r in h.replies
            ],
        })
    return out
