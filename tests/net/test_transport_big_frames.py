"""A huge frame (an open-orders reply of 100,000 orders is about 57 MB) comes in
hundreds of reads. The loop that reads it also holds every cancel key, so no read may
be a long step: each read only copies its own bytes into the message, and the read
that completes the frame hands the message over without copying it again (measured
with tracemalloc, in bytes: nothing here times anything)."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK

from blotter.net.transport import QueuedConnection
from tests.net.test_transport_frames import RawServer, close_frame, cut, done, frame

MB = 1 << 20


class Measured(QueuedConnection):
    """Records, for each read from the socket: its size, the most memory allocated
    while it was handled (tracemalloc's peak over what was traced before it), and
    the messages it completed."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.steps: list[tuple[int, int, list[int]]] = []

    def data_received(self, data: bytes) -> None:
        before = len(self.messages)
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        super().data_received(data)
        _, peak = tracemalloc.get_traced_memory()
        self.steps.append((len(data), peak - current, [len(m) for m in list(self.messages)[before:]]))


@pytest.fixture
def traced():
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def big_payload(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + b"end"


async def test_a_24_mb_frame_in_many_reads_arrives_whole_while_the_loop_keeps_turning_and_is_copied_once(traced):
    big = big_payload(24 * MB)
    stream = frame(b"before") + frame(big) + frame(b"after")
    step = 256 * 1024 - 17  # asyncio reads 256 KiB at a time; cut anywhere in the frames
    async with RawServer(cut(stream, list(range(step, len(stream), step)))) as url:
        loop = asyncio.get_running_loop()
        turns = [0]

        def tick() -> None:
            turns[0] += 1
            loop.call_soon(tick)

        ws = await connect(url, create_connection=Measured, compression=None, ping_interval=None, max_size=32 * MB)
        assert isinstance(ws, Measured)
        loop.call_soon(tick)
        assert await asyncio.wait_for(ws.next_message(), 30) == b"before"
        turns_before = turns[0]
        got = await asyncio.wait_for(ws.next_message(), 30)
        turns_during = turns[0] - turns_before
        assert got == big
        assert await asyncio.wait_for(ws.next_message(), 30) == b"after"
        done(ws)

    reads = [s for s in ws.steps if s[0]]
    assert len(reads) > 80  # it did come in many reads
    # The loop ran other callbacks between the reads of the frame.
    assert turns_during > 80
    # The read that completed the frame allocated no copy of it (before: the pieces
    # joined, then the payload sliced out of the join: twice its size).
    (completing,) = [s for s in reads if len(big) in s[2]]
    assert completing[1] < MB, f"the last read allocated {completing[1]} bytes"
    # Over all the reads, the payload was allocated once (its own size), never copied again.
    assert sum(s[1] for s in reads) < len(big) + 2 * MB, [s[1] for s in reads if s[1] > MB]
    # And no read allocated more than the message itself.
    assert max(s[1] for s in reads) < len(big) + MB


async def test_pings_and_a_close_around_a_big_frame_in_the_same_reads():
    big = big_payload(3 * MB)
    stream = frame(b"ping-1", opcode=9) + frame(big) + frame(b"ping-2", opcode=9) + frame(b"tail") + close_frame(1000)
    server = RawServer(cut(stream, [4, 9, 100, 70_000, len(stream) - 20, len(stream) - 3]))
    async with server as url:
        ws = await connect(
            url, create_connection=QueuedConnection, compression=None, ping_interval=None, max_size=4 * MB
        )
        assert isinstance(ws, QueuedConnection)
        assert await asyncio.wait_for(ws.next_message(), 10) == big
        assert await asyncio.wait_for(ws.next_message(), 10) == b"tail"
        with pytest.raises(ConnectionClosedOK):
            await asyncio.wait_for(ws.next_message(), 10)
    assert server.received.count(bytes([0x8A])) >= 2  # both pings answered


class ClosesMidFrame(QueuedConnection):
    """Starts the closing handshake once ``at`` bytes have been read."""

    at = 0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.seen = -1  # the handshake response is not counted
        self.closing: asyncio.Task[None] | None = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.response is not None:
            self.seen += len(data) if self.seen >= 0 else 1
            if self.closing is None and self.seen >= self.at:
                self.closing = asyncio.get_running_loop().create_task(self.close())


@pytest.mark.parametrize("at", [1, 300_000, 1_500_000])
async def test_a_close_started_while_a_big_frame_is_read_hands_websockets_the_rest(at):
    # Once we have sent a close, every byte goes to websockets' own parser: it must
    # get the frame from its first byte, and the data frame still reaches the queue
    # (as websockets delivers it), then the server's close ends the handshake.
    big = big_payload(2 * MB)
    stream = frame(b"before") + frame(big) + frame(b"after") + close_frame(1000)
    step = 100_000
    ClosesMidFrame.at = at
    async with RawServer(cut(stream, list(range(7, len(stream), step)))) as url:
        ws = await connect(url, create_connection=ClosesMidFrame, compression=None, ping_interval=None, max_size=4 * MB)
        assert isinstance(ws, ClosesMidFrame)
        got = []
        with pytest.raises(ConnectionClosedOK):
            while True:
                got.append(await asyncio.wait_for(ws.next_message(), 10))
        assert got == [b"before", big, b"after"]
        assert ws.closing is not None
        await asyncio.wait_for(ws.closing, 10)
        assert ws.close_code == 1000


async def test_without_a_size_limit_a_huge_claimed_length_is_not_allocated_on_the_headers_word():
    # max_size=None (not the blotter's setting, but the class allows it): a header that
    # claims a terabyte must not make the reader allocate a terabyte (MemoryError in
    # the read, the connection lost); the pieces are kept as they come, as before.
    async with RawServer([frame(b"hello")]) as url:
        ws = await connect(url, create_connection=QueuedConnection, compression=None, ping_interval=None, max_size=None)
        assert isinstance(ws, QueuedConnection)
        assert await asyncio.wait_for(ws.next_message(), 5) == b"hello"
        ws.transport.pause_reading()  # only what is fed below
        ws.data_received(bytes([0x81, 127]) + (1 << 40).to_bytes(8, "big") + b"x" * 1000)
        ws.data_received(b"y" * 1000)
        assert not ws.messages and not ws.transport.is_closing()
        done(ws)


class Recorder:
    """A big-frame watcher that keeps what it is given (and can be made to fail)."""

    made: list[Recorder] = []
    fail_after = -1

    def __init__(self, size: int) -> None:
        self.size = size
        self.pieces: list[bytes] = []
        Recorder.made.append(self)

    def feed(self, data: bytes | memoryview) -> None:
        if len(self.pieces) == Recorder.fail_after and self is Recorder.made[0]:
            raise RuntimeError("watcher bug")
        self.pieces.append(bytes(data))

    @property
    def idle(self) -> bool:  # the second message: nothing to do with it (not kept)
        return Recorder.idle_second and self is Recorder.made[-1] and len(Recorder.made) == 2

    idle_second = False


@pytest.mark.parametrize("idle_second", [False, True])
@pytest.mark.parametrize("fail_after", [-1, 3])
async def test_a_big_frame_watcher_is_given_each_read_of_it_and_is_handed_over_with_it_once(fail_after, idle_second):
    """``big_frames``: a watcher is made for each message that does not end in the read
    its header is in, fed every piece of it in order, and handed over (once) with the
    message; one that fails is dropped and costs nothing else (the message comes whole)."""
    Recorder.made, Recorder.fail_after, Recorder.idle_second = [], fail_after, idle_second
    big, other = big_payload(3 * MB), big_payload(MB)[::-1]
    stream = frame(b"small") + frame(big) + frame(b"between") + frame(other) + frame(b"after")
    start = len(frame(b"small")) + 5
    async with RawServer(cut(stream, list(range(start, len(stream), 65_521)))) as url:
        ws = await connect(
            url,
            create_connection=lambda *a, **k: QueuedConnection(*a, big_frames=Recorder, **k),
            compression=None,
            ping_interval=None,
            max_size=4 * MB,
        )
        assert isinstance(ws, QueuedConnection)
        got = [await asyncio.wait_for(ws.next_message(), 10) for _ in range(5)]
        assert got == [b"small", big, b"between", other, b"after"]
        assert ws.watched(got[0]) is None and ws.watched(got[1]) is None  # (kept only for the latest)
        last = ws.watched(got[3])
        done(ws)
    assert [r.size for r in Recorder.made] == [len(big), len(other)]
    first, second = Recorder.made
    kept = None if idle_second else second  # an idle one is not kept with its message
    if fail_after < 0:
        assert b"".join(first.pieces) == big and b"".join(second.pieces) == other
        assert last is kept and len(second.pieces) > 10
    else:  # the first one dropped at its failure; the next one made and handed over as usual
        assert len(first.pieces) == fail_after and last is kept and b"".join(second.pieces) == other
    assert ws.watched(got[3]) is None  # once
