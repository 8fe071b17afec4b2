"""The dead man's switch in a real pseudo-terminal: the terminal goes away (its
master side is closed, as when an SSH session drops), the process cancels all,
journals the verdict and exits — it never spins or hangs. Also: the tmux detach
countdown's rules (pure), and its option in the one settings model. The switch
inside a real tmux server is in test_tmux_hangup.py."""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
import subprocess
import sys
import termios
import time

import pexpect
import pyte
import pytest
from pydantic import SecretStr

from blotter.cli.hangup import AskError, DetachCountdown, Step, multiplexer, screen_status, tmux_socket
from blotter.cli.settings import ConfigError, desk_settings, load
from blotter.sim import SimConfig
from tests.cli.test_pty import Terminal, env_for
from tests.helpers import sim_in_thread

# Real blotters in pseudo-terminals (and tmux, screen): under pytest-xdist these tests
# share one worker (`--dist loadgroup`), one after the other, so they never starve each other.
pytestmark = pytest.mark.xdist_group("terminal")


def journal_text(path) -> str:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT * FROM frames").fetchall()
    return "\n".join(" ".join(str(v) for v in row if v is not None) for row in rows)


def hang_up(term: Terminal) -> None:
    """The terminal goes away: its master side is closed. Closed through pexpect's own file
    object, never ``os.close`` on its number: pexpect would close that number again when the
    spawn object is collected, by then another test's file (its event loop's epoll: EBADF)."""
    term.child.ptyproc.fileobj.close()


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
            hang_up(term)  # the terminal goes away: the kernel hangs up the session
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
    # the kernel both signals the session (SIGHUP) and hangs up the terminal (seen by
    # the terminal watch): whichever is noticed first fires, once
    assert text.count("cancel-on-hangup fired") == 1
    assert "SIGHUP: cancel-on-hangup fired" in text or "terminal closed: cancel-on-hangup fired" in text
    assert "cancel-on-hangup verdict: nothing left open on ALL symbols" in text


