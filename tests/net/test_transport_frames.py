"""The reader's connection splits plain data frames itself (blotter/transport.py) and
hands every other frame to websockets. Here a raw TCP server writes exact bytes —
frames of every length encoding, cut at every possible place, control frames and
fragments between them, protocol violations — and the client must read exactly the
messages a WebSocket client reads, in order, or fail the connection with the code
websockets uses."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import struct

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK

from blotter.net.transport import QueuedConnection

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(payload: bytes, opcode: int = 1, fin: bool = True, rsv: int = 0, mask: bytes | None = None) -> bytes:
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def close_frame(code: int = 1000) -> bytes:
    return frame(struct.pack("!H", code), opcode=8)


class RawServer:
    """Accepts one WebSocket handshake, then writes ``chunks`` as they are (each a
    separate write, with a pause so they arrive as separate reads), and records what
    the client sends."""

    def __init__(self, chunks: list[bytes], with_response: bool = False) -> None:
        self.chunks = chunks
        self.with_response = with_response
        self.received = bytearray()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        response = (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        chunks = list(self.chunks)
        if self.with_response and chunks:
            chunks[0] = response + chunks[0]  # the response and the first frames in one write
        else:
            writer.write(response)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.002)
        try:
            while data := await asyncio.wait_for(reader.read(65536), 0.3):
                self.received += data
        except (TimeoutError, ConnectionError):
            pass
        writer.close()


async def read_all(url: str, count: int, max_size: int = 2**20) -> tuple[list[bytes], QueuedConnection]:
    ws = await connect(url, create_connection=QueuedConnection, compression=None, ping_interval=None, max_size=max_size)
    got: list[bytes] = []
    while len(got) < count:
        got.append(await asyncio.wait_for(ws.next_message(), 5))
    return got, ws  # type: ignore[return-value]


def done(ws: QueuedConnection) -> None:
    """Drop the connection at once (the raw server does not run a closing handshake)."""
    ws.transport.abort()


def cut(data: bytes, points: list[int]) -> list[bytes]:
    points = sorted(set(p for p in points if 0 < p < len(data)))
    out, last = [], 0
    for p in points + [len(data)]:
        out.append(data[last:p])
        last = p
    return out


PAYLOADS = [
    b"",
    b"x",
    b'{"m":"futures-order"}',
    b"a" * 125,
    b"b" * 126,
    b"c" * 127,
    b"d" * 65535,
    b"e" * 65536,
    b"f" * 70000,
]


async def test_every_length_encoding_cut_anywhere_arrives_whole_and_in_order():
    stream = b"".join(frame(p) for p in PAYLOADS) + frame(b"\x00\x01binary", opcode=2)
    expected = PAYLOADS + [b"\x00\x01binary"]
    rng = random.Random(7)
    boundaries = []
    offset = 0
    for p in PAYLOADS:
        boundaries += [offset + 1, offset + 2, offset + 3, offset + 4, offset + 9]
        offset += len(frame(p))
    cuttings = [boundaries, [rng.randrange(len(stream)) for _ in range(40)], [1], []]
    for points in cuttings:
        for with_response in (False, True):
            async with RawServer(cut(stream, points), with_response=with_response) as url:
                got, ws = await read_all(url, len(expected))
                assert got == expected
                done(ws)


async def test_a_frame_cut_at_every_byte_arrives_whole():
    stream = frame(b'{"m":"futures-order","orderId":"abc"}') + frame(b"z" * 300)
    for point in range(1, len(stream)):
        async with RawServer(cut(stream, [point])) as url:
            got, ws = await read_all(url, 2)
            assert got == [b'{"m":"futures-order","orderId":"abc"}', b"z" * 300]
            done(ws)


async def test_pings_between_frames_are_answered_and_order_is_kept():
    stream = frame(b"one") + frame(b"ping-1", opcode=9) + frame(b"two") + frame(b"ping-2", opcode=9) + frame(b"three")
    server = RawServer(cut(stream, [5, 11, 14]))
    async with server as url:
        got, ws = await read_all(url, 3)
        assert got == [b"one", b"two", b"three"]
        await asyncio.sleep(0.1)
        done(ws)
    # two pongs went back (masked client frames, opcode 0xA)
    assert server.received.count(bytes([0x8A])) >= 2


async def test_a_fragmented_message_is_joined_and_frames_after_it_are_read():
    stream = (
        frame(b"whole-1")
        + frame(b"frag-a,", fin=False)
        + frame(b"ping", opcode=9)
        + frame(b"frag-b,", opcode=0, fin=False)
        + frame(b"frag-c", opcode=0)
        + frame(b"whole-2")
    )
    async with RawServer(cut(stream, [3, 12, 20, 33])) as url:
        got, ws = await read_all(url, 3)
        assert got == [b"whole-1", b"frag-a,frag-b,frag-c", b"whole-2"]
        done(ws)


async def test_a_close_frame_ends_the_read_cleanly_after_the_messages_before_it():
    stream = frame(b"last words") + close_frame(1000) + frame(b"after close: never read")
    async with RawServer([stream]) as url:
        ws = await connect(url, create_connection=QueuedConnection, compression=None, ping_interval=None)
        assert await asyncio.wait_for(ws.next_message(), 5) == b"last words"
        with pytest.raises(ConnectionClosedOK):
            await asyncio.wait_for(ws.next_message(), 5)


@pytest.mark.parametrize(
    "bad, code",
    [
        pytest.param(frame(b"masked by the server", mask=b"abcd"), 1002, id="masked"),
        pytest.param(frame(b"rsv bit set", rsv=4), 1002, id="rsv"),
        pytest.param(
            frame(b"a data frame inside a fragmented message", opcode=1, fin=False) + frame(b"new text"),
            1002,
            id="text-inside-fragments",
        ),
        pytest.param(frame(b"continuation of nothing", opcode=0), 1002, id="lone-continuation"),
        pytest.param(frame(b"y" * 2000), 1009, id="too-big"),
    ],
)
async def test_protocol_violations_fail_the_connection_with_websockets_code(bad, code):
    stream = frame(b"fine") + bad + frame(b"never")
    async with RawServer(cut(stream, [len(frame(b"fine")) + 3])) as url:
        ws = await connect(url, create_connection=QueuedConnection, compression=None, ping_interval=None, max_size=1000)
        assert await asyncio.wait_for(ws.next_message(), 5) == b"fine"
        with pytest.raises(ConnectionClosedError) as caught:
            while True:
                message = await asyncio.wait_for(ws.next_message(), 5)
                assert message != b"never"
        assert caught.value.sent is not None and caught.value.sent.code == code


async def test_an_oversized_frame_is_refused_from_its_header_without_waiting_for_its_body():
    header_only = frame(b"q" * 5000)[:4]  # the header says 5000 bytes; the body never comes
    async with RawServer([frame(b"fine") + header_only]) as url:
        ws = await connect(url, create_connection=QueuedConnection, compression=None, ping_interval=None, max_size=1000)
        assert await asyncio.wait_for(ws.next_message(), 5) == b"fine"
        with pytest.raises(ConnectionClosedError) as caught:
            await asyncio.wait_for(ws.next_message(), 5)
        assert caught.value.sent is not None and caught.value.sent.code == 1009


async def test_a_big_message_in_many_reads_arrives_whole():
    big = bytes(range(256)) * 12_000  # 3 MB: a large snapshot
    stream = frame(b"before") + frame(big) + frame(b"after")
    step = len(stream) // 97
    async with RawServer(cut(stream, list(range(step, len(stream), step)))) as url:
        got, ws = await read_all(url, 3, max_size=2**22)
        assert got == [b"before", big, b"after"]
        done(ws)


@pytest.mark.parametrize("split", [1, 5, 16, 31])
async def test_a_watched_secret_cut_between_two_reads_taints_the_connection(split):
    import functools

    secret = b"kEyQ7w3Zr9LmXv2Tb8NcHs5Jd4Pf6Ga1"
    message = b'{"m":"futures-order","s":"' + secret + b'"}'
    data = frame(message)
    at = data.index(secret) + split
    async with RawServer([frame(b'{"m":"clean"}'), data[:at], data[at:]]) as url:
        ws = await connect(
            url,
            create_connection=functools.partial(QueuedConnection, watch=(secret,)),
            compression=None,
            ping_interval=None,
        )
        try:
            assert await asyncio.wait_for(ws.next_message(), 5) == b'{"m":"clean"}'
            assert not ws.tainted
            assert await asyncio.wait_for(ws.next_message(), 5) == message
            assert ws.tainted
        finally:
            done(ws)


async def test_a_backslash_taints_the_connection():
    async with RawServer([frame(b'{"m":"x","s":"\\u006bey"}')]) as url:
        ws = await connect(url, create_connection=QueuedConnection, compression=None, ping_interval=None)
        try:
            await asyncio.wait_for(ws.next_message(), 5)
            assert ws.tainted
        finally:
            done(ws)


async def test_unread_bytes_counts_what_the_socket_holds_while_reading_is_paused():
    """What the kernel holds unread (FIONREAD): the part of a backlog the session cannot
    see in its queue (the header's CATCHING UP counts it)."""
    first = frame(b"first")
    backlog = [frame(b"x" * 1000) for _ in range(200)]  # 200 kB the client will not read yet
    async with RawServer([first, b"".join(backlog)]) as url:
        ws = await connect(url, create_connection=QueuedConnection, compression=None, ping_interval=None)
        try:
            assert await asyncio.wait_for(ws.next_message(), 5) == b"first"
            ws.transport.pause_reading()
            deadline = asyncio.get_running_loop().time() + 5
            while ws.unread_bytes() < 60_000:  # (the rest may wait in the sender's buffer)
                assert asyncio.get_running_loop().time() < deadline, ws.unread_bytes()
                await asyncio.sleep(0.01)
            ws.transport.resume_reading()
            for _ in range(200):
                await asyncio.wait_for(ws.next_message(), 5)
            assert ws.unread_bytes() == 0
        finally:
            done(ws)  # type: ignore[arg-type]
