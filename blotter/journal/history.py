"""The query side of the journal: ``blotter journal``'s request histories.

Everything printed here came (partly) from the exchange, so it is data: each
text line goes through :func:`blotter.core.text.safe` (controls, bidi, separators
and zero-width characters shown as escapes; a newline in an exchange message
cannot start a forged line) and is cut at :data:`~blotter.core.text.LINE_LIMIT`
characters; ``--json`` lines go through :func:`blotter.core.text.json_safe`.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..core.text import LINE_LIMIT, safe
from ..protocol.messages import CANCELED, FINAL_STATUSES
from .schema import JournalError, connect_for_reading, one_line

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


@dataclass(frozen=True)
class SessionInfo:
    """One process that wrote the journal: the ``sessions`` table's row."""

    session: str
    started_ms: int
    pid: int | None
    version: str | None
    endpoint: str | None

    def describe(self, utc: bool = False) -> str:
        where = self.endpoint or "endpoint not recorded"
        return (
            f"session {self.session}: {where} (pid {self.pid}, blotter {self.version or '?'}, "
            f"started {format_time(self.started_ms, utc)})"
        )


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
    session_info: SessionInfo | None = None

    @property
    def endpoint(self) -> str | None:
        """Where the session that sent it was connected (None: not recorded)."""
        return self.session_info.endpoint if self.session_info else None

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


def _reply(row: tuple, sent_ts: int) -> Reply:
    _id, ts, kind, action, _rid, oid, sym, status, code, reason, message, _session = row
    return Reply(
        ts_ms=ts,
        elapsed_ms=ts - sent_ts,
        kind=kind or "?",
        action=action,
        order_id=oid,
        symbol=sym,
        status=status,
        code=code,
        reason=reason,
        message=message,
    )


def read_history(
    path: str | os.PathLike[str],
    since_ms: int | None = None,
    request_id: str | None = None,
    order_id: str | None = None,
    *,
    now_ms: int | None = None,
) -> list[RequestHistory]:
    """Requests sent (in the last ``since_ms`` ms, if given), each with every reply
    and confirmation that came back, oldest first.

    Replies are matched within the session (process) that sent the request: by
    request id (ACK, ERR, snapshot…); for ``cancel-order`` also the order-channel
    update that made the order final (and a 2021-dialect ACK that carries only the
    order id); for ``cancel-all`` the Canceled updates that followed until the next
    open-orders snapshot (or :data:`CANCEL_ALL_WINDOW_MS`).

    ``order_id`` keeps the requests about that order: its cancels, and cancel-alls
    that canceled it."""
    conn = connect_for_reading(path)
    try:
        histories = _read_history(conn, since_ms, request_id, order_id, now_ms)
        sessions = _sessions(conn)
    except sqlite3.Error as exc:
        raise JournalError(f"cannot read journal {path}: {one_line(exc)}") from None
    finally:
        conn.close()
    for h in histories:
        h.session_info = sessions.get(h.session or "")
    return histories


def _sessions(conn: sqlite3.Connection) -> dict[str, SessionInfo]:
    try:
        rows = conn.execute("SELECT session, started_ms, pid, version, endpoint FROM sessions").fetchall()
    except sqlite3.OperationalError:  # a journal written before the sessions table
        return {}
    return {r[0]: SessionInfo(str(r[0]), int(r[1] or 0), r[2], r[3], r[4]) for r in rows if r[0] is not None}


