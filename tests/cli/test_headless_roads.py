"""Headless commands with the WebSocket refused and REST up (issue 13 item 4)."""

from __future__ import annotations

from tests.cli.test_headless import assert_no_traceback, blotter
from tests.helpers import running_sim


async def test_cancel_all_with_the_websocket_refused_verifies_through_rest(tmp_path):
    async with running_sim(initial_orders=14, ws_refused=True) as sim:
        code, out, err = await blotter(tmp_path, "cancel-all", "--url", sim.url, "--no-journal", "--timeout", "3")
        assert code == 0, out + err
        assert sim.open_orders() == []
        assert "via REST" in out and "verdict:" in out and "result: nothing left open" in out
        assert any(c.path.endswith("/order/open") for c in sim.rest.calls)
        assert_no_traceback(out, err)


async def test_cancel_with_the_websocket_refused_is_confirmed_through_rest(tmp_path):
    async with running_sim(initial_orders=4, ws_refused=True) as sim:
        order = sim.open_orders()[0]
        code, out, err = await blotter(
            tmp_path,
            "cancel",
            "--url",
            sim.url,
            "--no-journal",
            "--timeout",
            "3",
            "--symbol",
            order["symbol"],
            "--order-id",
            order["orderId"],
        )
        assert code == 0, out + err
        assert f"sent cancel-order {order['symbol']} {order['orderId']}" in out and "via REST" in out
        assert "confirmed Canceled" in out and "result: cancelled" in out
        assert order["orderId"] not in {o["orderId"] for o in sim.open_orders()}


async def test_orders_with_the_websocket_refused_lists_through_rest(tmp_path):
    async with running_sim(initial_orders=6, ws_refused=True) as sim:
        code, out, err = await blotter(tmp_path, "orders", "--url", sim.url, "--no-journal", "--timeout", "3")
        assert code == 0, out + err
        assert "6 open order(s)" in out
