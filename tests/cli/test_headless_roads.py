"""Headless commands with the WebSocket refused and REST up (issue 13 item 4)."""

from __future__ import annotations

from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET
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


async def test_the_journal_records_a_cancel_sent_via_rest(tmp_path):
    journal = tmp_path / "audit" / "journal.sqlite3"
    async with running_sim(initial_orders=3, ws_refused=True) as sim:
        order = sim.open_orders()[0]
        code, out, err = await blotter(
            tmp_path,
            "cancel",
            "--url",
            sim.url,
            "--journal",
            str(journal),
            "--timeout",
            "3",
            "--symbol",
            order["symbol"],
            "--order-id",
            order["orderId"],
        )
        assert code == 0, out + err
    rid = next(line.split()[1] for line in out.splitlines() if "sent cancel-order" in line)
    code, history, err = await blotter(tmp_path, "journal", "--journal", str(journal), "--request-id", rid)
    assert code == 0, err
    assert rid in history and "cancel-order" in history and "REST" in history and "ACK" in history, history
    raw = b"".join(p.read_bytes() for p in journal.parent.iterdir())
    assert DEMO_API_SECRET.encode() not in raw and DEMO_API_KEY.encode() not in raw
