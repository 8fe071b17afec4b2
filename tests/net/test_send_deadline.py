"""A server that stops reading must not freeze anything (issue 12, item 11).

The server here is raw TCP over loopback: it does the WebSocket handshake, answers
the first open-orders query (so the desk goes live with an order on the table),
then never reads again — and floods the client with WebSocket pings, whose pongs
(and anything the client sends) fill the socket buffers. Before: a send awaited the
socket for ever (inside the app's message loop: no key worked), the no-pong
watchdog hung in its own send, the pongs grew memory without bound, ``stop()`` hung
in the closing handshake, and ``blotter cancel-all`` never exited. Now: no send
waits, every write has a deadline, the stuck connection is dropped and replaced."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import ssl
import struct
import sys
from typing import Any, Self

import orjson
from pydantic import SecretStr

from blotter.desk import ConnState, Desk, DeskSettings
from tests.helpers import eventually

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = "kEyQ7w3Zr9LmXv2Tb8NcHs5Jd4Pf6Ga1"
SECRET = "c2VjcmV0LWZvci10ZXN0cy1vbmx5"
ORDER_ID = "s18f1a2b3c4dU1234567890stuckAAA1"
SNAPSHOT_ORDER = {
    "orderId": ORDER_ID,
    "symbol": "BTC-PERP",
    "side": "Buy",
    "orderType": "Limit",
    "price": "64000.5",
    "orderQty": "0.25",
    "cumFilledQty": "0",
    "avgFilledPx": "0",
    "status": "New",
    "seqNum": 100,
    "accountId": "futACCOUNT",
    "lastExecTime": 1_700_000_000_000,
    "time": 1_700_000_000_000,
}


def frame(payload: bytes, opcode: int = 1) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x80 | opcode, 127]) + struct.pack("!Q", n)
    return head + payload


async def read_client_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    mask = await reader.readexactly(4)
    data = await reader.readexactly(n)
    return b0 & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


class DeafServer:
    """Handshake, ``connected`` (authenticated), one open-orders reply; then never reads."""

    def __init__(self, flood: bool = True, pings: int | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.flood = flood
        self.tls = tls
        self.pings = pings
        """With ``pings``: that many, then silence (less unsent data than the client tolerates)."""
        self.connections = 0
        """WebSocket connections (an upgrade asked for): what a reconnect adds."""
        self.plain_requests = 0
        """Other HTTP requests to the same port (the desk's REST road, derived from the
        URL, once a cancel has no ACK on the stuck WebSocket): answered 503, not counted
        as connections — counting them once let a test see a "replaced" connection
        before the stuck one was even noticed."""
        self.deaf = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        if self.tls is not None:
            return f"wss://localhost:{self.port}/1/api/pro/v2/stream"
        return f"ws://127.0.0.1:{self.port}/1/api/pro/v2/stream"

    async def __aenter__(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 4096
        )  # small: it fills quickly (accepted sockets inherit it)
        sock.bind(("127.0.0.1", 0))
        self._server = await asyncio.start_server(self._handle, sock=sock, limit=1024, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def drop_all(self) -> None:
        """Abort every connection from the server's side (what unsticks a client stuck in a send)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.sleep(0.1)

    async def __aexit__(self, *exc: object) -> None:
        await self.drop_all()
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            key = next(
                (
                    line.split(b":", 1)[1].strip()
                    for line in request.split(b"\r\n")
                    if line.lower().startswith(b"sec-websocket-key:")
                ),
                None,
            )
            if key is None:
                self.plain_requests += 1
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
                return
            self.connections += 1
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            writer.write(frame(b'{"m":"connected","type":"auth"}'))
            while True:
                opcode, data = await read_client_frame(reader)
                if opcode != 1:
                    continue
                message: dict[str, Any] = orjson.loads(data)
                if message.get("action") == "futures-open-orders":
                    writer.write(
                        frame(
                            orjson.dumps(
                                {
                                    "m": "futures-open-orders",
                                    "code": 0,
                                    "id": message["id"],
                                    "ac": "FUTURES",
                                    "data": [SNAPSHOT_ORDER],
                                }
                            )
                        )
                    )
                    break
            self.deaf += 1  # from here on, nothing is read
            ping = frame(b"p" * 125, opcode=9)
            sent = 0
            while self.flood and (self.pings is None or sent < self.pings):
                writer.write(ping * 64)
                sent += 64
                await writer.drain()
                # drain() returns without a turn of the loop whenever the transport is not
                # paused: the desk under test runs on this same loop and must get its turns
                # (test_the_same_over_tls once hung here until pytest-timeout, logging in a
                # loop; a spin like this is the likely cause, not reproduced on its own)
                await asyncio.sleep(0)
            await asyncio.Event().wait()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()


