"""AccountState: the latest collateral and positions, from the account snapshot and updates."""

from __future__ import annotations

from decimal import Decimal

from blotter.core import AccountState
from blotter.protocol import AccountSnapshot, AccountUpdate, parse
from tests.helpers import PROTOCOL_FIXTURES


def update(sn: int | None, col=(), pos=()) -> AccountUpdate:
    data = {
        "m": "futures-account-update",
        "acc": "fut-1",
        "at": "FUTURES",
        "col": [{"a": a, "b": b, "f": "1"} for a, b in col],
        "pos": [{"s": s, "sd": "LONG" if p[0] != "-" else "SHORT", "pos": p, "rc": "0"} for s, p in pos],
    }
    if sn is not None:
        data["sn"] = sn
    return AccountUpdate.model_validate(data)


def snapshot(sn: int, col=(), pos=()) -> AccountSnapshot:
    message = update(sn, col, pos).model_dump()
    del message["kind"]
    return AccountSnapshot.model_validate(message)


def test_the_documented_snapshot_then_update():
    state = AccountState()
    snap = parse((PROTOCOL_FIXTURES / "account-snapshot-reply.json").read_bytes())
    assert isinstance(snap, AccountSnapshot)
    assert state.apply(snap, now=1.0)
    assert state.loaded and state.account_id == "futH9N59hR0BMVEjHnBleHLn0mfUl5lo"
    assert {a: c.balance for a, c in state.collaterals.items()} == {
        "ETH": Decimal("500"),
        "BTC": Decimal("100"),
        "USDT": Decimal("1000000"),
    }
    assert state.positions["BTC-PERP"].position == Decimal("0")
    upd = parse((PROTOCOL_FIXTURES / "account-update.json").read_bytes())
    assert isinstance(upd, AccountUpdate) and upd.seq > snap.seq
    assert state.apply(upd, now=2.0)
    btc = state.positions["BTC-PERP"]
    assert (btc.side, btc.position, btc.avg_open_price) == ("LONG", Decimal("0.011"), Decimal("35041.363636363"))
    assert state.collaterals["USDT"].balance == Decimal("1000000")
    assert state.collaterals["ETH"].balance == Decimal("500")  # an update changes what it lists, keeps the rest
    assert state.last_sn == 23128 and state.updated_at == 2.0


def test_updates_are_ordered_by_sn_stale_and_repeated_are_dropped():
    state = AccountState()
    state.apply(update(19_000_000_500, col=[("USDT", "100")], pos=[("BTC-PERP", "1")]), now=1.0)
    version = state.version
    assert not state.apply(update(19_000_000_500, col=[("USDT", "1")]), now=2.0)  # repeated
    assert not state.apply(update(19_000_000_100, pos=[("BTC-PERP", "-3")]), now=3.0)  # stale
    assert state.collaterals["USDT"].balance == Decimal("100") and state.positions["BTC-PERP"].position == 1
    assert state.stats.stale == 2 and state.version == version
    # a jump of millions is just the next update
    assert state.apply(update(19_004_330_927, pos=[("ETH-PERP", "-2.5")]), now=4.0)
    assert state.positions["ETH-PERP"].position == Decimal("-2.5")


def test_a_snapshot_replaces_what_is_older_and_keeps_what_is_newer():
    state = AccountState()
    state.apply(update(100, pos=[("BTC-PERP", "1"), ("SOL-PERP", "4")]), now=1.0)
    state.apply(update(300, pos=[("ETH-PERP", "2")]), now=1.0)
    # a snapshot taken at 200: SOL is gone, BTC changed; ETH (300) is newer than it
    state.apply(snapshot(200, col=[("USDT", "50")], pos=[("BTC-PERP", "0.5")]), now=2.0)
    assert set(state.positions) == {"BTC-PERP", "ETH-PERP"}
    assert state.positions["BTC-PERP"].position == Decimal("0.5") and state.positions["ETH-PERP"].position == 2
    assert state.loaded and state.stats.snapshots == 1
    # an update older than the snapshot changes nothing
    assert not state.apply(update(150, pos=[("BTC-PERP", "9")]), now=3.0)
