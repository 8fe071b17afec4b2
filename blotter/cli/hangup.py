"""The client-side dead man's switch (opt-in: ``--cancel-on-hangup``).

The exchange has no cancel-on-disconnect for this API. When armed, the desk's one
:meth:`~blotter.desk.Desk.cancel_all_and_verify` runs (and its verdict is logged and
journalled) when:

- SIGHUP (the controlling terminal went away: the SSH session dropped) or SIGTERM
  arrives; or the terminal goes away without a signal (its input ends or fails: a
  terminal that is not the controlling one, a supervisor ignoring SIGHUP). The
  process then quits: exit 0 when verified, 1 otherwise.
- Inside tmux or GNU screen, the last client detaches and none comes back within
  the grace period (``--hangup-grace``). A dropped SSH connection there sends no
  SIGHUP: the multiplexer keeps the session, and the blotter with it. The switch asks
  the multiplexer whether a client is attached, from a thread, every second at most
  (tmux: ``list-clients`` on the socket named in ``$TMUX``; screen: ``screen -ls``,
  the line of the session in ``$STY``); it fires only if a client was attached
  before, a client re-attaching within the grace disarms the countdown, and the
  process keeps running so the trader who re-attaches reads the verdict. Polling was
  chosen over tmux hooks: a hook changes the trader's tmux server for every session,
  survives the blotter if it crashes, and needs a way back into this process.

A terminal that hung up is hostile to the screen: reads from it return end-of-file
at once (the input thread would spin a core) and writes fail (the output thread
dies, and the next redraw blocks the event loop for ever, with every signal handler
behind it). So the handler runs at signal time, not on the event loop: on SIGHUP it
first points stdin at a pipe that never has data and stdout/stderr at /dev/null,
then schedules the cancel-all on the loop. A watchdog thread ends the process if the
verdict and the shutdown together take longer than the bound, so a hangup always
ends in an exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

SIGNALS = tuple(s for s in (getattr(signal, "SIGHUP", None), signal.SIGTERM) if s is not None)
SHUTDOWN_GRACE = 10.0
"""Seconds after the verdict's bound before the watchdog ends the process anyway."""
EXIT_UNVERIFIED = 1
TMUX_POLL = 1.0
"""Longest wait between two questions to tmux or screen (a quarter of the grace if shorter)."""
TMUX_ANSWER = 5.0
"""Seconds tmux or screen has to answer one question."""
NOTE_SHOWN = 30.0
"""Seconds the header says "countdown disarmed" (a verdict stays until the next detach)."""
TERMINAL_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL

_kept_fds: list[int] = []
"""The write end of the pipe that replaced stdin: kept open, so reads wait instead of
returning end-of-file."""


def terminal_gone() -> bool:
    """The terminal has hung up (poll reports it on stdin or stdout). A SIGHUP sent while
    it is still there (``kill -HUP``, a supervisor) must not leave it in the blotter's
    modes: then the quit gives it back as ``q`` does."""
    try:
        poller = select.poll()
        for fd in (0, 1):
            poller.register(fd, select.POLLIN)
        return any(events & TERMINAL_GONE for _, events in poller.poll(0))
    except (OSError, ValueError):
        return True


def detach_terminal() -> None:
    """The terminal is gone: stdin from a pipe that never has data, stdout and stderr
    to /dev/null. The screen's threads then neither spin nor block."""
    try:
        read_end, write_end = os.pipe()
        os.dup2(read_end, 0)
        os.close(read_end)
        _kept_fds.append(write_end)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)
    except OSError:
        pass


def release_terminal() -> None:
    """Close the pipe's write end: a read blocked on the replaced stdin returns
    end-of-file, so the screen's input thread sees its exit and ends."""
    while _kept_fds:
        with contextlib.suppress(OSError):
            os.close(_kept_fds.pop())


def describe(outcome: Any) -> str:
    """One line for the log and the journal (exchange text sanitised by the log)."""
    scope = outcome.symbol or "ALL symbols"
    if outcome.verified:
        return f"cancel-on-hangup verdict: nothing left open on {scope} ({outcome.request_id})"
    return (
        f"cancel-on-hangup verdict: {outcome.outcome.value}: {outcome.reason} ({outcome.request_id or 'nothing sent'})"
    )


class Step(enum.Enum):
    """What one look at the multiplexer changed."""

    FIRST_CLIENT = "a client is attached"
    STARTED = "the last client detached: countdown started"
    DISARMED = "a client re-attached: countdown disarmed"
    FIRED = "no client for the grace period: fire"


