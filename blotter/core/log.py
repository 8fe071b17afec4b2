"""The event log: what the log pane shows, one line per event, newest last.

Request lines start with the request id; connection and server lines have none.
Bounded, so a flood cannot grow memory without limit; every line has a sequence
number, so a renderer can ask for "what is new since N".
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Literal

Level = Literal["info", "ok", "warn", "error"]


@dataclass(frozen=True, slots=True)
class LogLine:
    seq: int
    wall_ms: int
    text: str
    level: Level = "info"
    request_id: str | None = None
    order_id: str | None = None


class EventLog:
    def __init__(self, max_lines: int = 5000) -> None:
        self._lines: deque[LogLine] = deque(maxlen=max_lines)
        self._seq = 0

    def add(self, text: str, level: Level = "info", request_id: str | None = None, order_id: str | None = None,
            wall_ms: int | None = None) -> LogLine:
        self._seq += 1
        line = LogLine(
            seq=self._seq,
            wall_ms=time.time_ns() // 1_000_000 if wall_ms is None else wall_ms,
            text=text,
            level=level,
            request_id=request_id,
            order_id=order_id,
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
        return [
            line
            for line in self._lines
            if line.seq > since and (order_id is None or line.order_id == order_id)
        ]
