"""The journal's share of the interpreter in a flood, run by hand (not a test: nothing
here asserts a time)::

    .venv/bin/python -m bench.journal_hotpath [N]

For N order frames (the fixture's ``futures-order`` frame, each with its own id and
``sn``), CPU seconds of the calling thread (``time.thread_time``: the writer thread's
SQLite work is not counted), median of 7 rounds, each way measured in the same run:

- **hand-off** (the session's thread): one :meth:`Journal.record_received` per frame,
  as before, against one :meth:`Journal.record_orders` per run of 100 frames;
- **rows** (the writer's thread, the Python part): each order-update row redacted field
  by field, as before (:meth:`Redactor.clean` made to say False, so every row takes the
  full redaction), against the row tested once for secrets.

The journal holds an API key, a secret and a login's signature and timestamp to look
for, as in a real session.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

from blotter.journal import Journal
from blotter.journal.redaction import Redactor
from blotter.protocol.messages import Order, OrderUpdate
from blotter.protocol.parse import order_frame

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "protocol" / "order-update.json"
ROUNDS = 7


def frames(n: int) -> tuple[list[Order], list[bytes]]:
    base = orjson.loads(FIXTURE.read_bytes())
    raws = [orjson.dumps({**base, "sn": 1000 + i, "orderId": f"a{i:09d}U5051470287bbtcpKiOR"}) for i in range(n)]
    orders = [order_frame(r) for r in raws]
    assert all(o is not None for o in orders)
    return orders, raws  # type: ignore[return-value]


def _journal(home: str) -> Journal:
    j = Journal.open(
        Path(home) / "j.sqlite3",
        session="bench",
        redact=["s3cr3t" * 7],
        mask=["K" * 32],
        interval=3600,
        batch_rows=10**9,
        max_pending=10**9,
        max_pending_bytes=10**12,
    )
    j.redact_auth(key="K" * 32, signature="A" * 43 + "=", timestamp="1700000000123")
    return j


def measure(n: int) -> dict[str, float]:
    orders, raws = frames(n)
    queued = [(o.order_id, o.symbol, o.status) for o in orders]  # what a queued frame keeps
    out: dict[str, list[float]] = {
        "handoff_each": [],
        "handoff_run": [],
        "rows_field_by_field": [],
        "rows_tested_once": [],
    }
    with tempfile.TemporaryDirectory() as home:
        j = _journal(home)
        try:
            for _ in range(ROUNDS):
                t = time.thread_time()
                for order, raw in zip(orders, raws, strict=True):
                    j.record_received(OrderUpdate(order), raw, 1)
                out["handoff_each"].append(time.thread_time() - t)
                j._queue.clear()
                t = time.thread_time()
                for i in range(0, n, 100):
                    j.record_orders(orders[i : i + 100], raws[i : i + 100], 1)
                out["handoff_run"].append(time.thread_time() - t)
                j._queue.clear()
                for key, clean in (("rows_tested_once", None), ("rows_field_by_field", False)):
                    if clean is False:
                        j._redact.clean = lambda text: False  # type: ignore[method-assign]
                    t = time.thread_time()
                    for texts, raw in zip(queued, raws, strict=True):
                        row = j._order_row(1, texts, raw)
                    out[key].append(time.thread_time() - t)
                    assert row[2] == "order-update", row  # (not a row saying it could not be recorded)
                    if clean is False:
                        del j._redact.clean  # type: ignore[attr-defined]
                        assert isinstance(j._redact, Redactor)
        finally:
            j.close()
    return {k: statistics.median(v) for k, v in out.items()}


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    m = measure(n)
    per = 1e6 / n
    print(f"{n:,} order frames, CPU of the calling thread, median of {ROUNDS} rounds:")
    print(
        f"  hand-off: per frame {m['handoff_each']:.3f} s ({m['handoff_each'] * per:.2f} us/frame), "
        f"per run {m['handoff_run']:.3f} s ({m['handoff_run'] * per:.2f} us/frame): "
        f"{m['handoff_run'] / m['handoff_each']:.2f}x"
    )
    print(
        f"  rows: field by field {m['rows_field_by_field']:.3f} s ({m['rows_field_by_field'] * per:.2f} us/frame), "
        f"tested once {m['rows_tested_once']:.3f} s ({m['rows_tested_once'] * per:.2f} us/frame): "
        f"{m['rows_tested_once'] / m['rows_field_by_field']:.2f}x"
    )
