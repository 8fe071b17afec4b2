"""The journal's write side: columns, WAL, file modes, secret hygiene, the writer
thread (never blocking the caller), failures, and surviving SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr

from blotter.journal import Journal, JournalError
from blotter.protocol import Auth, CancelOrder, Ping, encode, parse, sign
from blotter.protocol.signing import mask_key

OID = "s177bab1b474U5051470287bbtcpKiOR"
ROOT = Path(__file__).resolve().parents[2]


def rows(path: Path, where: str = "1", params: tuple = ()) -> list[dict]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM frames WHERE {where} ORDER BY id", params)]
    finally:
        conn.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "blotter" / "journal.sqlite3"


@pytest.fixture
def journal(path: Path):
    j = Journal.open(path, session="test")
    yield j
    j.close()


def test_records_sent_received_and_notes_with_columns(journal: Journal, path: Path) -> None:
    req = CancelOrder(order_id=OID, symbol="BTC-PERP", request_id="co-abc-1", time_ms=1_700_000_000_000)
    text = encode(req)
    journal.record_sent(req, text)
    journal.record_sent(Ping(), encode(Ping()))
    ack = f'{{"m":"order","action":"cancel-order","ac":"FUTURES","id":"co-abc-1","code":0,"info":{{"orderId":"{OID}","symbol":"BTC-PERP"}}}}'
    journal.record_received(parse(ack), ack, 1_700_000_000_123_456_789)
    err = (
        '{"m":"order","action":"cancel-order","ac":"FUTURES","code":300006,"id":"co-abc-2",'
        '"info":{"symbol":"BTC-PERP","reason":"INVALID_ORDER_ID","errorMsg":"no such order"}}'
    )
    journal.record_received(parse(err), err, 1_700_000_000_200_000_000)
    upd = orjson.dumps(
        {
            "m": "futures-order",
            "sn": 9,
            "orderId": OID,
            "s": "BTC-PERP",
            "sd": "Buy",
            "st": "Canceled",
            "ot": "Limit",
            "q": "0.1",
            "p": "18000",
        }
    ).decode()
    journal.record_received(parse(upd), upd, 1_700_000_000_300_000_000)
    journal.record_received(parse("not json{"), "not json{", 1_700_000_000_400_000_000)
    journal.record_note("connection: live", request_id="co-abc-1", order_id=OID)
    assert journal.flush(5)
    assert journal.error is None

    got = rows(path)
    assert [r["direction"] for r in got] == ["sent", "sent", "received", "received", "received", "received", "note"]
    sent = got[0]
    assert sent | {"id": 0, "ts_ms": 0} == {
        "id": 0,
        "ts_ms": 0,
        "direction": "sent",
        "kind": "request",
        "action": "cancel-order",
        "request_id": "co-abc-1",
        "order_id": OID,
        "symbol": "BTC-PERP",
        "status": None,
        "code": None,
        "reason": None,
        "message": None,
        "raw": text,
        "session": "test",
    }
    assert abs(sent["ts_ms"] - time.time() * 1000) < 60_000  # local wall clock, ms
    assert got[1]["action"] == "ping" and got[1]["request_id"] is None
    assert got[2]["ts_ms"] == 1_700_000_000_123
    assert (got[2]["kind"], got[2]["action"], got[2]["request_id"], got[2]["order_id"], got[2]["raw"]) == (
        "ack",
        "cancel-order",
        "co-abc-1",
        OID,
        ack,
    )
    assert (got[3]["kind"], got[3]["request_id"], got[3]["code"], got[3]["reason"], got[3]["message"]) == (
        "error",
        "co-abc-2",
        300006,
        "INVALID_ORDER_ID",
        "no such order",
    )
    assert (got[4]["kind"], got[4]["order_id"], got[4]["symbol"], got[4]["status"]) == (
        "order-update",
        OID,
        "BTC-PERP",
        "Canceled",
    )
    assert got[5]["kind"] == "bad-frame" and got[5]["raw"] == "not json{" and got[5]["reason"]
    assert (got[6]["kind"], got[6]["message"], got[6]["request_id"], got[6]["order_id"], got[6]["raw"]) == (
        "note",
        "connection: live",
        "co-abc-1",
        OID,
        None,
    )


def test_wal_mode_schema_and_file_modes(journal: Journal, path: Path) -> None:
    journal.record_note("x")
    assert journal.flush(5)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(frames)")}
        assert {"frames_request_id", "frames_order_id", "frames_ts_ms"} <= indexes
    finally:
        conn.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    for side in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        if side.exists():
            assert stat.S_IMODE(side.stat().st_mode) & 0o077 == 0


def test_existing_file_is_tightened_to_600(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    Journal.open(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _db_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


def test_secrets_never_reach_the_file(path: Path) -> None:
    key = "bclCdq9kIfmyX1eZaYKcEv8gcI0Q3V7P"
    secret = "hV8FgjyJtpvVeAcMAgzgAFQCN36wmbWuN7o3WPcYcYhFd8qvE43gzFGVsFcCqMNk"
    t = 1_608_133_910_000
    sig = sign(secret, t)
    journal = Journal.open(path, redact=[key, SecretStr(secret)])
    auth = Auth(time_ms=t, api_key=SecretStr(key), signature=SecretStr(sig), request_id="au-1")
    journal.record_sent(auth, encode(auth))
    # an auth frame seen only as text (no Auth model): still masked, no signature
    journal.record_sent(Ping(), f'{{"op": "auth", "id": "au-2", "t": 1, "key": "{key}", "sig": "{sig}"}}')
    # the exchange echoing secrets back, and notes mentioning them: masked
    echo = f'{{"m":"auth","id":"au-1","code":200006,"err":"bad key {key} sig {sig} secret {secret}"}}'
    journal.record_received(parse(echo), echo, time.time_ns())
    journal.record_note(f"x-auth-key: {key}, x-auth-signature: {sig}; secret={secret}")
    journal.record_note('headers {"x-auth-timestamp": "1608133910000"}')
    assert journal.flush(5)
    during = _db_bytes(path)  # while the WAL still holds the rows
    journal.close()
    assert journal.error is None
    after = _db_bytes(path)
    for blob in (during, after):
        for needle in (key, secret, sig, secret[8:40], sig[4:-4]):
            assert needle.encode() not in blob
        assert mask_key(key).encode() in blob
    got = rows(path)
    assert orjson.loads(got[0]["raw"]) == {"op": "auth", "id": "au-1", "t": t, "key": mask_key(key)}
    assert "sig" not in orjson.loads(got[1]["raw"])
    assert got[0]["action"] == got[1]["action"] == "auth"
    assert "1608133910000" not in got[4]["message"]


def test_record_does_no_io_while_the_writer_is_blocked(journal: Journal, path: Path, monkeypatch) -> None:
    entered, release = threading.Event(), threading.Event()
    real = journal._write_batch
    caller = threading.get_ident()
    batch_threads: set[int] = set()

    def blocking(conn, batch):
        batch_threads.add(threading.get_ident())
        entered.set()
        assert release.wait(10)
        real(conn, batch)

    monkeypatch.setattr(journal, "_write_batch", blocking)
    journal.record_note("first")
    assert entered.wait(5)  # the writer is now stuck inside a batch
    for i in range(1000):
        journal.record_note(f"n{i}")
        journal.record_received(parse('{"m":"ping","hp":3}'), '{"m":"ping","hp":3}', time.time_ns())
    assert journal.pending == 2000  # every call returned; the rows wait in memory
    assert rows(path) == []
    release.set()
    assert journal.flush(5)
    assert len(rows(path)) == 2001
    assert caller not in batch_threads


def test_backlog_is_bounded_and_the_loss_is_noted(path: Path, monkeypatch) -> None:
    journal = Journal.open(path, max_pending=10)
    entered, release = threading.Event(), threading.Event()
    real = journal._write_batch

    def blocking(conn, batch):
        entered.set()
        assert release.wait(10)
        real(conn, batch)

    monkeypatch.setattr(journal, "_write_batch", blocking)
    journal.record_note("first")
    assert entered.wait(5)
    for i in range(25):
        journal.record_note(f"n{i}")
    assert journal.pending == 10
    assert journal.dropped == 15
    release.set()
    assert journal.flush(5)
    journal.close()
    notes = [r["message"] for r in rows(path)]
    assert notes[:11] == ["first"] + [f"n{i}" for i in range(10)]
    assert any("15 frame(s) not recorded" in n for n in notes)


@pytest.mark.parametrize("case", ["parent-is-file", "not-sqlite", "directory", "newer-schema", "foreign-table"])
def test_unopenable_journal_raises_one_line(tmp_path: Path, case: str) -> None:
    if case == "parent-is-file":
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "journal.sqlite3"
    elif case == "not-sqlite":
        path = tmp_path / "journal.sqlite3"
        path.write_bytes(b"this is not a database, just some text\n" * 200)
    elif case == "directory":
        path = tmp_path / "journal.sqlite3"
        path.mkdir()
    else:
        path = tmp_path / "journal.sqlite3"
        conn = sqlite3.connect(path)
        if case == "newer-schema":
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute("INSERT INTO meta VALUES ('schema_version', '99')")
        else:
            conn.execute("CREATE TABLE frames (id INTEGER PRIMARY KEY, stuff TEXT)")
        conn.commit()
        conn.close()
    with pytest.raises(JournalError) as info:
        Journal.open(path)
    message = str(info.value)
    assert message and "\n" not in message
    assert str(path) in message
    assert "Traceback" not in message


def test_writer_failure_sets_error_and_never_raises(journal: Journal, path: Path) -> None:
    journal.record_note("before")
    assert journal.flush(5)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE frames")  # the file changes under the writer's feet
    conn.commit()
    conn.close()
    journal.record_note("after")
    assert journal.flush(5) is False
    assert journal.error is not None and "no such table" in journal.error and "\n" not in journal.error
    journal.record_note("ignored")  # no raise, no growth
    journal.record_sent(Ping(), encode(Ping()))
    assert journal.pending == 0
    journal.close()
    journal.close()


def test_writer_failure_in_batch_function(journal: Journal, monkeypatch) -> None:
    def broken(conn, batch):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(journal, "_write_batch", broken)
    journal.record_note("x")
    assert journal.flush(5) is False
    assert journal.error is not None and journal.error.startswith("journal write failed: disk I/O error")


def test_two_processes_share_one_journal(path: Path) -> None:
    a = Journal.open(path, session="tui")
    b = Journal.open(path, session="cli")
    for i in range(300):
        a.record_note(f"a{i}")
        b.record_note(f"b{i}")
    assert a.flush(5) and b.flush(5)
    a.close()
    b.close()
    got = rows(path)
    assert sum(r["session"] == "tui" for r in got) == 300
    assert sum(r["session"] == "cli" for r in got) == 300


def test_close_writes_everything_pending(path: Path) -> None:
    journal = Journal.open(path, interval=10)  # the writer would sleep long: close must wake it
    for i in range(1200):
        journal.record_note(f"n{i}")
    journal.close(timeout=5)
    assert journal.error is None
    assert len(rows(path)) == 1200
    journal.record_note("after close")  # ignored, no raise


_CHILD = r"""
import sys, time
from blotter.journal import Journal
j = Journal.open(sys.argv[1], session="child")
for i in range(2000):
    j.record_note(f"row {i}")
