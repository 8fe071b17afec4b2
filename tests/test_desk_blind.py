"""A cancel-all sent before any snapshot ("blind"): what R retries afterwards."""

from __future__ import annotations

import time

from pydantic import SecretStr

from blotter.desk import Desk, DeskSettings
from blotter.protocol import Order
from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET


def _order(oid: str, created_ms: int) -> Order:
    return Order.model_validate({"orderId": oid, "s": "BTC-PERP", "sd": "Buy", "st": "New", "sn": 1, "ct": created_ms})


def test_r_after_a_blind_cancel_all_takes_what_its_verdict_found_open_and_older_than_it():
    desk = Desk(
        DeskSettings(
            url="ws://127.0.0.1:9/1/api/pro/v2/stream",
            api_key=SecretStr(DEMO_API_KEY),
            api_secret=SecretStr(DEMO_API_SECRET),
        ),
        manage_gc=False,
    )
    t = desk.tracker.sent("ca-1", "cancel-all", 0.0, targets=set(), blind=True)
    before, after = t.sent_wall_ms - 60_000, t.sent_wall_ms + 60_000
    desk.store.apply_snapshot([_order("OLD1", before), _order("OLD2", before), _order("NEW1", after)], time.monotonic())
    desk.tracker.acked("ca-1", 0.1)
    desk.tracker.resolve_with_snapshot({"OLD1", "OLD2", "NEW1"}, now=0.2)
    latest, left = desk.cancel_all_leftovers()
    assert latest is t
    assert left == ["OLD1", "OLD2"]  # the order placed after the cancel-all is not touched