class DetachCountdown:
    """The detach rule (tmux, screen), pure: fed the number of attached clients at each look (None:
    the server did not answer), says when the switch fires.

    It fires ``grace`` seconds after the last client detached, only if a client was
    attached before (a blotter started detached, by a script, is not a trader gone),
    once per detach (it re-arms when a client attaches again). A client back within
    the grace disarms the countdown. An unanswered question is no evidence either
    way: it neither starts nor stops a countdown, but a countdown running ends."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.deadline: float | None = None
        self.detached_at: float | None = None
        self.seen_client = False
        self._ever = False

    def observe(self, clients: int | None, now: float) -> Step | None:
        if clients is None:
            return self._maybe_fire(now)
        if clients > 0:
            first = not self._ever
            self.seen_client = self._ever = True
            if self.deadline is not None:
                self.deadline = None
                return Step.DISARMED
            return Step.FIRST_CLIENT if first else None
        if not self.seen_client:
            return None
        if self.deadline is None:
            self.detached_at, self.deadline = now, now + self.grace
            return Step.STARTED
        return self._maybe_fire(now)

    def again(self) -> None:
        """The cancel-all was not verified: while no client is attached, the next look
        starts another countdown (a client back first leaves it to the trader)."""
        self.seen_client = True

    def _maybe_fire(self, now: float) -> Step | None:
        if self.deadline is None or now < self.deadline:
            return None
        self.deadline = None
        self.seen_client = False  # once per detach: the next attach re-arms it
        return Step.FIRED


class AskError(Exception):
    """tmux or screen could not be asked (one line, for the log)."""


def _ask(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace", timeout=timeout
        )
    except FileNotFoundError:
        raise AskError(f"the {argv[0]} command is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise AskError(f"{argv[0]} did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise AskError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None


def tmux_socket(environ: Mapping[str, str]) -> str | None:
    """The tmux server's socket from ``$TMUX`` (``path,pid,session``), as tmux itself
    reads it: the path before the first comma. None outside tmux."""
    value = environ.get("TMUX", "")
    path = value.split(",", 1)[0]
    return path or None


def tmux_clients(socket: str, timeout: float = TMUX_ANSWER) -> int:
    """How many clients are attached to the tmux server (any of its sessions: a
    trader who switched to another session is still there)."""
    proc = _ask(["tmux", "-S", socket, "list-clients", "-F", "#{client_name}"], timeout)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[0]
        raise AskError(f"tmux: {first[:160]}")
    return sum(1 for line in proc.stdout.splitlines() if line.strip())


def screen_status(listing: str, sty: str) -> int:
    """1 if ``screen -ls`` says the session ``sty`` (``pid.name``) is attached, 0 if
    detached. Found by its pid, which a rename (``sessionname``) keeps; screen tells
    attached or not, not how many displays."""
    pid = sty.split(".", 1)[0]
    for line in listing.splitlines():
        fields = [f.strip() for f in line.strip().split("\t")]
        if not fields[0] or fields[0].split(".", 1)[0] != pid:
            continue
        status = fields[-1].strip("()").lower()  # "Attached", "Detached", "Multi, attached", ...
        if status.endswith("detached"):
            return 0
        if status.endswith("attached"):
            return 1
        raise AskError(f"screen lists the session as {fields[-1][:40]!r}")
    raise AskError(f"screen -ls does not list this session ({sty[:60]})")


def screen_clients(sty: str, timeout: float = TMUX_ANSWER) -> int:
    """1 when the GNU screen session ``$STY`` has a display attached, else 0."""
    proc = _ask(["screen", "-ls"], timeout)  # its exit status is not an error code: read the listing
    return screen_status(proc.stdout, sty)


def multiplexer(environ: Mapping[str, str]) -> tuple[str, Callable[[], int]] | None:
    """The terminal multiplexer the blotter runs in ("tmux" or "screen") and how to ask
    it for the attached clients; None outside both. tmux when both are named."""
    socket = tmux_socket(environ)
    if socket is not None:
        return "tmux", lambda: tmux_clients(socket)
    sty = environ.get("STY", "")
    if sty:
        return "screen", lambda: screen_clients(sty)
    return None


def terminal_fds() -> list[int]:
    """The standard streams that are terminals: the ones whose loss is watched."""
    fds = []
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                fds.append(fd)
    return fds


def watch(
    stop: threading.Event,
    fds: list[int],
    ask: Callable[[], int] | None,
    interval: float,
    terminal_gone: Callable[[], None],
    clients: Callable[[int | None, str | None], None],
) -> None:
    """The watch thread: wakes at once when a terminal hangs up (poll reports HUP or
    an error on it, without reading its input), and asks the multiplexer every
    ``interval`` seconds. Never on the event loop: a slow tmux never holds the screen."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, 0)  # no events asked: only hang-up and error are reported
    next_ask = 0.0
    while not stop.is_set():
        if fds:
            ready = poller.poll(interval * 1000)
            if any(mask & TERMINAL_GONE for _, mask in ready):
                terminal_gone()
                return
            if ready:  # a hang-up later reported as readable only: do not spin
                stop.wait(interval)
        else:
            stop.wait(interval)
        if ask is not None and time.monotonic() >= next_ask and not stop.is_set():
            next_ask = time.monotonic() + interval
            try:
                count, error = ask(), None
            except AskError as exc:
                count, error = None, str(exc)
            clients(count, error)


