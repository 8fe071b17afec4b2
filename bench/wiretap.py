"""The wire tap: ``python -m bench.wiretap --upstream HOST:PORT``, a TCP relay in its own
process between the blotter and the simulator, that stamps what crosses it.

Why a separate process: the simulator's event loop also writes the flood, so a request
it reads is stamped only when the loop gets round to it; and a thread in the same
process waits for the GIL. Here each direction of each connection has its own thread,
which spends its time blocked in ``recv``. The client → exchange direction stamps each
chunk with the moment its bytes reached the exchange side of the socket, whatever the
simulator is doing: the kernel's own receive time (``SO_TIMESTAMPNS``, taken when the
loopback hands the segment to the socket's queue, before any process is woken),
converted to ``time.monotonic_ns()`` (``CLOCK_MONOTONIC``, the clock every process on
the machine shares). A thread woken from ``recv`` still has to be given a core and
this process's interpreter (the other direction relays the flood meanwhile): on 2
busy cores that took up to 7 ms, which the stamp of the moment ``recv`` returned
counted as the blotter's. That stamp is kept too, as each request's last field (and is
the stamp where the kernel gives none).

What is recorded:

* client → exchange: every WebSocket text frame (unmasked here) that is a request
  (``op: req``): ``[time_ns, action, orderId or null, id, recv_ns]``: ``time_ns`` when
  its bytes reached the socket (see above), ``recv_ns`` when ``recv`` returned them here;
* exchange → client, once ``track`` is on (for the orders it names, or all): each ``futures-order``
  update, ``[time_ns, orderId, st, cfq]``, stamped when its bytes were handed on to
  the client's socket ("sent by the exchange"). While the relay runs, it only keeps each
  chunk it handed on with that time; the chunks are searched for updates when ``dump``
  asks (with the same cuts as the relay's reads). Searching them as they passed cost this
  process about 0.5 s of CPU per 100,000 updates, on the cores the blotter and the
  simulator share: CPU that no exchange takes from a trader's machine.

Control on stdin/stdout, one JSON object a line: ``{"cmd": "track", "ids": [...]}``,
``{"cmd": "dump"}`` (answers ``{"requests": [...], "updates": [...]}``), ``{"cmd": "quit"}``.
The first line written is ``{"port": N}``.
"""

from __future__ import annotations

import argparse
import re
import socket
import struct
import sys
import threading
import time
from typing import Any

import orjson

UPDATE = re.compile(rb'\{"m":"futures-order"[^{}]*\}')
FIELDS = re.compile(rb'"orderId":"([^"]*)".*?"st":"([^"]*)".*?"cfq":"([^"]*)"')
CARRY = 8192
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value where Python lacks the name
ANCILLARY = socket.CMSG_SPACE(16)  # one struct timespec


