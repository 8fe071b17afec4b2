"""The WebSocket connection the session reads from: websockets' own client
connection, with whole messages queued for the reader in a plain deque.

Why not ``async for message in connection``: that path hands each message over
through websockets' assembler and an awaited ``recv()``, about 2.4 µs a message
here — a third of what a bare client spends per frame, at 100,000+ frames a second
in a burst. This class keeps everything websockets does (handshake, framing, limits,
control frames, the closing handshake, TLS) and replaces only that hand-over: the
protocol's frames go straight into a deque (fragments joined first), and the reader
takes them out in a loop, waiting only when the deque is empty.

Flow control is the same idea as websockets' ``max_queue``: past ``max_queue``
whole messages waiting, the socket is no longer read until the reader has caught up
to a quarter of it.

Messages are ``bytes`` (UTF-8 for text frames, unchecked: the JSON decoder checks
it, and a frame that is not valid UTF-8 becomes a bad frame like any non-JSON).

**Plain data frames are split here.** websockets' frame parser (a generator reading
the header and payload a few bytes at a time) cost about 3 µs a frame, as much as
the rest of the reader. Once the handshake is done, :meth:`data_received` finds the
frame boundaries itself, and a frame that is a whole text or binary message —
``FIN`` set, no extension bits, not masked, within ``max_size``, no fragmented
message in progress — goes straight into the deque. Every other frame (ping, pong,
close, a fragment, anything invalid or too big) is handed to websockets whole, one
frame at a time, so websockets' parser only ever starts at a frame boundary and
does all it did before: answer pings, run the closing handshake, fail the
connection with the right code. Once the connection is no longer open, everything
goes to websockets.

**A big frame never makes a long step.** The loop that reads the socket also holds
every cancel key, and an open-orders reply of 100,000 orders is one 57 MB frame, read
256 KiB at a time. A whole-message frame that does not end in the read its header is
in becomes its message at once: a ``bytes`` of the payload's size, which each read
then writes its own bytes into (see :meth:`QueuedConnection._fill`); the read that
completes it queues it as it is. Nothing joins the pieces or slices the payload out
of them (that was two 57 MB copies in one step of 65–300 ms, and 57 MB more RSS at
the peak than the message itself).

**Every send has a deadline, and nothing waits for the socket.** websockets' ``send``
awaits until the socket drains: against a server that stops reading, for ever (its
``close`` too), and its automatic answers to pings pile up in memory meanwhile.
Here :meth:`send_text_now` writes the frame and returns at once; whatever the kernel
did not take waits in the transport's buffer, and each write that leaves bytes
there gets a deadline (``send_timeout``): if those bytes have not left the process
by then — or the buffer grows past ``max_write_buffer`` — the connection is aborted
(:class:`SendStalled` is its cause) and the session replaces it.

**Secrets coming back.** Each read from the socket is scanned for the ``watch``
needles (the API key, the signatures sent and their timestamps; see
:mod:`blotter.net.redaction`) and for a backslash (an escape could hide one). A hit
marks the connection :attr:`tainted` for good: from then on the session takes every
frame through the general path and redacts it first. One search per read, not per
frame.
"""

from __future__ import annotations

import asyncio
import io
import logging
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

try:  # (POSIX: how much the socket holds unread)
    import fcntl
    import termios
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]
    termios = None  # type: ignore[assignment]

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import State

__all__ = ["BigFrameWatch", "QueuedConnection", "SendStalled"]

log = logging.getLogger(__name__)

_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
MAX_FRAGMENTS = 10_000
"""A message in more fragments than this fails the connection (1009), as websockets does."""
_OPEN = State.OPEN
_WHOLE_TEXT, _WHOLE_BINARY = 0x81, 0x82
"""First byte of a frame that is a whole message: FIN, no RSV bits, text or binary."""
_HEADERS_END = b"\r\n\r\n"
FILL_UNLIMITED = 1 << 28
"""Without a size limit (``max_size=None``), a frame longer than this is not given its
whole size at once on its header's word: its pieces are kept as they come instead."""
MAX_WRITE_BUFFER = 1 << 20
"""Bytes waiting to be sent past which the peer is deemed not to read (our frames are small)."""


