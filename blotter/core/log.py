"""The event log: what the log pane shows, one line per event, newest last.

Request lines start with the request id; connection and server lines have none.
Bounded, so a flood cannot grow memory without limit; every line has a sequence
number, so a renderer can ask for "what is new since N".
"""

from __future__ import annotations

import threading
import time
from collections import deque
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

from .text import has_unsafe, safe

Level = Literal["info", "ok", "warn", "error"]

MAX_TEXT = 500
"""Longest line text kept: a line may quote the exchange, and a 100 kB value must
not become a 100 kB line (or 5000 of them in memory)."""
MAX_ID = 64
"""Longer request/order ids are not ids (those are at most 32 characters): not kept."""


def safe_text(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` with control and bidi characters shown as escapes, at most ``limit`` characters."""
    return safe(text, limit)


def _safe_id(value: str | None) -> str | None:
    if value is None or len(value) > MAX_ID:
        return None
    return safe_text(value) if has_unsafe(value) else value


@dataclass(frozen=True, slots=True)
class LogLine:
    seq: int
    wall_ms: int
    text: str
    level: Level = "info"
    request_id: str | None = None
    order_id: str | None = None


class EventLog:
    def __init__(self, max_lines: int = 5000, lock: AbstractContextManager[Any] | None = None) -> None:
        self._lines: deque[LogLine] = deque(maxlen=max_lines)
        self._seq = 0
        self._lock: AbstractContextManager[Any] = lock if lock is not None else threading.RLock()
        """Lines are added from more than one thread (the session's, the screen's, the
        input thread's): the desk passes its book lock, so adding and reading never interleave."""

    def add(
        self,
        text: str,
        level: Level = "info",
        request_id: str | None = None,
        order_id: str | None = None,
        wall_ms: int | None = None,
    ) -> LogLine:
        wall = time.time_ns() // 1_000_000 if wall_ms is None else wall_ms
        text, request_id, order_id = safe_text(text), _safe_id(request_id), _safe_id(order_id)
        with self._lock:
            self._seq += 1
            line = LogLine(
                seq=self._seq, wall_ms=wall, text=text, level=level, request_id=request_id, order_id=order_id
            )
            self._lines.append(line)
        return line

    @property
    def last_seq(self) -> int:
        return self._seq

    def __len__(self) -> int:
        return len(self._lines)

    def lines(self, since: int = 0, order_id: str | None = None) -> list[LogLine]:
        """Lines with ``seq > since``; with ``order_id``, only that order's lines."""
        with self._lock:
            return [
                line for line in self._lines if line.seq > since and (order_id is None or line.order_id == order_id)
            ]
