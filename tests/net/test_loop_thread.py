"""The session's own thread: a loop that holds the book lock while it works, hands it
fairly to a waiting thread, and runs urgent jobs before it takes the lock back."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import pytest

from blotter.net.loop_thread import BookLock, LoopThread, name_os_threads


def busy_loop_thread(lock: BookLock, stop: threading.Event, steps: list[int]) -> LoopThread:
    """A loop that never waits: every step is 2 ms of work under the lock, then a yield."""

    async def main() -> None:
        while not stop.is_set():
            end = time.perf_counter() + 0.002
            while time.perf_counter() < end:
                pass
            steps.append(1)
            await asyncio.sleep(0)

    return LoopThread(main, lock)


def test_a_thread_waiting_for_the_lock_gets_it_while_the_loop_never_waits():
    """Without the hand-over the loop, with work always ready, takes the lock back
    microseconds after letting it go, before the waiting thread has run."""
    lock = BookLock()
    stop = threading.Event()
    steps: list[int] = []
    thread = busy_loop_thread(lock, stop, steps)
    thread.start()
    try:
        got = 0
        held = []
        waited = []
        for _ in range(150):
            asked = len(steps)
            with lock:
                waited.append(len(steps) - asked)  # loop steps that ran while this thread waited
                got += 1
                before = len(steps)
                time.sleep(0.002)  # while a guest holds it, the loop does not run
                held.append(len(steps) - before)
            time.sleep(0.002)
        assert got == 150
        assert max(held) <= 1, held  # (a step that had started may end)
        assert max(waited) <= 3, waited  # handed over at the loop's next turn, every time
        assert len(steps) > 10
    finally:
        stop.set()
        thread.join(5)


def test_an_urgent_job_runs_at_the_next_turn_without_the_lock():
    lock = BookLock()
    stop = threading.Event()
    steps: list[int] = []
    thread = busy_loop_thread(lock, stop, steps)
    thread.start()
    ran = threading.Event()
    held_by_other = threading.Event()
    try:
        with lock:  # this thread holds the book lock: the loop cannot take it back...

            def job() -> None:
                # ...and the urgent job runs anyway, on the loop's thread, before it tries
                held_by_other.set() if not lock._lock.acquire(blocking=False) else lock._lock.release()
                ran.set()

            assert thread.urgent(job)
            assert ran.wait(5), "the urgent job did not run while another thread held the lock"
        assert held_by_other.is_set()
    finally:
        stop.set()
        thread.join(5)
    assert not thread.urgent(lambda: None), "a job was taken after the loop ended"


def test_the_loop_reports_how_it_ended():
    ended: list[BaseException | None] = []
    done = threading.Event()

    async def fails() -> None:
        raise ValueError("boom")

    thread = LoopThread(fails, BookLock(), on_done=lambda e: (ended.append(e), done.set()))
    thread.start()
    assert done.wait(5)
    assert isinstance(ended[0], ValueError)


def test_a_callback_added_later_hears_the_end_once_whenever_it_is_added():
    """The CLI starts the desk before the screen exists; the screen asks to hear of its end
    when it mounts, which may be after the end already came (a refused endpoint)."""
    release = threading.Event()

    async def waits_then_fails() -> None:
        await asyncio.to_thread(release.wait, 5)
        raise ValueError("boom")

    thread = LoopThread(waits_then_fails, BookLock())
    thread.start()
    before: list[tuple[BaseException | None, str]] = []
    thread.when_done(lambda e: before.append((e, threading.current_thread().name)))
    release.set()
    thread.join(5)
    assert len(before) == 1 and isinstance(before[0][0], ValueError)
    assert before[0][1] == "blotter-session", "told in the loop's thread as it ended"

    after: list[tuple[BaseException | None, str]] = []
    thread.when_done(lambda e: after.append((e, threading.current_thread().name)))
    assert len(after) == 1 and after[0][0] is before[0][0], "told at once, with the same error"
    assert after[0][1] == threading.current_thread().name
    assert len(before) == 1, "never told twice"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/<pid>/task/<tid>/comm is Linux's")
def test_threads_carry_their_names_to_the_os():
    """``top -H`` and a profiler tell the session, the screen and the journal apart."""
    started, release = threading.Event(), threading.Event()

    def run() -> None:
        started.set()
        release.wait(5)

    worker = threading.Thread(target=run, name="journal-writer journal.sqlite3", daemon=True)
    with open(f"/proc/self/task/{threading.main_thread().native_id}/comm") as f:
        process_name = f.read().strip()
    worker.start()
    try:
        assert started.wait(5)
        name_os_threads()
        with open(f"/proc/self/task/{worker.native_id}/comm") as f:
            assert f.read().strip() == "journal-writer"
        with open(f"/proc/self/task/{threading.main_thread().native_id}/comm") as f:
            assert f.read().strip() == process_name  # the process keeps its name
    finally:
        release.set()
        worker.join(5)
