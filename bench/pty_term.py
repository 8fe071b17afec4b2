"""The real ``blotter`` command in a real pseudo-terminal, and what the terminal shows.

:class:`Terminal` starts the command on the slave side of a pty of the given size. A
reader thread drains the master side as a terminal emulator does — as fast as it can,
or through a token bucket (``rate`` bytes a second: an SSH link) — and keeps every
chunk with the ``time.monotonic_ns()`` it was read at. :meth:`Terminal.key` writes a
key's bytes to the master side and returns when it wrote them (the same clock: on
Linux ``CLOCK_MONOTONIC`` is shared by every process, so the wire tap's stamps compare).

:class:`Screen` is a small terminal model, enough for what Textual writes (cursor
moves, text, SGR and mode sequences ignored, erases): it replays the chunks, in order
and only when asked (:meth:`Terminal.catch_up`), so the harness spends no CPU on it
while a benchmark runs, and it reports every row drawn, with the time of the chunk
that drew it.
"""

from __future__ import annotations

import codecs
import fcntl
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

TOKEN = re.compile(
    r"(\x1b\[[0-?]*[ -/]*[@-~])"  # CSI
    r"|(\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?)"  # OSC
    r"|(\x1bP[^\x1b]*(?:\x1b\\)?)"  # DCS
    r"|(\x1b.?)"  # other escapes
    r"|([^\x1b\r\n\x07\x08]+)"  # text
    r"|([\r\n\x07\x08])"
)

COMPLETE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|P[^\x1b]*\x1b\\|[^\[\]P])")

KEYS = {
    "down": b"\x1b[B",
    "up": b"\x1b[A",
    "home": b"\x1b[H",
    "end": b"\x1b[F",
    "enter": b"\r",
}