def desk_for(url: str, **settings: Any) -> Desk:
    settings.setdefault("backoff_max", 0.3)
    return Desk(DeskSettings(url=url, api_key=SecretStr(KEY), api_secret=SecretStr(SECRET), **settings))


def log_text(desk: Desk) -> str:
    return "\n".join(line.text for line in desk.log.lines())


async def test_a_server_that_stops_reading_is_dropped_and_replaced_and_no_send_waits():
    async with DeafServer() as server:
        desk = desk_for(server.url, send_timeout=0.5)
        task = asyncio.create_task(desk.run())
        try:
            assert await desk.wait_live(10), desk.detail
            assert ORDER_ID in desk.store
            # Keys keep being pressed while the socket is stuck: not one of them may wait.
            sent = 0
            loop = asyncio.get_running_loop()
            give_up = loop.time() + 30
            while server.connections < 2 and loop.time() < give_up:
                await asyncio.wait_for(desk.cancel_all(), 2)
                await asyncio.wait_for(desk.refresh(), 2)
                sent += 1
                await asyncio.sleep(0.02)
            assert server.connections >= 2, "the stuck connection was never replaced"
            assert "the server stopped reading" in log_text(desk)
            assert "connection: reconnecting (attempt 1): the server stopped reading" in log_text(desk)
            # The header is not left saying LIVE on the stuck connection: it went through RECONNECTING.
            assert desk.counts["disconnects"] >= 1
            # What was in flight is reported, not silently lost.
            assert "connection lost while in flight" in log_text(desk)
            # Quitting does not wait for a closing handshake the server will never read.
            await asyncio.wait_for(desk.stop(), 5)
        finally:
            await desk.stop()
            try:
                await asyncio.wait_for(task, 10)
            except TimeoutError:
                task.cancel()
                raise


