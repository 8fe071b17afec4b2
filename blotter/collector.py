"""When Python's cyclic garbage collector may run: never in the middle of a burst.

Orders are freed by reference counting the moment an update replaces them; the
cyclic collector only finds garbage that refers to itself (a closed dialog's
widgets, a finished task with its traceback). But a *full* collection walks every
object that is not frozen — after a burst, tens of thousands of orders — and stops
the program for 50–100 ms: a cancel key pressed then waits that long.

So:

* After a big snapshot (and after the first), everything alive — the program, the
  screen, the orders — is collected young, then frozen: moved out of the collector's
  sight for good (``gc.freeze``). Reference counting still frees any of it.
* Young and middle collections run as Python decides (each walks only what was
  allocated lately: well under a millisecond).
* Full collections never run by themselves (``threshold2`` is out of reach). They run
  from the desk's housekeeping, when the wire has been **quiet** for ``quiet``
  seconds (no frame), or every ``max_interval`` seconds whatever happens; each one
  is followed by a freeze, so the next walks only what survived since.
* While the reader is **behind** (frames queued faster than it folds them: a burst),
  the collector does not run by itself at all: the burst's survivors are walked once,
  when the reader has caught up. If a burst lasts, a young collection runs from the
  housekeeping every ``young_every`` seconds.

What can be lost: a cycle that becomes garbage *after* it was frozen is never
collected (it is a few objects: a dialog open while the wire went quiet, closed later).
"""

from __future__ import annotations

import gc

FREEZE_AFTER_ORDERS = 1000
"""A snapshot this big (and the first one) freezes what is alive."""
NEVER = 1_000_000_000
"""A ``threshold2`` no count reaches: no automatic full collection."""


class Collector:
    def __init__(self, quiet: float = 0.5, max_interval: float = 60.0, young_every: float = 5.0,
                 enabled: bool = True) -> None:
        self.quiet = quiet
        self.max_interval = max_interval
        self.young_every = young_every
        self.enabled = enabled
        self.last_full: float | None = None
        self.full_collections = 0
        self.held = False
        """True while the reader is behind and automatic collection is off."""
        self._held_since: float | None = None
        self._last_young: float | None = None

    def backlog(self, behind: bool) -> None:
        """From the session's reader: it fell behind (``True``) or caught up (``False``)."""
        if not self.enabled or behind == self.held:
            return
        if behind:
            if not gc.isenabled():
                return  # someone else turned it off: leave it to them
            gc.disable()
            self.held = True
            self._held_since = self._last_young = None
        else:
            gc.enable()
            self.held = False

    def after_snapshot(self, orders: int, first: bool, now: float) -> None:
        """A snapshot was folded: what is alive now is long-lived."""
        if not self.enabled or not (first or orders >= FREEZE_AFTER_ORDERS):
            return
        gc.collect(1)
        gc.freeze()
        gen0, gen1, _ = gc.get_threshold()
        gc.set_threshold(gen0, gen1, NEVER)
        if self.last_full is None:
            self.last_full = now

    def tick(self, now: float, last_frame_at: float | None) -> bool:
        """From the housekeeping: a full collection (then a freeze) if one is due and
        the wire is quiet, or if the last one is ``max_interval`` old. True if it ran."""
        if not self.enabled or self.last_full is None:
            return False
        if self.held:
            if self._last_young is None:
                self._last_young = now
            elif now - self._last_young >= self.young_every:
                gc.collect(0)  # a long burst: young garbage must not pile up for ever
                self._last_young = now
        quiet = last_frame_at is None or now - last_frame_at >= self.quiet
        overdue = now - self.last_full >= self.max_interval
        if not overdue and not (quiet and gc.get_count()[2] > 0):
            return False
        gc.collect()
        gc.freeze()
        self.last_full = now
        self.full_collections += 1
        return True
