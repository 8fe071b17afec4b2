"""The colour-change minimiser (:mod:`blotter.ui.sgr`): a terminal emulator (pyte) shows
exactly the same cells — characters, colours, attributes — whether it is fed what
Textual writes or what the minimiser makes of it; on random streams cut anywhere, and on
the real blotter's own output in a pseudo-terminal."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyte
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blotter.ui.sgr import SgrMinimizer

ROOT = Path(__file__).resolve().parents[2]
COLS, ROWS = 40, 8

PIECES = [
    "abc",
    "  ",
    "│x│",
    "é",
    "\r\n",
    "\r",
    "\b",
    "\t",
    "\x1b[0m",
    "\x1b[m",
    "\x1b[1m",
    "\x1b[2m",
    "\x1b[22m",
    "\x1b[3m",
    "\x1b[23m",
    "\x1b[4m",
    "\x1b[24m",
    "\x1b[7m",
    "\x1b[27m",
    "\x1b[9m",
    "\x1b[29m",
    "\x1b[31m",
    "\x1b[97m",
    "\x1b[44m",
    "\x1b[39m",
    "\x1b[49m",
    "\x1b[39;49m",
    "\x1b[38;5;196m",
    "\x1b[48;5;17m",
    "\x1b[38;2;227;179;65m",
    "\x1b[48;2;29;39;51m",
    "\x1b[38;2;125;133;144;48;2;29;39;51m",
    "\x1b[0;1;38;2;1;2;3m",
    "\x1b[1;7m",
    "\x1b[4:3m",  # colon sub-parameters: passed through, state forgotten
    "\x1b[21m",  # a code it does not read
    "\x1b[38;5m",  # malformed
    "\x1b[H",
    "\x1b[3;5H",
    "\x1b[2A",
    "\x1b[4C",
    "\x1b[7G",
    "\x1b[K",
    "\x1b[1K",
    "\x1b[2J",
    "\x1b[2X",
    "\x1b[L",
    "\x1b[P",
    "\x1b[S",
    "\x1b7",
    "\x1b8",
    "\x1b[?2026h",
    "\x1b[?2026l",
    "\x1b[?25l",
    "\x1b[?7l",
    "\x1b]0;title\x07",
    "\x1b[s",
    "\x1b[u",
    "\x1b[!p",
    "\x1b[?2026$p",
]


def cells(screen: pyte.Screen) -> list[list[object]]:
    return [[screen.buffer[y][x] for x in range(screen.columns)] for y in range(screen.lines)]


def shown(data: str, cols: int = COLS, rows: int = ROWS) -> pyte.Screen:
    screen = pyte.Screen(cols, rows)
    pyte.Stream(screen).feed(data)
    return screen


def minimised(chunks: list[str]) -> str:
    m = SgrMinimizer()
    return "".join(m.feed(c) for c in chunks)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60), st.lists(st.integers(0, 400), max_size=6))
def test_the_screen_is_the_same_cell_for_cell(pieces: list[str], cuts: list[int]) -> None:
    data = "".join(pieces)
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert cells(shown(minimised(chunks))) == cells(shown(data))


def test_the_reset_and_full_style_of_each_segment_is_written_once() -> None:
    bg = "\x1b[48;2;29;39;51m"
    segment = "\x1b[0m\x1b[38;2;125;133;144;48;2;29;39;51m"
    data = f"{segment}ab{segment}cd\x1b[0m\x1b[38;2;227;179;65;48;2;29;39;51mef"
    out = minimised([data])
    assert out == "\x1b[0;38;2;125;133;144;48;2;29;39;51mabcd\x1b[38;2;227;179;65mef"
    assert bg not in out  # the background never changed


def test_a_style_is_written_before_an_erase_that_paints_with_it() -> None:
    out = minimised(["\x1b[0m\x1b[44m", "\x1b[K"])
    assert out == "\x1b[0;44m\x1b[K"


def test_a_sequence_cut_between_two_writes_is_finished_in_the_next() -> None:
    m = SgrMinimizer()
    first = m.feed("\x1b[0mab\x1b[38;2;1;")
    second = m.feed("2;3mcd")
    assert first == "\x1b[0mab" and second == "\x1b[38;2;1;2;3mcd"
    # on top of a style it does not know, a style that does not reset is passed as it is
    assert SgrMinimizer().feed("\x1b[1mx") == "\x1b[1mx"


def test_after_a_restart_of_the_screen_the_style_is_written_whole() -> None:
    m = SgrMinimizer()
    m.feed("\x1b[0m\x1b[31mx")
    m.reset()
    assert m.feed("\x1b[0m\x1b[31my") == "\x1b[0;31my"


# -- the real blotter's output ----------------------------------------------------------------
RECORDER = """
import sys
import blotter.ui.sgr as sgr
feed = sgr.SgrMinimizer.feed
raw = open(sys.argv[1], "w", encoding="utf-8", newline="")
out = open(sys.argv[2], "w", encoding="utf-8", newline="")
def recording(self, data):
    written = feed(self, data)
    raw.write(data); raw.flush()
    out.write(written); out.flush()
    return written
