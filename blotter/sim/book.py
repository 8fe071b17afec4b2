"""The simulated account's orders, and how they look on the wire.

Plain Python, no I/O: :class:`Book` holds every order the account ever had, assigns
the account's sequence numbers, and renders orders in the two wire forms the
exchange uses — the short-key ``futures-order`` channel message and the long-key
record of request replies. Amounts are :class:`~decimal.Decimal` internally and
decimal strings on the wire, never floats.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from blotter.protocol.messages import CANCELED, FILLED, FINAL_STATUSES, NEW, PARTIALLY_FILLED, PENDING_NEW, REJECTED

__all__ = [
    "Book",
    "CANCELED",
    "SequenceCounter",
    "Clock",
    "FILLED",
    "OrderPool",
    "NEW",
    "SimAccount",
    "SimPosition",
    "PARTIALLY_FILLED",
    "PENDING_NEW",
    "REJECTED",
    "SimOrder",
    "SymbolSpec",
    "fmt",
    "spec_for",
]

ZERO = Decimal(0)
MAKER_FEE = Decimal("0.0002")


def fmt(value: Decimal) -> str:
    """A decimal as the exchange writes it: plain digits, no exponent, no float artefacts."""
    if value == 0:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


@dataclass(frozen=True)
class SymbolSpec:
    """Market facts for one symbol: a starting mid price, its tick and quantity step,
    and the range of order sizes (in steps) the flow generator draws from."""

    symbol: str
    mid: Decimal
    tick: Decimal
    qty_step: Decimal
    min_steps: int
    max_steps: int

    def price_text(self, price: Decimal) -> str:
        """Prices keep the tick's decimals (``64250.0``, ``0.12340``), as a price column shows them."""
        return format(price.quantize(self.tick), "f")

    def on_tick(self, price: Decimal) -> bool:
        return price > 0 and (price / self.tick) == (price / self.tick).to_integral_value()

    def on_step(self, qty: Decimal) -> bool:
        return qty > 0 and (qty / self.qty_step) == (qty / self.qty_step).to_integral_value()


_SPECS = {
    s.symbol: s
    for s in (
        SymbolSpec("BTC-PERP", Decimal("64250.0"), Decimal("0.1"), Decimal("0.0001"), 10, 5000),
        SymbolSpec("ETH-PERP", Decimal("3120.55"), Decimal("0.01"), Decimal("0.001"), 10, 5000),
        SymbolSpec("SOL-PERP", Decimal("148.325"), Decimal("0.001"), Decimal("0.01"), 10, 5000),
        SymbolSpec("XRP-PERP", Decimal("0.5234"), Decimal("0.0001"), Decimal("1"), 10, 5000),
        SymbolSpec("DOGE-PERP", Decimal("0.12345"), Decimal("0.00001"), Decimal("1"), 100, 50000),
    )
}


def spec_for(symbol: str) -> SymbolSpec:
    """The known spec, or a plain generic one for a symbol the simulator was told to trade."""
    return _SPECS.get(symbol) or SymbolSpec(symbol, Decimal("100.00"), Decimal("0.01"), Decimal("0.1"), 1, 1000)


class Clock:
    """Order times. Wall clock, or — with ``fixed_ms`` — a virtual clock that starts
    there and moves only when told, so a seeded run produces identical times."""

    def __init__(self, fixed_ms: int | None = None) -> None:
        self.fixed = fixed_ms is not None
        self._t = fixed_ms or 0

    def now(self) -> int:
        return self._t if self.fixed else time.time_ns() // 1_000_000

    def advance(self, ms: int) -> None:
        if self.fixed:
            self._t += ms


