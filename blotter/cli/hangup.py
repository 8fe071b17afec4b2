"""The client-side dead man's switch (opt-in: ``--cancel-on-hangup``).

The exchange has no cancel-on-disconnect for this API. When armed, SIGHUP (the
controlling terminal went away: the SSH session dropped) or SIGTERM runs the desk's
one :meth:`~blotter.desk.Desk.cancel_all_and_verify`, journals its verdict, and
quits: exit 0 when verified, 1 otherwise.

A terminal that hung up is hostile to the screen: reads from it return end-of-file
at once (the input thread would spin a core) and writes fail (the output thread
dies, and the next redraw blocks the event loop for ever, with every signal handler
behind it). So the handler runs at signal time, not on the event loop: on SIGHUP it
first points stdin at a pipe that never has data and stdout/stderr at /dev/null,
then schedules the cancel-all on the loop. A watchdog thread ends the process if the
verdict and the shutdown together take longer than the bound, so a hangup always
ends in an exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

SIGNALS = tuple(s for s in (getattr(signal, "SIGHUP", None), signal.SIGTERM) if s is not None)
SHUTDOWN_GRACE = 10.0
"""Seconds after the verdict's bound before the watchdog ends the process anyway."""
EXIT_UNVERIFIED = 1

_kept_fds: list[int] = []
"""The write end of the pipe that replaced stdin: kept open, so reads wait instead of
returning end-of-file."""


def detach_terminal() -> None:
    """The terminal is gone: stdin from a pipe that never has data, stdout and stderr
    to /dev/null. The screen's threads then neither spin nor block."""
    try:
        read_end, write_end = os.pipe()
        os.dup2(read_end, 0)
        os.close(read_end)
        _kept_fds.append(write_end)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)
    except OSError:
        pass


def release_terminal() -> None:
    """Close the pipe's write end: a read blocked on the replaced stdin returns
    end-of-file, so the screen's input thread sees its exit and ends."""
    while _kept_fds:
        with contextlib.suppress(OSError):
            os.close(_kept_fds.pop())


def describe(outcome: Any) -> str:
    """One line for the log and the journal (exchange text sanitised by the log)."""
    scope = outcome.symbol or "ALL symbols"
    if outcome.verified:
        return f"cancel-on-hangup verdict: nothing left open on {scope} ({outcome.request_id})"
    return (
        f"cancel-on-hangup verdict: {outcome.outcome.value}: {outcome.reason} ({outcome.request_id or 'nothing sent'})"
    )


def arm_hangup(
    desk: Any, app: Any, wait: float | None = None, on_fired: Callable[[str], None] | None = None
) -> Callable[[], None]:
    """Install the signal handlers; returns a function that restores the previous ones.

    ``wait`` bounds the cancel-all and its verification (default: three request
    timeouts and two seconds). ``on_fired(signal name)`` is told when the switch fires
    (the exit code is then the verdict's, whether or not the stream was ever live: the
    cancel-all may have gone over REST)."""
    loop = asyncio.get_running_loop()
    bound = wait if wait is not None else desk.settings.request_timeout * 3 + 2
    fired: list[str] = []
    previous: dict[int, Any] = {}
    tasks: set[asyncio.Task[None]] = set()

    def start(name: str) -> None:
        task = loop.create_task(on_signal(name))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def journal(text: str) -> None:
        if desk.journal is not None:
            with contextlib.suppress(Exception):  # the cancel-all matters more than its note
                desk.journal.record_note(text)

    async def on_signal(name: str) -> None:
        if on_fired is not None:
            on_fired(name)
        desk.log.add(f"{name}: dead man's switch fired: cancelling all open orders", "error")
        journal(f"{name}: cancel-on-hangup fired")
        code = EXIT_UNVERIFIED
        try:
            outcome = await desk.cancel_all_and_verify(None, timeout=bound)
        except Exception as exc:
            text = f"cancel-on-hangup failed: {type(exc).__name__}: {exc}"
        else:
            text = describe(outcome)
            code = 0 if outcome.verified else EXIT_UNVERIFIED
        desk.log.add(text, "ok" if code == 0 else "error")
        journal(text)
        app.exit(return_code=code)
        release_terminal()

    def watchdog() -> None:
        journal(f"cancel-on-hangup: no clean exit within {bound + SHUTDOWN_GRACE:g} s; exiting now")
        if desk.journal is not None:
            with contextlib.suppress(Exception):
                desk.journal.close(timeout=2.0)
        os._exit(EXIT_UNVERIFIED)

    def handler(signum: int, frame: FrameType | None) -> None:
        if fired:
            return  # already cancelling; the bound ends it
        name = signal.Signals(signum).name
        fired.append(name)
        if signum == getattr(signal, "SIGHUP", None):
            detach_terminal()
        timer = threading.Timer(bound + SHUTDOWN_GRACE, watchdog)
        timer.daemon = True
        timer.start()
        loop.call_soon_threadsafe(start, name)

    for sig in SIGNALS:
        previous[sig] = signal.signal(sig, handler)

    def disarm() -> None:
        for sig, old in previous.items():
            with contextlib.suppress(ValueError, TypeError, OSError):
                signal.signal(sig, old)

    return disarm
