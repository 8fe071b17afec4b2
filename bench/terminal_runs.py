"""The blotter as a trader runs it: the real ``blotter`` command (default settings,
the audit journal on, to a temporary file) in a real pseudo-terminal, against the
simulator in its own process, through the wire tap (its own process too).

Clocks: every stamp is ``time.monotonic_ns()`` (``CLOCK_MONOTONIC``, shared by all
processes on Linux): a key when its bytes are written to the pty master; a request
when the tap's reader thread got it off the socket; an update when the tap handed it
on to the blotter's socket; a row when the pty reader read the bytes that drew it.

``flood``: 5,000 open orders, then a flood of 100,000 updates. The table's last rows
are a block of orders the flood never touches (``rest`` in the simulator process); the
cursor starts on the last row (``End``) and during the flood one press of ``c`` then
``Up`` every ``gap`` seconds walks up the block, so the n-th ``c`` must cancel the n-th
order of the block (a press whose cancel for that order never reaches the wire is
"unsent"; a cancel for any other order is a "wrong row"). Then presses at idle.
Then ``Home`` and a second flood of the same size, going on from where the first left
the book, with no key pressed: its last frame is a new order (the marker), and when
its row is on screen every update has been folded and drawn (ingest). (The first
flood ends with a marker too, ``ingest_while_pressing_s``; but its 40 presses take
4 s and its marker can only be seen after ``Home``: no measure of a blotter faster
than that.)

Freshness: the wire tap records every order update it hands to the blotter, the
screen model every order row drawn. For each update to an order whose row was on
screen when it was sent: from its send to the first time a row of that order is drawn
showing that update's state or a later one (its STATUS and FILLED text). Updates of a
block order after its ``c`` are left out (the row then shows the cancel's fate). An
update whose row left the screen before showing it is counted as ``fresh_lost``.

``scale``: 100,000 open orders: start-up, first complete table (the header shows
``open 100000``), RSS of the blotter process, one ``r`` (re-request the snapshot) with
``c Down`` presses every 25 ms while the snapshot comes and is applied (their longest
key → wire is the longest hold of the input), and the filter (``/ BTC Enter`` until
every order row on screen is a BTC one).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil

from .common import SimProcess, pct
from .pty_term import Terminal, blotter_argv, blotter_env

ROW = re.compile(r"^│[ ▶](?:\d\d:\d\d:\d\d |[A-Z0-9]+-[A-Z0-9]+ +(?:BUY|SELL) )")
"""An order row of the table: it starts with its time, or with its symbol once the
table has collapsed TIME (at 80 columns, when wider values need the room)."""
OPEN = re.compile(r"\bopen (\d+)\b")
SNAPSHOT = re.compile(r"\d\d:\d\d:\d\d\.\d{3} snapshot: \d+ open orders")
"""The log line of an applied snapshot (its time tells one from the next)."""
FINAL = {"Filled", "Canceled", "Rejected"}


class TapProcess:
    """``python -m bench.wiretap`` in front of the simulator."""

    def __init__(self, sim_url: str) -> None:
        host = sim_url.split("/")[2]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.wiretap", "--upstream", host],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=str(Path(__file__).resolve().parent.parent),
        )
        assert self.proc.stdout is not None
        port = orjson.loads(self.proc.stdout.readline())["port"]
        self.url = sim_url.replace(host, f"127.0.0.1:{port}", 1)

    def call(self, **msg: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(orjson.dumps(msg) + b"\n")
        self.proc.stdin.flush()
        result: dict[str, Any] = orjson.loads(self.proc.stdout.readline())
        return result

    def close(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b'{"cmd":"quit"}\n')
            self.proc.stdin.close()
            self.proc.wait(5)
        except Exception:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Rows:
    """Every order row drawn (keyed by the last 8 characters of its id, which every
    width shows), when each order came on screen and went off it, and a few milestones."""

    size: tuple[int, int]
    draws: dict[str, list[tuple[int, list[str]]]] = field(default_factory=dict)
    shown: dict[str, list[list[int]]] = field(default_factory=dict)
    """tail → [[on, off], ...] (off = 0 while still on screen)"""
    at_row: dict[int, str] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)
    first_frame: int | None = None
    first_orders: int | None = None
    snapshot_lines: set[str] = field(default_factory=set)
    """log lines drawn that report an applied snapshot"""

    def on_rows(self, t: int, rows: dict[int, str]) -> None:
        if self.first_frame is None and 0 in rows:  # the header: the first frame is drawn
            self.first_frame = t
        for y, text in rows.items():
            tail = ""
            if "snapshot:" in text:
                m = SNAPSHOT.search(text)
                if m is not None:
                    self.snapshot_lines.add(m.group(0))
            if ROW.match(text):
                if self.first_orders is None:
                    self.first_orders = t
                tokens = text.strip("│ ").replace("▶", " ").split()
                for tok in reversed(tokens):
                    tok = tok.lstrip("…")
                    if len(tok) >= 8:
                        tail = tok[-8:]
                        self.draws.setdefault(tail, []).append((t, tokens))
                        break
            before = self.at_row.get(y, "")
            if before == tail:
                continue
            if before:
                self.count[before] -= 1
                if self.count[before] == 0:
                    self.shown[before][-1][1] = t
            if tail:
                self.at_row[y] = tail
                self.count[tail] = self.count.get(tail, 0) + 1
                if self.count[tail] == 1:
                    self.shown.setdefault(tail, []).append([t, 0])
            else:
                self.at_row.pop(y, None)

    def on_screen(self, tail: str, t: int) -> bool:
        return any(on <= t and (off == 0 or t < off) for on, off in self.shown.get(tail, ()))


async def _wait(term: Terminal, what: str, predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        term.catch_up()
        if predicate():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"terminal benchmark: timed out waiting for {what}:\n{term.text()}")
        if term.proc is not None and term.proc.poll() is not None:
            raise RuntimeError(f"the blotter exited ({term.proc.returncode}) waiting for {what}:\n{term.text()}")
        await asyncio.sleep(0.02)


async def _wait_drawn(term: Terminal, what: str, predicate: Any, timeout: float) -> int:
    """Like :func:`_wait`, but the time is that of the chunk read from the pty after which
    the screen first satisfies ``predicate`` (when the terminal had the bytes), not the
    moment the harness looked (up to 20 ms later, plus its replay of the chunks)."""
    deadline = time.monotonic() + timeout
    while True:
        while term.done < len(term.chunks):
            at = term.chunks[term.done][0]
            term.catch_up(1)
            if predicate():
                return at
        if time.monotonic() > deadline:
            raise TimeoutError(f"terminal benchmark: timed out waiting for {what}:\n{term.text()}")
        if term.proc is not None and term.proc.poll() is not None:
            raise RuntimeError(f"the blotter exited ({term.proc.returncode}) waiting for {what}:\n{term.text()}")
        await asyncio.sleep(0.02)


async def _quiet(term: Terminal, quiet: float, timeout: float) -> None:
    """Until the terminal has written nothing for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = term.chunks[-1][0] if term.chunks else 0
        if time.monotonic_ns() - last >= quiet * 1e9:
            return
        await asyncio.sleep(0.05)


