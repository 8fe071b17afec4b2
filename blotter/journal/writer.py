"""The journal's writer: every frame sent and received, appended to the SQLite file.

Why it is built this way:

- **A request is in the journal before it goes out.** :meth:`Journal.record_sent`
  (called by the session just before the frame is handed to the socket) inserts
  the row at once, on the caller's thread: one ``INSERT`` committed in WAL mode
  with ``synchronous=NORMAL``, which survives a killed process (measured on this
  project's machine: 13 µs median, 61 µs at the 99th percentile). The sender never
  waits long for it: if the connection is busy (a batch being written) for more
  than :data:`OUTBOUND_WAIT` seconds, or another process holds the lock for more
  than :data:`~blotter.journal.schema.BUSY_TIMEOUT_MS` ms, or the journal is
  waiting for a lock, the row is handed to the writer thread instead (it is
  written in order as soon as possible; :attr:`JournalStatus.outbound_deferred`
  counts these). The file is never checkpointed by a sender (the writer thread
  does it on a connection of its own).
- **Inbound frames are batched.** ``record_received`` only appends to an
  in-memory deque; a daemon writer thread drains it in batches, one transaction
  per batch, every ``interval`` seconds (50 ms) or sooner when ``batch_rows`` wait.
  In a burst of order frames (over :data:`BURST_RATE` a second, and :data:`BURST_TAIL`
  after) it leaves them in memory, for at most :data:`BURST_DEFER` seconds and half
  the backlog's bound, so
  that the session's thread has the interpreter to itself (:meth:`Journal._in_burst`);
  a request sent, a note, a flush or closing is written at once with all before it.
  A ``kill -9`` loses at most the frames that had not been committed: normally
  the last ``interval``, in a burst the last ``BURST_DEFER``; at worst the whole
  backlog (below).
- **The backlog is bounded in bytes.** A frame over ``max_frame_bytes`` (64 KiB)
  is *summarised*: its first 64 KiB are kept with a note of its full size. Past
  ``max_pending_bytes`` (128 MiB, frames counted at their raw size plus
  :data:`ROW_OVERHEAD`, about what a waiting frame holds) or ``max_pending`` rows
  (400,000), further inbound frames are
  *dropped*. Both are counted (:attr:`Journal.status`), written to the journal as
  notes, and reported through :meth:`Journal.take_notices` for the log and header.
- **A held lock is waited out.** Another process holding the journal's write lock
  puts the journal in state ``waiting for lock``; it retries with backoff (up to
  :data:`LOCK_RETRY_MAX` s apart) for as long as it takes, and says when it
  writes again. Any other write failure stops the journal (``stopped: reason``),
  visibly, never fatally.
- **Secrets are never written** (:mod:`blotter.journal.redaction`).

Several processes (the TUI and a headless command) may write one journal at once:
each row carries a per-process ``session`` token (the ``sessions`` table says
which endpoint, pid and version it was), and replies are matched to requests
within the session that sent them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr

from .. import __version__
from ..core.text import url_without_credentials
from ..protocol.messages import Order, OrderUpdate
from ..protocol.requests import Auth
from ..protocol.signing import mask_key
from .redaction import Redactor
from .schema import INSERT, JournalError, JournalLocked, connect_for_writing, one_line

OPEN_TIMEOUT = 20.0
"""How long :meth:`Journal.open` waits for the writer to have the file open."""
OUTBOUND_WAIT = 0.05
"""Longest a sender waits for the shared connection before deferring its row."""
LOCK_RETRY_MIN, LOCK_RETRY_MAX = 0.05, 2.0
"""Backoff between tries while another process holds the lock (seconds)."""
LOCK_NOTICE_AFTER = 3
"""Busy tries in a row before ``waiting for lock`` is reported (brief contention
between the TUI and a headless command is normal and not worth a line)."""
MAX_PENDING_BYTES = 128 * 1024 * 1024
"""The backlog's bound in bytes: each waiting frame counted at its raw size plus
:data:`ROW_OVERHEAD` (about what it holds in memory: see :meth:`Journal.record_orders`)."""
MAX_PENDING_ROWS = 400_000
MAX_FRAME_BYTES = 64 * 1024
ROW_OVERHEAD = 256
"""Bytes counted per waiting row on top of its raw frame (the tuple, the event)."""
COLUMN_CAP = 4096
"""Longest text kept in one column other than ``raw``."""
BATCH_BYTES = 1024 * 1024
CHECKPOINT_ROWS = 5000

BURST_RATE = 2000.0
"""Order frames a second (queued since the writer last looked) from which the wire is in a
burst: far above what one account's order channel sends in a busy market."""
BURST_TAIL = 0.3
"""After a burst, the writer still waits this many seconds with no burst before it writes:
the screen catches up with the burst's last frames, and a cancel pressed then, first."""
BURST_DEFER = 2.0
"""In a burst, the writer leaves the queued frames in memory for at most this many seconds
from when it last left nothing behind (see :meth:`Journal._in_burst`)."""