@dataclass
class SimOrder:
    """One order of the simulated account, with every field the wire forms carry."""

    order_id: str
    symbol: str
    side: str  # "Buy" | "Sell"
    order_type: str  # "Limit" | "Market" | "StopLimit" | "StopMarket"
    price: Decimal
    qty: Decimal
    status: str
    create_ms: int
    exec_ms: int
    stop_price: Decimal = ZERO
    stop_by: str = ""
    exec_inst: str = "NULL_VAL"
    filled_qty: Decimal = ZERO
    avg_price: Decimal = ZERO
    last_price: Decimal = ZERO
    last_qty: Decimal = ZERO
    fee: Decimal = ZERO
    cum_fee: Decimal = ZERO
    error: str = ""
    seq: int = -1
    history: list[str] = field(default_factory=list, repr=False)
    booked_qty: Decimal = field(default=ZERO, repr=False)
    """Filled quantity already booked into the account's position."""
    booked_notional: Decimal = field(default=ZERO, repr=False)
    """Open-order notional (price × remaining) counted in the position's boon/soon."""

    @property
    def is_open(self) -> bool:
        return self.status not in FINAL_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    def _price_text(self) -> str:
        return spec_for(self.symbol).price_text(self.price) if self.price else "0"

    def _stop_text(self) -> str:
        return spec_for(self.symbol).price_text(self.stop_price) if self.stop_price else "0"

    def to_short(self, account_id: str) -> dict[str, Any]:
        """The ``futures-order`` channel message (short keys), ``sn`` = this order's last sequence number."""
        return {
            "m": "futures-order",
            "sn": self.seq,
            "e": "ExecutionReport",
            "a": account_id,
            "ac": "FUTURES",
            "t": self.exec_ms,
            "ct": self.create_ms,
            "orderId": self.order_id,
            "sd": self.side,
            "ot": self.order_type,
            "ei": self.exec_inst,
            "q": fmt(self.qty),
            "p": self._price_text(),
            "sp": self._stop_text(),
            "spb": self.stop_by,
            "s": self.symbol,
            "st": self.status,
            "err": self.error,
            "lp": fmt(self.last_price),
            "lq": fmt(self.last_qty),
            "ap": fmt(self.avg_price),
            "cfq": fmt(self.filled_qty),
            "f": fmt(self.fee),
            "cf": fmt(self.cum_fee),
            "fa": "USDT",
        }

    def to_long(self, account_id: str, status: str | None = None) -> dict[str, Any]:
        """The long-key order record of request replies (``futures-open-orders``, 2021 ACKs);
        ``seqNum`` = this order's last sequence number."""
        return {
            "ac": "FUTURES",
            "accountId": account_id,
            "time": self.create_ms,
            "orderId": self.order_id,
            "seqNum": self.seq,
            "orderType": self.order_type,
            "execInst": self.exec_inst,
            "side": self.side,
            "symbol": self.symbol,
            "price": self._price_text(),
            "orderQty": fmt(self.qty),
            "stopPrice": self._stop_text(),
            "stopBy": self.stop_by,
            "status": status or self.status,
            "lastExecTime": self.exec_ms,
            "lastQty": fmt(self.last_qty),
            "lastPx": fmt(self.last_price),
            "avgFilledPx": fmt(self.avg_price),
            "cumFilledQty": fmt(self.filled_qty),
            "fee": fmt(self.fee),
            "cumFee": fmt(self.cum_fee),
            "feeAsset": "USDT",
            "errorCode": self.error,
            "posStopLossPrice": "0",
            "posStopLossTrigger": "market",
            "posTakeProfitPrice": "0",
            "posTakeProfitTrigger": "market",
        }

    # --- lifecycle: each mutates the order; the caller publishes it ----------------------------

    def fill(self, qty: Decimal, price: Decimal, now: int) -> None:
        """Execute ``qty`` at ``price``: cumulative qty, average price and fees stay exact."""
        assert 0 < qty <= self.remaining
        new_filled = self.filled_qty + qty
        self.avg_price = (self.avg_price * self.filled_qty + price * qty) / new_filled
        self.filled_qty = new_filled
        self.last_price = price
        self.last_qty = qty
        self.fee = price * qty * MAKER_FEE
        self.cum_fee += self.fee
        self.status = FILLED if new_filled == self.qty else PARTIALLY_FILLED
        self.exec_ms = now

    def cancel(self, now: int) -> None:
        self.status = CANCELED
        self.last_qty = ZERO
        self.last_price = ZERO
        self.fee = ZERO
        self.exec_ms = now

    def trigger(self, now: int) -> None:
        """A stop order's trigger: ``PendingNew`` becomes a working ``New`` order."""
        self.status = NEW
        self.exec_ms = now


LEVERAGE = Decimal(10)
START_BALANCE = Decimal(100_000)
AOP_PLACES = Decimal("0.000000001")
"""Average opening prices are kept to 9 decimals, as in the documented sample."""


