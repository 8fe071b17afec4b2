"""The client-side dead man's switch (opt-in: ``--cancel-on-hangup``).

The exchange has no cancel-on-disconnect for this API. When armed, SIGHUP (the
controlling terminal went away: the SSH session dropped) or SIGTERM cancels all
open orders, waits for the verdict (bounded), then quits.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any, Callable

from ..core import State

SIGNALS = tuple(s for s in (getattr(signal, "SIGHUP", None), signal.SIGTERM) if s is not None)


async def cancel_all_and_verify(desk: Any, wait: float) -> Any:
    """cancel-all, then wait (at most ``wait`` s) for its verdict from a fresh snapshot."""
    tracked = await desk.cancel_all()
    if tracked is None:
        return None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while loop.time() < deadline:
        if tracked.verdict is not None or tracked.state in (State.REFUSED, State.FAILED):
            break
        await desk.wait_changed(0.1)
    return tracked


def arm_hangup(desk: Any, app: Any, wait: float | None = None) -> Callable[[], None]:
    """Install the signal handlers on the running loop; returns a function that removes them."""
    loop = asyncio.get_running_loop()
    wait = wait if wait is not None else desk.settings.request_timeout * 2 + 3
    fired: list[bool] = []

    async def on_signal(name: str) -> None:
        desk.log.add(f"{name}: dead man's switch fired: cancelling all open orders", "error")
        if desk.journal is not None:
            desk.journal.record_note(f"{name}: cancel-on-hangup fired")
        await cancel_all_and_verify(desk, wait)
        app.exit(return_code=0)

    def handler(signum: int) -> None:
        if fired:
            return
        fired.append(True)
        loop.create_task(on_signal(signal.Signals(signum).name))

    for sig in SIGNALS:
        loop.add_signal_handler(sig, handler, sig)

    def disarm() -> None:
        for sig in SIGNALS:
            try:
                loop.remove_signal_handler(sig)
            except (RuntimeError, ValueError):  # loop already closed
                pass

    return disarm
