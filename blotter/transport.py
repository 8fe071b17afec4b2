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
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode

__all__ = ["QueuedConnection"]

_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
MAX_FRAGMENTS = 10_000
"""A message in more fragments than this fails the connection (1009), as websockets does."""


class QueuedConnection(ClientConnection):
    """A :class:`~websockets.asyncio.client.ClientConnection` whose messages are read
    with :meth:`next_message` / :meth:`drain`, never with ``recv()``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.messages: deque[bytes] = deque()
        self._fragments: list[bytes] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._read_paused = False

    # -- the protocol's side: frames in ------------------------------------------------
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
        messages = self.messages
        messages.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if not self._read_paused and len(messages) >= self.max_queue_high_water:
            self._read_paused = True
            self.transport.pause_reading()

    @property
    def max_queue_high_water(self) -> int:
        return self.max_queue_high or 4096

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the reader's side: messages out --------------------------------------------------
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