class NoControllingTerminal(Terminal):
    """The blotter on a pseudo-terminal that is NOT its controlling terminal (started
    with setsid, by a supervisor, ...): when the terminal goes away, no SIGHUP comes;
    only its input ends (end-of-file / I/O error)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.screen = pyte.Screen(120, 36)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()

        def give_up_the_terminal() -> None:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # TIOCNOTTY signals the group once
            fcntl.ioctl(0, termios.TIOCNOTTY)
            signal.signal(signal.SIGHUP, signal.SIG_DFL)

        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "blotter", *args],
            env=env,
            dimensions=(36, 120),
            timeout=1,
            preexec_fn=give_up_the_terminal,
        )


@pytest.mark.timeout(120)
def test_terminal_gone_without_a_sighup_still_fires(tmp_path):
    """End of input on the terminal is enough: no signal arrives here, yet the
    switch cancels all, journals why, and exits."""
    journal = tmp_path / "journal.sqlite3"
    with sim_in_thread(SimConfig(seed=23, initial_orders=6, rate=0, ping_interval=0)) as sim:
        term = NoControllingTerminal(
            ["--url", sim.url, "--journal", str(journal), "--cancel-on-hangup", "--timeout", "3"], env_for(tmp_path)
        )
        code = None
        try:
            term.wait_for(lambda t: "LIVE" in t and "ARMED" in t)
            hang_up(term)
            code = wait_exit(term.child)
        finally:
            if code is None:
                os.kill(term.child.pid, signal.SIGKILL)
                os.waitpid(term.child.pid, 0)
        assert code == 0, (
            "the process did not exit after its terminal went away" if code is None else f"exit {code}"
        ) + journal_text(journal)
        assert len(sim.requests("cancel-all")) == 1 and sim.open_orders() == []
    text = journal_text(journal)
    assert "terminal closed: cancel-on-hangup fired" in text and "SIGHUP" not in text
    assert "cancel-on-hangup verdict: nothing left open on ALL symbols" in text


# -- the tmux detach countdown: its rules --------------------------------------------------
def test_countdown_fires_once_the_grace_has_passed_and_not_before():
    c = DetachCountdown(grace=10.0)
    assert c.observe(1, 0.0) is Step.FIRST_CLIENT
    assert c.observe(1, 1.0) is None
    assert c.observe(0, 2.0) is Step.STARTED
    assert c.deadline == 12.0
    assert [c.observe(0, t) for t in (3.0, 8.0, 11.99)] == [None, None, None]
    assert c.observe(0, 12.0) is Step.FIRED
    assert c.deadline is None
    # once per detach: still nobody there, it does not fire again
    assert [c.observe(0, t) for t in (13.0, 40.0, 400.0)] == [None, None, None]
    # a client comes back and leaves again: a new countdown
    assert c.observe(1, 401.0) is None
    assert c.observe(0, 402.0) is Step.STARTED
    assert c.observe(0, 412.5) is Step.FIRED


def test_an_unverified_verdict_tries_again_after_another_grace():
    """The exchange was unreachable or refused: while nobody is attached, the switch
    counts down again instead of giving up."""
    c = DetachCountdown(grace=10.0)
    c.observe(1, 0.0)
    c.observe(0, 1.0)
    assert c.observe(0, 11.0) is Step.FIRED
    c.again()
    assert c.observe(0, 20.0) is Step.STARTED
    assert c.observe(0, 30.0) is Step.FIRED
    c.again()
    assert c.observe(1, 31.0) is None  # a client is back: no countdown (the trader decides)
    assert c.deadline is None


def test_countdown_never_starts_when_no_client_was_ever_attached():
    c = DetachCountdown(grace=1.0)
    assert [c.observe(0, float(t)) for t in range(100)] == [None] * 100
    assert c.deadline is None


def test_a_client_back_within_the_grace_disarms_the_countdown():
    c = DetachCountdown(grace=10.0)
    c.observe(2, 0.0)
    assert c.observe(1, 1.0) is None  # one of two left: someone is still there
    assert c.observe(0, 2.0) is Step.STARTED
    assert c.observe(1, 9.0) is Step.DISARMED
    assert c.deadline is None
    assert [c.observe(1, t) for t in (12.0, 30.0)] == [None, None]
    assert c.observe(0, 31.0) is Step.STARTED  # the next detach counts from its own start
    assert c.observe(0, 40.9) is None
    assert c.observe(0, 41.0) is Step.FIRED


def test_a_failed_ask_neither_starts_nor_stops_the_countdown():
    """The tmux server did not answer (None): no evidence of a client coming back."""
    c = DetachCountdown(grace=10.0)
    assert c.observe(None, 0.0) is None
    c.observe(1, 1.0)
    assert c.observe(None, 2.0) is None and c.deadline is None
    assert c.observe(0, 3.0) is Step.STARTED
    assert c.observe(None, 5.0) is None and c.deadline == 13.0
    assert c.observe(None, 13.0) is Step.FIRED


def test_tmux_socket_is_the_path_before_the_first_comma():
    assert tmux_socket({"TMUX": "/tmp/tmux-1000/default,4242,0"}) == "/tmp/tmux-1000/default"
    assert tmux_socket({}) is None
    assert tmux_socket({"TMUX": ""}) is None


LISTING = """There are screens on:
\t27239.trading\t(11/30/26 09:46:22)\t(Detached)
\t27301.other\t(11/30/26 09:47:02)\t(Attached)
\t27400.shared\t(11/30/26 09:48:00)\t(Multi, attached)
\t27500.gone\t(11/30/26 09:49:00)\t(Dead ???)
4 Sockets in /run/screen/S-trader.
"""


def test_screen_status_reads_the_line_of_this_session_by_its_pid():
    assert screen_status(LISTING, "27239.trading") == 0
    assert screen_status(LISTING, "27301.other") == 1
    assert screen_status(LISTING, "27400.shared") == 1
    assert screen_status(LISTING, "27239.renamed-since") == 0  # `sessionname` keeps the pid
    with pytest.raises(AskError, match="does not list this session"):
        screen_status(LISTING, "99.nosuch")
    with pytest.raises(AskError, match="Dead"):
        screen_status(LISTING, "27500.gone")
    with pytest.raises(AskError):
        screen_status("No Sockets found in /run/screen/S-trader.\n", "27239.trading")


def test_the_multiplexer_is_found_from_the_environment():
    assert multiplexer({}) is None
    assert multiplexer({"TMUX": "/tmp/tmux-0/default,1,0"})[0] == "tmux"
    assert multiplexer({"STY": "27239.trading"})[0] == "screen"
    assert multiplexer({"STY": "27239.trading", "TMUX": "/tmp/tmux-0/default,1,0"})[0] == "tmux"


# -- the grace period: one option of the one settings model ------------------------------
def test_hangup_grace_defaults_to_ten_seconds_and_reaches_the_desk():
    settings = load({}, environ={}, use_file=False)
    assert settings.hangup_grace == 10.0
    desk = desk_settings(None, settings, url="ws://127.0.0.1:9/x", key=SecretStr("k"), secret=SecretStr("c2VjcmV0"))
    assert desk.hangup_grace == 10.0
    assert load({"hangup_grace": 2.5}, environ={}, use_file=False).hangup_grace == 2.5
    assert load({}, environ={"BLOTTER_HANGUP_GRACE": "4"}, use_file=False).hangup_grace == 4.0


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "soon"])
def test_a_bad_hangup_grace_is_one_line_naming_the_option(bad):
    with pytest.raises(ConfigError, match=r"^BLOTTER_HANGUP_GRACE: must be a number > 0"):
        load({}, environ={"BLOTTER_HANGUP_GRACE": bad}, use_file=False)
    proc = subprocess.run(
        [sys.executable, "-m", "blotter", "--hangup-grace", bad, "--url", "ws://127.0.0.1:9/x"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    assert "--hangup-grace" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_hangup_grace_is_in_the_help():
    proc = subprocess.run([sys.executable, "-m", "blotter", "--help"], capture_output=True, text=True, timeout=60)
    assert "--hangup-grace SEC" in proc.stdout and "tmux" in proc.stdout


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
            hang_up(term)
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
            hang_up(term)
            code = wait_exit(term.child)
        finally:
            if code is None:
                os.kill(term.child.pid, signal.SIGKILL)
                os.waitpid(term.child.pid, 0)
        assert code == 0, ("no exit" if code is None else f"exit {code}") + journal_text(journal)
        assert sim.requests("cancel-all") == [] and sim.open_orders() == []
        assert any(c.path.endswith("/order/all") for c in sim.rest.calls)
    assert "cancel-on-hangup verdict: nothing left open on ALL symbols" in journal_text(journal)
