"""The dead man's switch inside a real tmux server (and a real GNU screen session).

Inside tmux a dropped SSH connection sends the blotter no SIGHUP: the tmux client
dies, the session is merely detached, and the blotter keeps running. The switch
asks the tmux server how many clients are attached; when the last one has been
gone for the grace period, it cancels all. These tests run the real ``blotter``
command in a pane of a private tmux server (``tmux -L <unique socket>``) against
the simulator, attach a client through a pseudo-terminal, and take it away. The
same for GNU screen, in a private ``SCREENDIR``.

Order of events is asserted, never durations: "no cancel-all before the grace"
is checked ~1 s into a 2 s grace (the blotter cannot have seen the detach before
it happened), and the cancel-all's receipt time at the simulator is at least the
grace after the detach.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable

import pexpect
import pytest

from blotter.sim import SimConfig
from tests.cli.test_pty import env_for
from tests.helpers import sim_in_thread

# Real blotters in pseudo-terminals (and tmux, screen): under pytest-xdist these tests
# share one worker (`--dist loadgroup`), one after the other, so they never starve each other.
pytestmark = pytest.mark.xdist_group("terminal")

TMUX = shutil.which("tmux")
SCREEN = shutil.which("screen")
needs_tmux = pytest.mark.skipif(
    TMUX is None,
    reason="tmux is not installed, and `make test` could not install it (it needs root and apt-get): "
    "the dead man's switch cannot be tested inside tmux here",
)
needs_screen = pytest.mark.skipif(
    SCREEN is None,
    reason="GNU screen is not installed, and `make test` could not install it (it needs root and apt-get): "
    "the dead man's switch cannot be tested inside screen here",
)
SESSION = "blot"
ROWS, COLS = 36, 120


def journal_notes(path) -> list[str]:
    """The journal's rows as text ([] while the writer holds it or has not created it)."""
    try:
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT * FROM frames").fetchall()
    except sqlite3.Error:
        return []
    return [" ".join(str(v) for v in row if v is not None) for row in rows]


