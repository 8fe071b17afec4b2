"""The dead man's switch in a real pseudo-terminal: the terminal goes away (its
master side is closed, as when an SSH session drops), the process cancels all,
journals the verdict and exits — it never spins or hangs."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest
from blotter.sim import SimConfig

from tests.cli.test_pty import Terminal, env_for
from tests.helpers import sim_in_thread


def journal_text(path) -> str:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT * FROM frames").fetchall()
    return "\n".join(" ".join(str(v) for v in row if v is not None) for row in rows)


def wait_exit(child, timeout: float = 40.0) -> int | None:
    """The exit status, or None if the process is still running after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status = os.waitpid(child.pid, os.WNOHANG)
        if pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    return None


@pytest.mark.timeout(120)
def test_terminal_closed_cancels_all_journals_and_exits(tmp_path):
    journal = tmp_path / "journal.sqlite3"
    with sim_in_thread(SimConfig(seed=21, initial_orders=9, rate=0, ping_interval=0)) as sim:
        term = Terminal(
            ["--url", sim.url, "--journal", str(journal), "--cancel-on-hangup", "--timeout", "3"], env_for(tmp_path)
        )
        code = None
        try:
            term.wait_for(lambda t: "LIVE" in t and "ARMED" in t)
            os.close(term.child.child_fd)  # the terminal goes away: the kernel hangs up the session
            code = wait_exit(term.child)
        finally:
            if code is None:
                os.kill(term.child.pid, signal.SIGKILL)
                os.waitpid(term.child.pid, 0)
        assert code == 0, (
            "the process did not exit after the hangup" if code is None else f"exit {code}"
        ) + journal_text(journal)
        assert len(sim.requests("cancel-all")) == 1 and sim.open_orders() == []
    text = journal_text(journal)
    assert "SIGHUP: cancel-on-hangup fired" in text
    assert "cancel-on-hangup verdict: nothing left open on ALL symbols" in text


@pytest.mark.timeout(120)
def test_hangup_whose_verdict_never_comes_still_exits(tmp_path):
    """The cancel-all is held by the exchange: the bound ends the wait, the verdict
    says it timed out, the process exits non-zero."""
    journal = tmp_path / "journal.sqlite3"
    with sim_in_thread(
        SimConfig(seed=22, initial_orders=5, rate=0, ping_interval=0, ack_delay=600, rest_delay=600)
    ) as sim:
        term = Terminal(
            ["--url", sim.url, "--journal", str(journal), "--cancel-on-hangup", "--timeout", "1"], env_for(tmp_path)
        )
        code = None
        try:
            term.wait_for(lambda t: "LIVE" in t and "ARMED" in t)
            os.close(term.child.child_fd)
            code = wait_exit(term.child)
        finally:
            if code is None:
                os.kill(term.child.pid, signal.SIGKILL)
                os.waitpid(term.child.pid, 0)
        assert code == 1, "the process did not exit after the hangup" if code is None else f"exit {code}"
        assert len(sim.requests("cancel-all")) == 1
    text = journal_text(journal)
    assert "cancel-on-hangup verdict:" in text and "nothing left open" not in text


@pytest.mark.timeout(120)
def test_hangup_with_the_websocket_refused_cancels_all_via_rest_and_verifies(tmp_path):
    journal = tmp_path / "journal.sqlite3"
    with sim_in_thread(SimConfig(seed=23, initial_orders=7, rate=0, ping_interval=0, ws_refused=True)) as sim:
        term = Terminal(
            ["--url", sim.url, "--journal", str(journal), "--cancel-on-hangup", "--timeout", "3"], env_for(tmp_path)
        )
        code = None
        try:
            term.wait_for(lambda t: "VIA REST" in t and "ARMED" in t)
            os.close(term.child.child_fd)
            code = wait_exit(term.child)
        finally:
            if code is None:
                os.kill(term.child.pid, signal.SIGKILL)
                os.waitpid(term.child.pid, 0)
        assert code == 0, ("no exit" if code is None else f"exit {code}") + journal_text(journal)
        assert sim.requests("cancel-all") == [] and sim.open_orders() == []
        assert any(c.path.endswith("/order/all") for c in sim.rest.calls)
    assert "cancel-on-hangup verdict: nothing left open on ALL symbols" in journal_text(journal)