sgr.SgrMinimizer.feed = recording
sys.argv = ["blotter", "demo"]
from blotter.cli.main import main
main()
"""


@pytest.mark.xdist_group("terminal")
@pytest.mark.timeout(90)
@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_the_blotters_own_output_shows_the_same_screen_in_half_the_bytes(tmp_path: Path, size: tuple[int, int]) -> None:
    """``blotter demo`` in a pseudo-terminal for a few seconds, every write recorded as
    Textual made it and as it left: the two streams show the same screen."""
    import fcntl
    import pty
    import struct
    import termios

    cols, rows = size
    raw_path, out_path = tmp_path / "raw.txt", tmp_path / "out.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASCENDEX_", "BLOTTER_"))}
    env.update(
        TERM="xterm-256color",
        COLORTERM="truecolor",
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-c", RECORDER, str(raw_path), str(out_path)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=str(ROOT),
        start_new_session=True,
    )
    os.close(slave)
    terminal = pyte.Screen(cols, rows)
    stream = pyte.ByteStream(terminal)
    try:
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            import select

            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    stream.feed(os.read(master, 65536))
                except OSError:
                    break
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        os.close(master)
    raw = raw_path.read_text(encoding="utf-8")
    out = out_path.read_text(encoding="utf-8")
    assert "open" in raw and len(raw) > 20_000, "the demo drew its table"
    # the screen Textual asked for is the screen that was drawn
    assert cells(shown(out, cols, rows)) == cells(shown(raw, cols, rows))
    assert any("open" in line for line in terminal.display)
    assert len(out.encode()) < 0.75 * len(raw.encode()), (len(out), len(raw))
    if shutil.which("tmux"):  # a real terminal emulator too (it keeps dim, which pyte does not)
        assert tmux_shows(out_path, cols, rows) == tmux_shows(raw_path, cols, rows)


def tmux_shows(path: Path, cols: int, rows: int) -> str:
    """The screen, colours and attributes included, of a tmux pane that was sent ``path``."""
    name = f"sgr-{os.getpid()}-{path.stem}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", name, "-x", str(cols), "-y", str(rows), f"cat {path}; sleep 60"],
        check=True,
    )
    try:
        previous = None
        for _ in range(50):  # until two captures in a row agree (cat has finished)
            time.sleep(0.2)
            shown_now = subprocess.run(
                ["tmux", "capture-pane", "-e", "-p", "-t", name], check=True, capture_output=True, text=True
            ).stdout
            if shown_now == previous:
                return shown_now
            previous = shown_now
        return previous or ""
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], check=False)


def test_the_terminal_restoring_a_saved_cursor_makes_the_style_unknown() -> None:
    """``ESC 8`` brings back the attributes saved with ``ESC 7``: the next style is then
    written whole, even if the stream asks for the one it asked for before."""
    data = "\x1b[0m\x1b[31mA\x1b7\x1b[0m\x1b[32mB\x1b8C\x1b[0m\x1b[32mD"
    assert cells(shown(minimised([data]))) == cells(shown(data))
    assert minimised([data]).endswith("\x1b[0;32mD")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # 22 ends bold and dim alike: the dim of A is not carried to B
        ("\x1b[0;2mA\x1b[22mB", "\x1b[0;2mA\x1b[0mB"),
        ("\x1b[0;1;2mA\x1b[0;1mB", "\x1b[0;1;2mA\x1b[0;1mB"),
        # a colour added on top is written alone
        ("\x1b[0;1mA\x1b[0;1;31mB", "\x1b[0;1mA\x1b[31mB"),
        # back to the default colours: a reset
        ("\x1b[0;31mA\x1b[39mB", "\x1b[0;31mA\x1b[0mB"),
        ("\x1b[0;31mA\x1b[0m\x1b[31mB", "\x1b[0;31mAB"),
    ],
)
def test_what_is_written_for_each_change(data: str, expected: str) -> None:
    """(pyte keeps no dim attribute: these are checked against the bytes themselves.)"""
    assert minimised([data]) == expected


def test_after_a_soft_reset_or_a_restored_cursor_the_style_is_written_whole() -> None:
    for middle in ("\x1b[!p", "\x1b[u", "\x1b8"):
        out = minimised([f"\x1b[0;31mA{middle}\x1b[0;31mB"])
        assert out == f"\x1b[0;31mA{middle}\x1b[0;31mB", middle
