"""The journal file: its schema, and opening it safely for writing or reading.

A journal path must be a regular file owned by the user running blotter (or not
exist yet). Symbolic links are refused, never followed (``O_NOFOLLOW``, ``lstat``),
so a link planted at the path cannot make blotter change another file's mode or
overwrite it as SQLite; FIFOs, devices and sockets are refused before SQLite opens
them (a FIFO would block for ever). The same holds for the ``-wal`` and ``-shm``
files SQLite keeps beside it. Every refusal is one line naming the path.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from pathlib import Path

SCHEMA_VERSION = 1
"""Readers refuse a newer version. Version 1 gained the ``sessions`` table later:
it is additive (older blotters ignore it; a journal without it still reads)."""

COLUMNS = (
    "ts_ms",
    "direction",
    "kind",
    "action",
    "request_id",
    "order_id",
    "symbol",
    "status",
    "code",
    "reason",
    "message",
    "raw",
    "session",
)

SCHEMA = """
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
CREATE TABLE IF NOT EXISTS sessions (
    session    TEXT PRIMARY KEY,
    started_ms INTEGER NOT NULL,
    pid        INTEGER,
    version    TEXT,
    endpoint   TEXT
);
"""

INSERT = f"INSERT INTO frames ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"

BUSY_TIMEOUT_MS = 50
"""How long one write waits for another process's lock before giving the row back
to the writer thread (which retries with backoff): short, so a send is never held."""
READ_BUSY_TIMEOUT_MS = 5000


class JournalError(Exception):
    """The journal cannot be opened or read. The message is one line, fit to show."""


class JournalLocked(JournalError):
    """Another process holds the journal's write lock (the writer waits it out)."""


OPEN_BUSY_TIMEOUT_MS = 1000
"""How long one attempt to open for writing waits for another process's lock."""


def one_line(exc: BaseException | str) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror.lower() if exc.strerror[:1].isupper() and exc.strerror[1:2].islower() else exc.strerror
    else:
        text = str(exc) if not isinstance(exc, str) else exc
    text = " ".join(text.split())
    if not text and isinstance(exc, BaseException):
        text = type(exc).__name__
    return text[:300]


# -- what a journal path may be ----------------------------------------------------------
_LINK = "it is a symbolic link, and blotter does not follow links for its journal: give the real path"


def _refusal(st: os.stat_result) -> str | None:
    """Why ``st`` (from lstat/fstat) is not a journal file blotter may use, or None."""
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return _LINK
    if stat.S_ISDIR(mode):
        return "it is a directory"
    if not stat.S_ISREG(mode):
        return "it is not a regular file (a FIFO, device or socket); give the path of a journal file"
    if os.name == "posix" and st.st_uid != os.geteuid():
        return f"it is owned by uid {st.st_uid}, not by you (uid {os.geteuid()}); use a journal file of your own"
    return None


def _lstat(path: Path | str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _check_side_files(path: Path, verb: str) -> None:
    for suffix in ("-wal", "-shm"):
        side = f"{path}{suffix}"
        st = _lstat(side)
        if st is None:
            continue
        why = _refusal(st)
        if why:
            raise JournalError(f"cannot {verb} journal {path}: {side} {why.replace('it is', 'is', 1)}")
        if os.name == "posix" and stat.S_IMODE(st.st_mode) & 0o077:
            _tighten(side)


def _tighten(path: str | Path) -> None:
    """Mode 600, through a descriptor opened without following links."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, 0o600)
    except OSError:
        pass
    finally:
        os.close(fd)


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


def _create_file(path: Path) -> tuple[int, int]:
    """The journal file, created with mode 600 (an existing one is tightened to 600),
    without following a link at ``path``. Returns its (device, inode)."""
    st = _lstat(path)
    if st is not None:
        why = _refusal(st)
        if why:
            raise JournalError(f"cannot open journal {path}: {why}")
    flags = (
        os.O_RDWR
        | os.O_CREAT
        | getattr(os, "O_NOFOLLOW", 0)
        | getattr(os, "O_NONBLOCK", 0)
        | getattr(os, "O_CLOEXEC", 0)
    )
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a link appeared after the lstat
            raise JournalError(f"cannot open journal {path}: {_LINK}") from None
        raise
    try:
        fst = os.fstat(fd)
        why = _refusal(fst) or (_not_a_journal(path, fd) if fst.st_size > 0 else None)
        if why:
            raise JournalError(f"cannot open journal {path}: {why}")
        if os.name == "posix" and fst.st_mode & 0o077:
            try:
                os.fchmod(fd, 0o600)
            except OSError:
                pass
        return fst.st_dev, fst.st_ino
    finally:
        os.close(fd)


_SQLITE_MAGIC = b"SQLite format 3\x00"
_OTHER_FILE = "give the path of a new file or of a blotter journal (--journal)"


def _not_a_journal(path: Path, fd: int) -> str | None:
    """Why an existing, non-empty file is not one blotter may write its journal into, or
    None. Checked before anything changes it (its mode, WAL, tables): a --journal that
    names another program's file must leave that file as it was."""
    try:
        head = os.pread(fd, len(_SQLITE_MAGIC), 0)
    except OSError as exc:
        return f"it cannot be read ({one_line(exc)})"
    if head != _SQLITE_MAGIC:
        return f"it is not a blotter journal (not an SQLite database); {_OTHER_FILE}"
    for suffix in ("-wal", "-shm"):  # before SQLite opens them: a planted link or FIFO is named as such
        side = _lstat(f"{path}{suffix}")
        why = _refusal(side) if side is not None else None
        if why:
            return f"{path}{suffix} {why.replace('it is', 'is', 1)}"
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=0.2)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        text = one_line(exc)
        if "locked" in text or "busy" in text:
            return None  # another blotter is writing it: the writer waits for its lock
        return f"it is an SQLite file that cannot be read ({text}); {_OTHER_FILE}"
    if tables and "meta" not in tables:
        names = ", ".join(sorted(tables)[:3]) + (" …" if len(tables) > 3 else "")
        return f"it is another program's SQLite database (tables {names}); {_OTHER_FILE}"
    return None