class Screen:
    """Rows of characters; :meth:`feed` returns the rows a chunk wrote to."""

    def __init__(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        self.cells = [[" "] * cols for _ in range(rows)]
        self.y = self.x = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""

    def line(self, y: int) -> str:
        return "".join(self.cells[y])

    def lines(self) -> list[str]:
        return [self.line(y) for y in range(self.rows)]

    def feed(self, data: bytes) -> set[int]:
        text = self._pending + self._decoder.decode(data)
        cut = text.rfind("\x1b")
        if cut >= 0 and not COMPLETE.match(text, cut):
            # an escape sequence split between two reads: finish it with the next chunk
            text, self._pending = text[:cut], text[cut:]
        else:
            self._pending = ""
        dirty: set[int] = set()
        cells, cols, rows = self.cells, self.cols, self.rows
        for m in TOKEN.finditer(text):
            csi, _osc, _dcs, _esc, plain, ctl = m.groups()
            if plain is not None:
                y = self.y
                if 0 <= y < rows:
                    x = self.x
                    n = min(len(plain), cols - x)
                    if n > 0:
                        cells[y][x : x + n] = plain[:n]
                        dirty.add(y)
                    self.x = min(x + len(plain), cols)
            elif csi is not None:
                final = csi[-1]
                params = csi[2:-1]
                if final in "Hf":
                    if params.startswith("?"):
                        continue
                    parts = params.split(";") if params else []
                    self.y = (int(parts[0]) if parts and parts[0] else 1) - 1
                    self.x = (int(parts[1]) if len(parts) > 1 and parts[1] else 1) - 1
                elif final == "J" and params in ("2", "3"):
                    for y in range(rows):
                        cells[y] = [" "] * cols
                        dirty.add(y)
                elif final == "K" and 0 <= self.y < rows:
                    mode = params or "0"
                    row = cells[self.y]
                    if mode == "0":
                        row[self.x :] = [" "] * (cols - self.x)
                    elif mode == "2":
                        row[:] = [" "] * cols
                    dirty.add(self.y)
                elif final == "G":
                    self.x = (int(params) if params else 1) - 1
                elif final == "d":
                    self.y = (int(params) if params else 1) - 1
            elif ctl is not None:
                if ctl == "\r":
                    self.x = 0
                elif ctl == "\n":
                    self.y += 1
                elif ctl == "\x08":
                    self.x = max(0, self.x - 1)
        return dirty


@dataclass
class Draw:
    t: int
    y: int
    text: str


@dataclass
class Terminal:
    argv: list[str]
    cols: int
    rows: int
    env: dict[str, str]
    rate: float | None = None
    """Bytes a second the terminal drains (None: as fast as it can)."""
    on_rows: Callable[[int, dict[int, str]], None] | None = None
    chunks: list[tuple[int, bytes]] = field(default_factory=list)
    started_ns: int = 0
    screen: Screen = field(init=False)
    _done: int = 0
    proc: subprocess.Popen[bytes] | None = None
    out_bytes: int = 0

    def __post_init__(self) -> None:
        self.screen = Screen(self.cols, self.rows)

    def start(self) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", self.rows, self.cols, 0, 0))
        self.master = master
        self.started_ns = time.monotonic_ns()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=self.env,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
            close_fds=True,
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _read(self) -> None:
        fd, rate = self.master, self.rate
        chunks = self.chunks
        if rate is None:
            while True:
                try:
                    data = os.read(fd, 1 << 16)
                except OSError:
                    return
                if not data:
                    return
                chunks.append((time.monotonic_ns(), data))
                self.out_bytes += len(data)
        # a token bucket: at most `rate` bytes a second, bursts of 20 ms
        cap = max(4096.0, rate * 0.02)
        tokens, last = cap, time.monotonic()
        while True:
            now = time.monotonic()
            tokens = min(cap, tokens + (now - last) * rate)
            last = now
            if tokens < 1024:
                time.sleep((1024 - tokens) / rate)
                continue
            try:
                data = os.read(fd, int(min(tokens, 1 << 16)))
            except OSError:
                return
            if not data:
                return
            tokens -= len(data)
            chunks.append((time.monotonic_ns(), data))
            self.out_bytes += len(data)

    def key(self, name_or_bytes: str | bytes) -> int:
        data = KEYS[name_or_bytes] if isinstance(name_or_bytes, str) and name_or_bytes in KEYS else name_or_bytes
        if isinstance(data, str):
            data = data.encode()
        t = time.monotonic_ns()
        os.write(self.master, data)
        return t

    @property
    def done(self) -> int:
        """How many chunks the screen has replayed."""
        return self._done

    def catch_up(self, most: int | None = None) -> None:
        """Replay the chunks read since the last call (at most ``most`` of them); report
        the rows each one drew."""
        screen = self.screen
        n = len(self.chunks) if most is None else min(len(self.chunks), self._done + most)
        for t, data in self.chunks[self._done : n]:
            dirty = screen.feed(data)
            if dirty and self.on_rows is not None:
                self.on_rows(t, {y: screen.line(y) for y in dirty})
        self._done = n

    def text(self) -> str:
        self.catch_up()
        return "\n".join(self.screen.lines())

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        try:
            os.close(self.master)
        except OSError:
            pass
        self._reader.join(2)


def blotter_env(home: str) -> dict[str, str]:
    from .common import DEMO_API_KEY, DEMO_API_SECRET

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASCENDEX_", "BLOTTER_"))}
    env.update(
        TERM="xterm-256color",
        COLORTERM="truecolor",
        HOME=home,
        XDG_CONFIG_HOME=f"{home}/config",
        XDG_DATA_HOME=f"{home}/data",
        ASCENDEX_API_KEY=DEMO_API_KEY,
        ASCENDEX_API_SECRET=DEMO_API_SECRET,
    )
    # PYTHONDONTWRITEBYTECODE (set in some sandboxes and CI images) would make every start
    # compile blotter's sources again (+0.1 s); a trader's blotter starts from the bytecode
    # its first start (or pip) wrote, as it does here after compile_blotter().
    for name in ("NO_COLOR", "TEXTUAL", "COLUMNS", "LINES", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    return env


def compile_blotter() -> None:
    """Write blotter's bytecode now, as its first start would (not timed)."""
    import compileall

    import blotter

    compileall.compile_dir(str(Path(blotter.__file__).parent), quiet=1)


def blotter_argv(url: str, journal: str) -> list[str]:
    """The real command, default settings, the journal on at ``journal``."""
    return [sys.executable, "-m", "blotter", "--url", url, "--journal", journal]


def rows_with(lines: Iterable[str], needle: str) -> list[str]:
    return [line for line in lines if needle in line]