async def test_the_same_over_tls(tmp_path):
    from tests.reliability.test_transport import make_cert

    cert, key = make_cert(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    async with DeafServer(tls=tls) as server:
        desk = desk_for(server.url, send_timeout=0.5, ca_file=str(cert))
        task = asyncio.create_task(desk.run())
        try:
            assert await desk.wait_live(10), desk.detail
            loop = asyncio.get_running_loop()
            give_up = loop.time() + 30
            while server.connections < 2 and loop.time() < give_up:
                await asyncio.wait_for(desk.cancel_all(), 2)
                await asyncio.sleep(0.02)
            assert server.connections >= 2, "the stuck connection was never replaced"
            assert "the server stopped reading" in log_text(desk)
        finally:
            await asyncio.wait_for(desk.stop(), 5)
            await asyncio.wait_for(task, 10)


async def test_a_ping_flood_into_a_server_that_never_reads_does_not_grow_without_bound():
    # Nothing is sent by us at all: only websockets' automatic pongs (and our JSON pings).
    async with DeafServer() as server:
        desk = desk_for(server.url, send_timeout=0.5, ping_interval=60)
        task = asyncio.create_task(desk.run())
        try:
            assert await desk.wait_live(10), desk.detail
            await eventually(lambda: server.connections >= 2, 30)
            await eventually(lambda: "the server stopped reading" in log_text(desk), 10)
        finally:
            await asyncio.wait_for(desk.stop(), 5)
            await asyncio.wait_for(task, 10)


async def test_stop_while_the_server_does_not_read_is_bounded():
    async with DeafServer() as server:
        desk = desk_for(  # no send deadline, no watchdog, no REST repeat: only the close is left to bound
            server.url, send_timeout=30, ping_interval=60, rest_fallback_after=0, reconcile_every=0
        )
        task = asyncio.create_task(desk.run())
        try:
            assert await desk.wait_live(10), desk.detail
            await eventually(lambda: server.deaf >= 1, 10)
            for _ in range(200):  # fill what the kernel will take (or until the 1 MiB unsent cap drops it)
                if desk.state is not ConnState.LIVE:
                    break
                await asyncio.wait_for(desk.cancel_all(), 2)
            await asyncio.sleep(0.5)
        finally:
            await asyncio.wait_for(desk.stop(), 10)
            await asyncio.wait_for(task, 10)


async def test_headless_cancel_all_against_a_server_that_stops_reading_exits(tmp_path):
    async with DeafServer() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASCENDEX_")}
        env.update(
            ASCENDEX_API_KEY=KEY,
            ASCENDEX_API_SECRET=SECRET,
            HOME=str(tmp_path),
            NO_COLOR="1",
            XDG_CONFIG_HOME=str(tmp_path / "c"),
            XDG_DATA_HOME=str(tmp_path / "d"),
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "blotter",
            "cancel-all",
            "--url",
            server.url,
            "--no-journal",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 120)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError("blotter cancel-all hung against a server that stopped reading") from None
        assert proc.returncode != 0, out
        assert b"nothing left open" not in out
        assert b"Traceback" not in err


async def test_the_app_keeps_answering_keys_after_a_cancel_into_a_server_that_stops_reading():
    from blotter.ui.app import make_app
    from blotter.ui.screens.help import HelpScreen
    from blotter.ui.settings import UiSettings

    async with DeafServer() as server:
        desk = desk_for(server.url, send_timeout=30)  # the app must not need the deadline to stay alive
        app = make_app(desk, UiSettings(clock="utc"))
        async with app.run_test(size=(120, 36)):
            loop = asyncio.get_running_loop()

            async def until(predicate, timeout: float = 15.0) -> None:
                deadline = loop.time() + timeout
                while not predicate():
                    assert loop.time() < deadline, "the app stopped answering"
                    await asyncio.sleep(0.02)

            await until(lambda: desk.snapshot_count > 0 and ORDER_ID in desk.store)
            await until(lambda: server.deaf >= 1)
            await asyncio.sleep(0.5)  # the pongs of the flood fill the socket meanwhile
            try:
                app.simulate_key("c")
                await asyncio.sleep(0.2)
                app.simulate_key("question_mark")
                await until(lambda: isinstance(app.screen, HelpScreen))
                app.simulate_key("escape")
                await until(lambda: not isinstance(app.screen, HelpScreen))
                assert any("cancel" in line.text for line in desk.log.lines())
            finally:
                await server.drop_all()  # so that a frozen app (the failure) can still be shut down


async def test_the_no_pong_watchdog_is_not_stuck_in_its_own_send():
    # The send deadline is out of reach here: the watchdog alone must notice and replace the connection.
    # Pongs for 4,000 pings: enough to fill the socket, not enough to hit the unsent-data cap.
    async with DeafServer(pings=4000) as server:
        desk = desk_for(server.url, send_timeout=600, ping_interval=0.2)
        task = asyncio.create_task(desk.run())
        try:
            assert await desk.wait_live(10), desk.detail
            await eventually(lambda: server.connections >= 2, 30)
            assert "no pong for 0.4 s" in log_text(desk)
        finally:
            await asyncio.wait_for(desk.stop(), 5)
            await asyncio.wait_for(task, 10)
