"""The journal's query side: ``blotter journal`` groups each request with what came back."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from blotter.core.text import LINE_LIMIT
from blotter.journal import (
    Journal,
    JournalError,
    format_history,
    format_time,
    history_json,
    parse_since,
    read_history,
)
from blotter.protocol import CancelAll, CancelOrder, OpenOrdersQuery, encode, parse

T0 = 1_795_487_465_000  # ms
OID1 = "s177bab1b474U5051470287bbtcpKi01"
OID2 = "s177bab1b474U5051470287bbtcpKi02"
OID3 = "s177bab1b474U5051470287bbtcpKi03"
OID4 = "s177bab1b474U5051470287bbtcpKi04"
OID5 = "s177bab1b474U5051470287bbtcpKi05"
OID6 = "s177bab1b474U5051470287bbtcpKi06"
OID7 = "s177bab1b474U5051470287bbtcpKi07"


class Clock:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> int:
        return self.ms * 1_000_000


def update(order_id: str, status: str, symbol: str = "BTC-PERP") -> str:
    return orjson.dumps(
        {
            "m": "futures-order",
            "sn": 1,
            "e": "ExecutionReport",
            "a": "acct",
            "ac": "FUTURES",
            "t": T0,
            "orderId": order_id,
            "sd": "Buy",
            "ot": "Limit",
            "q": "0.1",
            "p": "18000",
            "s": symbol,
            "st": status,
            "cfq": "0",
            "ap": "0",
        }
    ).decode()


def ack(rid: str, action: str, order_id: str = "", symbol: str = "") -> str:
    return orjson.dumps(
        {
            "m": "order",
            "action": action,
            "ac": "FUTURES",
            "id": rid,
            "code": 0,
            "info": {"orderId": order_id, "symbol": symbol},
        }
    ).decode()


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    """A journal of a realistic session, plus a second process writing beside it."""
    path = tmp_path / "journal.sqlite3"
    clock = Clock()
    j = Journal.open(path, session="tui", clock=clock)
    other = Journal.open(path, session="cli", clock=clock)

    def sent(request, at: int) -> None:
        clock.ms = T0 + at
        j.record_sent(request, encode(request))

    def received(raw: str, at: int, journal: Journal = j) -> None:
        journal.record_received(parse(raw), raw, (T0 + at) * 1_000_000)

    j.record_note("connection: live")
    # 1. a cancel: ACK after 3 ms, Canceled on the order channel after 12 ms
    sent(CancelOrder(order_id=OID1, symbol="BTC-PERP", request_id="co-test-1", time_ms=T0), 0)
    received(ack("co-test-1", "cancel-order", OID1, "BTC-PERP"), 3)
    received(update(OID1, "Canceled"), 8, other)  # the other process's copy: not ours
    received(update(OID1, "PartiallyFilled"), 9)  # not final
    received(update(OID1, "Canceled"), 12)
    # 2. a refused cancel (the message carries a terminal escape: shown, not obeyed)
    sent(CancelOrder(order_id=OID2, symbol="BTC-PERP", request_id="co-test-2", time_ms=T0), 1000)
    err = orjson.dumps(
        {
            "m": "order",
            "action": "cancel-order",
            "ac": "FUTURES",
            "code": 300006,
            "id": "co-test-2",
            "info": {"symbol": "BTC-PERP", "reason": "INVALID_ORDER_ID", "errorMsg": "Order not found\x1b[2J"},
        }
    ).decode()
    received(err, 1004)
    # 3. cancel-all: ACK, three Canceled updates, the snapshot, then a later unrelated cancel
    sent(CancelAll(request_id="ca-test-1", time_ms=T0), 2000)
    received(ack("ca-test-1", "cancel-all"), 2002)
    received(update(OID3, "Canceled"), 2010)
    received(update(OID4, "Canceled", "ETH-PERP"), 2011)
    received(update(OID7, "Filled"), 2012)  # not a cancel
    received(update(OID5, "Canceled"), 2013)
    sent(OpenOrdersQuery(request_id="oo-test-1", time_ms=T0), 2040)
    received('{"m":"futures-open-orders","code":0,"id":"oo-test-1","ac":"FUTURES","data":[]}', 2050)
    received(update(OID6, "Canceled"), 2100)
    # 4. the other process's own cancel, answered in its own session
    clock.ms = T0 + 3000
    req = CancelOrder(order_id=OID6, symbol="BTC-PERP", request_id="co-other-1", time_ms=T0)
    other.record_sent(req, encode(req))
    received(ack("co-other-1", "cancel-order", OID6, "BTC-PERP"), 3001, other)
    received(update(OID6, "Canceled"), 3009, other)
    # 5. a cancel that nothing answered
    sent(CancelOrder(order_id=OID7, symbol="BTC-PERP", request_id="co-test-3", time_ms=T0), 4000)
    assert j.flush(5) and other.flush(5)
    j.close()
    other.close()
    return path


def by_id(histories):
    return {h.request_id: h for h in histories}


def test_groups_each_request_with_its_replies(journal_path: Path) -> None:
    hs = read_history(journal_path, None, None, None)
    assert [h.request_id for h in hs] == ["co-test-1", "co-test-2", "ca-test-1", "oo-test-1", "co-other-1", "co-test-3"]
    h = by_id(hs)

    co1 = h["co-test-1"]
    assert (co1.action, co1.symbol, co1.order_id, co1.session, co1.ts_ms) == (
        "cancel-order",
        "BTC-PERP",
        OID1,
        "tui",
        T0,
    )
    assert [(r.elapsed_ms, r.kind, r.status) for r in co1.replies] == [
        (3, "ack", None),
        (12, "order-update", "Canceled"),
    ]
    assert co1.outcome == "canceled"

    co2 = h["co-test-2"]
    assert [(r.elapsed_ms, r.kind, r.code, r.reason) for r in co2.replies] == [(4, "error", 300006, "INVALID_ORDER_ID")]
    assert co2.outcome == "refused"

    ca = h["ca-test-1"]
    assert [(r.elapsed_ms, r.kind, r.order_id) for r in ca.replies] == [
        (2, "ack", None),
        (10, "order-update", OID3),
        (11, "order-update", OID4),
        (13, "order-update", OID5),
        (50, "open-orders", None),
    ]
    assert ca.outcome == "acked, 3 canceled"

    assert [(r.elapsed_ms, r.kind, r.message) for r in h["oo-test-1"].replies] == [(10, "open-orders", "0 open")]
    other = h["co-other-1"]
    assert other.session == "cli"
    assert [(r.elapsed_ms, r.kind) for r in other.replies] == [(1, "ack"), (9, "order-update")]
    assert h["co-test-3"].replies == [] and h["co-test-3"].outcome == "no reply"


def test_filters(journal_path: Path) -> None:
    assert [h.request_id for h in read_history(journal_path, None, "co-test-2", None)] == ["co-test-2"]
    assert read_history(journal_path, None, "nope", None) == []
    # --order-id: the cancels of that order, and the cancel-all that canceled it (with only its update)
    assert [h.request_id for h in read_history(journal_path, None, None, OID1)] == ["co-test-1"]
    (ca,) = read_history(journal_path, None, None, OID4)
    assert ca.request_id == "ca-test-1"
    assert [(r.kind, r.order_id) for r in ca.replies] == [("ack", None), ("order-update", OID4), ("open-orders", None)]
    assert [h.request_id for h in read_history(journal_path, None, None, OID6)] == ["co-other-1"]
    # --since, relative to now
    got = read_history(journal_path, parse_since("2s"), None, None, now_ms=T0 + 3500)
    assert [h.request_id for h in got] == ["ca-test-1", "oo-test-1", "co-other-1", "co-test-3"]
    assert read_history(journal_path, parse_since("1d"), None, None, now_ms=T0 + 10 * 86_400_000) == []
    both = read_history(journal_path, parse_since("10m"), "co-test-1", OID1, now_ms=T0 + 1000)
    assert [h.request_id for h in both] == ["co-test-1"]


def test_format_history_lines(journal_path: Path) -> None:
    lines = format_history(read_history(journal_path, None, None, None))
    start = lines.index(f"{format_time(T0)} co-test-1 sent cancel-order BTC-PERP {OID1}  → canceled")
    assert lines[start + 1 : start + 3] == ["    +3 ms ACK", "    +12 ms order Canceled"]
    assert "    +4 ms ERR 300006 INVALID_ORDER_ID: Order not found\\x1b[2J" in lines
    assert not any("\x1b" in line for line in lines)
    assert f"    +10 ms order Canceled {OID3} BTC-PERP" in lines
    assert "    +50 ms snapshot (0 open)" in lines
    assert lines[-1] == "    (no reply recorded)"
    assert format_time(T0, utc=True) == "2026-11-24 02:31:05.000"


def test_history_json(journal_path: Path) -> None:
    docs = history_json(read_history(journal_path, None, "co-test-1", None))
    (doc,) = [json.loads(json.dumps(d)) for d in docs]  # JSON-able
    assert doc["request_id"] == "co-test-1"
    assert doc["time"] == "2026-11-24T02:31:05.000Z" and doc["ts_ms"] == T0
    assert (doc["action"], doc["symbol"], doc["order_id"], doc["outcome"]) == (
        "cancel-order",
        "BTC-PERP",
        OID1,
        "canceled",
    )
    assert [(r["elapsed_ms"], r["kind"], r["summary"], r["status"]) for r in doc["replies"]] == [
        (3, "ack", "ACK", None),
        (12, "order-update", "order Canceled", "Canceled"),
    ]


def test_2021_ack_without_request_id_is_matched_by_order(tmp_path: Path, fixture_json) -> None:
    path = tmp_path / "j.sqlite3"
    clock = Clock()
    j = Journal.open(path, clock=clock)
    record = fixture_json("cancel-order-ack-2021")
    req = CancelOrder(order_id=record["orderId"], symbol="BTC-PERP", request_id="co-old-1", time_ms=T0)
    j.record_sent(req, encode(req))
    raw = orjson.dumps(record).decode()
    j.record_received(parse(raw), raw, (T0 + 7) * 1_000_000)
    j.close()
    (h,) = read_history(path, None, None, None)
    assert [(r.elapsed_ms, r.kind, r.describe(h.order_id)) for r in h.replies] == [(7, "ack", "ACK (order New)")]


@pytest.mark.parametrize(
    "text,ms", [("30s", 30_000), ("10m", 600_000), ("2h", 7_200_000), ("1d", 86_400_000), (" 5M ", 300_000)]
)
def test_parse_since(text: str, ms: int) -> None:
    assert parse_since(text) == ms


@pytest.mark.parametrize("text", ["", "10", "m", "10x", "-5m", "1.5h", "0m", "10 minutes"])
def test_parse_since_rejects(text: str) -> None:
    with pytest.raises(JournalError) as info:
        parse_since(text)
    assert "30s, 10m, 2h or 1d" in str(info.value) and "\n" not in str(info.value)


def test_missing_or_foreign_journal(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite3"
    with pytest.raises(JournalError) as info:
        read_history(missing, None, None, None)
    assert str(info.value) == f"no journal at {missing} (nothing recorded yet, or --no-journal was used)"
    assert not missing.exists()  # reading never creates it
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"garbage" * 1000)
    with pytest.raises(JournalError) as info:
        read_history(junk, None, None, None)
    assert "\n" not in str(info.value)


# -- the printout is data, never terminal commands or forged lines -------------------------

ROOT = Path(__file__).resolve().parents[2]
RAW_BAD = ("\u202e", "\u2066", "\u200e", "\u2028", "\x1b", "\x07", "\n", "\r", "\u200b")
FORGED = "\n2026-11-24 02:31:05.000 co-fake-9 sent cancel-order BTC-PERP X  → canceled"
HOSTILE = "order not found\u202eKO\u2066x\u2069 \u200e\u2028\x1b[2J\x1b]0;owned\x07 BTC\u200b-PERP" + FORGED


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASCENDEX_", "BLOTTER_"))}
    env.update(
        HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"), NO_COLOR="1"
    )
    return subprocess.run(
        [sys.executable, "-m", "blotter", "journal", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def hostile_journal(tmp_path: Path, pad: int = 0) -> Path:
    path = tmp_path / "hostile.sqlite3"
    clock = Clock()
    j = Journal.open(
        path, clock=clock, session="s-1", endpoint="wss://trader:hunter2@ascendex.com/api/pro/v2/stream?token=abc"
    )
    req = CancelOrder(order_id=OID1, symbol="BTC-PERP", request_id="co-evil-1", time_ms=T0)
    j.record_sent(req, encode(req))
    err = orjson.dumps(
        {
            "m": "order",
            "action": "cancel-order",
            "ac": "FUTURES",
            "code": 300006,
            "id": "co-evil-1",
            "info": {"symbol": "BTC-PERP", "reason": "INVALID\u202e_ID", "errorMsg": HOSTILE + "A" * pad},
        }
    ).decode()
    j.record_received(parse(err), err, (T0 + 4) * 1_000_000)
    j.close()
    assert j.error is None
    return path


def test_a_hostile_refusal_prints_as_data_in_text_and_json(tmp_path: Path) -> None:
    path = hostile_journal(tmp_path)
    text = run_cli(tmp_path, "--journal", str(path))
    assert text.returncode == 0, text.stderr
    for ch in RAW_BAD[:-3] + ("\u200b",):
        assert ch not in text.stdout
    lines = text.stdout.splitlines()
    (request,) = [line for line in lines if not line.startswith((" ", "session "))]  # no forged request line
    assert request.endswith("co-evil-1 sent cancel-order BTC-PERP " + OID1 + "  → refused")
    assert len(lines) == 3  # the session, the request, its one reply
    (reply,) = [line for line in lines if line.startswith("    +4 ms ERR 300006")]
    for esc in ("\\u202e", "\\u2066", "\\u200e", "\\u2028", "\\x1b", "\\x07", "\\x0a", "\\u200b"):
        assert esc in reply
    assert "co-fake-9" in reply  # the forged text is shown, inside the reply it came in

    js = run_cli(tmp_path, "--journal", str(path), "--json")
    assert js.returncode == 0, js.stderr
    for ch in ("\u202e", "\u2066", "\u200e", "\u2028", "\x1b", "\x07", "\u200b"):
        assert ch not in js.stdout
    (line,) = js.stdout.splitlines()
    doc = json.loads(line)
    (r,) = doc["replies"]
    assert r["message"] == HOSTILE  # JSON escapes are exact: a script reads the original text
    assert r["reason"] == "INVALID\u202e_ID"
    assert "\\u202e" in line and "\\u2028" in line and "\\u001b" in line


def test_a_huge_exchange_value_is_cut_to_the_line_cap(tmp_path: Path) -> None:
    path = hostile_journal(tmp_path, pad=300_000)
    out = run_cli(tmp_path, "--journal", str(path))
    assert out.returncode == 0, out.stderr
    assert max(len(line) for line in out.stdout.splitlines()) <= LINE_LIMIT
    assert "…" in out.stdout
    js = run_cli(tmp_path, "--journal", str(path), "--json")
    assert max(len(line) for line in js.stdout.splitlines()) <= 4 * LINE_LIMIT


def test_each_session_shows_its_endpoint_without_credentials(tmp_path: Path) -> None:
    path = hostile_journal(tmp_path)
    out = run_cli(tmp_path, "--journal", str(path))
    assert "wss://ascendex.com/api/pro/v2/stream" in out.stdout
    for secret in ("hunter2", "trader", "token=abc"):
        assert secret not in out.stdout
    (head,) = [line for line in out.stdout.splitlines() if line.startswith("session s-1")]
    assert f"pid {os.getpid()}" in head and "blotter " in head
    doc = json.loads(run_cli(tmp_path, "--journal", str(path), "--json").stdout.splitlines()[0])
    assert doc["endpoint"] == "wss://ascendex.com/api/pro/v2/stream"
    (h,) = read_history(path, None, None, None)
    assert h.endpoint == "wss://ascendex.com/api/pro/v2/stream"


def test_an_old_journal_without_sessions_still_reads(tmp_path: Path) -> None:
    path = hostile_journal(tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE sessions")
    conn.commit()
    conn.close()
    (h,) = read_history(path, None, None, None)
    assert h.endpoint is None
    assert any("co-evil-1 sent" in line for line in format_history([h]))


@pytest.mark.skipif(sys.platform == "win32", reason="FIFO and symlinks")
@pytest.mark.parametrize("kind", ["fifo", "symlink", "other-owner"])
def test_reading_refuses_what_is_not_a_regular_file_you_own(tmp_path: Path, kind: str) -> None:
    good = hostile_journal(tmp_path)
    path = tmp_path / "odd.sqlite3"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        path.symlink_to(good)
    else:
        if os.geteuid() != 0:
            pytest.skip("needs root to give a file to another user")
        path.write_bytes(good.read_bytes())
        os.chown(path, 65534, 65534)
    out = run_cli(tmp_path, "--journal", str(path))  # (a FIFO used to hang here)
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert str(path) in line and "Traceback" not in line
    assert {"fifo": "not a regular file", "symlink": "symbolic link", "other-owner": "owned by"}[kind] in line