def arm_hangup(
    desk: Any,
    app: Any,
    wait: float | None = None,
    environ: Mapping[str, str] | None = None,
    on_fired: Callable[[str], None] | None = None,
) -> Callable[[], None]:
    """Install the signal handlers and start the watch; returns a function that
    restores the previous handlers and stops the watch. ``on_fired(name)`` is told when
    the switch fires and the blotter will exit (a signal, the terminal gone): the exit
    code is then the verdict's, whether or not the stream was ever live (the cancel-all
    may have gone over REST).

    ``wait`` bounds the cancel-all and its verification (default: three request
    timeouts and two seconds)."""
    loop = asyncio.get_running_loop()
    environ = os.environ if environ is None else environ
    bound = wait if wait is not None else desk.settings.request_timeout * 3 + 2
    grace = float(desk.settings.hangup_grace)
    final = threading.Lock()
    """Taken once, by the first signal or terminal loss: the process then exits."""
    previous: dict[int, Any] = {}
    tasks: set[asyncio.Task[None]] = set()
    countdown = DetachCountdown(grace)
    mux: dict[str, Any] = {"error": None, "asked": False, "busy": False}
    stop = threading.Event()
    """Ends the watch thread."""

    def start(name: str, then_exit: bool) -> None:
        task = loop.create_task(fire(name, then_exit))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def journal(text: str) -> None:
        if desk.journal is not None:
            with contextlib.suppress(Exception):  # the cancel-all matters more than its note
                desk.journal.record_note(text)

    def say(text: str, level: str) -> None:
        desk.log.add(text, level)
        journal(text)

    async def fire(name: str, then_exit: bool) -> None:
        if then_exit and on_fired is not None:
            on_fired(name)
        desk.log.add(f"{name}: dead man's switch fired: cancelling all open orders", "error")
        journal(f"{name}: cancel-on-hangup fired")
        code = EXIT_UNVERIFIED
        try:
            outcome = await desk.call(desk.cancel_all_and_verify, None, timeout=bound)  # on the desk's loop
        except Exception as exc:
            text = f"cancel-on-hangup failed: {type(exc).__name__}: {exc}"
        else:
            text = describe(outcome)
            code = 0 if outcome.verified else EXIT_UNVERIFIED
        desk.log.add(text, "ok" if code == 0 else "error")
        journal(text)
        if then_exit:
            desk.hangup_verdict = f"{name}: {text}"  # said on stderr once the screen is gone
            app.exit(return_code=code)
            release_terminal()
        else:
            mux["busy"] = False
            desk.hangup_note = "FIRED: " + ("nothing left open" if code == 0 else "NOT VERIFIED, see the log")
            desk.hangup_note_until = None
            if code != 0:
                countdown.again()
                say(
                    f"dead man's switch: not verified: it fires again in {grace:g} s while no client is attached",
                    "warn",
                )

    def watchdog() -> None:
        journal(f"cancel-on-hangup: no clean exit within {bound + SHUTDOWN_GRACE:g} s; exiting now")
        if desk.journal is not None:
            with contextlib.suppress(Exception):
                desk.journal.close(timeout=2.0)
        os._exit(EXIT_UNVERIFIED)

    def go(name: str, hung_up: bool) -> None:
        """Fire and exit (a signal, or the terminal gone). Runs in a signal handler or
        the watch thread, never waits: the lock is only ever tried."""
        if not final.acquire(blocking=False):
            return  # already cancelling; the bound ends it
        stop.set()
        if hung_up:
            detach_terminal()
        timer = threading.Timer(bound + SHUTDOWN_GRACE, watchdog)
        timer.daemon = True
        timer.start()
        loop.call_soon_threadsafe(start, name, True)

    def handler(signum: int, frame: FrameType | None) -> None:
        go(signal.Signals(signum).name, signum == getattr(signal, "SIGHUP", None) and terminal_gone())

    def on_clients(count: int | None, error: str | None) -> None:
        """On the event loop: one answer (or failure) of tmux or screen."""
        if final.locked():
            return
        if error is not None and mux["error"] is None:
            desk.log.add(
                f"dead man's switch: cannot ask {name} whether a client is attached ({error}); "
                "a detach is not noticed until it answers",
                "warn",
            )
        elif error is None and mux["error"] is not None:
            desk.log.add(f"dead man's switch: {name} answers again", "info")
        mux["error"] = error
        if count == 0 and not mux["asked"] and not countdown.seen_client:
            say(f"dead man's switch: waiting for a {name} client (it fires only after one was attached)", "info")
        if count is not None:
            mux["asked"] = True
        now = desk.clock()
        step = countdown.observe(count, now)
        if step is Step.FIRST_CLIENT:
            say(f"dead man's switch: a {name} client is attached; armed for its detach", "info")
        elif step is Step.STARTED:
            desk.hangup_countdown = countdown.deadline
            desk.hangup_note = ""
            say(
                f"dead man's switch: no {name} client attached: cancel-all in {grace:g} s unless one re-attaches",
                "warn",
            )
        elif step is Step.DISARMED:
            desk.hangup_countdown = None
            desk.hangup_note, desk.hangup_note_until = "countdown disarmed", now + NOTE_SHOWN
            away = now - (countdown.detached_at or now)
            say(f"dead man's switch: a {name} client re-attached after {away:.1f} s: countdown disarmed", "ok")
        elif step is Step.FIRED:
            desk.hangup_countdown = None
            if mux["busy"]:
                return  # the previous cancel-all of this rule is still waiting for its verdict
            mux["busy"] = True
            desk.hangup_note, desk.hangup_note_until = "FIRED: cancelling all", None
            start(name, False)

    def on_clients_threadsafe(count: int | None, error: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed under us: the process is ending
            loop.call_soon_threadsafe(on_clients, count, error)

    for sig in SIGNALS:
        previous[sig] = signal.signal(sig, handler)

    watched = multiplexer(environ)
    name, ask = watched if watched is not None else ("", None)
    if watched is not None:
        desk.log.add(
            f"dead man's switch: inside {name}: cancel-all when no client has been attached for {grace:g} s", "info"
        )
    interval = min(TMUX_POLL, max(0.1, grace / 4))
    thread = threading.Thread(
        target=watch,
        args=(stop, terminal_fds(), ask, interval, lambda: go("terminal closed", True), on_clients_threadsafe),
        name="dead-man-watch",
        daemon=True,
    )
    thread.start()

    def disarm() -> None:
        stop.set()
        for sig, old in previous.items():
            with contextlib.suppress(ValueError, TypeError, OSError):
                signal.signal(sig, old)

    return disarm


QUIT_BOUND = 20.0
"""Seconds a quit on a signal has to end (the screen, the session, the journal written
to the end) before the process ends anyway."""


def arm_quit_on_signal(desk: Any, app: Any) -> Callable[[], None]:
    """Without the dead man's switch: SIGTERM (``kill``, a supervisor stopping the
    blotter) and SIGHUP (the terminal went away) quit the way ``q`` does — the terminal
    given back as it was, the session closed, every frame received written to the
    journal — instead of the interpreter's default, which ends the process at once
    (the frames still queued for the journal lost, the terminal left in the blotter's
    modes). Nothing is cancelled. Exit code 128 + the signal's number, as a shell
    reports a process ended by it. A watchdog ends the process if the quit takes longer
    than :data:`QUIT_BOUND`. Returns a function that restores the previous handlers."""
    final = threading.Lock()
    previous: dict[int, Any] = {}
    loop = asyncio.get_running_loop()

    def watchdog(code: int) -> None:
        if desk.journal is not None:
            with contextlib.suppress(Exception):
                desk.journal.record_note(f"quit on a signal: no clean exit within {QUIT_BOUND:g} s; exiting now")
                desk.journal.close(timeout=2.0)
        os._exit(code)

    def quit_now(name: str, code: int) -> None:
        text = f"{name}: quitting (nothing cancelled; the journal is written to the end)"
        desk.log.add(text, "warn")
        if desk.journal is not None:
            with contextlib.suppress(Exception):
                desk.journal.record_note(text)
        app.exit(return_code=code)
        release_terminal()

    def handler(signum: int, frame: FrameType | None) -> None:
        if not final.acquire(blocking=False):
            return  # already quitting
        if signum == getattr(signal, "SIGHUP", None) and terminal_gone():
            detach_terminal()  # the terminal is gone: nothing may wait on it
        code = 128 + signum
        timer = threading.Timer(QUIT_BOUND, watchdog, args=(code,))
        timer.daemon = True
        timer.start()
        loop.call_soon_threadsafe(quit_now, signal.Signals(signum).name, code)

    for sig in SIGNALS:
        previous[sig] = signal.signal(sig, handler)

    def disarm() -> None:
        for sig, old in previous.items():
            with contextlib.suppress(ValueError, TypeError, OSError):
                signal.signal(sig, old)

    return disarm
