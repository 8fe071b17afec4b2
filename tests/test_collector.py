"""The collector policy (blotter/collector.py): full collections only at quiet times
(or when overdue), each followed by a freeze; never by Python's own schedule."""

from __future__ import annotations

import gc

import pytest

from blotter.collector import NEVER, Collector


@pytest.fixture
def gc_state():
    """Python's default schedule for the test (an earlier test may have left the
    process under the collector's policy), restored afterwards."""
    thresholds = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_a_big_snapshot_freezes_what_is_alive_and_stops_automatic_full_collections(gc_state):
    c = Collector()
    c.after_snapshot(10, first=False, now=0.0)  # small, not the first: nothing happens
    assert c.last_full is None and gc.get_threshold()[2] != NEVER
    frozen = gc.get_freeze_count()
    keep = [[i] for i in range(1000)]  # tracked objects alive now
    c.after_snapshot(5000, first=False, now=1.0)
    assert gc.get_freeze_count() >= frozen + len(keep)
    assert gc.get_threshold()[1:] == (NEVER, NEVER) and c.last_full == 1.0


def test_full_collections_wait_for_a_quiet_wire_or_run_when_overdue(gc_state):
    c = Collector(quiet=0.5, max_interval=15.0)
    assert not c.tick(0.0, None)  # before the first snapshot: Python's own schedule
    c.after_snapshot(0, first=True, now=0.0)
    gc.collect(0)  # something was collected young (and promoted) since the last full collection
    assert gc.get_count()[1] > 0
    assert not c.tick(10.0, last_frame_at=9.9)  # frames are flowing: not now
    assert c.full_collections == 0
    assert c.tick(10.0, last_frame_at=9.0)  # quiet for a second: now
    assert c.full_collections == 1 and c.last_full == 10.0
    assert gc.get_count()[1] == 0
    assert not c.tick(11.0, last_frame_at=None)  # nothing promoted since: nothing to do
    assert c.tick(25.0, last_frame_at=24.99)  # 15 s without one: even in a burst
    assert c.full_collections == 2


def test_a_cycle_is_collected_at_the_quiet_time(gc_state):
    c = Collector()
    c.after_snapshot(0, first=True, now=0.0)

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    import weakref

    gone = weakref.ref(a)
    gc.collect(0)  # alive: promoted out of the young generation
    del a, b
    gc.collect(0)
    assert gone() is not None  # garbage now, but a young collection does not see it
    assert c.tick(5.0, last_frame_at=1.0)
    assert gone() is None
