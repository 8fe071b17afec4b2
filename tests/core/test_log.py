"""EventLog: bounded, sequence-numbered, filterable by order."""

from __future__ import annotations

from blotter.core import EventLog, LogLine


def test_add_returns_numbered_lines():
    log = EventLog()
    a = log.add("hello", wall_ms=123)
    b = log.add("world", "error", request_id="co-1", order_id="A")
    assert isinstance(a, LogLine)
    assert (a.seq, a.text, a.level, a.wall_ms, a.request_id, a.order_id) == (1, "hello", "info", 123, None, None)
    assert (b.seq, b.level, b.request_id, b.order_id) == (2, "error", "co-1", "A")
    assert log.last_seq == 2
    assert log.lines() == [a, b]
    assert b.wall_ms > 1_600_000_000_000  # defaults to the wall clock, in ms


def test_bounded_by_max_lines_keeps_newest():
    log = EventLog(max_lines=10)
    for i in range(25):
        log.add(f"line {i}")
    assert len(log) == 10
    assert [line.text for line in log.lines()] == [f"line {i}" for i in range(15, 25)]
    assert log.last_seq == 25  # numbering continues past evicted lines
    assert [line.seq for line in log.lines()] == list(range(16, 26))


def test_lines_since():
    log = EventLog()
    for i in range(5):
        log.add(f"line {i}")
    assert [line.seq for line in log.lines(since=3)] == [4, 5]
    assert log.lines(since=log.last_seq) == []
    assert len(log.lines(since=0)) == 5
    mark = log.last_seq
    log.add("new")
    assert [line.text for line in log.lines(since=mark)] == ["new"]


def test_lines_since_after_eviction():
    log = EventLog(max_lines=3)
    for i in range(6):
        log.add(f"line {i}")
    assert [line.text for line in log.lines(since=1)] == ["line 3", "line 4", "line 5"]
    assert [line.text for line in log.lines(since=5)] == ["line 5"]


def test_filter_by_order_id():
    log = EventLog()
    log.add("a1", order_id="A")
    log.add("b1", order_id="B")
    log.add("none")
    log.add("a2", order_id="A")
    assert [line.text for line in log.lines(order_id="A")] == ["a1", "a2"]
    assert [line.text for line in log.lines(order_id="B")] == ["b1"]
    assert log.lines(order_id="C") == []
    assert [line.text for line in log.lines(since=1, order_id="A")] == ["a2"]


def test_lines_are_immutable():
    import dataclasses

    import pytest

    line = EventLog().add("x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        line.text = "y"  # type: ignore[misc]
