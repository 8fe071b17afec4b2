"""The order flow and the book, without sockets: determinism, id shape, exact decimals."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal

from blotter.protocol import Order
from blotter.sim import SimConfig, SimServer
from blotter.sim.book import fmt, spec_for

ORDER_ID = re.compile(r"^s[0-9a-f]{11}U\d{10}[A-Za-z0-9]{9}$")
T0 = 1_718_000_000_000


def book_of(**fields):
    return SimServer(SimConfig(**fields)).open_orders()


def test_same_seed_same_book():
    assert book_of(seed=42, fixed_time_ms=T0) == book_of(seed=42, fixed_time_ms=T0)
    assert book_of(seed=42, fixed_time_ms=T0) != book_of(seed=43, fixed_time_ms=T0)


def test_same_seed_same_book_on_the_wall_clock_except_times():
    def shape(orders):
        return [(o["symbol"], o["side"], o["price"], o["orderQty"], o["status"], o["orderId"][-9:]) for o in orders]

    assert shape(book_of(seed=5)) == shape(book_of(seed=5))


def test_same_seed_same_flow():
    def run(seed):
        sim = SimServer(SimConfig(seed=seed, fixed_time_ms=T0))
        return [o.to_short(sim.config.account_id) for _ in range(200) for o in sim.flow.step()]

    assert run(9) == run(9)


def test_initial_book_shape():
    orders = book_of(seed=1, initial_orders=40)
    assert len(orders) == 40
    assert {o["symbol"] for o in orders} == set(SimConfig().symbols)
    assert {o["status"] for o in orders} <= {"New", "PartiallyFilled", "PendingNew"}
    assert {"Limit", "StopLimit"} == {o["orderType"] for o in orders}
    assert {"Buy", "Sell"} == {o["side"] for o in orders}
    for o in orders:
        assert ORDER_ID.match(o["orderId"]), o["orderId"]
        assert Order.model_validate(o).order_id == o["orderId"]
        spec = spec_for(o["symbol"])
        assert spec.on_tick(Decimal(o["price"])) and spec.on_step(Decimal(o["orderQty"]))
        assert "e" not in o["price"].lower() and "e" not in o["orderQty"].lower()
    btc = next(o for o in orders if o["symbol"] == "BTC-PERP")
    assert re.match(r"^\d{5}\.\d$", btc["price"])
    doge = next(o for o in orders if o["symbol"] == "DOGE-PERP")
    assert re.match(r"^0\.\d{5}$", doge["price"])


def test_fixed_time_orders_have_fixed_times():
    orders = book_of(seed=3, fixed_time_ms=T0)
    assert all(o["time"] <= T0 and o["time"] > T0 - 3 * 3_600_000 for o in orders)
    assert all(int(o["orderId"][1:12], 16) == o["time"] for o in orders)


def test_fills_are_exact_and_the_book_stays_stable():
    sim = SimServer(SimConfig(seed=11, initial_orders=40))
    statuses = set()
    last_sn = sim.book.last_sn
    for _ in range(3000):
        for order in sim.flow.step():
            sim._publish(order)
            assert order.seq > last_sn
            last_sn = order.seq
            statuses.add(order.status)
            assert order.filled_qty <= order.qty
            if order.filled_qty:
                assert order.avg_price == order.price  # resting limit orders fill at their price
                assert fmt(order.filled_qty) == format(order.filled_qty.normalize(), "f")
    assert statuses >= {"New", "PartiallyFilled", "Filled", "Canceled", "Rejected", "PendingNew"}
    assert 20 <= len(sim.book.open_orders()) <= 70


def test_fmt():
    assert fmt(Decimal("0.1200")) == "0.12"
    assert fmt(Decimal("32400")) == "32400"
    assert fmt(Decimal("1E+1")) == "10"
    assert fmt(Decimal("0.00000")) == "0"


def test_import_does_not_pull_in_textual_or_rich():
    code = "import sys, blotter.sim, blotter.sim.cli; bad = [m for m in ('textual', 'rich') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.strip() == "[]"
