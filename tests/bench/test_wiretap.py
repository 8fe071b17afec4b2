"""The wire tap stamps a request with the moment its bytes reached the socket (the
kernel's receive time), not with the moment its own thread got round to reading them."""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import time

import orjson
import pytest

from bench.wiretap import ANCILLARY, SO_TIMESTAMPNS, Tap, arrival

linux_only = pytest.mark.skipif(not hasattr(socket, "CMSG_SPACE") or os.uname().sysname != "Linux", reason="Linux")


@linux_only
def test_arrival_is_the_kernels_receive_time_on_the_monotonic_clock():
    listener = socket.create_server(("127.0.0.1", 0))
    a = socket.create_connection(listener.getsockname())
    b, _ = listener.accept()
    listener.close()
    with a, b:
        b.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        time.sleep(0.05)  # the kernel turns receive stamps on a moment after the first ask
        sent = time.monotonic_ns()
        a.send(b"x")
        time.sleep(0.05)  # the reader comes late
        data, ancillary, _, _ = b.recvmsg(16, ANCILLARY)
        read = time.monotonic_ns()
    assert data == b"x"
    stamp = arrival(ancillary, read)
    assert sent <= stamp < sent + 20_000_000, (stamp - sent) / 1e6
    assert read - stamp >= 40_000_000


def test_arrival_falls_back_to_the_read_when_the_kernel_says_nothing_plausible():
    now = time.monotonic_ns()
    assert arrival([], now) == now
    wall = time.time_ns()
    future = wall + 5_000_000_000
    later = [(socket.SOL_SOCKET, SO_TIMESTAMPNS, struct.pack("qq", future // 10**9, future % 10**9))]
    assert arrival(later, now) == now
    stale = wall - 5_000_000_000
    old = [(socket.SOL_SOCKET, SO_TIMESTAMPNS, struct.pack("qq", stale // 10**9, stale % 10**9))]
    assert arrival(old, now) == now
    other = [(socket.SOL_SOCKET, SO_TIMESTAMPNS + 1, struct.pack("qq", wall // 10**9, wall % 10**9))]
    assert arrival(other, now) == now


def _masked_text(payload: bytes) -> bytes:
    key = b"\x01\x02\x03\x04"
    masked = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + key + masked


class _Late:
    """A socket whose second ``recvmsg`` comes 50 ms late, as a reader thread on a busy
    machine can."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.calls = 0

    def recvmsg(self, *args: int) -> tuple[bytes, list[tuple[int, int, bytes]], int, object]:
        self.calls += 1
        if self.calls == 2:
            # late from the moment the bytes are there (a sleep begun before they came would
            # make the read less late than the test says, on a busy machine)
            select.select([self.sock], [], [], 5)
            time.sleep(0.05)
        return self.sock.recvmsg(*args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.sock, name)


class _LateReader(Tap):
    def _up(self, src: socket.socket, dst: socket.socket) -> None:
        super()._up(_Late(src), dst)  # type: ignore[arg-type]


@linux_only
def test_a_request_is_stamped_when_it_reached_the_tap_even_if_the_tap_read_it_late():
    upstream = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def exchange() -> None:
        conn, _ = upstream.accept()
        with conn:
            while chunk := conn.recv(65536):
                got.append(chunk)

    threading.Thread(target=exchange, daemon=True).start()
    tap = _LateReader(upstream.getsockname())
    threading.Thread(target=tap.serve, daemon=True).start()
    client = socket.create_connection(("127.0.0.1", tap.port))
    try:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
        request = orjson.dumps({"op": "req", "action": "cancel-order", "id": "r1", "args": {"orderId": "o1"}})
        sent = time.monotonic_ns()
        client.sendall(_masked_text(request))
        while not tap.requests and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        client.close()
        tap.listener.close()
        upstream.close()
    [[stamp, action, order_id, rid, received]] = tap.requests
    assert (action, order_id, rid) == ("cancel-order", "o1", "r1")
    assert sent <= stamp < sent + 20_000_000, (stamp - sent) / 1e6
    assert received - stamp >= 40_000_000, (received - stamp) / 1e6


def _order(order_id: str, status: str, filled: str) -> bytes:
    return orjson.dumps(
        {"m": "futures-order", "sn": 1, "orderId": order_id, "sd": "Buy", "st": status, "cfq": filled, "s": "BTC-PERP"}
    )


def test_updates_handed_on_are_found_at_dump_with_the_time_of_the_read_that_completed_them():
    """The relay only keeps what it handed on; `scan` finds the tracked orders' updates,
    each stamped with the chunk its last byte came in, across cuts anywhere."""
    tap = Tap(("127.0.0.1", 9))
    tap.listener.close()
    frames = [_order(f"o{i}", "PartiallyFilled" if i % 2 else "New", str(i)) for i in range(6)]
    stream = b"".join(b"\x81~" + len(f).to_bytes(2, "big") + f for f in frames)
    cut1, cut2 = stream.index(b"o2") + 1, stream.index(b"o5") - 20  # inside o2's frame and o5's
    tracked = frozenset({b"o1", b"o2", b"o4", b"o5"})
    tap.chunks.extend([(10, stream[:cut1], tracked), (20, stream[cut1:cut2], tracked)])
    tap.scan()
    assert tap.chunks == []
    assert tap.updates == [[10, "o1", "PartiallyFilled", "1"], [20, "o2", "New", "2"], [20, "o4", "New", "4"]]
    tap.chunks.extend([(30, stream[cut2:], None), (0, b"", frozenset()), (40, stream[:cut1], None)])
    tap.scan()
    assert tap.updates[3:] == [
        [30, "o5", "PartiallyFilled", "5"],
        [40, "o0", "New", "0"],
        [40, "o1", "PartiallyFilled", "1"],
    ]


@linux_only
def test_the_relay_hands_everything_on_and_stamps_updates_when_it_handed_them_on():
    upstream = socket.create_server(("127.0.0.1", 0))
    frames = [_order(f"o{i}", "New", "0") for i in range(500)]
    stream = b"".join(b"\x81~" + len(f).to_bytes(2, "big") + f for f in frames)

    def exchange() -> None:
        conn, _ = upstream.accept()
        with conn:
            for i in range(0, len(stream), 1000):
                conn.sendall(stream[i : i + 1000])

    threading.Thread(target=exchange, daemon=True).start()
    tap = Tap(upstream.getsockname())
    tap.tracked = None
    threading.Thread(target=tap.serve, daemon=True).start()
    start = time.monotonic_ns()
    client = socket.create_connection(("127.0.0.1", tap.port))
    got = b""
    try:
        client.settimeout(5)
        while len(got) < len(stream):
            chunk = client.recv(65536)
            if not chunk:
                break
            got += chunk
    finally:
        client.close()
        tap.listener.close()
        upstream.close()
    assert got == stream
    deadline = time.monotonic() + 5
    while True:  # (the relay keeps a chunk just after handing it on: the client may have it first)
        with tap.lock:
            tap.scan()
        if len(tap.updates) >= 500 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    end = time.monotonic_ns()
    assert [u[1] for u in tap.updates] == [f"o{i}" for i in range(500)]
    stamps = [u[0] for u in tap.updates]
    assert stamps == sorted(stamps) and start <= stamps[0] and stamps[-1] <= end