assert j.flush(10), j.error
print("ready", flush=True)
i = 0
while True:
    j.record_note(f"more {i}")
    i += 1
    if i % 200 == 0:
        time.sleep(0.0005)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_survives_sigkill(path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "ready", proc.stderr.read() if proc.poll() is not None else line  # type: ignore[union-attr]
        time.sleep(0.3)  # let it be in the middle of more batches
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM frames WHERE message LIKE 'row %'").fetchone()[0] == 2000
        more = conn.execute("SELECT count(*) FROM frames WHERE message LIKE 'more %'").fetchone()[0]
    finally:
        conn.close()
    assert more > 0  # batches after "ready" were committed too
    again = Journal.open(path)  # and it opens for writing again
    again.record_note("after the kill")
    assert again.flush(5)
    again.close()


def test_import_hygiene() -> None:
    code = "import sys, blotter.journal; bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- hardening: hostile echoes, bounded memory, durable sends, odd paths, a held lock ---------
def _until(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


KEY = "bclCdq9kIfmyX1eZaYKcEv8gcI0Q3V7P"
SECRET = "hV8FgjyJtpvVeAcMAgzgAFQCN36wmbWuN7o3WPcYcYhFd8qvE43gzFGVsFcCqMNk"


def _header_auth_echo(sig: str, ts: str) -> list[str]:
    """What a hostile server may send back after a header-auth upgrade: the
    signature and timestamp in fields nobody expects, escaped and not."""
    return [
        orjson.dumps({"m": "auth", "code": 0, "info": {"echo": {"a": sig, "b": ts, "k": KEY}}}).decode(),
        '{"m":"error","code":100001,"reason":"X","info":"signature ' + sig.replace("/", "\\/") + " for " + ts + '"}',
        orjson.dumps(
            {
                "m": "futures-order",
                "sn": 1,
                "orderId": OID,
                "s": "BTC-PERP",
                "sd": "Buy",
                "st": "New",
                "ot": "Limit",
                "q": "0.1",
                "p": "18000",
                "memo": f"{sig}|{ts}",
            }
        ).decode(),
    ]


def test_header_auth_signature_echoed_back_is_never_written(path: Path) -> None:
    from blotter.protocol.signing import auth_headers

    headers = auth_headers(KEY, SECRET)
    sig, ts = headers["x-auth-signature"], headers["x-auth-timestamp"]
    journal = Journal.open(path, mask=[KEY], redact=[SECRET])  # as `blotter` opens it: no sig known
    for raw in _header_auth_echo(sig, ts):
        journal.record_received(parse(raw), raw, time.time_ns())
    journal.record_note(f"server said: {sig}")
    assert journal.flush(5)
    during = _db_bytes(path)
    journal.close()
    for blob in (during, _db_bytes(path)):
        for needle in (KEY, sig, sig.replace("/", "\\/"), sig[4:-4]):
            assert needle.encode() not in blob


def test_redact_auth_also_hides_the_timestamp_of_the_pair(path: Path) -> None:
    from blotter.protocol.signing import auth_headers

    headers = auth_headers(KEY, SECRET)
    sig, ts = headers["x-auth-signature"], headers["x-auth-timestamp"]
    journal = Journal.open(path, mask=[KEY], redact=[SECRET])
    journal.redact_auth(key=KEY, signature=sig, timestamp=ts)
    for raw in _header_auth_echo(sig, ts):
        journal.record_received(parse(raw), raw, time.time_ns())
    journal.close()
    blob = _db_bytes(path)
    for needle in (KEY, sig, ts):
        assert needle.encode() not in blob


def _blocked_writer(journal: Journal, monkeypatch) -> threading.Event:
    entered, release = threading.Event(), threading.Event()
    real = journal._write_batch

    def blocking(conn, batch):
        entered.set()
        assert release.wait(20)
        real(conn, batch)

    monkeypatch.setattr(journal, "_write_batch", blocking)
    journal.record_note("first")
    assert entered.wait(5)
    return release


def test_backlog_is_bounded_in_bytes_and_big_frames_are_summarised(path: Path, monkeypatch) -> None:
    journal = Journal.open(path, max_pending_bytes=2_000_000, max_frame_bytes=65_536)
    release = _blocked_writer(journal, monkeypatch)
    big = orjson.dumps(
        {
            "m": "futures-order",
            "sn": 1,
            "orderId": OID,
            "s": "BTC-PERP",
            "sd": "Buy",
            "st": "New",
            "ot": "Limit",
            "q": "0.1",
            "p": "18000",
            "pad": "x" * 1_000_000,
        }
    ).decode()
    event = parse(big)
    for _ in range(200):  # 200 MB of frames while the writer is stuck
        journal.record_received(event, big, time.time_ns())
    status = journal.status
    assert status.pending_bytes <= 2_000_000
    assert status.summarised > 0 and status.dropped > 0
    assert status.summarised + status.dropped == 200
    assert "summarised" in status.describe() and "dropped" in status.describe()
    notices = journal.take_notices()
    assert any("summarised" in n for n in notices) and any("dropped" in n for n in notices)
    assert all("\n" not in n for n in notices)
    release.set()
    assert journal.flush(10)
    journal.close()
    got = rows(path, "direction = 'received'")
    assert len(got) == status.summarised
    assert all(len(r["raw"]) <= 65_536 + 200 for r in got)
    assert "summarised: 1000" in got[0]["raw"]  # says how big the frame was
    notes = [r["message"] for r in rows(path, "direction = 'note'")]
    assert any("not recorded" in n for n in notes) and any("summarised" in n for n in notes)


def test_outbound_rows_never_wait_behind_a_held_lock(path: Path) -> None:
    journal = Journal.open(path, session="s")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        req = CancelOrder(order_id=OID, symbol="BTC-PERP", request_id="co-held-1", time_ms=1)
        done = threading.Event()
        threading.Thread(target=lambda: (journal.record_sent(req, encode(req)), done.set()), daemon=True).start()
        assert done.wait(10)  # returned while the lock is still held: the cancel goes out
        assert journal.status.outbound_deferred == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert journal.flush(20)
    journal.close()
    assert [r["request_id"] for r in rows(path, "direction = 'sent'")] == ["co-held-1"]


def test_a_lock_held_long_is_waited_out_not_given_up(path: Path) -> None:
    journal = Journal.open(path, session="s")
    assert journal.status.state == "writing"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        journal.record_note("during")
        assert _until(lambda: journal.status.state == "waiting for lock")
        assert "waiting for lock" in journal.status.describe()
        assert _until(lambda: journal.status.lock_retries >= 4)  # past the old 3 tries
        assert journal.error is None
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert journal.flush(30)
    assert journal.status.state == "writing"
    journal.record_note("after")
    journal.close()
    assert [r["message"] for r in rows(path)][:1] == ["during"]
    notices = journal.take_notices()
    assert any("waiting for lock" in n for n in notices) and any("writing again" in n for n in notices)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks and FIFOs")
@pytest.mark.parametrize("kind", ["symlink-to-file", "symlink-to-empty", "dangling-symlink", "fifo", "other-owner"])
def test_refuses_paths_that_are_not_regular_files_you_own(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target"
    path = tmp_path / "journal.sqlite3"
    if kind == "symlink-to-file":
        target.write_text("root:x:0:0\n")
        os.chmod(target, 0o644)
        path.symlink_to(target)
    elif kind == "symlink-to-empty":
        target.touch()
        os.chmod(target, 0o644)
        path.symlink_to(target)
    elif kind == "dangling-symlink":
        path.symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        if os.geteuid() != 0:
            pytest.skip("needs root to give a file to another user")
        Journal.open(path).close()
        os.chown(path, 65534, 65534)
    before = (target.read_bytes(), stat.S_IMODE(target.stat().st_mode)) if target.exists() else None
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            Journal.open(path).close()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(30)
    assert outcome, "Journal.open hung"
    (exc,) = outcome
    assert isinstance(exc, JournalError)
    message = str(exc)
    assert "\n" not in message and str(path) in message
    expect = {"fifo": "not a regular file", "other-owner": "owned by"}.get(kind, "symbolic link")
    assert expect in message
    after = (target.read_bytes(), stat.S_IMODE(target.stat().st_mode)) if target.exists() else None
    assert after == before  # the target is untouched (mode, content), or still absent


_SENDER = r"""
import sys, time
from blotter.journal import Journal
from blotter.protocol import CancelOrder, encode, parse
j = Journal.open(sys.argv[1], session="child", interval=0.5)  # inbound rows wait up to 0.5 s
raw = '{"m":"ping","hp":3}'
event = parse(raw)
i = 0
while True:
    for _ in range(50):
        j.record_received(event, raw, time.time_ns())
    req = CancelOrder(order_id="s177bab1b474U5051470287bbtcpKiOR", symbol="BTC-PERP", request_id=f"co-{i}", time_ms=1)
    j.record_sent(req, encode(req))
    print(f"sent co-{i}", flush=True)  # from here on the request is on the wire
    i += 1
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_every_request_sent_survives_sigkill(path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SENDER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sent: list[str] = []
    try:
        while len(sent) < 300:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            sent.append(line.split()[1])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert len(sent) == 300, proc.stderr.read()  # type: ignore[union-attr]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        written = {r[0] for r in conn.execute("SELECT request_id FROM frames WHERE direction = 'sent'")}
    finally:
        conn.close()
    assert [rid for rid in sent if rid not in written] == []


def test_sessions_table_records_the_endpoint(path: Path) -> None:
    journal = Journal.open(path, session="tok", endpoint="wss://k:s@ascendex.com/api/pro/v2/stream?x=1")
    journal.close()
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        (row,) = [dict(r) for r in conn.execute("SELECT * FROM sessions")]
    finally:
        conn.close()
    assert row["session"] == "tok" and row["endpoint"] == "wss://ascendex.com/api/pro/v2/stream"
    assert row["pid"] == os.getpid() and row["version"] and abs(row["started_ms"] - time.time() * 1000) < 60_000


async def test_the_log_and_the_header_say_when_frames_are_dropped(path: Path, monkeypatch) -> None:
    from blotter.desk import Desk, DeskSettings
    from blotter.ui.themes import load_theme
    from blotter.ui.widgets.status_bar import build_status

    journal = Journal.open(path, max_pending=5)
    desk = Desk(
        DeskSettings(url="ws://127.0.0.1:9/x", api_key=SecretStr(KEY), api_secret=SecretStr(SECRET)), journal=journal
    )
    release = _blocked_writer(journal, monkeypatch)
    try:
        for i in range(20):
            journal.record_note(f"n{i}")
        await desk.tick()
        texts = [line.text for line in desk.log.lines()]
        assert any("dropped" in t and "not recorded" in t for t in texts)
        header = build_status(desk, load_theme("dark"), time.monotonic(), 0).plain
        assert "JOURNAL WRITING: 15 dropped" in header
    finally:
        release.set()
        journal.close()


def test_a_lock_held_when_opening_is_waited_out_too(path: Path) -> None:
    Journal.open(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        journal = Journal.open(path, session="late")  # returns: the journal waits, the app runs
        assert journal.status.state == "waiting for lock"
        journal.record_note("while waiting")
        assert _until(lambda: journal.status.lock_retries >= 3)
        assert journal.error is None
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert journal.flush(30)
    assert journal.status.state == "writing"
    journal.close()
    assert "while waiting" in [r["message"] for r in rows(path)]


# -- a run of order frames in one call (the session's hot path) ------------------------------
def _order_frames(n: int, secret_at: int | None = None, wide_at: int | None = None) -> list[bytes]:
    from blotter.protocol.parse import order_frame

    base = orjson.loads((ROOT / "tests" / "fixtures" / "protocol" / "order-update.json").read_bytes())
    frames = []
    for i in range(n):
        data = dict(base)
        data["sn"] = 1000 + i
        data["orderId"] = f"a{i:08d}U5051470287bbtcpKiOR"
        if i == secret_at:
            data["err"] = "KEY" * 11  # the API key, echoed in a field
        if i == wide_at:
            data["err"] = "prix élevé"  # not ASCII
        frame = orjson.dumps(data)
        assert order_frame(frame) is not None, "the fixture must take the fast path"
        frames.append(frame)
    return frames


def test_a_run_of_order_frames_gives_the_rows_of_each_frame(path: Path, tmp_path: Path) -> None:
    from blotter.protocol.messages import OrderUpdate
    from blotter.protocol.parse import order_frame

    frames = _order_frames(40, secret_at=7, wide_at=11)
    orders = [order_frame(f) for f in frames]
    key = "KEY" * 11
    one = Journal.open(path, session="s", mask=[key])
    try:
        one.record_orders(orders, frames, 1_700_000_000_000_000_000)
    finally:
        one.close()
    other_path = tmp_path / "other.sqlite3"
    each = Journal.open(other_path, session="s", mask=[key])
    try:
        for order, frame in zip(orders, frames, strict=True):
            each.record_received(OrderUpdate(order), frame, 1_700_000_000_000_000_000)
    finally:
        each.close()
    got, want = rows(path), rows(other_path)
    assert len(got) == len(want) == 40
    assert [{k: v for k, v in r.items() if k != "id"} for r in got] == [
        {k: v for k, v in r.items() if k != "id"} for r in want
    ]
    assert key not in _db_bytes(path).decode("latin-1")
    assert mask_key(key) in got[7]["raw"]
    assert "élevé" in got[11]["raw"]
    assert got[0]["order_id"] == "a00000000U5051470287bbtcpKiOR" and got[0]["kind"] == "order-update"


def test_a_run_with_an_oversized_frame_keeps_the_order_and_summarises_it(path: Path) -> None:
    from blotter.protocol.parse import order_frame

    frames = _order_frames(5)
    orders = [order_frame(f) for f in frames]
    j = Journal.open(path, session="s", max_frame_bytes=len(frames[0]) + 10)
    frames[2] = frames[2].replace(b'"err":""', b'"err":"' + b"x" * 64 + b'"')
    try:
        j.record_orders(orders, frames, 1_700_000_000_000_000_000)
    finally:
        j.close()
    got = rows(path, "kind = 'order-update'")
    assert [r["order_id"] for r in got] == [o.order_id for o in orders]
    assert "summarised" in got[2]["raw"] and "summarised" not in got[1]["raw"]


def test_a_run_over_the_backlog_counts_each_frame_it_drops(path: Path, monkeypatch) -> None:
    from blotter.protocol.parse import order_frame

    frames = _order_frames(10)
    orders = [order_frame(f) for f in frames]
    j = Journal.open(path, session="s", max_pending=6)
    blocked = _blocked_writer(j, monkeypatch)
    try:
        j.record_orders(orders, frames, 1_700_000_000_000_000_000)
        assert j.dropped == 4
    finally:
        blocked.set()
        j.close()
    got = rows(path, "kind = 'order-update'")
    assert [r["order_id"] for r in got] == [o.order_id for o in orders[:6]]


def _feed_orders(
    j: Journal, frames: list[bytes], orders: list, seconds: float, stop: threading.Event, pause_every: int = 200
) -> int:
    """Runs of order frames, as the session hands them over, for ``seconds`` (or until
    ``stop``): one frame a call, a millisecond's pause every ``pause_every``. Returns how many."""
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end and not stop.is_set():
        k = i % len(frames)
        j.record_orders(orders[k : k + 1], frames[k : k + 1], time.time_ns())
        i += 1
        if i % pause_every == 0:
            time.sleep(0.001)
    return i


@pytest.mark.parametrize("burst_rate", [200.0, 1e12])
def test_in_a_burst_the_frames_wait_and_are_all_written_once_it_ends(path: Path, monkeypatch, burst_rate) -> None:
    """A burst (order frames far faster than BURST_RATE): the writer leaves them queued —
    the session's thread has the interpreter to itself — and writes every one once the
    burst ends. (With BURST_RATE out of reach, the writer writes as they come: the
    same check then fails, which shows it can.)"""
    import blotter.journal.writer as writer
    from blotter.protocol.parse import order_frame

    monkeypatch.setattr(writer, "BURST_RATE", burst_rate)
    monkeypatch.setattr(writer, "BURST_DEFER", 60.0)
    monkeypatch.setattr(writer, "BURST_TAIL", 2.0)  # (a feeder starved for a moment on a busy machine is still a burst)
    frames = _order_frames(50)
    orders = [order_frame(f) for f in frames]
    j = Journal.open(path, session="s", batch_rows=100, max_pending_bytes=1 << 30, max_pending=10_000_000)
    try:
        fed = _feed_orders(j, frames, orders, 0.6, threading.Event())
        during = len(rows(path, "kind = 'order-update'"))
        assert _until(lambda: len(rows(path, "kind = 'order-update'")) == fed, 20), "all written once it ended"
    finally:
        j.close()
    deferred = during <= 4 * 100  # the first batches only, before the writer saw the burst
    assert deferred == (burst_rate < 1e12), (during, fed)
    assert (j.bursts_deferred > 0) == (burst_rate < 1e12)


@contextlib.contextmanager
def _a_long_burst(path: Path, monkeypatch, defer: float):
    """A journal fed order frames far faster than BURST_RATE (lowered to 200 a second)
    from another thread, until the block ends; yields it once the writer saw the burst."""
    import blotter.journal.writer as writer
    from blotter.protocol.parse import order_frame

    monkeypatch.setattr(writer, "BURST_RATE", 200.0)
    monkeypatch.setattr(writer, "BURST_DEFER", defer)
    monkeypatch.setattr(writer, "BURST_TAIL", 5.0)  # (a feeder starved for a moment on a busy machine is still a burst)
    frames = _order_frames(50)
    orders = [order_frame(f) for f in frames]
    j = Journal.open(path, session="s", max_pending_bytes=1 << 30, max_pending=10_000_000)  # (no bound reached)
    stop = threading.Event()
    feeder = threading.Thread(target=_feed_orders, args=(j, frames, orders, 60.0, stop, 20))
    try:
        feeder.start()
        assert _until(lambda: j.bursts_deferred > 0, 10), "the burst was never seen"
        yield j
    finally:
        stop.set()
        feeder.join()
        j.close()


def test_a_request_a_note_or_a_flush_in_a_burst_is_written_at_once(path: Path, monkeypatch) -> None:
    with _a_long_burst(path, monkeypatch, defer=60.0) as j:
        j.record_note("in the burst")
        assert _until(lambda: len(rows(path, "kind = 'note' AND message = 'in the burst'")) == 1, 10)
        before = len(rows(path, "kind = 'order-update'"))
        assert j.flush(10), "a flush in a burst writes everything queued before it"
        assert len(rows(path, "kind = 'order-update'")) > before


@pytest.mark.parametrize("defer", [0.3, 60.0])
def test_a_burst_waits_no_longer_than_burst_defer(path: Path, monkeypatch, defer: float) -> None:
    with _a_long_burst(path, monkeypatch, defer=defer) as j:
        seen = len(rows(path, "kind = 'order-update'"))  # the batches before the writer saw the burst
        written = _until(lambda: len(rows(path, "kind = 'order-update'")) > seen, 1.5)
        assert written == (defer < 1), "written BURST_DEFER after the writer last caught up, not before"
        assert j.bursts_deferred > 0


def test_what_ends_the_wait_of_a_burst(path: Path, monkeypatch) -> None:
    """The writer's decision, step by step (its thread held in a batch meanwhile): a
    burst waits, and BURST_TAIL after it; a stream slow for that long, a note, a flush
    marker, BURST_DEFER or half the backlog's bound each end the wait."""
    import blotter.journal.writer as writer
    from blotter.protocol.parse import order_frame

    frames = _order_frames(10)
    orders = [order_frame(f) for f in frames]
    j = Journal.open(path, session="s")
    release = _blocked_writer(j, monkeypatch)
    clock = [1000.0]
    monkeypatch.setattr(writer.time, "monotonic", lambda: clock[0])
    try:
        j._prompt = False
        j._burst_seen, j._drained_at = (j._orders_in, clock[0]), clock[0]

        def look(frames_in: int, seconds: float) -> bool:
            for k in range(frames_in):
                j.record_orders(orders[k % 10 : k % 10 + 1], frames[k % 10 : k % 10 + 1], 1)
            clock[0] += seconds
            return j._in_burst()

        assert look(10, 0.001)  # 10,000 a second: a burst, it waits
        assert look(1, 0.05)  # 20 a second, but within BURST_TAIL of the burst: still waits
        assert not look(1, writer.BURST_TAIL)  # slow for BURST_TAIL: the burst is over
        j._drained_at = clock[0]
        assert look(5, 0.001)
        j.record_note("a note")
        assert not look(5, 0.001)  # a note goes at once (and what is before it)
        j._prompt = False
        clock[0] += writer.BURST_DEFER
        assert not look(5, 0.001)  # waited BURST_DEFER since the writer last caught up
        j._drained_at = clock[0]
        assert look(5, 0.001)  # a burst again
        j._max_pending = 2 * (len(j._queue) + 5)  # the queue reaches half its bound in rows
        assert not look(5, 0.001)
        j._max_pending = 10_000
        assert look(5, 0.001)
        j._max_pending_bytes = 2 * (j._bytes_in - j._bytes_out)  # the bytes reach half their bound
        assert not look(5, 0.001)
        j._max_pending_bytes = 1 << 30
        assert look(5, 0.001)
    finally:
        release.set()
        j.close()


def test_a_waiting_order_frame_holds_about_what_the_backlog_counts_for_it(path: Path) -> None:
    """The backlog's bound is in bytes, each frame counted at its size plus ROW_OVERHEAD.
    A queued frame must not keep its order alive (once a newer update replaced it in the
    store, the queue would be all that holds it). It did: 766 bytes a row beside the frame
    here, three times what the bound counted."""
    import gc
    import tracemalloc

    from blotter.protocol.parse import order_frame

    n = 2000
    frames = _order_frames(n)
    j = Journal.open(path, session="s", max_pending_bytes=1 << 30, max_pending=10_000_000)
    release = threading.Event()
    j._wake.clear()
    original = j._take
    j._take = lambda: (release.wait(30), original())[1]  # type: ignore[method-assign]  # the writer waits
    try:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for k in range(0, n, 50):
                run = frames[k : k + 50]
                j.record_orders([order_frame(f) for f in run], run, 1)
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        counted = j._bytes_in - j._bytes_out - sum(len(f) for f in frames)  # beyond the frames themselves
        assert j.pending == n
        assert held <= 1.25 * counted, (held / n, counted / n)
    finally:
        release.set()
        j.close()


def test_an_empty_file_or_an_existing_journal_is_taken_and_another_file_is_not(tmp_path):
    import sqlite3

    from blotter.journal import Journal, JournalError

    empty = tmp_path / "empty.sqlite3"
    empty.write_bytes(b"")
    j = Journal.open(empty, session="a")
    j.close()
    j = Journal.open(empty, session="b")  # now a journal: opened again
    j.close()
    blank_db = tmp_path / "blank.db"  # an SQLite file with no table yet
    sqlite3.connect(blank_db).execute("PRAGMA user_version = 0").connection.close()
    Journal.open(blank_db, session="c").close()
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE frames (x)")  # a table of the same name is not enough
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="another program's SQLite database"):
        Journal.open(other, session="d")
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(JournalError, match="not an SQLite database"):
        Journal.open(garbage, session="e")
