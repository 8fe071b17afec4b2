"""An asyncio event loop in a thread of its own, that holds a lock while it works.

The exchange session (socket, parsing, folding, journal hand-off) runs on such a loop
so that the screen's loop — composing frames, writing to a terminal that may drain
slowly over SSH — never sits between a key and the socket.

The loop holds ``lock`` whenever it runs Python code and lets go of it only while it
waits in ``select``: every callback and every step of every task on it runs under the
lock, with no code of its own having to take it. Other threads (the screen, the
terminal's input thread) take the same lock for the short moments they read or change
what the loop's code also touches. A step of the loop is short (the session yields to
the loop every half millisecond of folding), so a waiting thread waits at most about
that long.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import selectors
import sys
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

_log = logging.getLogger(__name__)

SWITCH_INTERVAL = 0.0002
"""Seconds a Python thread runs before it must hand the interpreter to another one that
waits (CPython's default is 0.005). With the session, the screen and the input thread
sharing one interpreter, this bounds how long a key waits for its turn to run — at each
of the several turns on its way (the input thread after ``select`` and after ``read``,
the session's thread when woken, after the journal's insert and after the socket's
write). 0.2 ms rather than 1 ms: the cancel's slowest presses in a flood and during a
re-snapshot come down by a third to a half, at the price of the flood reaching the
screen about 15% later (more hand-overs: see the README's Performance section)."""


URGENT_POLL = 0.0005
"""While another thread holds the lock, the loop's thread runs urgent jobs this often."""
GUEST_WAIT = 0.05
"""Longest the loop waits, each time it lets go of the lock, for the other threads that
asked for it meanwhile to have had it (it does not wait at all when none asked)."""


class BookLock:
    """A re-entrant lock that the loop's thread hands over fairly.

    A plain lock is not fair: the loop lets go of it in ``select`` and, with data
    waiting, takes it back a few microseconds later, before a thread woken to take it
    has even run — a key could wait for hundreds of loop steps. Here the other threads
    ("guests") say they are waiting, and the loop, each time it lets go, waits until
    every guest that was waiting has had the lock once."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._guests = 0
        self._cv = threading.Condition(threading.Lock())

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        with self._cv:
            self._guests += 1
        try:
            return self._lock.acquire(blocking, timeout)
        finally:
            with self._cv:
                self._guests -= 1
                if not self._guests:
                    self._cv.notify_all()

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    # -- the loop's side ----------------------------------------------------------------
    def take(self, urgent: collections.deque[Callable[[], object]] | None = None) -> None:
        """The loop takes the lock back: after every guest waiting now has had it. While a
        guest holds it, ``urgent`` jobs that arrive meanwhile still run (every 0.5 ms)."""
        if self._guests:
            with self._cv:
                self._cv.wait_for(lambda: not self._guests, timeout=GUEST_WAIT)
        if urgent is None:
            self._lock.acquire()
            return
        while not self._lock.acquire(timeout=URGENT_POLL):
            run_urgent(urgent)

    def give(self) -> None:
        self._lock.release()


class LockingSelector(selectors.BaseSelector):
    """A selector that releases ``lock`` while it waits and takes it back before the
    loop runs anything. The lock must be held when :meth:`select` is called (the
    thread takes it before starting the loop)."""

    def __init__(self, lock: BookLock, urgent: collections.deque[Callable[[], object]] | None = None) -> None:
        self._inner = selectors.DefaultSelector()
        self._lock = lock
        self._urgent = urgent if urgent is not None else collections.deque()

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self._lock.give()
        try:
            if self._urgent:
                timeout = 0
            ready = self._inner.select(timeout)
            run_urgent(self._urgent)
            return ready
        finally:
            self._lock.take(self._urgent)

    def close(self) -> None:
        self._inner.close()

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.get_key(fileobj)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()


def run_urgent(urgent: collections.deque[Callable[[], object]]) -> None:
    """Run what :meth:`LoopThread.urgent` queued, oldest first (on the loop's thread,
    between two waits, without the lock)."""
    while urgent:
        job = urgent.popleft()
        try:
            job()
        except Exception:
            _log.exception("urgent job failed")


class LoopThread:
    """Runs one coroutine on a new event loop in a daemon thread, under ``lock``.

    ``on_done(error)`` is called in that thread when the coroutine ends (``error`` is
    None when it returned); :meth:`when_done` adds such a callback later. :meth:`call`
    and :meth:`submit` hand work to the loop from any other thread."""

    def __init__(
        self,
        main: Callable[[], Coroutine[Any, Any, Any]],
        lock: BookLock,
        name: str = "blotter-session",
        on_done: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self._main = main
        self.lock = lock
        self._on_done: list[Callable[[BaseException | None], None]] = [on_done] if on_done is not None else []
        self._done_lock = threading.Lock()
        self._ended = False
        self._ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._urgent: collections.deque[Callable[[], object]] = collections.deque()

    def start(self) -> None:
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        self._thread.start()
        self._ready.wait()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and self.loop is not None and not self.loop.is_closed()

    def _run(self) -> None:
        loop = asyncio.SelectorEventLoop(LockingSelector(self.lock, self._urgent))
        asyncio.set_event_loop(loop)
        self.loop = loop
        error: BaseException | None = None
        self.lock.take()
        try:
            self._ready.set()
            try:
                loop.run_until_complete(self._main())
            except BaseException as exc:  # reported to on_done; the thread ends either way
                error = exc
            finally:
                try:
                    _cancel_all(loop)
                    loop.run_until_complete(loop.shutdown_asyncgens())
                finally:
                    loop.close()
        finally:
            self.lock.give()
            with self._done_lock:
                self.error = error
                self._ended = True
                callbacks = list(self._on_done)
            for callback in callbacks:
                callback(error)

    def when_done(self, callback: Callable[[BaseException | None], None]) -> None:
        """``callback(error)`` when the coroutine ends: in the loop's thread then, or at
        once in this one when it already has (nothing is missed, nothing said twice)."""
        with self._done_lock:
            if not self._ended:
                self._on_done.append(callback)
                return
            error = self.error
        callback(error)

    def submit(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any] | None:
        """Run ``coro`` on the loop (from any thread); None, and ``coro`` closed, when the
        loop has ended."""
        loop = self.loop
        if loop is None or loop.is_closed() or not self._thread.is_alive():
            coro.close()
            return None
        try:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # closed between the check and the call
            coro.close()
            return None
        return asyncio.wrap_future(future) if _in_a_loop() else None

    @property
    def urgent_jobs(self) -> collections.deque[Callable[[], object]]:
        """The queue :meth:`urgent` fills (a reader that folds for long runs it between frames)."""
        return self._urgent

    def urgent(self, job: Callable[[], object]) -> bool:
        """Run ``job()`` on the loop's thread at its very next turn, before the loop takes
        the lock back or runs anything else (a cancel going out). ``job`` must touch only
        what that thread alone changes, and hand the rest to the loop (``call_soon``).
        False when the loop has ended."""
        loop = self.loop
        if loop is None or loop.is_closed() or not self._thread.is_alive():
            return False
        self._urgent.append(job)
        try:
            loop.call_soon_threadsafe(_wake)
        except RuntimeError:  # closed meanwhile
            return False
        return True

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)


def _wake() -> None:
    """Scheduled only to wake the loop from its wait."""


def _in_a_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def name_os_threads() -> None:
    """Give each of this process's Python threads its name at the OS level too (Linux:
    ``/proc/self/task/<tid>/comm``, 15 bytes), so ``top -H``, ``ps -L`` and a profiler
    tell the screen, the session, the journal and the terminal's threads apart. Does
    nothing where there is no such file."""
    main = threading.main_thread()
    for thread in threading.enumerate():
        tid = thread.native_id
        if tid is None or thread is main:
            continue  # the main thread's name is the process's (``pgrep blotter`` finds it)
        name = thread.name.split()[0].encode("ascii", "replace")[:15]
        try:
            with open(f"/proc/self/task/{tid}/comm", "wb") as f:
                f.write(name)
        except OSError:
            pass
