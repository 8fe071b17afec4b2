"""The cancel key and the orders table's cursor keys, handled the moment they are read.

In a real terminal, Textual reads the keyboard in a thread of its own and posts every
key to the screen's event loop, which also composes frames and writes them to the
terminal (over SSH a write can wait for the link). A cancel key posted there waits for
whatever frame is being drawn. So the terminal driver (:class:`BlotterDriver`) hands
each key to :class:`KeyRouter` first, in that thread: the cursor keys and the cancel key
of the main screen are applied there at once (under the desk's book lock: the cursor
moves in the view the session keeps up to date; the cancel goes to the desk's own
loop, which writes it to the socket), and only the redraw of the cursor is left to the
screen's loop.

Key order is kept: as soon as one input event was handed to the screen's loop (``/``,
Tab, a click…), every key after it goes the same way until that loop has handled it,
and the screen's loop handles the cursor and cancel keys with the same code
(:meth:`KeyRouter.handle`). ``Down c`` therefore always cancels the row below the one
selected before, whichever thread ran it.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from textual import events
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

from . import bindings
from .sgr import SgrMinimizer

if TYPE_CHECKING:
    from .app import BlotterApp

CANCEL = "cancel"
COUNTED = "_blotter_counted"
"""Set on an input event the router counted as waiting for the screen's loop."""
CURSOR_ACTIONS = frozenset(spec.action for spec in bindings.ORDERS)
"""cursor_up, cursor_down, page_up, page_down, first, last."""


def keys_of(spec: bindings.KeySpec, keymap: dict[str, str]) -> list[str]:
    return [k.strip() for k in keymap.get(spec.id, spec.key).split(",") if k.strip()]


class KeyRouter:
    """Which keys act at once, and the count of input events the screen's loop still has
    to handle (while there is one, keys wait their turn there)."""

    def __init__(self, app: BlotterApp) -> None:
        self.app = app
        keymap = app.settings.keymap
        self._actions: dict[str, str] = {}
        for spec in bindings.ORDERS:
            for key in keys_of(spec, keymap):
                self._actions[key] = spec.action
        for spec in bindings.MAIN:
            if spec.id == "blotter.cancel":
                for key in keys_of(spec, keymap):
                    self._actions[key] = CANCEL
        self._pending = 0
        self._count_lock = threading.Lock()
        self.handled_early = 0
        """Keys applied in the input thread (not posted to the screen's loop)."""

    # -- which key, and may it act here -------------------------------------------------
    def action_of(self, event: events.Key) -> str | None:
        action = self._actions.get(event.key)
        if action is None and event.character:
            action = self._actions.get(event.character)
        return action

    def applies(self, action: str) -> bool:
        """The cancel key acts on the main screen (whatever pane has focus); the cursor
        keys while the orders table has focus there."""
        app = self.app
        if len(app.screen_stack) != 1 or app.quitting:
            return False
        if action == CANCEL:
            return True
        return app.focused is app.table

    # -- the input thread ------------------------------------------------------------------
    def read(self, message: Message) -> bool:
        """In the input thread, for each event read from the terminal: True when it was
        handled here (it is not posted); otherwise it will be, and it is counted."""
        if isinstance(message, events.Key):
            with self._count_lock:
                waiting = self._pending
            if not waiting:
                action = self.action_of(message)
                if action is not None and self.applies(action):
                    self.handled_early += 1
                    self.handle(action, in_ui=False)
                    return True
        if isinstance(message, (events.Key, events.MouseDown, events.MouseUp, events.Paste)):
            setattr(message, COUNTED, True)
            with self._count_lock:
                self._pending += 1
        return False

    def done(self, event: events.Event) -> None:
        """The screen's loop has handled an event :meth:`read` counted."""
        if getattr(event, COUNTED, False):
            setattr(event, COUNTED, False)
            with self._count_lock:
                self._pending = max(0, self._pending - 1)

    @property
    def pending(self) -> int:
        return self._pending

    # -- either thread ---------------------------------------------------------------------
    def handle(self, action: str, in_ui: bool) -> None:
        """Apply ``action`` now: move the cursor, or send the cancel for the selected order
        (to the desk's loop; nothing here waits for it). ``in_ui``: called on the screen's loop."""
        app = self.app
        desk = app.desk
        table = app.table
        if action == CANCEL:
            # No lock: the selected order id is one attribute, changed whole; the desk's
            # thread writes the cancel at its next turn (Desk.submit_cancel).
            order_id = app.cancel_target()
            if order_id is not None and not desk.submit_cancel(order_id):
                desk.log.add(f"cancel: the session has ended; nothing sent for {order_id}", "error", order_id=order_id)
            return
        with desk.lock:
            table.step(action)
        if in_ui:
            table.show_cursor()
        else:
            app.soon(table.show_cursor)


class BlotterDriver(LinuxDriver):
    """Textual's Linux terminal driver, with the keys of :class:`KeyRouter` applied in its
    input thread, and the depth of its output queue readable (the screen draws at most
    one frame ahead of what the terminal has taken)."""

    _sgr: SgrMinimizer | None = None

    def write(self, data: str) -> None:
        """What Textual writes, each colour change written once (:mod:`blotter.ui.sgr`:
        the same cells on screen, about half the bytes: a frame reaches a terminal at
        the end of a slow link in half the time)."""
        sgr = self._sgr
        if sgr is None:
            sgr = self._sgr = SgrMinimizer()
        super().write(sgr.feed(data))

    def start_application_mode(self) -> None:
        if self._sgr is not None:
            self._sgr.reset()  # a new screen: its style is not known
        super().start_application_mode()

    def process_message(self, message: Message) -> None:
        router: KeyRouter | None = getattr(self._app, "key_router", None)
        if router is not None and router.read(message):
            return
        super().process_message(message)

    def resume_application_mode(self) -> None:
        """A hang-up of the terminal sends SIGCONT after SIGHUP, and Textual answers SIGCONT
        by starting the screen again. With the terminal gone (the dead man's switch put a
        pipe on stdin), that would start a writer for a dead terminal and block the exit."""
        if not os.isatty(self.fileno):
            return
        super().resume_application_mode()

    def backlog(self) -> int:
        """Writes queued for the terminal and not yet taken by it."""
        writer = self._writer_thread
        if writer is None:
            return 0
        queue = getattr(writer, "_queue", None)
        return queue.qsize() if queue is not None else 0