@dataclass
class SimPosition:
    """One contract position, kept from the account's own fills (ADDENDUM §2.8, §3.3).

    ``position`` is signed (long positive); ``reference_cost`` has the opposite sign, so
    that unrealized PnL = mark price × position + reference cost. When a position is
    closed or flips side its PnL is rolled (settled) into realized PnL and the USDT
    balance, and the reference cost starts again (§2.8, ``_spec.md``)."""

    symbol: str
    position: Decimal = ZERO
    reference_cost: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    avg_open_price: Decimal = ZERO
    buy_open_notional: Decimal = ZERO
    sell_open_notional: Decimal = ZERO

    @property
    def side(self) -> str:
        return "LONG" if self.position > 0 else "SHORT" if self.position < 0 else "NULL_VAL"

    def fill(self, side: str, qty: Decimal, price: Decimal) -> Decimal:
        """Book one fill; returns the PnL rolled into the balance (0 unless the position
        closed or flipped)."""
        signed = qty if side == "Buy" else -qty
        held = self.position
        if held == 0 or (held > 0) == (signed > 0):  # opening or adding
            total = abs(held) + qty
            self.avg_open_price = ((self.avg_open_price * abs(held) + price * qty) / total).quantize(AOP_PLACES)
            self.position = held + signed
            self.reference_cost -= signed * price
            return ZERO
        closing = min(qty, abs(held))
        closing_signed = closing if signed > 0 else -closing
        self.reference_cost -= closing_signed * price
        self.position = held + closing_signed
        rolled = ZERO
        if self.position == 0:  # closed: settle
            rolled = self.reference_cost
            self.realized_pnl += rolled
            self.reference_cost = ZERO
            self.avg_open_price = ZERO
        rest = qty - closing
        if rest:  # flipped: the rest opens the other side
            self.fill(side, rest, price)
        return rolled

    def to_wire(self, mark: Decimal) -> dict[str, Any]:
        """The ``pos[]`` entry of the account snapshot and update (every documented key, §3.3)."""
        return {
            "s": self.symbol,
            "sd": self.side,
            "pos": fmt(self.position),
            "rc": fmt(self.reference_cost),
            "up": fmt(mark * self.position + self.reference_cost),
            "rp": fmt(self.realized_pnl),
            "aop": fmt(self.avg_open_price),
            "boon": fmt(self.buy_open_notional),
            "soon": fmt(self.sell_open_notional),
            "mt": "crossed",
            "iw": "0",
            "lev": fmt(LEVERAGE),
            "tp": "0",
            "tpt": "market",
            "sl": "0",
            "slt": "market",
        }


class SimAccount:
    """The futures account's collateral and positions, from its own orders: fills move
    positions and pay fees from the USDT balance; open orders make the buy and sell
    open-order notionals. Changed symbols are remembered until :meth:`take_changed`."""

    def __init__(self) -> None:
        self.balances: dict[str, Decimal] = {"USDT": START_BALANCE}
        self.discount: dict[str, Decimal] = {"USDT": Decimal(1)}
        self.positions: dict[str, SimPosition] = {}
        self._changed: list[str] = []

    def position(self, symbol: str) -> SimPosition:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = SimPosition(symbol)
        return pos

    def book(self, order: SimOrder) -> None:
        """Keep the account in step with ``order`` after it changed."""
        pos = None
        filled = order.filled_qty - order.booked_qty
        if filled > 0:
            pos = self.position(order.symbol)
            rolled = pos.fill(order.side, filled, order.last_price)
            order.booked_qty = order.filled_qty
            self.balances["USDT"] += rolled - order.fee
            if order.symbol not in self._changed:
                self._changed.append(order.symbol)
        notional = order.price * order.remaining if order.is_open else ZERO
        delta = notional - order.booked_notional
        if delta:
            pos = pos or self.position(order.symbol)
            if order.side == "Buy":
                pos.buy_open_notional += delta
            else:
                pos.sell_open_notional += delta
            order.booked_notional = notional

    def take_changed(self) -> list[str]:
        """Symbols whose position changed (a fill) since the last call."""
        changed, self._changed = self._changed, []
        return changed

    def collaterals_wire(self) -> list[dict[str, Any]]:
        """The ``col[]`` entries (§3.2): asset, balance, discount factor."""
        return [{"a": a, "b": fmt(b), "f": fmt(self.discount.get(a, Decimal(1)))} for a, b in self.balances.items()]


class OrderPool:
    """Orders to draw from at random: add, remove and pick in O(1) (swap-remove list
    plus an index), so the flow's cost per event does not grow with the book."""

    __slots__ = ("items", "_index")

    def __init__(self) -> None:
        self.items: list[SimOrder] = []
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, order: SimOrder) -> None:
        if order.order_id not in self._index:
            self._index[order.order_id] = len(self.items)
            self.items.append(order)

    def discard(self, order_id: str) -> None:
        i = self._index.pop(order_id, None)
        if i is None:
            return
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self._index[last.order_id] = i


