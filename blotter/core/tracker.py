"""The request tracker: the single truth for each request's life.

A request is *sent*, then *acked* or *refused* by the gateway, then *confirmed*
when the order channel shows the order final (an ACK only means the gateway passed
it on), or *timed out* when that does not happen within ``timeout`` seconds. Every
step is one line in the :class:`~blotter.core.log.EventLog`, starting with the
request id. A late confirmation after a timeout still resolves the request.

A request goes by one *road*: the WebSocket (the default) or REST (the emergency
road while the stream is not live). A REST request's lines say "via REST"; its ACK
is only the gateway's, like the WebSocket's: the order's end is confirmed by the
order channel or by REST order status, never by the ACK.

Plain Python: no I/O, no asyncio. ``now`` is monotonic seconds, passed in.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field

from ..protocol.errors import explain
from ..protocol.messages import (
    CANCELED,
    FILLED,
    FINAL_STATUSES,
    Order,
    RequestAck,
    RequestError,
)
from .log import EventLog, Level

WEBSOCKET = "WebSocket"
REST = "REST"
"""The two roads a request can take to the exchange."""


class State(enum.Enum):
    SENT = "sent"
    ACKED = "acked"
    REFUSED = "refused"
    CONFIRMED = "confirmed"
    TIMED_OUT = "timed out"
    FAILED = "failed"
    """Could not be sent (no connection)."""

    @property
    def final(self) -> bool:
        return self in (State.REFUSED, State.CONFIRMED, State.TIMED_OUT, State.FAILED)


@dataclass
class Tracked:
    request_id: str
    action: str
    sent_at: float
    sent_wall_ms: int
    symbol: str | None = None
    order_id: str | None = None
    state: State = State.SENT
    acked_at: float | None = None
    done_at: float | None = None
    code: int | None = None
    reason: str = ""
    message: str = ""
    final_status: str | None = None
    retry_of: str | None = None
    targets: set[str] = field(default_factory=set)
    """cancel-all: the orders open (on that symbol) when it was sent."""
    confirmed: set[str] = field(default_factory=set)
    """cancel-all: targets the order channel has shown final since."""
    still_open: list[str] = field(default_factory=list)
    """cancel-all: targets a fresh snapshot still lists open (the verdict)."""
    verdict: str | None = None
    blind: bool = False
    """cancel-all: sent before any open-orders snapshot, so ``targets`` (empty) says nothing
    of what was open; its verdict says so instead of "0 were open"."""
    road: str = WEBSOCKET
    """:data:`WEBSOCKET` or :data:`REST`: how the request went to the exchange."""
    announced: bool = True
    """Its "sent" line was logged (a REST request is announced once it is on its way)."""

    @property
    def via(self) -> str:
        """``" via REST"`` for the REST road, ``""`` for the WebSocket."""
        return f" via {self.road}" if self.road != WEBSOCKET else ""

    @property
    def in_flight(self) -> bool:
        return not self.state.final

    def age(self, now: float) -> float:
        return now - self.sent_at

    def elapsed_ms(self, now: float) -> int:
        return int(round((now - self.sent_at) * 1000))


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


class RequestTracker:
    def __init__(self, log: EventLog | None = None, timeout: float = 5.0) -> None:
        self.log = log if log is not None else EventLog()
        self.timeout = timeout
        self._requests: dict[str, Tracked] = {}
        self._cancel_by_order: dict[str, str] = {}
        """order id → request id of its latest cancel-order."""
        self._placed: dict[str, str] = {}
        """order id → request id of the place-order that made it (learnt from its ACK)."""
        self._counting: dict[str, Tracked] = {}
        """cancel-alls still counting confirmations of their targets: what an order
        update is checked against (not every request ever sent)."""
        self._notes: dict[str, str] = {}
        """Notes of requests not yet announced (their "sent" line is still to come)."""
        self.version = 0

    # -- queries -------------------------------------------------------------
    def get(self, request_id: str) -> Tracked | None:
        return self._requests.get(request_id)

    def all(self) -> list[Tracked]:
        return list(self._requests.values())

    def in_flight(self) -> list[Tracked]:
        return [t for t in self._requests.values() if t.in_flight]

    def cancel_for(self, order_id: str) -> Tracked | None:
        """The latest cancel-order request for ``order_id``, in flight or not."""
        rid = self._cancel_by_order.get(order_id)
        return self._requests.get(rid) if rid else None

    def pending_cancel(self, order_id: str) -> Tracked | None:
        """The cancel-order in flight for ``order_id`` (sent or acked, not yet final)."""
        t = self.cancel_for(order_id)
        return t if t is not None and t.in_flight else None

    def timed_out_cancel(self, order_id: str) -> Tracked | None:
        t = self.cancel_for(order_id)
        return t if t is not None and t.state is State.TIMED_OUT else None

    # -- logging -------------------------------------------------------------
    def _log(self, t: Tracked, text: str, level: Level = "info", order_id: str | None = None) -> None:
        self.version += 1
        self.log.add(f"{t.request_id} {text}", level, request_id=t.request_id, order_id=order_id or t.order_id)

    # -- the life of a request --------------------------------------------------
    def sent(
        self,
        request_id: str,
        action: str,
        now: float,
        symbol: str | None = None,
        order_id: str | None = None,
        targets: set[str] | None = None,
        retry_of: str | None = None,
        note: str = "",
        road: str = WEBSOCKET,
        announce: bool = True,
        blind: bool = False,
    ) -> Tracked:
        """A request handed to its road. ``announce=False`` records it without its "sent"
        line: a REST request is announced (:meth:`announce`) once it is on its way, or
        said NOT SENT (:meth:`not_sent_after`) if no connection could be made. ``blind``:
        a cancel-all sent before any open-orders snapshot (:attr:`Tracked.blind`)."""
        t = Tracked(
            request_id=request_id,
            action=action,
            sent_at=now,
            sent_wall_ms=time.time_ns() // 1_000_000,
            symbol=symbol,
            order_id=order_id,
            targets=set(targets or ()),
            retry_of=retry_of,
            road=road,
            announced=False,
            blind=blind,
        )
        self._requests[request_id] = t
        if action == "cancel-order" and order_id:
            self._cancel_by_order[order_id] = request_id
        elif action == "cancel-all" and t.targets:
            self._counting[request_id] = t
        self._notes[request_id] = note
        if announce:
            self.announce(request_id)
        return t

    def announce(self, request_id: str) -> None:
        """The "sent" line of a request recorded with ``announce=False`` (once)."""
        t = self._requests.get(request_id)
        if t is None or t.announced:
            return
        t.announced = True
        self._log(t, "sent " + self._describe(t, self._notes.pop(request_id, "")) + t.via)

    def not_sent_after(self, request_id: str, now: float, why: str, quiet: bool = False) -> None:
        """A request recorded but never announced could not go out: FAILED, one line
        (none with ``quiet``: the caller said it once for a group, e.g. a batch)."""
        t = self._requests.get(request_id)
        if t is None or t.announced or t.state.final:
            return
        t.announced = True
        self._notes.pop(request_id, None)
        t.state = State.FAILED
        t.done_at = now
        t.message = why
        self._counting.pop(request_id, None)
        if quiet:
            self.version += 1
        else:
            self._log(t, f"{self._describe(t)} NOT SENT: {why}", "error")

    def road_failed(self, request_id: str, now: float, why: str) -> Tracked | None:
        """A request that went out by REST got no usable answer (5xx, no answer in time,
        connection closed): said with its road; it may or may not have acted, so it
        stays in flight (its timeout runs, and the exchange's word settles it)."""
        t = self._requests.get(request_id)
        if t is None or (t.state.final and t.state is not State.TIMED_OUT):
            return t
        self.announce(request_id)
        self._log(t, f"failed{t.via}: {why}", "error")
        return t

    @staticmethod
    def _describe(t: Tracked, note: str = "") -> str:
        what = [t.action]
        if t.action == "cancel-all":
            what.append(t.symbol or "ALL symbols")
            what.append("(open orders not loaded)" if t.blind else f"({len(t.targets)} open)")
        else:
            if t.symbol:
                what.append(t.symbol)
            if t.order_id:
                what.append(t.order_id)
        if t.retry_of:
            what.append(f"(retry of {t.retry_of})")
        if note:
            what.append(note)
        return " ".join(what)

    def not_sent(
        self,
        request_id: str,
        action: str,
        now: float,
        why: str,
        symbol: str | None = None,
        order_id: str | None = None,
        targets: set[str] | None = None,
        retry_of: str | None = None,
    ) -> Tracked:
        """A request that could not go out (no connection): recorded FAILED with ONE
        line, never a "sent" line followed by "NOT SENT"."""
        t = Tracked(
            request_id=request_id,
            action=action,
            sent_at=now,
            sent_wall_ms=time.time_ns() // 1_000_000,
            symbol=symbol,
            order_id=order_id,
            targets=set(targets or ()),
            retry_of=retry_of,
            state=State.FAILED,
            done_at=now,
            message=why,
        )
        self._requests[request_id] = t
        if action == "cancel-order" and order_id:
            self._cancel_by_order[order_id] = request_id
        self._log(t, f"{self._describe(t)} NOT SENT: {why}", "error")
        return t

    def send_failed(self, request_id: str, now: float, why: str) -> None:
        t = self._requests.get(request_id)
        if t is None or t.state.final:
            return
        t.state = State.FAILED
        t.done_at = now
        t.message = why
        self._log(t, f"NOT SENT: {why}", "error")

    def on_ack(self, ack: RequestAck, now: float) -> Tracked | None:
        t = self._requests.get(ack.request_id) if ack.request_id else None
        if t is None and ack.order_id:
            # 2021 dialect: the ACK is the order record, without our request id.
            t = self.pending_cancel(ack.order_id)
            if t is not None and t.state is not State.SENT:
                t = None
        if t is None:
            return None
        return self.acked(t.request_id, now, order_id=ack.order_id)

    def acked(self, request_id: str, now: float, order_id: str | None = None) -> Tracked | None:
        """The gateway accepted the request (by its road): not yet its outcome."""
        t = self._requests.get(request_id)
        if t is None:
            return None
        if t.acked_at is not None:
            return t
        self.announce(request_id)
        t.acked_at = now
        if t.state is State.SENT:
            t.state = State.ACKED
        if t.action == "place-order" and order_id:  # the exchange's id of the order placed
            t.order_id = order_id
            self._placed[order_id] = t.request_id
        self._log(t, f"ACK{t.via} ({_ms(now - t.sent_at)})", "ok")
        if t.action == "cancel-all" and not t.targets and not t.blind and t.state in (State.ACKED, State.TIMED_OUT):
            self._confirm(t, now, CANCELED, "nothing was open")  # (blind: what was open is not known)
        return t

    def on_error(self, err: RequestError, now: float) -> Tracked | None:
        if not err.request_id or err.request_id not in self._requests:
            return None
        return self.refused(err.request_id, now, err.code, err.reason, err.message)

    def refused(self, request_id: str, now: float, code: int | None, reason: str, message: str) -> Tracked | None:
        """The exchange refused the request (by its road), with its code, reason and message."""
        t = self._requests.get(request_id)
        if t is None:
            return None
        t.code = code
        t.reason = reason
        t.message = message
        if t.state.final and t.state is not State.TIMED_OUT:
            return t
        self.announce(request_id)
        t.state = State.REFUSED
        t.done_at = now
        # the code's readable reason from the one table (protocol/errors.py), on either road
        self._log(t, f"ERR {explain(code, reason, message)}{'' if t.road == WEBSOCKET else t.via}", "error")
        return t

    def on_order(self, order: Order, now: float, source: str = "") -> list[Tracked]:
        """An order update: confirms a cancel on that order, or counts toward a cancel-all.
        ``source`` names where it came from when not the order channel (e.g. "REST order status")."""
        if order.status not in FINAL_STATUSES:
            return []
        rid = self._cancel_by_order.get(order.order_id)
        if rid is None and not self._counting:
            if not self._placed:
                return []  # the burst's common case: nobody is waiting for this order
        resolved: list[Tracked] = []
        placed = self._placed.pop(order.order_id, None) if self._placed else None
        p = self._requests.get(placed) if placed else None
        if p is not None and p.state in (State.SENT, State.ACKED, State.TIMED_OUT):
            self._confirm(p, now, order.status)
            resolved.append(p)
        t = self._requests.get(rid) if rid else None
        if t is not None and t.state in (State.SENT, State.ACKED, State.TIMED_OUT):
            self._confirm(t, now, order.status, f"by {source}" if source else "")
            resolved.append(t)
        for t in list(self._counting.values()):
            if t.state not in (State.SENT, State.ACKED, State.TIMED_OUT):
                del self._counting[t.request_id]  # refused, failed or confirmed: done counting
                continue
            if order.order_id not in t.targets or order.order_id in t.confirmed:
                continue
            t.confirmed.add(order.order_id)
            if t.confirmed >= t.targets:
                by = f", by {source}" if source else ""
                self._confirm(t, now, CANCELED, f"{len(t.confirmed)}/{len(t.targets)} final{by}")
                del self._counting[t.request_id]
                resolved.append(t)
        return resolved

    def _confirm(self, t: Tracked, now: float, status: str, note: str = "") -> None:
        self.announce(t.request_id)
        late = t.state is State.TIMED_OUT
        t.state = State.CONFIRMED
        t.final_status = status
        t.done_at = now
        detail = f"confirmed {status} ({_ms(now - t.sent_at)}"
        if late:
            detail += ", after timeout"
        if note:
            detail += f", {note}"
        detail += ")"
        level: Level = "ok" if status == CANCELED or (t.action == "place-order" and status == FILLED) else "warn"
        if t.action == "cancel-order" and status != CANCELED:
            detail += f": order ended {status}, not by this cancel"
        self._log(t, detail, level)

    def check_timeouts(self, now: float) -> list[Tracked]:
        """Requests not confirmed within ``timeout``: marked TIMED_OUT (a later
        confirmation still resolves them). Returns the newly timed-out ones."""
        out = []
        for t in self._requests.values():
            if t.state in (State.SENT, State.ACKED) and t.announced and now - t.sent_at >= self.timeout:
                t.state = State.TIMED_OUT
                t.done_at = now
                what = "no ACK" if t.acked_at is None else "ACKed, no confirmation"
                if t.action == "cancel-all":
                    what += f", {len(t.confirmed)}/{len(t.targets)} confirmed"
                self._log(t, f"TIMEOUT ({what} in {self.timeout:g} s)", "error")
                out.append(t)
        return out

    def on_connection_lost(self, now: float) -> None:
        """Replies to in-flight requests may never come; their timeouts still run."""
        for t in self.in_flight():
            if t.road == WEBSOCKET:  # a REST request does not ride the stream
                self._log(t, "connection lost while in flight; waiting for the snapshot", "warn")

    def settle_cancel(self, request_id: str, still_open: bool, now: float, source: str) -> Tracked | None:
        """Settle one timed-out cancel from what ``source`` (e.g. a REST order status) said
        about its order: still open, or no longer open. Once; a later confirmation on the
        order channel still resolves it. Returns the request settled, or None."""
        t = self._requests.get(request_id)
        if t is None or t.action != "cancel-order" or t.state is not State.TIMED_OUT or t.final_status is not None:
            return None
        t.final_status = "Open" if still_open else "NotOpen"
        if still_open:
            self._log(t, f"{source}: order is STILL OPEN", "error")
        else:
            self._log(t, f"{source}: order is no longer open", "warn")
        return t

    def _blind_verdict(self, t: Tracked, open_ids: set[str], symbol: str | None) -> None:
        """The verdict of a cancel-all sent before the open orders were known: what the
        snapshot lists open now, when it covers the same symbols, never "0 were open"."""
        text = "verdict: sent before the open orders were loaded, so which were open then is not known"
        if symbol == t.symbol:
            t.still_open = sorted(open_ids)
            text += f"; {len(open_ids)} open now"
            if t.still_open:
                text += f": {', '.join(t.still_open[:5])}" + (" …" if len(t.still_open) > 5 else "")
        else:
            text += "; the table shows what is open now"
        t.verdict = text
        self._log(t, text, "error" if t.still_open else "warn")

    def resolve_with_snapshot(self, open_ids: set[str], now: float, symbol: str | None = None) -> list[Tracked]:
        """After a fresh open-orders snapshot: settle timed-out cancels and give
        cancel-all requests their verdict (which targets are still open)."""
        done = []
        for t in self._requests.values():
            if t.action == "cancel-order" and t.state is State.TIMED_OUT and t.order_id and t.final_status is None:
                if symbol is not None and t.symbol != symbol:
                    continue
                if t.order_id in open_ids:
                    self._log(t, "snapshot: order is STILL OPEN", "error")
                else:
                    self._log(t, "snapshot: order is no longer open", "warn")
                t.final_status = "Open" if t.order_id in open_ids else "NotOpen"
                done.append(t)
            elif (
                t.action == "cancel-all"
                and t.verdict is None
                and t.state is not State.REFUSED
                and t.state is not State.FAILED
            ):
                if symbol is not None and t.symbol not in (None, symbol):
                    continue
                if t.state in (State.SENT,):
                    continue  # not yet acked: the snapshot may predate it
                if t.blind:
                    self._blind_verdict(t, open_ids, symbol)
                    done.append(t)
                    continue
                still = sorted(oid for oid in t.targets if oid in open_ids)
                t.still_open = still
                t.verdict = (
                    f"verdict: {len(t.targets)} were open, {len(t.confirmed)} confirmed cancelled, "
                    f"{len(still)} still open"
                    + (f": {', '.join(still[:5])}" + (" …" if len(still) > 5 else "") if still else "")
                )
                self._log(t, t.verdict, "error" if still else "ok")
                done.append(t)
        return done


class QueryState(enum.Enum):
    """The outcome of one open-orders query."""

    WAITING = "waiting"
    ANSWERED = "answered"
    REFUSED = "refused"
    TIMED_OUT = "timed out"
    LOST = "connection lost"
    NOT_SENT = "not sent"

    @property
    def failed(self) -> bool:
        return self in (QueryState.REFUSED, QueryState.TIMED_OUT, QueryState.LOST, QueryState.NOT_SENT)


@dataclass
class SnapshotQuery:
    """One open-orders query: asked at ``asked_at``, answered, refused, timed out, or
    lost with its connection. Only an ANSWERED query is evidence of what is open."""

    request_id: str
    symbol: str | None
    asked_at: float
    state: QueryState = QueryState.WAITING
    done_at: float | None = None
    code: int | None = None
    reason: str = ""
    """What the exchange said (code reason message), or why there was no answer; raw
    wire text: pass it through :func:`blotter.core.text.safe` before output."""
    open_count: int | None = None
    """Open orders the reply listed (readable ones)."""
    rejected: int = 0
    """Records in the reply the client could not read."""

    @property
    def scope(self) -> str:
        return self.symbol or "all symbols"


class SnapshotQueries:
    """Every open-orders query has a deadline and an outcome (the request tracker's
    counterpart for queries; plain Python, ``now`` passed in)."""

    MAX_KEPT = 256

    def __init__(self, log: EventLog | None = None, timeout: float = 5.0) -> None:
        self.log = log if log is not None else EventLog()
        self.timeout = timeout
        self._queries: dict[str, SnapshotQuery] = {}

    def get(self, request_id: str | None) -> SnapshotQuery | None:
        return self._queries.get(request_id) if request_id else None

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._queries

    def all(self) -> list[SnapshotQuery]:
        """Oldest first (the latest :attr:`MAX_KEPT`)."""
        return list(self._queries.values())

    def waiting(self) -> list[SnapshotQuery]:
        return [q for q in self._queries.values() if q.state is QueryState.WAITING]

    def asked(self, request_id: str, symbol: str | None, now: float) -> SnapshotQuery:
        q = SnapshotQuery(request_id=request_id, symbol=symbol, asked_at=now)
        self._queries[request_id] = q
        while len(self._queries) > self.MAX_KEPT:
            del self._queries[next(iter(self._queries))]
        return q

    def not_sent(self, q: SnapshotQuery, now: float, why: str) -> None:
        self._end(q, QueryState.NOT_SENT, now, why)

    def match(self, request_id: str | None) -> SnapshotQuery | None:
        """The query a reply answers: by id, or (2021 dialect: a bare array without
        id) the oldest one not yet answered on this connection."""
        if request_id is not None:
            return self._queries.get(request_id)
        for q in self._queries.values():
            if q.state in (QueryState.WAITING, QueryState.TIMED_OUT):
                return q
        return None

    def answered(self, q: SnapshotQuery, now: float, open_count: int, rejected: int = 0) -> None:
        late = q.state is QueryState.TIMED_OUT
        q.state = QueryState.ANSWERED
        q.done_at = now
        q.open_count = open_count
        q.rejected = rejected
        if late:
            self.log.add(f"{q.request_id} open-orders answered after its timeout", "info", request_id=q.request_id)

    def refused(self, request_id: str | None, code: int | None, reason: str, now: float) -> SnapshotQuery | None:
        q = self.get(request_id)
        if q is None:
            return None
        q.code = code
        self._end(q, QueryState.REFUSED, now, reason)
        self.log.add(f"{q.request_id} open-orders ({q.scope}) refused: ERR {reason}", "error", request_id=q.request_id)
        return q

    def check_timeouts(self, now: float) -> list[SnapshotQuery]:
        """Queries not answered within ``timeout``: TIMED_OUT (a late answer still counts)."""
        out = []
        for q in self._queries.values():
            if q.state is QueryState.WAITING and now - q.asked_at >= self.timeout:
                self.expire(q, now, self.timeout)
                out.append(q)
        return out

    def expire(self, q: SnapshotQuery, now: float, after: float) -> None:
        """``q`` was not answered within ``after`` seconds (a caller's shorter deadline)."""
        if q.state is not QueryState.WAITING:
            return
        self._end(q, QueryState.TIMED_OUT, now, f"no answer in {after:g} s")
        self.log.add(
            f"{q.request_id} open-orders ({q.scope}): no answer in {after:g} s", "error", request_id=q.request_id
        )

    def connection_lost(self, now: float) -> list[SnapshotQuery]:
        """A new connection: queries of the old one will never be answered."""
        out = []
        for q in self._queries.values():
            if q.state in (QueryState.WAITING, QueryState.TIMED_OUT):
                if q.state is QueryState.WAITING:
                    out.append(q)
                self._end(q, QueryState.LOST, now, "connection lost before the answer")
        return out

    @staticmethod
    def _end(q: SnapshotQuery, state: QueryState, now: float, why: str) -> None:
        q.state = state
        q.done_at = now
        q.reason = why
