"""The futures account's latest collateral balances and positions.

Folded from the ``futures-account-snapshot`` reply (the whole account) and the
``futures-account-update`` channel (what changed; whether it lists every position is
not documented, so an update changes what it lists and keeps the rest). ADDENDUM
§3.2–§3.3.

Sequence numbers order the account's messages (``sn``, "strictly increasing for
each account"), and nothing more: a jump is never a gap. Each balance and each
position remembers the ``sn`` of the message that set it; a message not newer than
that is stale or repeated for it and changes nothing there. A snapshot replaces every
entry older than itself (an entry it does not list is gone) and keeps the newer ones.

Plain Python: no I/O, no asyncio. Time comes in as arguments. The screen that shows
positions comes later; this is the state it will draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from ..protocol.messages import AccountSnapshot, AccountUpdate, Collateral, Position

_Entry = TypeVar("_Entry", Collateral, Position)


@dataclass
class AccountStats:
    snapshots: int = 0
    updates: int = 0
    stale: int = 0
    """Messages that changed nothing: every entry they list was already newer (or as new)."""


def _newer(sn: int | None, known: int | None) -> bool:
    return sn is None or known is None or sn > known


class AccountState:
    """Collateral by asset and positions by symbol, each the newest the exchange sent."""

    def __init__(self) -> None:
        self.account_id: str | None = None
        self.collaterals: dict[str, Collateral] = {}
        self.positions: dict[str, Position] = {}
        self._collateral_sn: dict[str, int | None] = {}
        self._position_sn: dict[str, int | None] = {}
        self.last_sn: int | None = None
        """The highest ``sn`` folded."""
        self.loaded = False
        """A snapshot was folded (before that, only what updates said is known)."""
        self.updated_at: float | None = None
        """When something last changed (the caller's clock)."""
        self.version = 0
        """Bumped on every change: a renderer's cheap "anything new?"."""
        self.stats = AccountStats()

    def apply(self, message: AccountSnapshot | AccountUpdate, now: float) -> bool:
        """Fold one message. True when it changed something."""
        sn = message.seq
        snapshot = isinstance(message, AccountSnapshot)
        if snapshot:
            self.stats.snapshots += 1
        else:
            self.stats.updates += 1
        changed = False
        for col in message.collaterals:
            if _newer(sn, self._collateral_sn.get(col.asset)):
                self.collaterals[col.asset] = col
                self._collateral_sn[col.asset] = sn
                changed = True
        for pos in message.positions:
            if _newer(sn, self._position_sn.get(pos.symbol)):
                self.positions[pos.symbol] = pos
                self._position_sn[pos.symbol] = sn
                changed = True
        if snapshot:
            listed_assets = {c.asset for c in message.collaterals}
            listed_symbols = {p.symbol for p in message.positions}
            changed |= _drop_older(self.collaterals, self._collateral_sn, listed_assets, sn)
            changed |= _drop_older(self.positions, self._position_sn, listed_symbols, sn)
            self.loaded = True
        if message.account_id:
            self.account_id = message.account_id
        if sn is not None and (self.last_sn is None or sn > self.last_sn):
            self.last_sn = sn
        if changed:
            self.version += 1
            self.updated_at = now
        elif message.collaterals or message.positions:
            self.stats.stale += 1
        return changed


def _drop_older(entries: dict[str, _Entry], sns: dict[str, int | None], listed: set[str], sn: int | None) -> bool:
    """A snapshot's say on what it does not list: gone, unless a newer message set it."""
    gone = [key for key in entries if key not in listed and not _kept(sns.get(key), sn)]
    for key in gone:
        del entries[key]
        sns.pop(key, None)
    return bool(gone)


def _kept(entry_sn: int | None, snapshot_sn: int | None) -> bool:
    return entry_sn is not None and snapshot_sn is not None and entry_sn > snapshot_sn
