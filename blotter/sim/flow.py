"""The order flow of "other sessions": a seeded generator of realistic order lifecycles.

Everything random comes from one :class:`random.Random` seeded by ``SimConfig.seed``,
and (with ``fixed_time_ms``) every time from a virtual :class:`~blotter.sim.book.Clock`,
so the same seed gives the same orders, ids, prices and times — which is what lets
snapshot tests and benchmarks rely on the simulator.

The generator keeps the number of open orders near the initial count: new orders
become likelier when the book is thin, fills and cancels when it is thick.
"""

from __future__ import annotations

import random
import string
from decimal import Decimal

from .book import (
    NEW,
    PENDING_NEW,
    REJECTED,
    Book,
    SimOrder,
    SymbolSpec,
    spec_for,
)

_TAIL_ALPHABET = string.ascii_letters + string.digits
_KINDS = ("new", "partial", "fill", "cancel", "trigger", "reject")
_REJECT_REASONS = (
    "Order price is too far from the market price.",
    "Insufficient margin.",
    "Order would trigger immediately.",
)


class OrderFlow:
    """Creates the initial book and then one lifecycle event per :meth:`step`.

    Each method returns the orders it changed, in the order their updates must be
    published; the caller assigns sequence numbers and sends them."""

    def __init__(self, book: Book, symbols: list[str], seed: int | None, target_open: int) -> None:
        self.book = book
        self.rng = random.Random(seed)
        self.specs: list[SymbolSpec] = [spec_for(s) for s in symbols]
        self.mids: dict[str, Decimal] = {s.symbol: s.mid for s in self.specs}
        self.target_open = target_open

    # --- building blocks -------------------------------------------------------------------

    def tail(self) -> str:
        """The 9 trailing characters of an order id that the client did not choose."""
        return "".join(self.rng.choice(_TAIL_ALPHABET) for _ in range(9))

    def _walk(self, spec: SymbolSpec) -> Decimal:
        """Move the symbol's mid price by a few basis points and return it (on tick)."""
        mid = self.mids[spec.symbol]
        bps = Decimal(self.rng.randint(-8, 8)) / Decimal(10000)
        new = (mid * (1 + bps) / spec.tick).to_integral_value() * spec.tick
        self.mids[spec.symbol] = new if new > 0 else mid
        return self.mids[spec.symbol]

    def _price_away(self, spec: SymbolSpec, side: str, mid: Decimal, lo_bps: int, hi_bps: int) -> Decimal:
        """A price on tick, between ``lo_bps`` and ``hi_bps`` away from mid on the passive side."""
        bps = Decimal(self.rng.randint(lo_bps, hi_bps)) / Decimal(10000)
        raw = mid * (1 - bps) if side == "Buy" else mid * (1 + bps)
        price = (raw / spec.tick).to_integral_value() * spec.tick
        return max(price, spec.tick)

    def make_order(self, create_ms: int, *, status: str | None = None) -> SimOrder:
        """A fresh order of another session (not yet in the book): mostly ``Limit``, some ``StopLimit``."""
        spec = self.rng.choice(self.specs)
        mid = self._walk(spec)
        side = self.rng.choice(("Buy", "Sell"))
        qty = spec.qty_step * self.rng.randint(spec.min_steps, spec.max_steps)
        if self.rng.random() < 0.15:
            # A stop order waits for the market to move against its side: buy stops above mid.
            stop = self._price_away(spec, "Sell" if side == "Buy" else "Buy", mid, 30, 300)
            limit = stop + spec.tick * 5 if side == "Buy" else max(stop - spec.tick * 5, spec.tick)
            return SimOrder(
                order_id=self.book.order_id(create_ms, self.tail()),
                symbol=spec.symbol,
                side=side,
                order_type="StopLimit",
                price=limit,
                qty=qty,
                status=status or PENDING_NEW,
                create_ms=create_ms,
                exec_ms=create_ms,
                stop_price=stop,
                stop_by="ref-px",
            )
        return SimOrder(
            order_id=self.book.order_id(create_ms, self.tail()),
            symbol=spec.symbol,
            side=side,
            order_type="Limit",
            price=self._price_away(spec, side, mid, 5, 250),
            qty=qty,
            status=status or NEW,
            create_ms=create_ms,
            exec_ms=create_ms,
        )

    def partial_qty(self, order: SimOrder) -> Decimal:
        """A fill smaller than what is left (at least one step)."""
        step = spec_for(order.symbol).qty_step
        steps_left = int(order.remaining / step)
        return step * self.rng.randint(1, max(1, steps_left - 1))

    # --- the book at start ------------------------------------------------------------------------

    def initial(self, count: int) -> list[SimOrder]:
        """``count`` open orders created during the last two hours; some already partly filled."""
        now = self.book.clock.now()
        ages = sorted((self.rng.randint(1_000, 7_200_000) for _ in range(count)), reverse=True)
        created: list[SimOrder] = []
        for age in ages:
            ct = now - age
            order = self.make_order(ct)
            order.exec_ms = ct + self.rng.randint(1, 9)
            if order.status == NEW and order.remaining > spec_for(order.symbol).qty_step and self.rng.random() < 0.15:
                order.fill(self.partial_qty(order), order.price, ct + self.rng.randint(10, 600_000))
            order.seq = self.book.next_sn()
            self.book.add(order)
            created.append(order)
        return created

    # --- one event ---------------------------------------------------------------------------------

    def step(self) -> list[SimOrder]:
        """One lifecycle event of another session; returns the changed orders (never empty).

        O(1) whatever the size of the book: the book keeps its open, working and
        pending orders in pools that are counted and drawn from directly."""
        book = self.book
        rng = self.rng
        book.clock.advance(rng.randint(40, 600))
        now = book.clock.now()
        n_open = book.open_count()
        target = max(self.target_open, 1)
        working = book.working_pool
        pending = book.pending_pool

        weights = (
            0.35 * target / max(n_open, 1),  # new
            0.30 if working else 0.0,  # partial
            0.18 * n_open / target if working else 0.0,  # fill
            0.15 * n_open / target if n_open else 0.0,  # cancel
            0.04 if pending else 0.0,  # trigger
            0.03,  # reject
        )
        kind = rng.choices(_KINDS, weights=weights)[0]

        if kind == "new":
            order = book.add(self.make_order(now))
            return [order]
        if kind == "reject":
            order = self.make_order(now, status=REJECTED)
            order.error = rng.choice(_REJECT_REASONS)
            book.add(order)
            return [order]
        if kind == "trigger":
            order = rng.choice(pending.items)
            order.trigger(now)
            book.refresh(order)
            return [order]
        if kind == "cancel":
            order = rng.choice(book.open_pool.items)
            order.cancel(now)
            book.refresh(order)
            return [order]
        order = rng.choice(working.items)
        if kind == "partial" and order.remaining > spec_for(order.symbol).qty_step:
            order.fill(self.partial_qty(order), order.price, now)
        else:
            order.fill(order.remaining, order.price, now)
        book.refresh(order)
        return [order]


__all__ = ["OrderFlow"]