SN_START = (18_500_000_000, 19_500_000_000)
"""Where the counter starts: live values are around 1.9e10 (ADDENDUM §3.1)."""
SN_JUMP = (1_000, 2_000_000)
"""Bounds of the step between two consecutive numbers: live captures show one account's
numbers jumping by thousands to millions between two of its events (ADDENDUM §3.1)."""
SN_FAR_JUMP = 1_000_000_000
"""The extra jump of ``skip_sn_every`` (a long quiet, another shard's traffic): far beyond
the usual steps, still only a jump, never a lost message."""


class SequenceCounter:
    """The exchange's sequence counter as live data show it (ADDENDUM §3.1): one large
    number (around 1.9e10), strictly increasing, that moves by a random step of thousands
    to millions between two events — other accounts and categories share it, so one
    account's consecutive events almost never differ by 1. ``sn`` on the order channel,
    ``seqNum`` in order records and ``sn`` on account messages all come from here.

    Seeded (its own :class:`random.Random`, so it does not disturb the order flow's
    draws): the same seed gives the same numbers. One counter serves every account of
    a simulator."""

    def __init__(self, seed: object = None, start: int | None = None) -> None:
        self._rng = random.Random(f"sn:{seed}") if seed is not None else random.Random()
        self.last = start if start is not None else self._rng.randint(*SN_START)
        self._log_lo = math.log(SN_JUMP[0])
        self._log_hi = math.log(SN_JUMP[1])

    def step(self) -> int:
        """A step of thousands to millions (log-uniform: most are small, some are large)."""
        return int(math.exp(self._rng.uniform(self._log_lo, self._log_hi)))

    def next(self, far: bool = False) -> int:
        """The next number; ``far`` adds :data:`SN_FAR_JUMP` (the ``skip_sn_every`` fault)."""
        self.last += self.step() + (SN_FAR_JUMP if far else 0)
        return self.last


class Book:
    """All orders of the one simulated account.

    Sequence numbers come from a :class:`SequenceCounter` (shared with every other
    account of the simulator): every update of any order takes the next number, and
    each order remembers the last number it was published with (``seqNum`` in
    snapshots)."""

    def __init__(self, account_id: str, user_uid: str, clock: Clock, counter: SequenceCounter | None = None) -> None:
        self.account_id = account_id
        self.user_uid = user_uid
        self.clock = clock
        self.orders: dict[str, SimOrder] = {}
        self._open: dict[str, SimOrder] = {}
        self.open_pool = OrderPool()
        """Open orders, for O(1) random picks (:attr:`_open` keeps them oldest first)."""
        self.working_pool = OrderPool()
        """Open orders that can fill (``New``, ``PartiallyFilled``)."""
        self.pending_pool = OrderPool()
        """Stop orders waiting for their trigger (``PendingNew``)."""
        self.counter = counter if counter is not None else SequenceCounter()
        self.account = SimAccount()
        """Collateral and positions, kept from this book's own fills."""

    def add(self, order: SimOrder) -> SimOrder:
        self.orders[order.order_id] = order
        self.refresh(order)
        return order

    def refresh(self, order: SimOrder) -> None:
        """Keep the open-order index and the account in step after ``order`` changed."""
        self.account.book(order)
        oid = order.order_id
        if order.is_open:
            self._open[oid] = order
            self.open_pool.add(order)
            if order.status == PENDING_NEW:
                self.pending_pool.add(order)
                self.working_pool.discard(oid)
            else:
                self.pending_pool.discard(oid)
                if order.status in (NEW, PARTIALLY_FILLED):
                    self.working_pool.add(order)
                else:
                    self.working_pool.discard(oid)
        else:
            self._open.pop(oid, None)
            self.open_pool.discard(oid)
            self.working_pool.discard(oid)
            self.pending_pool.discard(oid)

    @property
    def last_sn(self) -> int:
        """The counter's latest number (any account's)."""
        return self.counter.last

    def next_sn(self, far: bool = False) -> int:
        """The counter's next number (``far``: after an extra-long jump)."""
        return self.counter.next(far)

    def open_count(self) -> int:
        return len(self._open)

    def open_orders(self, symbol: str | None = None) -> list[SimOrder]:
        """Open orders (``New``, ``PartiallyFilled``, ``PendingNew``), oldest first."""
        orders = self._open.values()
        if symbol:
            return [o for o in orders if o.symbol == symbol]
        return list(orders)

    def order_id(self, create_ms: int, tail: str) -> str:
        """A 32-character WebSocket order id: ``s`` + creation ms in hex + user UID + 9 characters."""
        oid = f"s{create_ms:011x}{self.user_uid}{tail[-9:]:>9}"
        assert len(oid) == 32, oid
        return oid
