"""NO_COLOR in a real pseudo-terminal: the bytes the real ``blotter`` command writes hold
no colour at all (no 256-colour, no true colour, no 8/16-colour SGR codes, foreground or
background), while bold, dim and reverse still carry the meaning."""

from __future__ import annotations

import os
import re
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
SGR = re.compile(rb"\x1b\[([0-9;:]*)m")


def colour_codes(data: bytes) -> list[str]:
    """Every SGR sequence in ``data`` that sets a colour (or resets one to the default)."""
    found = []
    for match in SGR.finditer(data):
        params = [p for p in re.split(rb"[;:]", match.group(1)) if p]
        for p in params:
            n = int(p)
            if n in (38, 48, 58) or 30 <= n <= 39 or 40 <= n <= 49 or 90 <= n <= 97 or 100 <= n <= 107:
                found.append(match.group(0).decode("ascii", "replace"))
                break
    return found


def attributes(data: bytes) -> set[int]:
    """The SGR attribute numbers used (1 bold, 2 dim, 7 reverse, ...)."""
    used: set[int] = set()
    for match in SGR.finditer(data):
        used.update(int(p) for p in re.split(rb"[;:]", match.group(1)) if p)
    return used


def test_colour_codes_are_recognised():
    assert colour_codes(b"\x1b[38;5;123mx\x1b[48;2;1;2;3my\x1b[31mz\x1b[1;7m") == [
        "\x1b[38;5;123m",
        "\x1b[48;2;1;2;3m",
        "\x1b[31m",
    ]
    assert colour_codes(b"\x1b[1m\x1b[2m\x1b[7m\x1b[0m\x1b[m") == []


@pytest.mark.timeout(90)
def test_no_color_sends_no_colour_code_at_all(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASCENDEX_")}
    env.update(
        ASCENDEX_API_KEY=DEMO_API_KEY,
        ASCENDEX_API_SECRET=DEMO_API_SECRET,
        TERM="xterm-256color",
        COLORTERM="truecolor",
        NO_COLOR="1",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        HOME=str(tmp_path),
    )
    screen = pyte.Screen(COLS, ROWS)
    stream = pyte.ByteStream(screen)
    received = bytearray()
    with sim_in_thread(SimConfig(seed=21, initial_orders=15, rate=0, ping_interval=0)) as sim:
        opened = {o["orderId"] for o in sim.open_orders()}
        args = ["-m", "blotter", "--url", sim.url, "--no-journal", "--final-linger", "60"]
        child = pexpect.spawn(sys.executable, args, env=env, dimensions=(ROWS, COLS), timeout=1)

        def pump_until(predicate, timeout: float = 20.0) -> str:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    data = child.read_nonblocking(65536, timeout=0.05)
                except (pexpect.TIMEOUT, pexpect.EOF):
                    data = b""
                received.extend(data)
                stream.feed(data)
                text = "\n".join(screen.display)
                if predicate(text):
                    return text
            raise AssertionError("screen never matched; it shows:\n" + "\n".join(screen.display))

        try:

            def cursor_row(t: str) -> int:
                return next((i for i, line in enumerate(t.splitlines()) if line.startswith("│▶")), -1)

            text = pump_until(lambda t: "LIVE" in t and cursor_row(t) > 0 and sum(oid[-8:] in t for oid in opened) >= 5)
            first = cursor_row(text)
            for _ in range(50):  # down (the cursor row), until the app reads keys
                child.send("\x1b[B")
                try:
                    pump_until(lambda t: cursor_row(t) > first, timeout=0.5)
                    break
                except AssertionError:
                    continue
            child.send("c")  # a cancel: PENDING CANCEL, then a final (dimmed) row and log lines
            pump_until(lambda t: "confirmed Canceled" in t)
            child.send("X")  # the cancel-all dialog
            pump_until(lambda t: "Cancel ALL" in t)
            child.send("n")
            pump_until(lambda t: "aborted, nothing sent" in t)
            child.send("?")
            pump_until(lambda t: "binding id" in t)
            child.send("\x1b")
            pump_until(lambda t: "binding id" not in t)
        finally:
            if child.isalive():
                child.terminate(force=True)
    data = bytes(received)
    assert SGR.search(data), "no SGR at all: the test saw no drawing"
    assert colour_codes(data) == []
    used = attributes(data)
    assert {1, 2, 7} <= used  # bold, dim (final orders) and reverse (the cursor row) carry the meaning
