"""The wire tap stamps a request with the moment its bytes reached the socket (the
kernel's receive time), not with the moment its own thread got round to reading them."""

from __future__ import annotations

import os
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
