"""The desk on a thread of its own (as the terminal runs it): the cancel key's road
(Desk.submit_cancel, from any thread), calls from another loop, the journal, and stop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

from pydantic import SecretStr

from blotter.desk import Desk, DeskSettings
from blotter.journal import Journal
from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET

from .helpers import eventually, running_sim


async def test_a_cancel_submitted_from_another_thread_is_written_tracked_and_journaled(tmp_path):
    path = tmp_path / "journal.sqlite3"
    journal = Journal.open(path)
    async with running_sim(initial_orders=8) as sim:
        desk = Desk(
            DeskSettings(url=sim.url, api_key=SecretStr(DEMO_API_KEY), api_secret=SecretStr(DEMO_API_SECRET)),
            journal=journal,
        )
        ended: list[BaseException | None] = []
        desk.start_thread(on_done=ended.append)
        try:
            assert await desk.call(desk.wait_live, 5)
            await eventually(lambda: desk.snapshot_count > 0)
            with desk.lock:
                target = next(e.order_id for e in desk.store.open_by_symbol(None))
            key_thread = threading.Thread(target=desk.submit_cancel, args=(target,))  # as the input thread does
            key_thread.start()
            key_thread.join()
            await eventually(lambda: any(f.data["args"]["orderId"] == target for f in sim.requests("cancel-order")))

            def tracked() -> bool:
                with desk.lock:
                    t = desk.tracker.cancel_for(target)
                    return t is not None and t.state.value == "confirmed"

            await eventually(tracked)
            # a second press for the same order is not sent again: the desk's own checks say why
            threading.Thread(target=desk.submit_cancel, args=(target,)).start()

            def refused() -> bool:
                with desk.lock:
                    return any(line.order_id == target and "nothing sent" in line.text for line in desk.log.lines())

            await eventually(refused)
            assert len([f for f in sim.requests("cancel-order") if f.data["args"]["orderId"] == target]) == 1
        finally:
            await desk.stop()
            await asyncio.to_thread(desk.join, 5)
        assert ended == [None]
        assert not desk.submit_cancel(target), "a cancel was taken after the desk's thread ended"
    journal.close()
    with sqlite3.connect(path) as db:
        sent = db.execute("SELECT order_id FROM frames WHERE direction = 'sent' AND action = 'cancel-order'").fetchall()
    assert [row[0] for row in sent] == [target]
