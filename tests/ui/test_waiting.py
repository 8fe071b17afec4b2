"""An open-orders query that is never answered: the screen says it is waiting, never "open 0"."""

from __future__ import annotations

from blotter.sim import SimServer
from blotter.ui.app import make_app
from blotter.ui.settings import UiSettings
from tests.ui.conftest import desk_for, sim_config, until


async def test_the_screen_waits_visibly_for_the_open_orders():
    async with SimServer(sim_config(initial_orders=5, open_orders_fault="ignore"), port=0) as sim:
        desk = desk_for(sim.url, request_timeout=0.3, resnapshot_min_interval=0.1)
        app = make_app(desk, UiSettings(clock="utc"))
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: desk.state.name == "LIVE", what="live")
            await until(pilot, lambda: "waiting for the open orders" in str(app.status_bar.render()), what="waiting")
            status = str(app.status_bar.render())
            assert "open 0" not in status
            assert "NOT LOADED" in str(app.banner.render())
            sim.config.open_orders_fault = "none"  # asked again with backoff, and now answered
            await until(pilot, lambda: len(app.view) == 5, timeout=15, what="orders")
            await until(pilot, lambda: "open 5" in str(app.status_bar.render()), what="open 5")
            assert "NOT LOADED" not in str(app.banner.render())
