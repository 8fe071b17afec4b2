"""Start-up: the real ``blotter demo`` command in a pseudo-terminal (pexpect drives the
pty, pyte emulates the terminal), from process start to the first screen that shows
order ids."""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
from typing import Any

import pexpect
import pyte

COLS, ROWS = 160, 40
ORDER_ID = re.compile(r"s[0-9a-f]{11}U\d{10}")


def once(timeout: float = 30.0) -> float:
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASCENDEX_")}
        env.update(TERM="xterm-256color", HOME=home, XDG_CONFIG_HOME=f"{home}/config", XDG_DATA_HOME=f"{home}/data")
        env.pop("NO_COLOR", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as a trader's starts: from bytecode (pty_term.blotter_env)
        screen = pyte.Screen(COLS, ROWS)
        stream = pyte.ByteStream(screen)
        t0 = time.perf_counter()
        child = pexpect.spawn(
            sys.executable,
            ["-m", "blotter", "demo", "--no-journal", "--seed", "1"],
            env=env,
            dimensions=(ROWS, COLS),
            timeout=1,
        )
        try:
            deadline = t0 + timeout
            while time.perf_counter() < deadline:
                try:
                    data = child.read_nonblocking(65536, timeout=0.01)
                except pexpect.TIMEOUT:
                    continue
                except pexpect.EOF:
                    break
                stream.feed(data)
                if any(ORDER_ID.search(line) for line in screen.display):
                    return time.perf_counter() - t0
            raise TimeoutError("blotter demo never showed an order id:\n" + "\n".join(screen.display))
        finally:
            child.terminate(force=True)


def run(runs: int) -> dict[str, Any]:
    from .pty_term import compile_blotter

    compile_blotter()
    times = [once() for _ in range(runs)]
    return {"startup_s": statistics.median(times), "startup_runs_s": times}
