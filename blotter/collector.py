"""When Python's cyclic garbage collector walks the heap: never in a burst.

Orders are freed by reference counting the moment an update replaces them. The
cyclic collector is for garbage that refers to itself — and the screen makes plenty:
every line Textual draws is a ``Strip`` that caches itself, so a redraw leaves about
a thousand such objects behind. What costs is not that garbage but the walk: a
middle or full collection walks everything that survived since the last one, and a
burst leaves tens of thousands of new orders behind. On Python's own schedule a
tenth of a burst went into walking the same survivors again, and the program
stopped for 2–15 ms at a time, 50–150 ms for a full collection: a cancel key pressed
then waits that long.

So:

* After a big snapshot (and after the first), everything alive — the program, the
  screen, the orders — is collected young, then frozen: moved out of the collector's
  sight for good (``gc.freeze``). Reference counting still frees any of it.
* Young collections run as Python decides (each walks what the last 700 allocations
  left alive: well under a millisecond). Middle and full collections never run by
  themselves.
* The desk's housekeeping runs a full collection, then a freeze, when the wire has
  been quiet for ``quiet`` seconds (no frame) and anything was collected young since
  the last one, or every ``max_interval`` seconds whatever happens (the bound on the
  garbage a flow that never pauses can pile up). Each freeze means the next full
  collection walks only what survived since. After a big burst, that walk is the one
  pause left (about 60 ms for 200,000 updates), at a quiet moment.

What can be lost: a cycle that becomes garbage *after* it was frozen is never
collected (a few objects: say, a dialog open while the wire went quiet, closed later).
"""

from __future__ import annotations

import gc

FREEZE_AFTER_ORDERS = 1000
"""A snapshot this big (and the first one) freezes what is alive."""
NEVER = 1_000_000_000
"""A threshold no count reaches: no automatic middle or full collection."""


class Collector:
    def __init__(self, quiet: float = 0.5, max_interval: float = 15.0, enabled: bool = True) -> None:
        self.quiet = quiet
        self.max_interval = max_interval
        self.enabled = enabled
        self.last_full: float | None = None
        self.full_collections = 0

    def before_snapshot(self) -> None:
        """A big snapshot is about to be folded a slice at a time: no middle or full
        collection until :meth:`after_snapshot` (each would walk the orders folded so
        far, tens of milliseconds in one go, between two slices)."""
        if not self.enabled:
            return
        gen0, _, _ = gc.get_threshold()
        gc.set_threshold(gen0, NEVER, NEVER)

    def snapshot_slice(self) -> None:
        """Between two slices of a big snapshot: what the slices left alive is collected
        young and frozen now, a slice's worth at a time (under a millisecond), so that
        :meth:`after_snapshot` has only the last slice to walk, not the whole snapshot
        (50 ms for 100,000 orders)."""
        if not self.enabled:
            return
        gc.collect(1)
        gc.freeze()

    def after_snapshot(self, orders: int, first: bool, now: float) -> None:
        """A snapshot was folded: what is alive now is long-lived."""
        if not self.enabled or not (first or orders >= FREEZE_AFTER_ORDERS):
            return
        gc.collect(1)
        gc.freeze()
        gen0, _, _ = gc.get_threshold()
        gc.set_threshold(gen0, NEVER, NEVER)
        if self.last_full is None:
            self.last_full = now

    def tick(self, now: float, last_frame_at: float | None) -> bool:
        """From the housekeeping: a full collection (then a freeze) if one is due. True if it ran."""
        if not self.enabled or self.last_full is None:
            return False
        quiet = last_frame_at is None or now - last_frame_at >= self.quiet
        overdue = now - self.last_full >= self.max_interval
        if not (overdue or (quiet and gc.get_count()[1] > 0)):
            return False
        gc.collect()
        gc.freeze()
        self.last_full = now
        self.full_collections += 1
        return True