def _open_count(term: Terminal) -> int | None:
    m = OPEN.search(term.screen.line(0))
    return int(m.group(1)) if m else None


def _ms(ns: int) -> float:
    return ns / 1e6


class Profiler:
    """py-spy on the blotter process (all threads, idle included, raw stacks)."""

    def __init__(self, pid: int, out: str, rate: int = 200) -> None:
        exe = Path(sys.executable).with_name("py-spy")
        self.out = out
        self.proc = subprocess.Popen(
            [
                str(exe),
                "record",
                "-p",
                str(pid),
                "--format",
                "raw",
                "-o",
                out,
                "--rate",
                str(rate),
                "--idle",
                "--threads",
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def flood(
    cols: int,
    rows: int,
    rate: float | None,
    orders: int,
    updates: int,
    presses: int,
    gap: float,
    idle_presses: int,
    seed: int,
    profile: str | None = None,
    marker_timeout: float = 240,
) -> dict[str, Any]:
    async with SimProcess(orders, seed) as sim:
        prep = await sim.call("prepare", n=updates, marker=True)
        marker: str = prep["marker"]
        resting = await sim.call("rest", n=presses + 2)
        targets: list[str] = resting["ids"]
        tap = TapProcess(sim.url)
        home = tempfile.mkdtemp(prefix="termbench-")
        journal = os.path.join(home, "journal.sqlite3")
        screen = Rows((cols, rows))
        term = Terminal(blotter_argv(tap.url, journal), cols, rows, blotter_env(home), rate=rate)
        term.on_rows = screen.on_rows
        profiler: Profiler | None = None
        try:
            term.start()
            loaded_ns = await _wait_drawn(
                term, "the first complete table", lambda: _open_count(term) == resting["open"], 120
            )
            # the last row: the oldest of the orders the flood never touches; `c Up`
            # walks them (new orders come in at the top, far above)
            term.key("end")
            tap.call(cmd="track", ids=None)
            await asyncio.sleep(0.5)
            if profile:
                profiler = Profiler(term.pid, profile)
                await asyncio.sleep(0.3)
            _, done = await sim.burst()
            burst_start = sim.burst_started_mono_ns
            press_log: list[tuple[int, str]] = []
            for i in range(presses):
                await asyncio.sleep(gap)
                t = term.key("c")
                term.key("up")
                press_log.append((t, targets[i]))
            term.key("home")
            finished = await done
            done_ns = int(finished["done_mono_ns"])
            problems: list[str] = []
            marker_ns: int | None = None
            try:
                await _wait(
                    term, "the flood's last order on screen", lambda: marker[-8:] in screen.draws, marker_timeout
                )
                marker_ns = screen.draws[marker[-8:]][0][0]
            except TimeoutError as exc:
                problems.append(f"ingest: {exc}")
            if profiler is not None:
                profiler.stop()
            await asyncio.sleep(1.0)
            idle_log: list[int] = []
            for _ in range(idle_presses):
                await asyncio.sleep(0.1)
                idle_log.append(term.key("c"))
                term.key("down")
            # Ingest and freshness with no key pressed and the newest rows on screen: a
            # second flood of the same size, going on from where the first left the book
            # (in the first, the presses take 4 s and the marker can only be seen after
            # `Home`, so its draw is no measure of the ingest once the blotter is faster).
            prep2 = await sim.call("prepare", n=updates, marker=True, skip=prep["frames"])
            marker2: str = prep2["marker"]
            term.key("home")
            await asyncio.sleep(0.5)
            pids = {
                "blotter": term.pid,
                "simulator": sim.proc.pid if sim.proc else 0,
                "tap": tap.proc.pid,
                "harness": os.getpid(),
            }
            cpu_before = _cpu_of(pids)
            _, done2 = await sim.burst()
            burst2_start = sim.burst_started_mono_ns
            marker2_ns: int | None = None
            try:
                await _wait(
                    term,
                    "the second flood's last order on screen",
                    lambda: marker2[-8:] in screen.draws,
                    marker_timeout,
                )
                marker2_ns = screen.draws[marker2[-8:]][0][0]
            except TimeoutError as exc:
                problems.append(f"ingest (second flood): {exc}")
            finished2 = await done2
            cpu = _cpu_spent(cpu_before, _cpu_of(pids))
            await asyncio.sleep(0.5)
            term.catch_up()
            wire = tap.call(cmd="dump")
            rss = psutil.Process(term.pid).memory_info().rss
            journal_rows_running = _journal_order_rows(journal)  # before the quit: how far behind it is
        finally:
            if profiler is not None and profiler.proc.poll() is None:
                profiler.stop()
            term.stop()
            tap.close()
    journal_rows = _journal_order_rows(journal)
    shutil.rmtree(home, ignore_errors=True)  # the journal of a flood run is 100+ MB
    if os.environ.get("BENCH_TERMINAL_DEBUG"):  # a developer's aid: the raw material of one run
        Path(os.environ["BENCH_TERMINAL_DEBUG"]).write_bytes(
            orjson.dumps(
                {"wire": wire, "draws": screen.draws, "press": press_log, "idle": idle_log, "targets": targets}
            )
        )
    cancels = [(t, oid) for t, action, oid, *_ in wire["requests"] if action == "cancel-order"]
    first_cancel: dict[str, int] = {}
    for t, oid in cancels:
        first_cancel.setdefault(oid, t)
    first_recv = _first_recv(wire["requests"])
    updates_by: dict[str, list[tuple[int, str, str]]] = {}
    for t, oid, st, cfq in wire["updates"]:
        updates_by.setdefault(oid[-8:], []).append((t, st, cfq))

    # cancel key → wire during the flood
    burst_lat: list[float] = []
    burst_recv: list[float] = []  # the same, to the moment the tap's recv returned the request
    unsent_final = unsent = 0
    for t, oid in press_log:
        sent = first_cancel.get(oid)
        if sent is not None and sent >= t:
            burst_lat.append(_ms(sent - t))
            burst_recv.append(_ms(first_recv[oid] - t))
            continue
        if any(st in FINAL and tu < t for tu, st, _ in updates_by.get(oid[-8:], [])):
            unsent_final += 1  # already finished before the key: nothing to cancel
        else:
            unsent += 1
    expected = {oid for _, oid in press_log}
    burst_end = idle_log[0] if idle_log else 2**63
    wrong = sum(1 for t, oid in cancels if t < burst_end and oid not in expected)

    # at idle: each cancel belongs to the last key written before it
    idle_lat: list[float] = []
    idle_cancels = sorted(t for t, _ in cancels if idle_log and t >= idle_log[0])
    for i, t in enumerate(idle_log):
        nxt = idle_log[i + 1] if i + 1 < len(idle_log) else t + 10**9
        got = [c for c in idle_cancels if t <= c < nxt]
        if got:
            idle_lat.append(_ms(got[0] - t))

    # freshness: every update to an order whose row was on screen when it was sent
    pressed_at = {oid[-8:]: t for t, oid in press_log}
    fresh: list[float] = []
    lost = 0
    for tail, ups in updates_by.items():
        if tail in (marker[-8:], marker2[-8:]):
            continue
        draws = screen.draws.get(tail, [])
        if not draws:
            continue
        shown: list[tuple[int, int]] = []  # (draw time, index of the newest update it shows)
        for td, tokens in draws:
            best = -1
            for j, (tu, st, cfq) in enumerate(ups):
                if tu > td:
                    break
                if st in tokens and cfq in tokens:
                    best = j
            shown.append((td, best))
        limit = pressed_at.get(tail)
        for i, (tu, _, _) in enumerate(ups):
            if limit is not None and tu >= limit:
                break
            if not screen.on_screen(tail, tu):
                continue
            hit = next((td for td, j in shown if td >= tu and j >= i), None)
            if hit is None:
                lost += 1
            else:
                fresh.append(_ms(hit - tu))

    out_mb = term.out_bytes / 2**20
    return {
        "cols": cols,
        "rows": rows,
        "rate_bps": rate,
        "startup_first_frame_s": (screen.first_frame - term.started_ns) / 1e9 if screen.first_frame else None,
        "startup_first_orders_s": (screen.first_orders - term.started_ns) / 1e9 if screen.first_orders else None,
        "first_table_s": (loaded_ns - term.started_ns) / 1e9,
        "ingest_s": (marker2_ns - burst2_start) / 1e9 if marker2_ns is not None else None,
        "ingest_while_pressing_s": (marker_ns - burst_start) / 1e9 if marker_ns is not None else None,
        "problems": problems,
        "sim_send_s": (int(finished2["done_mono_ns"]) - burst2_start) / 1e9,
        "sim_send_pressing_s": (done_ns - burst_start) / 1e9,
        "frames": prep["frames"],
        **_burst_figures(burst_lat, len(press_log)),
        "cancel_burst_recv_ms": [round(x, 2) for x in burst_recv],
        "cancel_burst_recv_max_ms": max(burst_recv) if burst_recv else None,
        "cancel_unsent": unsent,
        "cancel_unsent_already_final": unsent_final,
        "cancel_wrong_order": wrong,
        "cancel_idle_p50_ms": pct(idle_lat, 50),
        "cancel_idle_p99_ms": pct(idle_lat, 99),
        "cancel_idle_n": len(idle_lat),
        "cancel_idle_pressed": len(idle_log),
        "fresh_p50_ms": pct(fresh, 50),
        "fresh_p99_ms": pct(fresh, 99),
        "fresh_max_ms": max(fresh) if fresh else None,
        "fresh_n": len(fresh),
        "fresh_lost": lost,
        "terminal_output_mb": out_mb,
        "rss_mb": rss / 2**20,
        "profile": profile,
        "cpu_second_flood_s": cpu,
        **_cpu_figures(cpu),
        "journal_order_rows": journal_rows,
        "journal_order_rows_running": journal_rows_running,
        "blotter_exit": term.proc.returncode if term.proc is not None else None,
        "wire_order_frames": len(wire["updates"]),
    }


def _first_recv(requests: list[list[Any]]) -> dict[str, int]:
    """Per order, when the tap's ``recv`` returned its first cancel (the request's last
    field; its first is when the bytes reached the socket: see ``bench/wiretap.py``)."""
    out: dict[str, int] = {}
    for t, action, oid, *rest in requests:
        if action == "cancel-order":
            out.setdefault(oid, rest[-1] if len(rest) >= 2 else t)
    return out


def _task_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of each thread of ``pid``, by its OS name
    (threads of one name summed; the main thread is "MainThread"): ``/proc/<pid>/task/*/stat``."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = "MainThread" if tid == str(pid) else stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def _burst_figures(lat: list[float], pressed: int) -> dict[str, Any]:
    """Key → wire of the presses during a flood (ms), and how many were pressed."""
    return {
        "cancel_burst_p50_ms": pct(lat, 50),
        "cancel_burst_p99_ms": pct(lat, 99),
        "cancel_burst_max_ms": max(lat) if lat else None,
        "cancel_burst_n": len(lat),
        "cancel_burst_pressed": pressed,
        "cancel_burst_ms": [round(x, 2) for x in lat],
    }


def _journal_order_rows(path: str) -> int | None:
    """Order-update frames the blotter's journal holds once it has exited (its rows are
    written by a thread of their own, at a lower pace than the frames come in a flood)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute(
                "SELECT count(*) FROM frames WHERE direction = 'received' AND kind = 'order-update'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return int(row[0])


def _cpu_figures(cpu: dict[str, dict[str, float]]) -> dict[str, float]:
    """The CPU seconds of the second flood, flat (a median is taken of each)."""
    blotter = dict(cpu.get("blotter", {}))
    out = {
        "cpu_session_s": blotter.pop("blotter-session", 0.0),
        "cpu_screen_s": blotter.pop("MainThread", 0.0),
        "cpu_journal_s": blotter.pop("journal-writer", 0.0),
    }
    out["cpu_blotter_other_s"] = round(sum(blotter.values()), 3)
    out["cpu_blotter_s"] = round(sum(out.values()), 3)
    out["cpu_simulator_s"] = round(sum(cpu.get("simulator", {}).values()), 3)
    out["cpu_tap_s"] = round(sum(cpu.get("tap", {}).values()), 3)
    return out


def _cpu_of(pids: dict[str, int]) -> dict[str, dict[str, float]]:
    return {who: _task_cpu(pid) for who, pid in pids.items()}


def _cpu_spent(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    spent: dict[str, dict[str, float]] = {}
    for who, threads in after.items():
        was = before.get(who, {})
        spent[who] = {
            name: round(t - was.get(name, 0.0), 3) for name, t in threads.items() if t - was.get(name, 0.0) > 0
        }
    return spent


async def bare_cancel(
    orders: int, updates: int, presses: int, gap: float, idle_presses: int, seed: int
) -> dict[str, Any]:
    """The cancel key's baseline (:mod:`bench.bare_cancel`) in the same flood, pressed and
    measured as the blotter is: each ``c`` written to a pty, stamped by the wire tap."""
    async with SimProcess(orders, seed) as sim:
        await sim.call("prepare", n=updates, marker=True)
        resting = await sim.call("rest", n=presses + idle_presses + 2)
        targets: list[str] = resting["ids"]
        tap = TapProcess(sim.url)
        home = tempfile.mkdtemp(prefix="termbench-bare-")
        argv = [sys.executable, "-m", "bench.bare_cancel", "--url", tap.url, "--orders", ",".join(targets)]
        term = Terminal(argv, 80, 24, blotter_env(home))
        try:
            term.start()
            await _wait(term, "the bare client's READY", lambda: "READY" in term.text(), 60)
            tap.call(cmd="track", ids=None)
            await asyncio.sleep(0.5)
            _, done = await sim.burst()
            pressed: list[tuple[int, str]] = []
            for i in range(presses):
                await asyncio.sleep(gap)
                pressed.append((term.key("c"), targets[i]))
            await done
            await asyncio.sleep(1.0)
            idle: list[tuple[int, str]] = []
            for i in range(presses, presses + idle_presses):
                await asyncio.sleep(0.1)
                idle.append((term.key("c"), targets[i]))
            await asyncio.sleep(0.5)
            wire = tap.call(cmd="dump")
        finally:
            term.stop()
            tap.close()
            shutil.rmtree(home, ignore_errors=True)
    sent: dict[str, int] = {}
    for t, action, oid, *_ in wire["requests"]:
        if action == "cancel-order":
            sent.setdefault(oid, t)

    def latencies(log: list[tuple[int, str]]) -> list[float]:
        return [_ms(sent[oid] - t) for t, oid in log if oid in sent and sent[oid] >= t]

    burst, calm = latencies(pressed), latencies(idle)
    recv = _first_recv(wire["requests"])
    burst_recv = [_ms(recv[oid] - t) for t, oid in pressed if oid in sent and sent[oid] >= t]
    return {
        **_burst_figures(burst, len(pressed)),
        "cancel_burst_recv_ms": [round(x, 2) for x in burst_recv],
        "cancel_burst_recv_max_ms": max(burst_recv) if burst_recv else None,
        "cancel_idle_p50_ms": pct(calm, 50),
        "cancel_idle_n": len(calm),
    }


class _RssPeak(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.1):
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return


async def scale(cols: int, rows: int, orders: int, seed: int, presses: int, gap: float) -> dict[str, Any]:
    async with SimProcess(orders, seed) as sim:
        tap = TapProcess(sim.url)
        home = tempfile.mkdtemp(prefix="termbench-")
        screen = Rows((cols, rows))
        term = Terminal(blotter_argv(tap.url, os.path.join(home, "journal.sqlite3")), cols, rows, blotter_env(home))
        term.on_rows = screen.on_rows
        peak: _RssPeak | None = None
        try:
            term.start()
            peak = _RssPeak(term.pid)
            peak.start()
            first_table_ns = await _wait_drawn(
                term, "the first complete table", lambda: _open_count(term) == sim.open, 300
            )
            await asyncio.sleep(1.0)
            rss = psutil.Process(term.pid).memory_info().rss

            # the snapshot again (`r`), with presses every `gap` until the log says it
            # was applied (and 0.3 s more): their longest key → wire is the longest hold
            targets: list[str] = (await sim.call("open", n=min(presses + 400, orders // 2)))["ids"]
            term.catch_up()
            before = set(screen.snapshot_lines)
            refresh_key = term.key("r")
            press_log: list[tuple[int, str]] = []
            applied_at: float | None = None
            deadline = time.monotonic() + 120
            i = 0
            while i < len(targets) and time.monotonic() < deadline:
                await asyncio.sleep(gap)
                if i < presses or applied_at is None:
                    if i >= len(targets):
                        break
                    press_log.append((term.key("c"), targets[i]))
                    term.key("down")
                    i += 1
                term.catch_up()
                if applied_at is None and screen.snapshot_lines - before:
                    applied_at = time.monotonic()
                if applied_at is not None and time.monotonic() - applied_at > 0.3:
                    break
            await _quiet(term, 0.5, 60)

            # the filter: `/`, then `BTC-` once the box is up, then Enter once it shows BTC.
            # (`BTC-`, not `BTC`: the filter matches order ids too, and 20 of these 100,000
            # ids hold "btc" — a row of such an order on another symbol kept the check
            # below waiting, once for 17 s, until the flow moved it off the screen.)
            filter_ms: float | None = None
            problems: list[str] = []
            try:
                term.key("/")
                await _wait(term, "the filter box", lambda: "Filter by symbol" in term.text(), 30)
                term.key("BTC-")
                await _wait(
                    term,
                    "BTC in the filter box",
                    lambda: any("BTC" in line and "▊" in line for line in term.screen.lines()),
                    30,
                )
                await _quiet(term, 0.3, 30)
                term.catch_up()
                enter = term.key("enter")
                filtered: int | None = None
                deadline = time.monotonic() + 60
                while filtered is None:
                    # chunk by chunk: the first chunk after which only BTC orders are on screen
                    while term.done < len(term.chunks):
                        t = term.chunks[term.done][0]
                        term.catch_up(1)
                        order_rows = [line for line in term.screen.lines() if ROW.match(line)]
                        if order_rows and all("BTC-" in line for line in order_rows):
                            filtered = t
                            break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the filter never showed:\n{term.text()}")
                    await asyncio.sleep(0.02)
                filter_ms = _ms(filtered - enter)
            except TimeoutError as exc:
                problems.append(f"filter: {exc}")
            shown = _open_count(term)
            rss_end = psutil.Process(term.pid).memory_info().rss
            wire = tap.call(cmd="dump")
        finally:
            if peak is not None:
                peak.stopping.set()
            term.stop()
            tap.close()
            shutil.rmtree(home, ignore_errors=True)
    first_cancel: dict[str, int] = {}
    refresh_wire = None
    for t, action, oid, *_ in wire["requests"]:
        if action == "cancel-order":
            first_cancel.setdefault(oid, t)
        elif action == "futures-open-orders" and t >= refresh_key and refresh_wire is None:
            refresh_wire = t
    hold = [_ms(first_cancel[oid] - t) for t, oid in press_log if first_cancel.get(oid, -1) >= t]
    return {
        "cols": cols,
        "rows": rows,
        "orders": orders,
        "startup_first_frame_s": (screen.first_frame - term.started_ns) / 1e9 if screen.first_frame else None,
        "first_table_s": (first_table_ns - term.started_ns) / 1e9,
        "rss_mb": rss / 2**20,
        "rss_peak_mb": max(peak.peak if peak else 0, rss, rss_end) / 2**20,
        "refresh_key_to_wire_ms": _ms(refresh_wire - refresh_key) if refresh_wire else None,
        "snapshot_hold_max_ms": max(hold) if hold else None,
        "snapshot_hold_p50_ms": pct(hold, 50),
        "snapshot_hold_ms": [  # every press sent: (ms after the `r` key, its key → wire)
            (_ms(t - refresh_key), _ms(first_cancel[oid] - t)) for t, oid in press_log if first_cancel.get(oid, -1) >= t
        ],
        "snapshot_presses": len(press_log),
        "snapshot_presses_sent": len(hold),
        "snapshot_seen_applied": applied_at is not None,
        "filter_ms": filter_ms,
        "problems": problems,
        "filter_open_shown": shown,
    }
