"""Headless ``positions`` and ``flatten``, run as real processes against the simulator."""

from __future__ import annotations

from decimal import Decimal

import orjson

from blotter.sim.book import fmt
from tests.cli.test_headless import assert_no_traceback, blotter, env_for
from tests.helpers import running_sim


def sim_positions(sim) -> dict[str, Decimal]:
    return {s: p.position for s, p in sim.book.account.positions.items() if p.position}


async def test_positions_json_is_exact(tmp_path):
    async with running_sim(initial_orders=40) as sim:
        held = sim_positions(sim)
        assert held
        code, out, err = await blotter(tmp_path, "positions", "--url", sim.url, "--no-journal", "--json")
        assert code == 0, out + err
        rows = [orjson.loads(line) for line in out.splitlines()]
        result = rows.pop()
        assert result["exit"] == 0 and result["positions"] == len(held)
        collateral = [r for r in rows if "asset" in r]
        assert collateral == [{"asset": "USDT", "balance": str(sim.book.account.balances["USDT"])}]
        positions = {r["symbol"]: r for r in rows if "symbol" in r}
        assert {s: Decimal(r["size"]) for s, r in positions.items()} == held
        for symbol, r in positions.items():
            mine = sim.book.account.positions[symbol]
            assert r["avg_open_price"] == fmt(mine.avg_open_price)  # exact, as the wire said
            assert r["side"] == ("LONG" if mine.position > 0 else "SHORT")
            assert set(r) >= {"unrealized_pnl", "realized_pnl", "leverage", "margin_type", "mark_price"}
            assert r["mark_price"]  # REST gives the mark
        code, out, err = await blotter(tmp_path, "positions", "--url", sim.url, "--no-journal")
        assert code == 0, err
        assert out.splitlines()[0].split()[:3] == ["SYMBOL", "SIDE", "SIZE"]
        assert f"{len(held)} open position(s)" in out and "USDT" in out


async def test_flatten_exit_codes(tmp_path):
    async with running_sim(initial_orders=40) as sim:
        held = sim_positions(sim)
        symbol = sorted(held)[0]
        code, out, err = await blotter(tmp_path, "flatten", "--url", sim.url, "--no-journal", "--symbol", symbol)
        assert code == 0, out + err
        assert symbol not in sim_positions(sim) and len(sim_positions(sim)) == len(held) - 1
        assert "result: flat" in out
        code, out, err = await blotter(tmp_path, "flatten", "--url", sim.url, "--no-journal", "--json")
        assert code == 0, out + err
        last = orjson.loads(out.splitlines()[-1])
        assert last["result"] == "flat" and last["exit"] == 0 and set(last["closed"]) == set(held) - {symbol}
        assert sim_positions(sim) == {}
        assert_no_traceback(out, err)


async def test_flatten_read_only_and_no_connection(tmp_path):
    async with running_sim(initial_orders=40) as sim:
        held = sim_positions(sim)
        env = env_for(tmp_path)
        env["BLOTTER_READ_ONLY"] = "1"  # headless commands take the screen options from env or file
        code, out, err = await blotter(tmp_path, "flatten", "--url", sim.url, "--no-journal", env=env)
        assert code == 1, out + err
        assert "read-only" in err and sim_positions(sim) == held
        # cancel-all too: refused here (exit 1), not a connection failure (4); nothing cancelled
        before = len(sim.open_orders())
        code, out, err = await blotter(tmp_path, "cancel-all", "--url", sim.url, "--no-journal", env=env)
        assert code == 1, out + err
        assert "read-only" in out + err and len(sim.open_orders()) == before
    env = env_for(tmp_path)
    code, out, err = await blotter(
        tmp_path, "flatten", "--url", "ws://127.0.0.1:9/1/api/pro/v2/stream", "--no-journal", "--timeout", "2", env=env
    )
    assert code == 4, out + err
    assert_no_traceback(out, err)