def journalled(path, text: str) -> list[str]:
    """The journal's rows once one contains ``text`` (the writer is a thread: wait for it)."""
    wait_until(lambda: any(text in n for n in journal_notes(path)), f"{text!r} in the journal")
    return journal_notes(path)


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_until(predicate: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def running(marker: str) -> list[int]:
    """Processes whose command line holds ``marker`` (and are not zombies)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read() and not gone(int(entry)):
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


class Client:
    """A client attached through a pseudo-terminal (a trader's SSH session). Its
    output is drained by a thread, as a terminal would, so it never blocks."""

    def __init__(self, argv: list[str], env: dict[str, str], prefix: str = "\x02") -> None:
        self.prefix = prefix
        self.child = pexpect.spawn(argv[0], argv[1:], env=env, dimensions=(ROWS, COLS))
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                self.child.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                continue
            except (pexpect.EOF, OSError, ValueError):
                return

    def detach_key(self) -> None:
        """The trader detaches on purpose: the prefix (tmux C-b, screen C-a), then d."""
        self.child.send(self.prefix)
        self.child.send("d")

    def drop(self) -> None:
        """The SSH connection drops: the client's terminal goes away."""
        self.child.close(force=True)

    def close(self) -> None:
        if self.child.isalive() or not self.child.closed:
            self.child.close(force=True)


class TmuxServer:
    def __init__(self, tmp_path) -> None:
        self.socket = f"blotter-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        env = env_for(tmp_path)
        for name in ("TMUX", "TMUX_PANE", "STY"):  # the tests may themselves run inside tmux or screen
            env.pop(name, None)
        self.env = env
        self.clients: list[Client] = []
        self.pid: int | None = None
        self.path = ""

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [TMUX or "tmux", "-L", self.socket, "-f", os.devnull, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=20,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def start(self, command: list[str]) -> None:
        """A detached session running ``command`` (its pane stays after it exits, to be read)."""
        self.tmux("new-session", "-d", "-s", SESSION, "-x", str(COLS), "-y", str(ROWS), shlex.join(command))
        self.tmux("set-option", "-g", "remain-on-exit", "on")
        self.pid = int(self.tmux("display-message", "-p", "-t", SESSION, "#{pane_pid}").stdout)
        self.path = self.tmux("display-message", "-p", "#{socket_path}").stdout.strip()

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", SESSION, check=False).stdout

    def wait_screen(self, predicate: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the pane never showed {what}; it shows:\n{text}")
            time.sleep(0.1)

    def attached(self) -> int:
        out = self.tmux("list-clients", "-F", "#{client_name}", check=False).stdout
        return len([line for line in out.splitlines() if line.strip()])

    def attach(self) -> Client:
        client = Client([TMUX or "tmux", "-L", self.socket, "attach-session", "-t", SESSION], self.env)
        self.clients.append(client)
        wait_until(lambda: self.attached() >= 1, "the tmux client attached")
        return client

    def kill(self) -> None:
        for client in self.clients:
            client.close()
        self.tmux("kill-server", check=False)
        if self.pid is not None:  # the blotter (hung up by the server's end) finishes before the test does
            pid = self.pid
            wait_until(lambda: gone(pid), "the blotter ended after the tmux server")
        if self.path:
            with contextlib.suppress(OSError):
                os.unlink(self.path)  # tmux leaves its socket file behind


def blotter_command(sim, journal, grace: float) -> list[str]:
    return [
        sys.executable,
        "-m",
        "blotter",
        "--url",
        sim.url,
        "--journal",
        str(journal),
        "--cancel-on-hangup",
        "--hangup-grace",
        f"{grace:g}",
        "--timeout",
        "3",
    ]


WATCHING = "a tmux client is attached"
"""The log line saying the switch saw a client (it fires only after one was seen)."""


@needs_tmux
@pytest.mark.timeout(180)
def test_last_client_gone_cancels_all_after_the_grace_and_not_before(tmp_path):
    journal = tmp_path / "journal.sqlite3"
    with sim_in_thread(SimConfig(seed=31, initial_orders=7, rate=0, ping_interval=0)) as sim:
        server = TmuxServer(tmp_path)
        try:
            server.start(blotter_command(sim, journal, grace=2))
            client = server.attach()
            server.wait_screen(lambda t: "LIVE" in t and "ARMED" in t and WATCHING in t, "the switch watching")
            assert len(sim.open_orders()) == 7

            detached_ns = time.time_ns()
            client.drop()  # the SSH connection drops: no SIGHUP reaches the blotter
            wait_until(lambda: server.attached() == 0, "the client gone")
            time.sleep(1.0)  # about half the grace: nothing may have been sent yet
            assert sim.requests("cancel-all") == [], "cancel-all sent before the grace period ended"

            wait_until(lambda: sim.requests("cancel-all"), "the cancel-all at the simulator", timeout=60)
            screen = server.wait_screen(
                lambda t: "ARMED (FIRED: nothing left open)" in t and "verdict: nothing left open" in t,
                "the verdict in the header and the log",
            )
            cancels = sim.requests("cancel-all")
            assert len(cancels) == 1
            assert cancels[0].time_ns - detached_ns >= 2 * 10**9
            assert sim.open_orders() == []
            # the blotter is still running (the trader re-attaches to read what happened)
            assert "LIVE" in screen
            notes = journalled(journal, "cancel-on-hangup verdict:")
        finally:
            server.kill()
    started = next(i for i, n in enumerate(notes) if "no tmux client attached: cancel-all in 2 s" in n)
    fired = next(i for i, n in enumerate(notes) if "tmux: cancel-on-hangup fired" in n)
    verdict = next(i for i, n in enumerate(notes) if "cancel-on-hangup verdict: nothing left open" in n)
    assert started < fired < verdict


@needs_tmux
@pytest.mark.timeout(180)
def test_a_client_back_within_the_grace_disarms_the_countdown(tmp_path):
    journal = tmp_path / "journal.sqlite3"
    grace = 8.0
    with sim_in_thread(SimConfig(seed=32, initial_orders=4, rate=0, ping_interval=0)) as sim:
        server = TmuxServer(tmp_path)
        try:
            server.start(blotter_command(sim, journal, grace=grace))
            client = server.attach()
            server.wait_screen(lambda t: "LIVE" in t and "ARMED" in t and WATCHING in t, "the switch watching")

            detached = time.monotonic()
            client.detach_key()  # the trader detaches (C-b d)
            wait_until(lambda: server.attached() == 0, "the client detached")
            server.wait_screen(lambda t: "CANCEL-ALL IN" in t, "the countdown in the header")

            server.attach()  # back within the grace
            # the header says so (the log pane may be painted a frame earlier or later)
            screen = server.wait_screen(
                lambda t: "ARMED (countdown disarmed)" in t and "CANCEL-ALL IN" not in t, "the countdown disarmed"
            )
            assert "a tmux client re-attached after" in screen  # and the log
            assert sim.requests("cancel-all") == []

            # past the end of the grace the detach started (and a few polls more): still nothing
            time.sleep(max(0.0, detached + grace + 2.0 - time.monotonic()))
            assert sim.requests("cancel-all") == []
            assert len(sim.open_orders()) == 4
            assert "FIRED" not in server.screen()
            notes = "\n".join(journalled(journal, "countdown disarmed"))
        finally:
            server.kill()
    assert "no tmux client attached: cancel-all in 8 s" in notes
    assert "countdown disarmed" in notes
    assert "cancel-on-hangup fired" not in notes


@needs_tmux
@pytest.mark.timeout(180)
def test_an_unverified_cancel_all_is_tried_again_while_nobody_is_attached(tmp_path):
    """The exchange holds the cancel-all on both roads (never answers): the verdict is "timed out",
    and with still no client attached the switch fires again after another grace."""
    journal = tmp_path / "journal.sqlite3"
    with sim_in_thread(
        SimConfig(seed=35, initial_orders=3, rate=0, ping_interval=0, ack_delay=600, rest_delay=600)
    ) as sim:
        server = TmuxServer(tmp_path)
        try:
            command = blotter_command(sim, journal, grace=1)
            command[command.index("--timeout") + 1] = "1"
            server.start(command)
            client = server.attach()
            server.wait_screen(lambda t: "LIVE" in t and WATCHING in t, "the switch watching")
            client.detach_key()
            wait_until(
                lambda: "\n".join(journal_notes(journal)).count("tmux: cancel-on-hangup fired") >= 2,
                "the switch firing a second time",
                timeout=90,
            )
            notes = journal_notes(journal)
            first_fire = next(i for i, n in enumerate(notes) if "tmux: cancel-on-hangup fired" in n)
            again = next(i for i, n in enumerate(notes) if "not verified: it fires again in 1 s" in n)
            assert first_fire < again
            assert len(sim.requests("cancel-all")) >= 2
        finally:
            server.kill()


@needs_tmux
@pytest.mark.timeout(180)
def test_never_attached_never_fires_on_no_clients(tmp_path):
    """Started detached (a supervisor, a script): "no client" is how it has always
    been, not a trader gone. Then a client attaches and leaves: now it fires — the
    watch was working all along."""
    journal = tmp_path / "journal.sqlite3"
    with sim_in_thread(SimConfig(seed=33, initial_orders=3, rate=0, ping_interval=0)) as sim:
        server = TmuxServer(tmp_path)
        try:
            server.start(blotter_command(sim, journal, grace=1))
            server.wait_screen(lambda t: "LIVE" in t and "ARMED" in t and "waiting for a tmux client" in t, "LIVE")
            time.sleep(4.0)  # four graces with nobody attached
            assert sim.requests("cancel-all") == []
            assert "CANCEL-ALL IN" not in server.screen()

            client = server.attach()
            server.wait_screen(lambda t: WATCHING in t, "the switch seeing the client")
            client.detach_key()
            wait_until(lambda: sim.requests("cancel-all"), "the cancel-all after a real detach", timeout=60)
            assert len(sim.requests("cancel-all")) == 1
        finally:
            server.kill()


class ScreenSession:
    """A GNU screen session of its own (private SCREENDIR), started detached."""

    def __init__(self, tmp_path) -> None:
        self.name = f"blotter-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        env = env_for(tmp_path)
        for name in ("TMUX", "TMUX_PANE", "STY", "WINDOW"):
            env.pop(name, None)
        # screen's socket is SCREENDIR/<pid>.<name>, and a socket path must fit in 108 bytes:
        # tmp_path is too deep for that under pytest-xdist (…/popen-gw0/…), so a short private dir.
        self.screendir = tempfile.mkdtemp(prefix="scr-")  # mode 0700, as screen wants
        env["SCREENDIR"] = self.screendir
        self.env = env
        self.hardcopy = tmp_path / "hardcopy.txt"
        self.clients: list[Client] = []

    def screen(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SCREEN or "screen", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
        )

    def start(self, command: list[str]) -> None:
        self.screen("-dmS", self.name, *command)

    def text(self) -> str:
        self.hardcopy.unlink(missing_ok=True)
        self.screen("-S", self.name, "-p", "0", "-X", "hardcopy", str(self.hardcopy))
        try:
            return self.hardcopy.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_text(self, predicate: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen window never showed {what}; it shows:\n{text}")
            time.sleep(0.2)

    def attached(self) -> bool:
        line = [x for x in self.screen("-ls").stdout.splitlines() if self.name in x]
        return bool(line) and line[0].rstrip().endswith("ttached)") and "Detached" not in line[0]

    def attach(self) -> Client:
        client = Client([SCREEN or "screen", "-r", self.name], self.env, prefix="\x01")
        self.clients.append(client)
        wait_until(self.attached, "the screen client attached")
        return client

    def kill(self, marker: str) -> None:
        for client in self.clients:
            client.close()
        self.screen("-S", self.name, "-X", "quit")
        wait_until(lambda: not running(marker), "the blotter ended after the screen session")
        shutil.rmtree(self.screendir, ignore_errors=True)


@needs_screen
@pytest.mark.timeout(180)
def test_inside_gnu_screen_a_detach_fires_after_the_grace_and_not_before(tmp_path):
    """The same rule inside GNU screen: it waits for a display to have been attached,
    then fires when none has been attached for the grace period."""
    journal = tmp_path / "journal.sqlite3"
    with sim_in_thread(SimConfig(seed=34, initial_orders=5, rate=0, ping_interval=0)) as sim:
        session = ScreenSession(tmp_path)
        try:
            session.start(blotter_command(sim, journal, grace=2))
            session.wait_text(lambda t: "LIVE" in t and "waiting for a screen client" in t, "the switch waiting")
            client = session.attach()
            session.wait_text(lambda t: "a screen client is attached" in t, "the switch seeing the client")

            detached_ns = time.time_ns()
            client.detach_key()  # C-a d
            wait_until(lambda: not session.attached(), "the screen client detached")
            time.sleep(1.0)  # about half the grace: nothing may have been sent yet
            assert sim.requests("cancel-all") == [], "cancel-all sent before the grace period ended"

            wait_until(lambda: sim.requests("cancel-all"), "the cancel-all at the simulator", timeout=60)
            assert len(sim.requests("cancel-all")) == 1
            assert sim.requests("cancel-all")[0].time_ns - detached_ns >= 2 * 10**9
            notes = journalled(journal, "cancel-on-hangup verdict:")
            assert sim.open_orders() == []
        finally:
            session.kill(str(journal))
    started = next(i for i, n in enumerate(notes) if "no screen client attached: cancel-all in 2 s" in n)
    fired = next(i for i, n in enumerate(notes) if "screen: cancel-on-hangup fired" in n)
    verdict = next(i for i, n in enumerate(notes) if "cancel-on-hangup verdict: nothing left open" in n)
    assert started < fired < verdict
