"""Chaos once more, with the whole Textual app in front of the desk.

The app runs headless (``App.run_test``) against the simulator with order flow and
every transmission fault on, while random keys are pressed: moves, ``c``, ``s``/``X``
answered yes or no, the filter, the finals toggle. Afterwards the screen must agree
with the exchange, every request must be settled, the app must never have raised,
and no secret may be on the screen."""

from __future__ import annotations

import random

from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET
from blotter.ui.screens.confirm import ConfirmScreen
from blotter.ui.settings import UiSettings
from tests.ui.conftest import running, sim_config, until

KEYS = ["down", "down", "up", "pagedown", "pageup", "home", "end", "c", "c", "c", "f", "l", "s", "X"]


async def test_the_full_app_survives_chaos_and_agrees_with_the_exchange(loop_errors, handler_failures):
    rng = random.Random(20261124)
    config = sim_config(
        initial_orders=60,
        rate=100,
        drop_every=300,
        malformed_every=97,
        skip_sn_every=53,
        repeat_sn_every=41,
        ping_interval=0.5,
    )
    async with running(
        config,
        ui=UiSettings(clock="utc"),
        size=(120, 36),
        request_timeout=1.0,
        resnapshot_min_interval=0.3,
        backoff_max=0.3,
    ) as (sim, desk, app, pilot):
        presses = 0
        for step in range(300):
            key = rng.choice(KEYS)
            if isinstance(app.screen, ConfirmScreen):
                key = rng.choice(["y", "n", "escape"])
            elif app.screen is not app.screen_stack[0]:
                key = "escape"
            # straight into the app's queue, as a terminal would: pilot.press waits for an
            # idle app, which under a 100 updates/s stream is a second per key
            app.simulate_key(key)
            presses += 1
            if step == 120:
                sim.config.refuse_cancels = 300009
            if step == 200:
                sim.config.refuse_cancels = None
                sim.config.ack_delay = 0.3
            await pilot.pause(rng.uniform(0.01, 0.05))
        # The exchange goes quiet and well-behaved; the blotter must settle on its truth.
        await pilot.pause(0.2)
        while app.screen is not app.screen_stack[0]:
            await pilot.press("escape")
        for fault in ("drop_every", "malformed_every", "skip_sn_every", "repeat_sn_every"):
            setattr(sim.config, fault, None)
        sim.config.ack_delay = 0.0
        sim.pause_flow()
        await sim.flush()
        await until(pilot, lambda: desk.state.name == "LIVE", timeout=10, what="live again")
        await until(pilot, lambda: not desk.tracker.in_flight(), timeout=10, what="requests settled")
        before = desk.snapshot_count
        await desk.refresh()
        await until(pilot, lambda: desk.snapshot_count > before, timeout=10, what="final snapshot")
        await pilot.pause(0.2)

        exchange = {o["orderId"]: (o["status"], o["cumFilledQty"]) for o in sim.open_orders()}
        blotter = {e.order_id: (e.status, format(e.order.filled_qty, "f")) for e in desk.store.open_entries()}
        assert blotter == exchange
        # …and so does the table: every open order is a row (finals toggle aside)
        app.view.set_filter("")
        app.poll(force=True)
        await pilot.pause(0.1)
        assert set(exchange) <= set(app.view.ids)
        outcomes: dict[str, int] = {}
        for t in desk.tracker.all():
            assert t.state.final, t
            outcomes[t.state.value] = outcomes.get(t.state.value, 0) + 1
        screen = app.export_screenshot()
        assert DEMO_API_SECRET not in screen and DEMO_API_KEY not in screen
        print(
            f"\nfull-app chaos: {presses} keys, {desk.counts['frames']} frames, "
            f"{desk.session.connections} connections, {desk.counts['bad_frames']} bad frames, "
            f"{desk.store.stats.stale} stale/repeated updates dropped, {desk.snapshot_count} snapshots "
            f"({len(sim.requests('futures-open-orders'))} open-orders queries), "
            f"{len(desk.tracker.all())} requests: {outcomes}"
        )
        assert app.return_code is None  # still running: nothing made it exit
    assert not handler_failures()
    loop_errors.assert_none()