def _read_history(
    conn: sqlite3.Connection, since_ms: int | None, request_id: str | None, order_id: str | None, now_ms: int | None
) -> list[RequestHistory]:
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
            "AND session IS ? AND id != ? AND ts_ms >= ?",
            (rid, session, sid, ts),
        ):
            replies[r[0]] = r
        if action == "cancel-order" and oid:
            if not any(r[2] in ("ack", "error") for r in replies.values()):
                r = conn.execute(  # 2021 dialect: the ACK is the order record, without the request id
                    f"SELECT {_ROW} FROM frames WHERE order_id = ? AND kind = 'ack' AND request_id IS NULL "
                    "AND direction = 'received' AND session IS ? AND ts_ms >= ? ORDER BY ts_ms, id LIMIT 1",
                    (oid, session, ts),
                ).fetchone()
                if r is not None:
                    replies[r[0]] = r
            final = sorted(FINAL_STATUSES)
            r = conn.execute(
                f"SELECT {_ROW} FROM frames WHERE order_id = ? AND kind = 'order-update' AND direction = 'received' "
                f"AND session IS ? AND ts_ms >= ? AND status IN ({', '.join('?' * len(final))}) "
                "ORDER BY ts_ms, id LIMIT 1",
                (oid, session, ts, *final),
            ).fetchone()
            if r is not None:
                replies[r[0]] = r
        elif action == "cancel-all":
            answered = [r for r in replies.values() if r[2] in ("ack", "error")]
            refused = any(r[2] == "error" for r in answered)
            if not refused:
                after = max(((r[1], r[0]) for r in answered), default=(ts, sid))
                cap = ts + CANCEL_ALL_WINDOW_MS
                snap = conn.execute(
                    f"SELECT {_ROW} FROM frames WHERE kind = 'open-orders' AND direction = 'received' "
                    "AND session IS ? AND (ts_ms > ? OR (ts_ms = ? AND id > ?)) AND ts_ms <= ? "
                    "ORDER BY ts_ms, id LIMIT 1",
                    (session, after[0], after[0], after[1], cap),
                ).fetchone()
                q = (
                    f"SELECT {_ROW} FROM frames WHERE kind = 'order-update' AND status = ? AND direction = 'received' "
                    "AND session IS ? AND ts_ms >= ? AND ts_ms <= ?"
                )
                args: list[Any] = [CANCELED, session, ts, cap]
                if snap is not None:
                    q += " AND (ts_ms < ? OR (ts_ms = ? AND id < ?))"
                    args.extend((snap[1], snap[1], snap[0]))
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


def format_time(ts_ms: int, utc: bool = False) -> str:
    seconds, ms = divmod(ts_ms, 1000)
    dt = datetime.fromtimestamp(seconds, UTC) if utc else datetime.fromtimestamp(seconds)
    return f"{dt:%Y-%m-%d %H:%M:%S}.{ms:03d}"


def format_history(histories: Iterable[RequestHistory], utc: bool = False) -> list[str]:
    """Human lines: a line naming the session (its endpoint) when it changes, then
    one per request sent and one indented line per reply. Every line is passed
    through :func:`~blotter.core.text.safe`, capped at :data:`LINE_LIMIT`."""
    lines: list[str] = []
    session: object = object()
    for h in histories:
        if h.session != session:
            session = h.session
            info = h.session_info
            head_line = info.describe(utc) if info else f"session {h.session or '?'}: endpoint not recorded"
            lines.append(safe(head_line, LINE_LIMIT))
        head = [format_time(h.ts_ms, utc), h.request_id, "sent", h.action or "?"]
        if h.symbol:
            head.append(h.symbol)
        if h.order_id:
            head.append(h.order_id)
        outcome = f"  → {h.outcome}"
        lines.append(safe(" ".join(head), LINE_LIMIT - len(outcome)) + outcome)
        if not h.replies:
            lines.append("    (no reply recorded)")
        for r in h.replies:
            lines.append(safe(f"    +{r.elapsed_ms} ms {r.describe(h.order_id)}", LINE_LIMIT))
    return lines


def _iso(ts_ms: int) -> str:
    seconds, ms = divmod(ts_ms, 1000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{ms:03d}Z"


def history_json(histories: Iterable[RequestHistory]) -> list[dict[str, Any]]:
    """One JSON-able dict per request (for ``--json``: one line each, written with
    :func:`blotter.core.text.json_safe`, never raw)."""
    out: list[dict[str, Any]] = []
    for h in histories:
        out.append(
            {
                "request_id": h.request_id,
                "time": _iso(h.ts_ms),
                "ts_ms": h.ts_ms,
                "action": h.action,
                "symbol": h.symbol,
                "order_id": h.order_id,
                "session": h.session,
                "endpoint": h.endpoint,
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
            }
        )
    return out
