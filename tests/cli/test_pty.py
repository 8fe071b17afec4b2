"""The real ``blotter`` command in a real pseudo-terminal, read as a trader would
read the screen (pexpect drives the pty, pyte emulates the terminal)."""

from __future__ import annotations

import os
import signal
import sys
import time

import pexpect
import pyte
import pytest

from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET, SimConfig
from tests.helpers import sim_in_thread

# Real blotters in pseudo-terminals (and tmux, screen): under pytest-xdist these tests
# share one worker (`--dist loadgroup`), one after the other, so they never starve each other.
pytestmark = pytest.mark.xdist_group("terminal")

COLS, ROWS = 120, 36


class Terminal:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.child = pexpect.spawn(
            sys.executable, ["-m", "blotter", *args], env=env, dimensions=(ROWS, COLS), timeout=1
        )

    def pump(self) -> None:
        while True:
            try:
                data = self.child.read_nonblocking(65536, timeout=0.05)
            except (pexpect.TIMEOUT, pexpect.EOF):
                return
            self.raw += data
            self.stream.feed(data)

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait_for(self, predicate, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            text = self.text()
            if predicate(text):
                return text
        raise AssertionError(f"screen never matched; it shows:\n{self.text()}")

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


def env_for(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASCENDEX_")}
    env.update(
        ASCENDEX_API_KEY=DEMO_API_KEY,
        ASCENDEX_API_SECRET=DEMO_API_SECRET,
        TERM="xterm-256color",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        HOME=str(tmp_path),
    )
    env.pop("NO_COLOR", None)
    return env


@pytest.mark.timeout(90)
def test_blotter_in_a_pty_cancels_the_selected_order(tmp_path):
    with sim_in_thread(SimConfig(seed=11, initial_orders=12, rate=0, ping_interval=0)) as sim:
        opened = {o["orderId"] for o in sim.open_orders()}
        term = Terminal(["--url", sim.url, "--no-journal"], env_for(tmp_path))
        try:
            screen = term.wait_for(lambda t: "LIVE" in t and sum(oid[-8:] in t for oid in opened) >= 5)
            assert "STALE" not in screen
            assert DEMO_API_SECRET not in screen and DEMO_API_KEY not in screen
            term.child.send("c")
            screen = term.wait_for(lambda t: "confirmed Canceled" in t)
        finally:
            term.close()
        cancels = sim.requests("cancel-order")
        assert len(cancels) == 1
        rid = cancels[0].data["id"]
        target = cancels[0].data["args"]["orderId"]
        assert target in opened and target not in {o["orderId"] for o in sim.open_orders()}
        lines = screen.splitlines()
        assert any(f"{rid} sent cancel-order" in line and target in line for line in lines), screen
        assert any(f"{rid} ACK" in line for line in lines), screen
        assert any(f"{rid} confirmed Canceled" in line for line in lines), screen


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_cancel_on_hangup_cancels_everything(tmp_path, sig):
    with sim_in_thread(SimConfig(seed=12, initial_orders=9, rate=0, ping_interval=0)) as sim:
        term = Terminal(["--url", sim.url, "--no-journal", "--cancel-on-hangup"], env_for(tmp_path))
        try:
            term.wait_for(lambda t: "LIVE" in t and "ARMED" in t)
            os.kill(term.child.pid, sig)
            deadline = time.monotonic() + 20
            while term.child.isalive() and time.monotonic() < deadline:
                term.pump()
        finally:
            term.close()
        assert [f.data.get("args") for f in sim.requests("cancel-all")] == [
            {"time": pytest.approx(time.time() * 1000, abs=30_000)}
        ]
        assert sim.open_orders() == []
        if sig == signal.SIGTERM:  # (after SIGHUP nobody is left to read it)
            assert b"blotter: SIGTERM: cancel-on-hangup verdict: nothing left open on ALL symbols" in term.raw


@pytest.mark.timeout(60)
def test_hangup_without_the_switch_cancels_nothing(tmp_path):
    with sim_in_thread(SimConfig(seed=13, initial_orders=5, rate=0, ping_interval=0)) as sim:
        term = Terminal(["--url", sim.url, "--no-journal"], env_for(tmp_path))
        try:
            screen = term.wait_for(lambda t: "LIVE" in t)
            assert "ARMED" not in screen
            os.kill(term.child.pid, signal.SIGHUP)
            deadline = time.monotonic() + 10
            while term.child.isalive() and time.monotonic() < deadline:
                term.pump()
        finally:
            term.close()
        assert sim.requests("cancel-all") == [] and len(sim.open_orders()) == 5


def _quit_and_wait(term: Terminal) -> int:
    import pexpect

    term.child.send("q")
    deadline = time.monotonic() + 20
    while term.child.isalive() and time.monotonic() < deadline:
        term.pump()
        if "leave" in term.text().lower():
            term.child.send("l")
    term.child.expect(pexpect.EOF, timeout=20)
    term.raw += term.child.before or b""
    term.child.close()
    return term.child.exitstatus


@pytest.mark.timeout(90)
def test_a_refused_login_ends_with_one_line_and_exit_4(tmp_path):
    """Issue 10 item 13: the screen shows the refusal; quitting says it once more, exit 4."""
    with sim_in_thread(SimConfig(seed=14, initial_orders=3, rate=0, ping_interval=0)) as sim:
        env = env_for(tmp_path)
        env["ASCENDEX_API_SECRET"] = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA=="
        term = Terminal(["--url", sim.url, "--no-journal"], env)
        try:
            term.wait_for(lambda t: "refused" in t.lower())
            code = _quit_and_wait(term)
        finally:
            term.close()
        assert code == 4
        assert b"blotter: login refused" in term.raw


@pytest.mark.timeout(90)
def test_an_exchange_never_reached_ends_with_exit_4(tmp_path):
    term = Terminal(["--url", "ws://127.0.0.1:9/1/api/pro/v2/stream", "--no-journal"], env_for(tmp_path))
    try:
        term.wait_for(lambda t: "reconnecting" in t.lower() or "RECONNECTING" in t)
        code = _quit_and_wait(term)
    finally:
        term.close()
    assert code == 4
    assert b"blotter: could not connect to ws://127.0.0.1:9" in term.raw


@pytest.mark.timeout(90)
def test_quitting_during_the_first_connection_attempt_says_so_not_could_not_connect(tmp_path):
    """The desk starts before the screen: a trader who quits while the first attempt is
    still under way (here: a server that takes the connection and never answers the
    handshake) is told that, not that the exchange could not be reached."""
    import socket

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # never accepted: the kernel completes the TCP handshake, nobody answers
    port = listener.getsockname()[1]
    try:
        term = Terminal(["--url", f"ws://127.0.0.1:{port}/1/api/pro/v2/stream", "--no-journal"], env_for(tmp_path))
        try:
            term.wait_for(lambda t: "connecting" in t.lower())
            code = _quit_and_wait(term)
        finally:
            term.close()
    finally:
        listener.close()
    assert code == 4
    assert f"blotter: quit while still connecting to ws://127.0.0.1:{port}".encode() in term.raw
    assert b"could not connect" not in term.raw


@pytest.mark.timeout(90)
def test_quitting_while_the_first_login_is_unanswered_says_so(tmp_path):
    """The exchange takes the connection and never answers the login (AUTHENTICATING from
    the start): quitting then is exit 4 with one line, not a silent 0."""
    with sim_in_thread(SimConfig(seed=15, initial_orders=3, rate=0, ping_interval=0, silent=True)) as sim:
        term = Terminal(["--url", sim.url, "--no-journal"], env_for(tmp_path))
        try:
            term.wait_for(lambda t: "AUTHENTICATING" in t)
            code = _quit_and_wait(term)
        finally:
            term.close()
    assert code == 4
    assert f"blotter: quit while still connecting to {sim.url} (logging in)".encode() in term.raw


@pytest.mark.timeout(90)
def test_quitting_after_the_login_timed_out_gives_the_reason(tmp_path):
    """The first login timed out (10 s) and the retry is logging in again, with no reason of
    its own: quitting then still names why the first attempt failed."""
    with sim_in_thread(SimConfig(seed=16, initial_orders=3, rate=0, ping_interval=0, silent=True)) as sim:
        term = Terminal(["--url", sim.url, "--no-journal"], env_for(tmp_path))
        try:
            term.wait_for(lambda t: "AUTHENTICATING (attempt 1)" in t, timeout=30)
            code = _quit_and_wait(term)
        finally:
            term.close()
    assert code == 4
    assert f"blotter: could not connect to {sim.url}: no 'connected' message within".encode() in term.raw, term.raw[
        -400:
    ]


@pytest.mark.timeout(90)
def test_positions_pane_and_flatten_all_in_a_pty(tmp_path):
    """The real command in a real terminal: the positions pane shows the account's open
    positions, and Z then y closes every one with reduce-only market orders, verified."""
    with sim_in_thread(SimConfig(seed=17, initial_orders=40, rate=0, ping_interval=0)) as sim:
        before = {s: p.position for s, p in sim.book.account.positions.items() if p.position}
        assert len(before) >= 2, before
        term = Terminal(["--url", sim.url, "--no-journal"], env_for(tmp_path))
        try:
            screen = term.wait_for(lambda t: "LIVE" in t and f"Positions: {len(before)} open" in t)
            first = sorted(before)[0]
            assert first in screen.split("Positions:", 1)[1]
            term.child.send("Z")
            screen = term.wait_for(lambda t: "y" in t.lower() and "flatten" in t.lower() and first in t)
            term.child.send("y")
            term.wait_for(lambda t: "Positions: 0 open" in t, timeout=20)
        finally:
            term.close()
    after = {s: p.position for s, p in sim.book.account.positions.items() if p.position}
    assert after == {}
    placed = [
        f.data["args"] for f in sim.received if isinstance(f.data, dict) and f.data.get("action") == "place-order"
    ]
    assert len(placed) == len(before) and all(a["execInst"] == "ReduceOnly" for a in placed)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_without_the_switch_quits_cleanly_and_the_journal_is_written_to_the_end(tmp_path, sig):
    """``kill`` (or the terminal going away) while updates flow: no order is cancelled, the
    process ends with 128 + the signal's number, the terminal is given back (SIGTERM),
    and the journal holds every frame received up to the quit (its note is written
    after them, in order)."""
    import sqlite3

    journal = tmp_path / "journal.sqlite3"
    with sim_in_thread(SimConfig(seed=14, initial_orders=20, rate=300, ping_interval=0)) as sim:
        term = Terminal(["--url", sim.url, "--journal", str(journal)], env_for(tmp_path))
        try:
            term.wait_for(lambda t: "LIVE" in t)
            time.sleep(1.0)  # updates flowing into the journal
            os.kill(term.child.pid, sig)
            deadline = time.monotonic() + 30
            while term.child.isalive() and time.monotonic() < deadline:
                term.pump()
            term.child.close()
        finally:
            term.close()
        cancels = sim.requests("cancel-all") + sim.requests("cancel-order")
    assert cancels == []
    assert term.child.signalstatus is None and term.child.exitstatus == 128 + sig
    name = signal.Signals(sig).name
    conn = sqlite3.connect(journal)
    try:
        notes = [m for (m,) in conn.execute("SELECT message FROM frames WHERE kind = 'note' ORDER BY id")]
        last_update, quit_note = conn.execute(
            "SELECT (SELECT max(id) FROM frames WHERE kind = 'order-update'),"
            " (SELECT max(id) FROM frames WHERE kind = 'note' AND message LIKE ?)",
            (f"{name}: quitting%",),
        ).fetchone()
    finally:
        conn.close()
    assert any(n.startswith(f"{name}: quitting") for n in notes), notes
    assert last_update is not None and quit_note is not None
    # the terminal's own screen back: after SIGTERM, and after a SIGHUP sent while the
    # terminal is still there (a hung-up one is detached instead: nothing may wait on it)
    assert b"\x1b[?1049l" in term.raw