def arrival(ancillary: list[tuple[int, int, bytes]], received_ns: int) -> int:
    """The kernel's receive time of a chunk (``SCM_TIMESTAMPNS``: wall clock) on the
    monotonic clock, or ``received_ns`` (when ``recv`` returned) if there is none or it
    is not plausible (after the return, or over a second before it)."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            wall = time.time_ns()
            mono = time.monotonic_ns()
            stamp = sec * 1_000_000_000 + nsec - (wall - mono)
            if received_ns - 1_000_000_000 <= stamp <= received_ns:
                return stamp
    return received_ns


class Tap:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.lock = threading.Lock()
        self.requests: list[list[Any]] = []
        self.updates: list[list[Any]] = []
        self.chunks: list[tuple[int, bytes, frozenset[bytes] | None]] = []
        """exchange → client chunks not searched yet: (time handed on, bytes, what was tracked)"""
        self._carry = b""
        self.tracked: frozenset[bytes] | None = frozenset()
        """the orders whose updates are recorded (None: all)"""
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]

    def serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client), daemon=True).start()

    # client → exchange: stamp, forward, then parse
    def _up(self, src: socket.socket, dst: socket.socket) -> None:
        buf = b""
        handshake = True
        try:
            src.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:
            pass  # no kernel stamps: each chunk is stamped when recv returns it
        try:
            while True:
                data, ancillary, _, _ = src.recvmsg(65536, ANCILLARY)
                now = time.monotonic_ns()
                if not data:
                    break
                dst.sendall(data)
                stamp = arrival(ancillary, now)
                buf += data
                if handshake:
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        continue
                    buf, handshake = buf[end + 4 :], False
                buf = self._frames(buf, stamp, now)
        except OSError:
            pass
        finally:
            _close(dst)

    def _frames(self, buf: bytes, stamp: int, now: int) -> bytes:
        while len(buf) >= 2:
            opcode = buf[0] & 0x0F
            masked = buf[1] & 0x80
            length = buf[1] & 0x7F
            at = 2
            if length == 126:
                if len(buf) < 4:
                    break
                length, at = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    break
                length, at = int.from_bytes(buf[2:10], "big"), 10
            key = b""
            if masked:
                if len(buf) < at + 4:
                    break
                key, at = buf[at : at + 4], at + 4
            if len(buf) < at + length:
                break
            payload = buf[at : at + length]
            buf = buf[at + length :]
            if opcode != 1:
                continue
            if key:
                mask = (key * (length // 4 + 1))[:length]
                payload = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(length, "big")
            try:
                msg = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if isinstance(msg, dict) and msg.get("op") == "req":
                args = msg.get("args") if isinstance(msg.get("args"), dict) else {}
                with self.lock:
                    self.requests.append([stamp, msg.get("action"), args.get("orderId"), msg.get("id"), now])
        return buf

    # exchange → client: forward, stamp, keep (searched for the tracked orders' updates at `dump`)
    def _down(self, src: socket.socket, dst: socket.socket) -> None:
        chunks = self.chunks
        kept = False
        try:
            while True:
                data = src.recv(262144)
                if not data:
                    break
                dst.sendall(data)
                tracked = self.tracked
                if tracked is not None and not tracked:
                    if kept:  # the end of a tracked stretch: nothing carries over it
                        chunks.append((0, b"", tracked))
                        kept = False
                    continue
                chunks.append((time.monotonic_ns(), data, tracked))
                kept = True
        except OSError:
            pass
        finally:
            _close(dst)

    def scan(self) -> None:
        """Search the chunks kept so far for ``futures-order`` updates (under ``lock``).
        An update is stamped with the chunk its last byte came in."""
        chunks = self.chunks
        n = len(chunks)
        carry = self._carry
        found = self.updates
        for now, data, tracked in chunks[:n]:
            if not data:
                carry = b""
                continue
            buf = carry + data
            end = 0
            for m in UPDATE.finditer(buf):
                end = m.end()
                f = FIELDS.search(m.group())
                if f is not None and (tracked is None or f.group(1) in tracked):
                    found.append([now, f.group(1).decode(), f.group(2).decode(), f.group(3).decode()])
            carry = buf[end:][-CARRY:]
        del chunks[:n]
        self._carry = carry


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(message).decode() + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the simulator")
    args = parser.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    # a reader thread that wakes must get the interpreter at once, not after 5 ms
    sys.setswitchinterval(0.0002)
    tap = Tap((host, int(port)))
    threading.Thread(target=tap.serve, daemon=True).start()
    emit({"port": tap.port})
    for line in sys.stdin:
        msg = orjson.loads(line)
        cmd = msg.get("cmd")
        if cmd == "track":
            ids = msg.get("ids")
            tap.tracked = None if ids is None else frozenset(i.encode() for i in ids)
            emit({"ok": True})
        elif cmd == "dump":
            with tap.lock:
                tap.scan()
                emit({"requests": list(tap.requests), "updates": list(tap.updates)})
        elif cmd == "quit":
            break
    tap.listener.close()


if __name__ == "__main__":
    main()