def check_readable(path: Path) -> None:
    """Refuse what ``blotter journal`` must not open (before SQLite touches it)."""
    st = _lstat(path)
    if st is None:
        raise JournalError(f"no journal at {path} (nothing recorded yet, or --no-journal was used)")
    why = _refusal(st)
    if why:
        raise JournalError(f"cannot read journal {path}: {why}")
    _check_side_files(path, "read")


# -- opening -------------------------------------------------------------------------------
def connect_for_writing(
    path: Path, session: str, started_ms: int, pid: int, version: str, endpoint: str | None
) -> sqlite3.Connection:
    """Open (creating if need be) the journal, check its schema and record this
    session. Raises :class:`JournalError` (one line)."""
    try:
        _make_dirs(path.parent)
        identity = _create_file(path)
        _check_side_files(path, "open")
        conn = sqlite3.connect(
            str(path), timeout=OPEN_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
    except JournalError:
        raise
    except (OSError, sqlite3.Error) as exc:
        raise JournalError(f"cannot open journal {path}: {one_line(exc)}") from None
    try:
        st = _lstat(path)
        if st is None or (st.st_dev, st.st_ino) != identity:
            raise JournalError(f"cannot open journal {path}: the file was replaced while it was being opened")
        conn.execute(f"PRAGMA busy_timeout = {OPEN_BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise JournalError(f"cannot open journal {path}: the file system does not support WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # the writer thread checkpoints, never a sender
        conn.execute("BEGIN IMMEDIATE")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        conn.execute(
            "INSERT OR REPLACE INTO sessions (session, started_ms, pid, version, endpoint) VALUES (?, ?, ?, ?, ?)",
            (session, started_ms, pid, version, endpoint),
        )
        conn.execute("COMMIT")
        check_schema(conn, path)
        _check_side_files(path, "open")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    except JournalError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        text = one_line(exc)
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            raise JournalLocked(f"journal {path} is locked by another process") from None
        raise JournalError(f"cannot open journal {path}: {text}") from None
    return conn


def connect_for_reading(path: str | os.PathLike[str]) -> sqlite3.Connection:
    p = Path(path).expanduser()
    check_readable(p)
    try:
        conn = sqlite3.connect(f"{p.absolute().as_uri()}?mode=ro", uri=True, timeout=READ_BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {READ_BUSY_TIMEOUT_MS}")
        check_schema(conn, p)
    except JournalError:
        raise
    except sqlite3.Error as exc:
        msg = one_line(exc)
        if "no such table" in msg:
            raise JournalError(f"{p} is not a blotter journal") from None
        raise JournalError(f"cannot read journal {p}: {msg}") from None
    return conn


def check_schema(conn: sqlite3.Connection, path: Path) -> None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        version = int(row[0]) if row else None
    except (TypeError, ValueError):
        version = None
    if version is None:
        raise JournalError(f"{path} is not a blotter journal (no schema version)")
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"journal {path} has schema version {version}; this blotter understands up to {SCHEMA_VERSION}"
        )
    have = {r[1] for r in conn.execute("PRAGMA table_info(frames)")}
    missing = [c for c in ("id", *COLUMNS) if c not in have]
    if missing:
        raise JournalError(f"{path} is not a blotter journal (table frames lacks {', '.join(missing)})")