class BigFrameWatch(Protocol):
    """What looks at a big message while it arrives (:attr:`QueuedConnection.big_frames`).
    One that says it is ``idle`` once the message is whole (it had nothing to do with it)
    is not kept for :meth:`QueuedConnection.watched`."""

    def feed(self, data: bytes | memoryview) -> None: ...

    @property
    def idle(self) -> bool: ...


class SendStalled(Exception):
    """The server stopped reading: what we sent did not leave within the deadline.
    The message is one line for the screen."""


class QueuedConnection(ClientConnection):
    """A :class:`~websockets.asyncio.client.ClientConnection` whose messages are read
    with :meth:`wait_messages` and the :attr:`messages` deque (or :meth:`next_message`),
    never with ``recv()``."""

    def __init__(
        self,
        *args: Any,
        send_timeout: float | None = None,
        watch: tuple[bytes, ...] = (),
        max_write_buffer: int = MAX_WRITE_BUFFER,
        big_frames: Callable[[int], BigFrameWatch] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.big_frames = big_frames
        """Made (with the payload's size) for each whole message that does not end in
        the read its header is in, and given each read of it as it arrives (see the
        module's docstring); None: nothing looks at a big message before it is whole."""
        self._big_watch: BigFrameWatch | None = None
        self._big_watched: tuple[bytes, BigFrameWatch] | None = None
        self.send_timeout = send_timeout
        """Seconds within which every byte written must leave the process (None: no deadline)."""
        self.max_write_buffer = max_write_buffer
        self.stalled: str | None = None
        """Why the connection was aborted for not draining (None while it drains)."""
        self._written = 0
        """Bytes handed to the transport in all; minus its buffer: bytes that have left."""
        self._deadlines: deque[tuple[float, int]] = deque()
        """(loop time, bytes that must have left by then), oldest first."""
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._needles = watch
        self._longest = max(map(len, watch), default=1)
        self._tail = b""
        self.tainted = False
        """A read from the socket held a watched secret (or an escape): redact every frame."""
        self.messages: deque[bytes] = deque()
        self._fragments: list[bytes] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._read_paused = False
        self._fionread_fd: int | None = None if fcntl is not None else -1
        self._pushed = 0
        self._chunks: deque[tuple[int, int]] = deque()
        """(index of the first message completed by a read from the socket, its time_ns)."""
        self._handshake = bytearray()
        """What came in before the handshake response was complete (only its tail is looked at)."""
        self._partial: list[bytes] = []
        """The start of a frame whose end has not arrived yet, as read (joined once complete),
        when it is not a whole message whose header is complete (see ``_filling``)."""
        self._partial_size = 0
        self._partial_need = 0
        """Bytes the incomplete frame needs in all (0: its header is not complete yet)."""
        self._filling: io.BytesIO | None = None
        """The payload of a whole-message frame whose end has not arrived yet, written into
        the message itself as each read comes (see :meth:`_fill`)."""
        self._fill_left = 0
        """Payload bytes the message in ``_filling`` still needs."""
        self._fill_head = b""
        """That frame's header, as read (for websockets, should the connection stop being open)."""

    # -- the protocol's side: frames in ------------------------------------------------
    def watch(self, needles: tuple[bytes, ...]) -> None:
        """Scan what is read from now on for ``needles`` (they replace the previous ones)."""
        self._needles = needles
        self._longest = max(map(len, needles), default=1)

    def _scan(self, data: bytes) -> None:
        # A needle cut between two reads is found in the joined edges.
        longest = self._longest
        edge = self._tail + data[:longest]
        if b"\\" in data or any(n in data or n in edge for n in self._needles):
            self.tainted = True
        self._tail = data[-longest:]

    def data_received(self, data: bytes) -> None:
        if not self.tainted:
            self._scan(data)
        chunks = self._chunks
        head = self._pushed - len(self.messages)
        while len(chunks) > 1 and chunks[1][0] <= head:
            chunks.popleft()
        chunks.append((self._pushed, time.time_ns()))
        if self.response is None:
            # The handshake: websockets reads the response; hand it exactly the
            # response's bytes, so that what follows is split here from a frame boundary.
            seen = self._handshake
            before = len(seen)
            seen += data
            end = seen.find(_HEADERS_END, max(0, before - 3))
            if end < 0:
                if len(seen) > 65536:  # websockets refuses such a response itself
                    self._handshake = bytearray()
                super().data_received(data)
                return
            cut = end + 4 - before
            self._handshake = bytearray()
            super().data_received(data[:cut])
            data = data[cut:]
            if not data:
                return
            if self.response is None or self.protocol.state is not _OPEN:
                super().data_received(data)  # refused, or a body: websockets' business
                return
        elif self.protocol.state is not _OPEN:
            if self._filling is not None:
                data = self._take_filling() + data
            elif self._partial:
                data = self._take_partial(data)
            super().data_received(data)
            return
        if self._filling is not None:
            left = self._fill_left
            if len(data) <= left:
                self._fill(data)
                return
            self._fill(memoryview(data)[:left])
            self._split(data, left)
            return
        if self._partial:
            self._partial.append(data)
            self._partial_size += len(data)
            if self._partial_size < self._partial_need:
                return
            data = self._take_partial(b"")
        self._split(data)

    def _take_partial(self, data: bytes) -> bytes:
        whole = b"".join(self._partial) + data
        self._partial = []
        self._partial_size = self._partial_need = 0
        return whole

    def _fill(self, data: bytes | memoryview) -> None:
        """Write the next piece of the message being filled; queue it once complete.

        The message is an :class:`io.BytesIO` made over a zeroed ``bytes`` of the
        payload's size (``bytes(n)`` is calloc'd: no pass over the memory) that nothing
        else refers to, so CPython writes each read into that very ``bytes`` object, and
        ``getvalue()`` at the end returns it without a copy. A 57 MB payload is thus
        copied once, a read at a time (each read: its own bytes), and the read that
        completes it costs what a small frame costs. (Were CPython to copy in
        ``getvalue``, the message would still be right, only slower:
        tests/net/test_transport_big_frames.py measures it.)"""
        message = self._filling
        assert message is not None
        message.write(data)
        watch = self._big_watch
        if watch is not None:
            try:
                watch.feed(data)
            except Exception:  # a watcher never costs the connection: the message is whole anyway
                log.exception("big frame watcher failed")
                watch = self._big_watch = None
        left = self._fill_left - len(data)
        self._fill_left = left
        if not left:
            self._filling = None
            self._fill_head = b""
            value = message.getvalue()
            if watch is not None:
                self._big_watch = None
                # kept (with the message) only until the reader asks: see watched()
                self._big_watched = None if watch.idle else (value, watch)
            self._push(value)

    def watched(self, message: bytes) -> BigFrameWatch | None:
        """The watcher that saw ``message`` arrive (once), or None. The reader asks for
        every big message it takes, whatever it does with it: until then the connection
        holds the message (and what its watcher kept)."""
        watched = self._big_watched
        if watched is None or watched[0] is not message:
            return None
        self._big_watched = None
        return watched[1]

    def _take_filling(self) -> bytes:
        """The frame being filled as read so far, header included; filling stops."""
        message = self._filling
        assert message is not None
        self._filling = None
        self._big_watch = None
        so_far = message.tell()
        head, self._fill_head = self._fill_head, b""
        return head + message.getvalue()[:so_far]

    def _split(self, data: bytes, pos: int = 0) -> None:
        """Queue the whole-message frames in ``data`` from ``pos``; hand any other
        complete frame to websockets; keep an incomplete one for the next reads."""
        messages = self.messages
        limit = self.protocol.max_message_size
        n = len(data)
        pushed = 0
        need = 0  # bytes the incomplete frame at ``pos`` needs in all, once its header is read
        while pos + 2 <= n:
            b0 = data[pos]
            length = data[pos + 1]
            header = 2
            if length & 0x80:  # masked: a server must not; websockets says so
                header += 4
                length &= 0x7F
            if length == 126:
                if pos + 4 > n:
                    break
                length = data[pos + 2] << 8 | data[pos + 3]
                header += 2
            elif length == 127:
                if pos + 10 > n:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                header += 8
            end = pos + header + length
            fast = (
                (b0 == _WHOLE_TEXT or b0 == _WHOLE_BINARY)
                and header <= 10
                and not data[pos + 1] & 0x80
                and (limit is None or length <= limit)
                and self._fragments is None
            )
            if fast:
                if end <= n:
                    messages.append(data[pos + header : end])
                    pushed += 1
                    pos = end
                    continue
                if limit is not None or length <= FILL_UNLIMITED:
                    # A whole message whose end is in later reads: filled in place from now on.
                    if pushed:
                        self._pushed += pushed
                        self._wake()
                    self._fill_head = data[pos : pos + header]
                    self._filling = io.BytesIO(bytes(length))
                    self._fill_left = length
                    if self.big_frames is not None:
                        self._big_watch = self.big_frames(length)
                    self._fill(memoryview(data)[pos + header :])
                    return
            if end > n:
                need = end - pos
            if pushed:
                self._pushed += pushed
                pushed = 0
                self._wake()
            if limit is not None and length > limit:
                # too big: websockets fails the connection (1009) as soon as it reads the header
                super().data_received(data[pos:])
                return
            if end > n:
                break
            super().data_received(data[pos:end])  # one whole frame: websockets' own handling
            pos = end
            if self.protocol.state is not _OPEN:
                if pos < n:
                    super().data_received(data[pos:])
                return
        if pushed:
            self._pushed += pushed
            self._wake()
        if pos < n:
            rest = data[pos:]
            self._partial = [rest]
            self._partial_size = len(rest)
            self._partial_need = need

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if not self._read_paused and len(self.messages) >= self.max_queue_high_water:
            self._read_paused = True
            self.transport.pause_reading()

    def process_event(self, event: Any) -> None:
        if self.response is None or type(event) is not Frame:
            super().process_event(event)  # the handshake response
            return
        opcode = event.opcode
        if opcode is _TEXT or opcode is _BINARY:
            if event.fin:
                self._push(bytes(event.data))
            else:
                self._fragments = [bytes(event.data)]
        elif opcode is _CONT:
            fragments = self._fragments
            if fragments is None:  # the protocol rejects this itself; never here
                return
            fragments.append(bytes(event.data))
            if event.fin:
                self._fragments = None
                self._push(b"".join(fragments))
            elif len(fragments) > MAX_FRAGMENTS:
                self._fragments = None
                self.protocol.fail(1009, "too many fragments")
                self.send_data()
        else:
            super().process_event(event)  # ping, pong, close: websockets' own handling

    def _push(self, message: bytes) -> None:
        self.messages.append(message)
        self._pushed += 1
        self._wake()

    @property
    def max_queue_high_water(self) -> int:
        return self.max_queue_high or 4096

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        self._deadlines.clear()
        super().connection_lost(exc)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- frames out: never waiting, always with a deadline ----------------------------------
    def send_text_now(self, text: str) -> bool:
        """Write one text frame and return at once (False, nothing written, when the
        connection is not open). What the socket does not take at once has
        ``send_timeout`` to leave, or the connection is aborted."""
        if self.protocol.state is not _OPEN or self.stalled is not None or self.transport.is_closing():
            return False
        self.protocol.send_text(text.encode())
        self.send_data()
        return True

    def send_data(self) -> None:
        # websockets' own send_data (this is where its automatic pongs and the closing
        # handshake are written too), counting the bytes, then the deadline check.
        transport = self.transport
        for data in self.protocol.data_to_send():
            if data:
                transport.write(data)
                self._written += len(data)
            elif transport.can_write_eof():  # half-close after the closing handshake (no TLS)
                try:
                    transport.write_eof()
                except Exception:
                    pass
            else:
                transport.close()
        if self.send_timeout is not None and transport.get_write_buffer_size():
            self._backlogged()

    def _backlogged(self) -> None:
        backlog = self.transport.get_write_buffer_size()
        if backlog > self.max_write_buffer:
            self._stall(f"{backlog // 1024} KiB waiting to be sent")
            return
        assert self.send_timeout is not None
        deadline = self.loop.time() + self.send_timeout
        deadlines = self._deadlines
        if deadlines and deadlines[-1][0] > deadline - 0.05:
            deadlines[-1] = (deadlines[-1][0], self._written)  # a burst of writes: one deadline
        else:
            deadlines.append((deadline, self._written))
        if self._deadline_timer is None:
            self._deadline_timer = self.loop.call_at(deadlines[0][0], self._check_deadlines)

    def _check_deadlines(self) -> None:
        self._deadline_timer = None
        if self.transport.is_closing():
            self._deadlines.clear()
            return
        left = self._written - self.transport.get_write_buffer_size()
        deadlines = self._deadlines
        while deadlines and deadlines[0][1] <= left:
            deadlines.popleft()
        if not deadlines:
            return
        if deadlines[0][0] <= self.loop.time():
            self._stall(f"nothing sent could leave for {self.send_timeout:g} s")
            return
        self._deadline_timer = self.loop.call_at(deadlines[0][0], self._check_deadlines)

    def _stall(self, why: str) -> None:
        if self.stalled is not None:
            return
        self.stalled = f"the server stopped reading ({why}); connection dropped"
        self.set_connection_exc(SendStalled(self.stalled))
        self.transport.abort()

    # -- the reader's side: messages out --------------------------------------------------
    def head_arrival_ns(self) -> int:
        """``time.time_ns()`` when the message at the head of the queue came off the
        socket (the read that completed it)."""
        chunks = self._chunks
        head = self._pushed - len(self.messages)
        while len(chunks) > 1 and chunks[1][0] <= head:
            chunks.popleft()
        return chunks[0][1] if chunks else time.time_ns()

    def unread_bytes(self) -> int:
        """Bytes the kernel holds for this socket that were not read yet (``FIONREAD``;
        0 where that cannot be asked): the part of a backlog that is not in ``messages``."""
        if self._fionread_fd is None:
            sock = self.transport.get_extra_info("socket")
            self._fionread_fd = sock.fileno() if sock is not None else -1
        fd = self._fionread_fd
        if fd < 0:
            return 0
        try:
            return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])
        except (OSError, ValueError):
            self._fionread_fd = -1
            return 0

    @property
    def read_paused(self) -> bool:
        """Reading stopped: the reader has ``max_queue`` messages left to take out (it is
        behind the wire; the rest waits in the socket)."""
        return self._read_paused

    def caught_up(self) -> None:
        """The reader took messages out: read the socket again once few are left."""
        if self._read_paused and len(self.messages) <= self.max_queue_high_water // 4:
            self._read_paused = False
            if not self.transport.is_closing():
                self.transport.resume_reading()

    async def wait_messages(self) -> None:
        """Return when a message is queued. Raises the connection's
        :class:`~websockets.exceptions.ConnectionClosed` once it is closed and every
        message received before that has been taken (``ConnectionClosedOK`` after a
        normal closure)."""
        while not self.messages:
            if self.connection_lost_waiter.done():
                raise self.close_exc
            self.caught_up()
            waiter = self._waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    async def next_message(self) -> bytes:
        """The next whole message (waiting for one)."""
        await self.wait_messages()
        message = self.messages.popleft()
        self.caught_up()
        return message
