"""Where the session's thread spends its time per order update, measured alone, run by
hand (not a test: nothing here asserts a time)::

    .venv/bin/python -m bench.frame_costs [N]

The stream is the terminal benchmark's (``bench.simproc``: 5,000 open orders, then N
updates, seed 20240601), handed to the desk's own code in runs of 64 frames, as the
session's reader does in a flood, on one thread with nothing else running:

- **parse**: :func:`blotter.protocol.parse.order_frame` of each frame (the JSON read and
  every check, in one pass);
- **journal hand-off**: :meth:`Journal.record_orders` of the run (a real journal on a
  temporary file; its writer thread defers the burst, as in the flood);
- **fold**: ``Desk._fold_orders``: the store and the request tracker;
- **view**: :meth:`OrderView.sync`, the sorted view the screen draws from, once per run.

CPU of the calling thread (``time.thread_time``), median of 5 rounds, in microseconds
per update; and, for scale, ``orjson.loads`` of each frame (what a bare client does
with a frame, besides reading it). The garbage collector is set as the desk sets it
after the first snapshot (young collections only).

What it leaves out: reading the socket and splitting frames
(``python -m bench.transport_frames small``), the screen, and everything the machine's
other processes take. In the real terminal the same code takes 1.4–1.8 times as long
per update (see the README's Performance section).
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

from blotter.core.view import OrderView
from blotter.desk import Desk, DeskSettings
from blotter.journal import Journal
from blotter.protocol.parse import order_frame
from blotter.sim import SimConfig

from .simproc import FIXED_MS, BenchSim

ROUNDS = 5
RUN = 64
STAGES = ("parse", "journal hand-off", "fold", "view")


def stream(orders: int, updates: int, seed: int = 20240601) -> tuple[list[bytes], list[bytes]]:
    """The open orders (as order updates) and the burst, as the benchmark's simulator sends them."""
    config = SimConfig(seed=seed, initial_orders=orders, rate=0, ping_interval=0, fixed_time_ms=FIXED_MS)
    sim = BenchSim(config)
    account = config.account_id
    book = [orjson.dumps(o.to_short(account) | {"sn": 1}) for o in sim.book.open_orders()]
    sim.prepare(updates)
    burst = [b"%s%d%s" % (head, 10 + i, tail) for i, (head, tail) in enumerate(sim.prepared)]
    return book, burst


def one_round(book: list[bytes], burst: list[bytes], home: str) -> dict[str, float]:
    journal = Journal.open(Path(home) / f"j{time.monotonic_ns()}.sqlite3", session="bench")
    settings = DeskSettings(url="ws://127.0.0.1:1/api/pro/v2/stream", api_key="K" * 32, api_secret="s" * 44)
    desk = Desk(settings, journal=journal)
    view = OrderView(desk.store)
    spent = dict.fromkeys(STAGES, 0.0)
    gc_was = gc.isenabled()
    try:
        for i in range(0, len(book), RUN):
            raws = book[i : i + RUN]
            desk._fold_orders([order_frame(r) for r in raws], desk._clock())  # type: ignore[misc]
        view.sync(time.monotonic())
        gc.enable()
        desk.collector.after_snapshot(len(book), True, 0.0)
        clock = time.thread_time
        for i in range(0, len(burst), RUN):
            raws = burst[i : i + RUN]
            a = clock()
            orders = [order_frame(r) for r in raws]
            b = clock()
            journal.record_orders(orders, raws, time.time_ns())  # type: ignore[arg-type]
            c = clock()
            desk._fold_orders(orders, desk._clock())  # type: ignore[arg-type]
            d = clock()
            view.sync(time.monotonic())
            e = clock()
            spent["parse"] += b - a
            spent["journal hand-off"] += c - b
            spent["fold"] += d - c
            spent["view"] += e - d
        if None in orders:
            raise RuntimeError("a frame of the stream did not take the fast path")
    finally:
        journal.close()
        gc.unfreeze()
        gc.set_threshold(700, 10, 10)
        if not gc_was:
            gc.disable()
    return spent


def measure(orders: int, updates: int, rounds: int = ROUNDS) -> dict[str, float]:
    """Microseconds per update by stage (median of ``rounds``), ``total``, and ``orjson.loads``."""
    book, burst = stream(orders, updates)
    runs: dict[str, list[float]] = {name: [] for name in (*STAGES, "total", "orjson.loads")}
    with tempfile.TemporaryDirectory() as home:
        for _ in range(rounds):
            spent = one_round(book, burst, home)
            for name in STAGES:
                runs[name].append(spent[name] / len(burst) * 1e6)
            runs["total"].append(sum(spent.values()) / len(burst) * 1e6)
            t = time.thread_time()
            for raw in burst:
                orjson.loads(raw)
            runs["orjson.loads"].append((time.thread_time() - t) / len(burst) * 1e6)
    return {name: statistics.median(values) for name, values in runs.items()}


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    m = measure(5000, n)
    print(f"{n:,} order updates after 5,000 open orders, runs of {RUN}, CPU of one thread, median of {ROUNDS}:")
    for name in (*STAGES, "total"):
        print(f"  {name:17s} {m[name]:6.2f} µs an update")
    print(f"  (orjson.loads alone: {m['orjson.loads']:.2f} µs a frame)")
