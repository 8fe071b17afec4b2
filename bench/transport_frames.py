"""Two measurements of the reader's connection (:mod:`blotter.net.transport`), run by
hand (not a test: nothing here asserts a time)::

    .venv/bin/python -m bench.transport_frames big [MB]     # one huge frame
    .venv/bin/python -m bench.transport_frames small [N]    # N small frames

``big``: a raw WebSocket server in its own process writes one text frame of MB
megabytes (an open-orders reply's size) as fast as loopback takes it; the client
runs a ticker on its loop meanwhile. Printed: the longest single call of
``data_received`` (our code, in the step asyncio's ``_read_ready`` runs), the
longest gap between two ticks (the longest loop step, asyncio's recv included),
how many reads the frame came in, and the process's RSS before and at its peak.

``small``: N frames of about 300 bytes (the order-update flood), cut into
256 KiB reads as asyncio reads them, fed to ``data_received`` of an open
connection, the queue emptied after each read. Printed: ns per frame, the median of
15 runs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import multiprocessing
import resource
import socket
import statistics
import struct
import sys
import time

from websockets.asyncio.client import connect

from blotter.net.transport import QueuedConnection

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
READ = 256 * 1024  # what asyncio's selector transport reads at a time


def frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes([0x81, n]) + payload
    if n < 65536:
        return bytes([0x81, 126]) + struct.pack("!H", n) + payload
    return bytes([0x81, 127]) + struct.pack("!Q", n) + payload


def _snapshot(mb: float) -> bytes:
    record = b'{"orderId":"a1234567890","symbol":"BTC-PERP","price":"50000.5","orderQty":"0.01","side":"Buy"},'
    return b'{"m":"futures-open-orders","data":[' + record * int(mb * 1e6 / len(record)) + b"{}]}"


def _serve(port_out: multiprocessing.connection.Connection, mb: float) -> None:
    # The frame is made here, in the server's process: the client's RSS is the reader's.
    payload = _snapshot(mb) if mb else b""
    stream = frame(payload) + frame(b"after") if mb else b""
    listener = socket.create_server(("127.0.0.1", 0))
    port_out.send((listener.getsockname()[1], hashlib.sha256(payload).digest(), len(payload)))
    conn, _ = listener.accept()
    request = b""
    while b"\r\n\r\n" not in request:
        request += conn.recv(4096)
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    time.sleep(0.2)
    conn.sendall(stream)
    conn.recv(1)  # until the client goes
    conn.close()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


class _Timed(QueuedConnection):
    took: list[float] = []

    def data_received(self, data: bytes) -> None:
        t = time.perf_counter()
        super().data_received(data)
        _Timed.took.append(time.perf_counter() - t)


async def _big(mb: float) -> None:
    mine, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(theirs, mb), daemon=True)
    server.start()
    port, digest, size = mine.recv()
    loop = asyncio.get_running_loop()
    ws = await connect(
        f"ws://127.0.0.1:{port}/", create_connection=_Timed, compression=None, ping_interval=None, max_size=2**27
    )
    assert isinstance(ws, _Timed)
    _Timed.took = []
    rss_before = _rss_mb()
    ticks = [time.perf_counter()]
    gap = [0.0]

    def tick() -> None:
        now = time.perf_counter()
        gap[0] = max(gap[0], now - ticks[-1])
        ticks.append(now)
        loop.call_soon(tick)

    loop.call_soon(tick)
    got = await asyncio.wait_for(ws.next_message(), 60)
    after = await asyncio.wait_for(ws.next_message(), 60)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    assert hashlib.sha256(got).digest() == digest and after == b"after"
    print(
        f"{size / 1e6:.1f} MB frame in {len(_Timed.took)} reads: longest data_received {max(_Timed.took) * 1e3:.2f} ms "
        f"(median {statistics.median(_Timed.took) * 1e3:.2f} ms, {sum(t > 0.005 for t in _Timed.took)} over 5 ms), "
        f"longest loop step (tick gap) {gap[0] * 1e3:.2f} ms, {len(ticks)} ticks; "
        f"RSS before {rss_before:.0f} MB, peak {peak:.0f} MB (the message itself {size / 1e6:.0f} MB)"
    )
    ws.transport.abort()
    server.kill()


async def _small(count: int) -> None:
    mine, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(theirs, 0), daemon=True)
    server.start()
    ws = await connect(
        f"ws://127.0.0.1:{mine.recv()[0]}/",
        create_connection=QueuedConnection,
        compression=None,
        ping_interval=None,
        max_size=2**20,
    )
    assert isinstance(ws, QueuedConnection)
    ws.transport.pause_reading()  # only what is fed below
    payloads = [
        b'{"m":"futures-order","ac":"FUTURES","accountId":"fut1","ap":"0","seqNum":%d,' % i
        + b'"data":{"orderId":"r%017d","s":"BTC-PERP","p":"50000.5","q":"0.01","st":"New","sd":"Buy"}}' % i
        + b"x" * (100 + i % 40)
        for i in range(count)
    ]
    stream = b"".join(frame(p) for p in payloads)
    reads = [stream[i : i + READ] for i in range(0, len(stream), READ)]
    runs = []
    for _ in range(15):
        messages = ws.messages
        got = 0
        t = time.perf_counter_ns()
        for data in reads:
            ws.data_received(data)
            got += len(messages)
            messages.clear()
        runs.append(time.perf_counter_ns() - t)
        assert got == count
    size = sum(map(len, payloads)) / count
    print(
        f"{count} frames (mean payload {size:.0f} B) in {len(reads)} reads of 256 KiB: "
        f"median {statistics.median(runs) / count:.0f} ns/frame (runs: {', '.join(f'{r / count:.0f}' for r in sorted(runs))})"
    )
    ws.transport.abort()
    server.kill()


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "big"
    if what == "big":
        asyncio.run(_big(float(sys.argv[2]) if len(sys.argv) > 2 else 57))
    else:
        asyncio.run(_small(int(sys.argv[2]) if len(sys.argv) > 2 else 100_000))