WRITING, WAITING, STOPPED = "writing", "waiting for lock", "stopped"

_AUTH_OP = re.compile(r'"op"\s*:\s*"auth"')
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class JournalStatus:
    """What the journal is doing, for the header and the log."""

    state: str
    """``writing``, ``waiting for lock`` or ``stopped``."""
    detail: str
    """Why it stopped, or since when it waits; empty while writing."""
    pending_rows: int
    pending_bytes: int
    written: int
    dropped: int
    """Inbound frames not recorded (the backlog was full)."""
    summarised: int
    """Inbound frames recorded cut to ``max_frame_bytes``."""
    outbound_deferred: int
    """Requests handed to the writer thread instead of written before sending."""
    lock_retries: int

    def describe(self) -> str:
        """One line, e.g. ``journal: waiting for lock (4 tries); 12 dropped``."""
        text = f"journal: {self.state}"
        if self.detail:
            text += f" ({self.detail})"
        losses = []
        if self.summarised:
            losses.append(f"{self.summarised} summarised")
        if self.dropped:
            losses.append(f"{self.dropped} dropped")
        if losses:
            text += "; frames " + ", ".join(losses)
        return text


def _int64(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= COLUMN_CAP else text[: COLUMN_CAP - 1] + "…"


def _size(raw: Any) -> int:
    try:
        return len(raw)
    except TypeError:
        return 0


_Item = tuple[str, int, Any, Any, int]
"""(direction, wall-clock ns, request/event/note text/row, raw text or ids, bytes counted)."""


class Journal:
    """The audit journal. Make one with :meth:`Journal.open`.

    ``record_*`` may be called from any thread and never raise; only
    ``record_sent`` touches the disk (bounded, see the module doc). ``flush`` and
    ``close`` wait (bounded) for the writer thread."""

    def __init__(
        self,
        path: Path,
        *,
        redact: Iterable[Any] = (),
        mask: Iterable[Any] = (),
        session: str | None = None,
        interval: float = 0.05,
        batch_rows: int = 500,
        max_pending: int = MAX_PENDING_ROWS,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        endpoint: str | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.path = path
        self._clock = clock
        self.session = session or f"{os.getpid()}-{secrets.token_hex(3)}"
        self.endpoint = url_without_credentials(endpoint) if endpoint else None
        self.error: str | None = None
        """Why the journal stopped writing (one line), or None while it works."""
        self.dropped = 0
        """Inbound frames not recorded because the backlog was full."""
        self.summarised = 0
        self.outbound_deferred = 0
        self.written = 0
        """Rows committed by this journal (notes included)."""
        self.lock_retries = 0
        self._interval = interval
        self._batch_rows = max(1, batch_rows)
        self._max_pending = max_pending
        self._max_pending_bytes = max_pending_bytes
        self._max_frame_bytes = max(256, max_frame_bytes)
        self._redact = Redactor(secrets=redact, keys=mask)
        self._queue: deque[Any] = deque()
        self._bytes_in = 0  # added by recorders
        self._bytes_out = 0  # added by the writer thread
        self._wake = threading.Event()
        self._orders_in = 0
        """Order frames queued by :meth:`record_orders` so far (its runs' lengths added)."""
        self._burst_seen = (0, time.monotonic())
        self._burst_until = 0.0
        """(``_orders_in``, time) when the writer last looked."""
        self._drained_at = time.monotonic()
        """When the writer last left nothing behind."""
        self._prompt = False
        """Queued since the writer last wrote: something that must not wait for a burst to
        end (a request sent, a note, a flush)."""
        self.bursts_deferred = 0
        """Times the writer left a burst's frames for later."""
        self._ready = threading.Event()
        self._abort = threading.Event()
        self._conn: sqlite3.Connection | None = None
        self._conn_lock = threading.Lock()
        self._open_error: str | None = None
        self._closing = False
        self._stopped = False
        self._state = WRITING
        self._waiting_since: float | None = None
        self._waiting_reported = False
        self._notices: deque[str] = deque(maxlen=64)
        self._reported = {"dropped": 0, "summarised": 0}  # by take_notices
        self._noted = {"dropped": 0, "summarised": 0}  # by the writer's note rows
        self._since_checkpoint = 0
        self._senders_waiting = 0
        self._thread = threading.Thread(target=self._run, name=f"journal-writer {path.name}", daemon=True)

    # -- life cycle --------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        redact: Iterable[str | SecretStr | None] = (),
        mask: Iterable[str | SecretStr | None] = (),
        session: str | None = None,
        interval: float = 0.05,
        batch_rows: int = 500,
        max_pending: int = MAX_PENDING_ROWS,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        endpoint: str | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> Journal:
        """Open (or create) the journal at ``path`` and start its writer thread.

        ``redact``: secrets (the API secret) replaced by ``[redacted]`` wherever they
        would be written; ``mask``: API keys, shown as their first and last four
        characters. ``endpoint``: the URL this session talks to, recorded (without
        credentials) in the ``sessions`` table. ``clock`` (wall-clock ns) stamps sent
        frames and notes; received frames carry their own receive time. Raises
        :class:`JournalError` (one line) if the path is not a regular file of yours
        or cannot be used (the caller shows it and runs without a journal)."""
        journal = cls(
            Path(path).expanduser(),
            redact=[r for r in redact if r is not None],
            mask=[m for m in mask if m is not None],
            session=session,
            interval=interval,
            batch_rows=batch_rows,
            max_pending=max_pending,
            max_pending_bytes=max_pending_bytes,
            max_frame_bytes=max_frame_bytes,
            endpoint=endpoint,
            clock=clock,
        )
        journal._thread.start()
        if not journal._ready.wait(OPEN_TIMEOUT):
            journal._closing = True
            journal._stopped = True
            journal._abort.set()
            raise JournalError(f"cannot open journal {journal.path}: timed out waiting for the database lock")
        if journal._open_error is not None:
            journal._thread.join(1.0)
            raise JournalError(journal._open_error)
        atexit.register(journal.close)
        return journal

    @property
    def pending(self) -> int:
        """Rows waiting for the writer."""
        return len(self._queue)

    @property
    def closed(self) -> bool:
        return self._closing

    @property
    def state(self) -> str:
        """``writing``, ``waiting for lock`` or ``stopped``."""
        return self._state

    @property
    def status(self) -> JournalStatus:
        detail = ""
        if self._state == STOPPED:
            detail = self.error or "closed"
        elif self._state == WAITING and self._waiting_since is not None:
            detail = (
                f"another process holds it; {time.monotonic() - self._waiting_since:.0f} s, {self.lock_retries} tries"
            )
        return JournalStatus(
            state=self._state,
            detail=detail,
            pending_rows=len(self._queue),
            pending_bytes=max(0, self._bytes_in - self._bytes_out),
            written=self.written,
            dropped=self.dropped,
            summarised=self.summarised,
            outbound_deferred=self.outbound_deferred,
            lock_retries=self.lock_retries,
        )

    def take_notices(self) -> list[str]:
        """One-line notices since the last call, for the log: frames summarised or
        dropped, waiting for a lock, writing again, stopped. Cheap; call it often."""
        out: list[str] = []
        while self._notices:
            try:
                out.append(self._notices.popleft())
            except IndexError:
                break
        summarised = self.summarised - self._reported["summarised"]
        dropped = self.dropped - self._reported["dropped"]
        if summarised > 0:
            self._reported["summarised"] += summarised
            out.append(
                f"journal: {summarised} frame(s) over {self._max_frame_bytes} bytes summarised "
                "(only their start recorded)"
            )
        if dropped > 0:
            self._reported["dropped"] += dropped
            out.append(
                f"journal: {dropped} frame(s) dropped, not recorded (backlog over "
                f"{self._max_pending_bytes} bytes or {self._max_pending} rows)"
            )
        return out

    def redact_auth(
        self, key: str | None = None, signature: str | None = None, timestamp: str | int | None = None
    ) -> None:
        """Tell the journal the values of a login it did not see as a frame (header
        auth): the key is masked, the signature and its timestamp never written."""
        self._redact.add_auth(key, signature, timestamp)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything recorded so far is committed. False if it was not
        (timeout, or the writer stopped: see :attr:`error`)."""
        if self._stopped or not self._thread.is_alive():
            return not self._queue and self.error is None
        done = threading.Event()
        self._queue.append(done)
        self._prompt = True
        self._wake.set()
        if not done.wait(timeout):
            return False
        return self.error is None

    def close(self, timeout: float = 5.0) -> None:
        """Write what is pending and stop the writer (waits at most ``timeout`` s).
        Never raises; a problem is left in :attr:`error`. Safe to call twice."""
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        if self._closing and not self._thread.is_alive():
            return
        self._closing = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            self._abort.set()  # stop waiting for a lock: the process is ending
            if self.error is None:
                self.error = f"journal close timed out after {timeout:g} s; {len(self._queue)} rows may not be recorded"
            self._thread.join(1.0)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- recording (caller thread) -------------------------------------------------------
    def _put(self, item: _Item) -> bool:
        """Queue ``item``; False (and counted as dropped) when the backlog is full."""
        if self._stopped or self._closing:
            return False
        q = self._queue
        n = len(q)
        if n >= self._max_pending or self._bytes_in - self._bytes_out + item[4] > self._max_pending_bytes:
            self.dropped += 1
            return False
        q.append(item)
        self._bytes_in += item[4]
        if n + 1 == self._batch_rows:
            self._wake.set()
        return True

    def record_sent(self, request: Any, text: str, wait: float = OUTBOUND_WAIT) -> None:
        """A frame about to be handed to the socket: committed before this returns
        (unless the file is busy, see the module doc). An auth frame is stored with
        the key masked and without its signature. ``wait``: longest to wait for a batch
        being written (0: the cancel key's, never: the row then goes first in line to the
        writer thread)."""
        if self._stopped or self._closing:
            return
        ts = self._clock() // 1_000_000
        try:
            row = self._sent_row(ts, request, text)
        except Exception as exc:
            row = self._unrecordable(ts, "sent", exc)
        conn = self._conn
        if conn is not None and self._state == WRITING:
            if wait <= 0:
                acquired = self._conn_lock.acquire(blocking=False)
            else:
                self._senders_waiting += 1  # the writer thread lets us go first between batches
                try:
                    acquired = self._conn_lock.acquire(timeout=wait)
                finally:
                    self._senders_waiting -= 1
            if acquired:
                try:
                    conn.execute(INSERT, row)
                    self.written += 1
                    self._since_checkpoint += 1
                    return
                except sqlite3.Error:
                    pass  # busy (or worse): the writer thread takes it and says what happened
                finally:
                    self._conn_lock.release()
        # Deferred: first in line for the writer thread (history orders rows by time, not id).
        self.outbound_deferred += 1
        self._queue.appendleft(("row", 0, row, None, ROW_OVERHEAD + _size(row[11])))
        self._bytes_in += ROW_OVERHEAD + _size(row[11])
        self._prompt = True
        self._wake.set()

    def record_received(self, event: Any, raw: Any, received_ns: int) -> None:
        """An inbound frame, its parsed event and its wall-clock receive time (ns)."""
        size = _size(raw)
        if size > self._max_frame_bytes:
            self._put_summarised(event, raw, received_ns, size)
            return
        self._put(("received", received_ns, event, raw, size + ROW_OVERHEAD))

    def record_orders(self, orders: Sequence[Order], raws: Sequence[Any], received_ns: int) -> None:
        """A run of ``futures-order`` frames and their orders, received together: the
        same rows as :meth:`record_received` of each, queued in one call (the session's
        hot path: at 100,000 frames a second, the calls per frame are what costs)."""
        if self._stopped or self._closing:
            return
        cap = self._max_frame_bytes
        items: list[_Item] = []
        added = 0
        for order, raw in zip(orders, raws, strict=True):
            size = len(raw)
            if size > cap:  # rare: in order, through the general way
                self._put_many(items, added)
                items, added = [], 0
                self.record_received(OrderUpdate(order), raw, received_ns)
                continue
            size += ROW_OVERHEAD
            # only the texts the row needs, not the order: a queued row then holds about
            # its ROW_OVERHEAD beside the frame (with the order, kept alive by the queue
            # once a newer update replaced it in the store: 766 bytes, three times that)
            items.append(("order", received_ns, (order.order_id, order.symbol, order.status), raw, size))
            added += size
        self._put_many(items, added)
        self._orders_in += len(items)

    def _put_many(self, items: list[_Item], added: int) -> None:
        if not items:
            return
        q = self._queue
        n = len(q)
        if n + len(items) > self._max_pending or self._bytes_in - self._bytes_out + added > self._max_pending_bytes:
            for item in items:  # as many as there is room for, each counted
                self._put(item)
            return
        q.extend(items)
        self._bytes_in += added
        if n < self._batch_rows <= n + len(items):
            self._wake.set()

    def _put_summarised(self, event: Any, raw: Any, received_ns: int, size: int) -> None:
        """A frame too big to keep whole: its row is built now (so the big event is
        not held by the queue) with the start of the frame and its full size."""
        if self._stopped or self._closing:
            return
        cap = self._max_frame_bytes
        head = raw[:cap]
        if isinstance(head, (bytes, bytearray, memoryview)):
            head = bytes(head).decode("utf-8", "replace")
        summary = f"{head}… [summarised: {size} bytes, the first {cap} kept]"
        try:
            row = self._received_row(received_ns // 1_000_000, event, summary)
        except Exception as exc:
            row = self._unrecordable(received_ns // 1_000_000, "received", exc)
        if self._put(("row", received_ns, row, None, len(summary) + ROW_OVERHEAD)):
            self.summarised += 1

    def record_note(self, text: str, request_id: str | None = None, order_id: str | None = None) -> None:
        """A line of our own: connection changes, warnings."""
        if self._put(("note", self._clock(), text, (request_id, order_id), _size(text) + ROW_OVERHEAD)):
            self._prompt = True

    # -- writer thread -----------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection | None:
        """Open for writing; while another process holds the lock, wait (state
        ``waiting for lock``, :meth:`open` has returned) and retry with backoff."""
        started_ms = self._clock() // 1_000_000
        delay = LOCK_RETRY_MIN
        while True:
            try:
                return connect_for_writing(self.path, self.session, started_ms, os.getpid(), __version__, self.endpoint)
            except JournalLocked:
                self.lock_retries += 1
                self._enter_waiting()
                self._ready.set()  # the app goes on; frames wait in memory (within the bound)
                if self._abort.wait(delay):
                    return None
                delay = min(delay * 2, LOCK_RETRY_MAX)

    def _enter_waiting(self) -> None:
        if self._state != WAITING:
            self._state = WAITING
            self._waiting_since = time.monotonic()
        if self.lock_retries >= LOCK_NOTICE_AFTER and not self._waiting_reported:
            self._waiting_reported = True
            self._notices.append(
                "journal: waiting for lock: another process holds the journal; "
                "frames wait in memory and are written when it lets go"
            )

    def _leave_waiting(self) -> None:
        if self._state != WAITING:
            return
        waited = time.monotonic() - (self._waiting_since or time.monotonic())
        self._state = WRITING
        self._waiting_since = None
        if self._waiting_reported:
            self._waiting_reported = False
            text = f"journal: writing again after waiting {waited:.1f} s for another process's lock"
            self._notices.append(text)
            self._queue.appendleft(("note", self._clock(), text, (None, None), ROW_OVERHEAD))
            self._bytes_in += ROW_OVERHEAD

    def _run(self) -> None:
        try:
            conn = self._connect()
            if conn is None:
                self._fail(RuntimeError(f"{self.path} stayed locked by another process until close"))
                return
        except Exception as exc:
            message = str(exc) if isinstance(exc, JournalError) else f"cannot open journal {self.path}: {one_line(exc)}"
            if self._ready.is_set():  # open() returned while we waited for the lock: say it there
                self._fail(JournalError(message))
            else:
                self._open_error = message
                self._stop()
                self._ready.set()
            return
        self._conn = conn
        self._leave_waiting()
        self._ready.set()
        try:
            self._loop(conn)
        except Exception as exc:
            self._fail(exc)
        finally:
            with self._conn_lock:
                self._conn = None
                with contextlib.suppress(Exception):
                    conn.close()
            if not self._stopped:
                self._stop()
            self._release_waiters()

    def _loop(self, conn: sqlite3.Connection) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            closing = self._closing
            if not closing and self._in_burst():
                continue
            self._prompt = False
            while True:
                rows, markers = self._take()
                rows.extend(self._loss_notes())
                if rows and not self._write_rows(conn, rows):
                    for m in markers:
                        m.set()
                    return
                for m in markers:
                    m.set()
                if not self._queue:
                    self._drained_at = time.monotonic()
                    break
            if self._since_checkpoint >= CHECKPOINT_ROWS:
                self._checkpoint()
            if closing:
                return

    def _in_burst(self) -> bool:
        """Leave the queued frames for later: the wire is in a burst (order frames came
        faster than :data:`BURST_RATE` since the writer last looked), nothing queued must
        go at once (a request sent, a note, a flush), nothing has waited longer than
        :data:`BURST_DEFER` and the backlog is under half its bound.

        In a burst the session's thread folds the frames for the screen and sends the
        cancels; the writer's ``executemany`` would take the interpreter from it a row at
        a time (see :meth:`_write_batch`). The wait goes on :data:`BURST_TAIL` after the
        last look that saw a burst (the flood reached the screen in 1.30–1.43 s with it,
        1.28–1.65 s without, 10 runs each, alternated). Measured in the real terminal (80×24, 100,000
        updates, journal on, 5 runs each): the flood reached the screen in 1.72–2.03 s,
        1.12–1.44 s with the journal off. The frames wait in memory instead, within the
        backlog's bounds, and are written once the burst ends."""
        now = time.monotonic()
        seen, then = self._burst_seen
        orders_in = self._orders_in
        self._burst_seen = (orders_in, now)
        if not self._queue:
            self._drained_at = now
            return False
        if self._prompt:
            return False
        if (orders_in - seen) >= BURST_RATE * max(now - then, 1e-3):
            self._burst_until = now + BURST_TAIL
        elif now >= self._burst_until:
            return False
        defer = (
            now - self._drained_at < BURST_DEFER
            and self._bytes_in - self._bytes_out < self._max_pending_bytes // 2
            and len(self._queue) < self._max_pending // 2
        )
        if defer:
            self.bursts_deferred += 1
        return defer

    def _take(self) -> tuple[list[tuple], list[threading.Event]]:
        rows: list[tuple] = []
        markers: list[threading.Event] = []
        q = self._queue
        size = 0
        while q and len(rows) < self._batch_rows and size < BATCH_BYTES:
            item = q.popleft()
            if isinstance(item, threading.Event):
                markers.append(item)
                continue
            size += item[4]
            self._bytes_out += item[4]
            kind = item[0]
            if kind == "order":
                rows.append(self._order_row(item[1] // 1_000_000, item[2], item[3]))
            elif kind == "row":
                rows.append(item[2])
            else:
                rows.append(self._row(item))
        return rows, markers

    def _loss_notes(self) -> list[tuple]:
        notes = []
        now = self._clock() // 1_000_000
        summarised = self.summarised - self._noted["summarised"]
        if summarised > 0:
            self._noted["summarised"] += summarised
            notes.append(
                self._note_row(
                    now,
                    f"journal: {summarised} frame(s) over {self._max_frame_bytes} bytes "
                    "summarised (only their start recorded)",
                )
            )
        dropped = self.dropped - self._noted["dropped"]
        if dropped > 0:
            self._noted["dropped"] += dropped
            notes.append(
                self._note_row(
                    now,
                    f"journal: {dropped} frame(s) not recorded (the backlog was full: "
                    f"over {self._max_pending_bytes} bytes or {self._max_pending} rows)",
                )
            )
        return notes

    def _write_rows(self, conn: sqlite3.Connection, rows: list[tuple]) -> bool:
        """Commit ``rows``, waiting out another process's lock with backoff. False
        when the journal stopped (a failure other than a lock, or closing while
        waiting)."""
        delay = LOCK_RETRY_MIN
        busy_in_a_row = 0
        while True:
            while self._senders_waiting:  # a request being sent goes before a batch of frames
                time.sleep(0.0002)
            try:
                with self._conn_lock:
                    self._write_batch(conn, rows)
                    self.written += len(rows)
                    self._since_checkpoint += len(rows)
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if "locked" not in text and "busy" not in text:
                    self._fail(exc)
                    return False
                busy_in_a_row += 1
                self.lock_retries += 1
                if self._state != WAITING:
                    self._state = WAITING
                    self._waiting_since = time.monotonic()
                if busy_in_a_row >= LOCK_NOTICE_AFTER:
                    self._enter_waiting()
                if self._abort.wait(delay):
                    self._fail(RuntimeError("closed while another process held the journal's lock"))
                    return False
                delay = min(delay * 2, LOCK_RETRY_MAX)
                continue
            except Exception as exc:
                self._fail(exc)
                return False
            self._leave_waiting()
            return True

    def _write_batch(self, conn: sqlite3.Connection, rows: list[tuple]) -> None:
        """One transaction for one batch.

        ``executemany`` lets go of the interpreter (the GIL) for each row's SQLite step
        and must wait to take it back: while the session's thread is busy, the writer
        advances about a row per switch interval, and catches up when the session waits
        for the socket. So in a flood the journal yields to the session. Measured (the
        real terminal, 80×24, 100,000 updates, runs one after the other): inserting 256
        rows per statement instead, the writer kept up but took its share of the
        interpreter, and the flood took 2.12–2.35 s to reach the screen (4 runs) instead
        of 1.58–1.72 s (3 runs)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(INSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise

    def _checkpoint(self) -> None:
        """Fold the WAL into the file on a connection of our own (a sender's insert
        never pays for it). PASSIVE: never waits for readers or writers."""
        self._since_checkpoint = 0
        try:
            side = sqlite3.connect(str(self.path), timeout=0.05, isolation_level=None)
            try:
                side.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                side.close()
        except sqlite3.Error:
            pass  # the next one will do

    def _stop(self) -> None:
        self._stopped = True
        self._state = STOPPED

    def _fail(self, exc: BaseException) -> None:
        lost = sum(1 for item in self._queue if not isinstance(item, threading.Event))
        self.error = f"journal write failed: {one_line(exc)}; journaling stopped ({lost} pending rows not recorded)"
        self._notices.append(f"journal: stopped: {self.error}")
        self._stop()
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

    # -- rows --------------------------------------------------------------------------
    def _row(self, item: _Item) -> tuple:
        direction, ns, obj, extra, _size = item
        ts = int(ns) // 1_000_000
        try:
            if direction == "received":
                return self._received_row(ts, obj, extra)
            rid, oid = extra
            return (
                ts,
                "note",
                "note",
                None,
                _text(rid),
                _text(oid),
                None,
                None,
                None,
                None,
                self._redact(_text(obj)),
                None,
                self.session,
            )
        except Exception as exc:
            return self._unrecordable(ts, direction, exc)

    def _unrecordable(self, ts: int, direction: str, exc: BaseException) -> tuple:
        return (
            ts,
            direction,
            "unrecordable",
            None,
            None,
            None,
            None,
            None,
            None,
            f"{type(exc).__name__}",
            f"could not record this frame: {one_line(exc)}"[:300],
            None,
            self.session,
        )

    def _note_row(self, ts: int, text: str) -> tuple:
        return (ts, "note", "note", None, None, None, None, None, None, None, text, None, self.session)

    def _sent_row(self, ts: int, request: Any, text: str) -> tuple:
        action = getattr(type(request), "action", None) or None
        is_auth = isinstance(request, Auth) or action == "auth" or bool(_AUTH_OP.search(text or ""))
        if isinstance(request, Auth):
            # (its timestamp stays: the signature is never written, and alone a time is no login)
            self._redact.add_auth(request.api_key.get_secret_value(), request.signature.get_secret_value())
        raw = self._sanitize_sent(text, is_auth)
        r = self._redact
        return (
            ts,
            "sent",
            "request",
            _text(action) if not is_auth else "auth",
            r(_text(getattr(request, "request_id", None))),
            r(_text(getattr(request, "order_id", None))),
            r(_text(getattr(request, "symbol", None))),
            None,
            None,
            None,
            None,
            raw,
            self.session,
        )

    def _sanitize_sent(self, text: Any, is_auth: bool) -> str | None:
        if not isinstance(text, str):
            text = (
                bytes(text).decode("utf-8", "replace")
                if isinstance(text, (bytes, bytearray, memoryview))
                else str(text)
            )
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

    def _order_row(self, ts: int, texts: tuple[Any, Any, Any], raw: Any) -> tuple:
        """The row of one frame of :meth:`record_orders` (the same as its event's):
        ``texts`` is the order's id, symbol and status."""
        try:
            return self._update_row(ts, *texts, raw)
        except Exception as exc:
            return self._unrecordable(ts, "received", exc)

    def _received_row(self, ts: int, event: Any, raw: Any) -> tuple:
        if type(event) is OrderUpdate:  # the burst's frames: the same row, without the search below
            order = event.order
            return self._update_row(ts, order.order_id, order.symbol, order.status, raw)
        return self._event_row(ts, event, raw)

    def _update_row(self, ts: int, order_id: Any, symbol: Any, status: Any, raw: Any) -> tuple:
        if isinstance(raw, (bytes, bytearray, memoryview)):
            raw = bytes(raw).decode("utf-8", "replace")
        r = self._redact
        if not (
            isinstance(raw, str)
            and isinstance(order_id, str)
            and isinstance(symbol, str)
            and isinstance(status, str)
            and len(order_id) + len(symbol) + len(status) <= COLUMN_CAP
            and r.clean(f"{raw}\n{order_id}\n{symbol}\n{status}")
        ):  # (nearly always clean: one test for the four texts)
            order_id, symbol, status, raw = r(_text(order_id)), r(_text(symbol)), r(_text(status)), r(raw)
        return (
            ts,
            "received",
            "order-update",
            None,
            None,
            order_id,
            symbol,
            status,
            None,
            None,
            None,
            raw,
            self.session,
        )

    def _event_row(self, ts: int, event: Any, raw: Any) -> tuple:
        g = getattr
        kind = g(event, "kind", None) or type(event).__name__
        action = g(event, "action", None)
        request_id = g(event, "request_id", None)
        order_id = g(event, "order_id", None)
        symbol = g(event, "symbol", None)
        status = None
        code = g(event, "code", None)
        reason = message = None
        inner = g(event, "order", None)
        if inner is not None:
            order_id = order_id or g(inner, "order_id", None)
            symbol = symbol or g(inner, "symbol", None)
            status = g(inner, "status", None)
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
        r = self._redact
        return (
            ts,
            "received",
            _text(kind),
            r(_text(action)),
            r(_text(request_id)),
            r(_text(order_id)),
            r(_text(symbol)),
            r(_text(status)),
            _int64(code),
            r(_text(reason)),
            r(_text(message)),
            r(raw if raw is None or isinstance(raw, str) else str(raw)),
            self.session,
        )
