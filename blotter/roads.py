"""The emergency path takes whichever road is up.

The WebSocket is the first road. While it is not live (connecting, reconnecting,
refused) or stale, the desk's cancels — cancel one, cancel all (with the symbol
filter), the retry's batch cancel (at most 10 per call) — go over the exchange's
REST API on the same host, at once, each under its own request id, and the log
says "via REST". When both roads are up the WebSocket goes first, and a WebSocket
cancel-all with no ACK within ``rest_fallback_after`` seconds is repeated over REST.

Nothing is reported cancelled that the exchange did not confirm: a REST cancel's
reply is an ACK (the order's state *before* the cancel, ADDENDUM §2.5/§2.10). The
order's end is confirmed by the stream's order update, or by REST ``order/status``
showing a final status: the ids cancelled are polled, with backoff, within the
request timeout, and every record is folded into the store by the store's normal
update path (:func:`~blotter.protocol.rest.order_from_rest`), so the row shows what
the exchange says. A cancel-all over REST is verified by REST open orders for its
scope.

A REST request that could not go out at all (no connection could be made) was not
sent: with the WebSocket down too, that is ONE "NOT SENT" line naming both roads.
One that went out and got no usable answer (5xx, no answer in time, connection
closed) may or may not have acted: the line names the road and the error, the
request stays in flight, and its timeout and the exchange's word settle it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from .core.tracker import REST, QueryState, SnapshotQuery, State, Tracked
from .net.rest import RestAuthRefused, RestCallError, RestClient, RestRejected, RestTimeout
from .protocol import CancelAll, CancelOrder, OpenOrders
from .protocol.requests import new_request_id
from .protocol.rest import BATCH_CANCEL_MAX, CancelItem, RestOrder, order_from_rest

if TYPE_CHECKING:
    from .desk import Desk

__all__ = ["RestRoad", "rest_request_id"]

STATUS_FIRST_POLL = 0.05
"""Seconds before the first ``order/status`` poll after a REST cancel's ACK (then doubling)."""
STATUS_POLL_MAX = 1.0
"""Longest wait between two status polls."""
CONFIRMED_BY = "REST order status"


def rest_request_id(request_id: str) -> str:
    """The REST ``id`` for one of the blotter's request ids (``co-k3f9x-17`` →
    ``coXk3f9xX17``): REST wants at least 9 letters and digits (§2.5), the WebSocket's ids
    have dashes. Injective: the blotter's ids never hold an upper-case X."""
    return request_id.replace("-", "X")


class RestRoad:
    """The desk's REST road: sends, confirms and verifies cancels over REST, and says so.

    Every call is started as a task (a key press never waits for HTTP); :meth:`close`
    ends the ones still running."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.tasks: set[asyncio.Task[Any]] = set()
        self.down: str | None = None
        """Why the last REST call failed — could not be made, was not answered, or the key
        was refused (None once one was answered; a refusal of the request itself, such as
        an unknown order, is an answer)."""
        self.repeats: dict[str, Tracked] = {}
        """WebSocket cancel-all request id → its repeat over REST."""

    @property
    def client(self) -> RestClient:
        rest = self.desk.rest
        assert rest is not None
        return rest

    def _spawn(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def wait_idle(self, timeout: float) -> None:
        """For tests and headless callers: until no REST work is running (or ``timeout``)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.tasks:
                    await asyncio.wait(list(self.tasks))

    # -- helpers ----------------------------------------------------------------------------
    @property
    def _timeout(self) -> float:
        return self.desk.settings.request_timeout

    def _now(self) -> float:
        return self.desk.clock()

    def _journal_sent(self, request: Any, text: str) -> None:
        journal = self.desk.journal
        if journal is not None:
            with contextlib.suppress(Exception):  # the cancel matters more than its record
                journal.record_sent(request, text)

    def _journal_note(self, text: str, request_id: str | None = None, order_id: str | None = None) -> None:
        journal = self.desk.journal
        if journal is not None:
            with contextlib.suppress(Exception):
                journal.record_note(text, request_id=request_id, order_id=order_id)

    def _failed(self, t: Tracked, exc: RestCallError, quiet: bool = False) -> None:
        """A REST call for ``t`` ended without an ACK: not sent, refused, or unanswered."""
        now = self._now()
        tracker = self.desk.tracker
        if not t.announced:
            self.down = str(exc)
            tracker.not_sent_after(t.request_id, now, f"{self.desk.ws_down_reason()}; {exc}", quiet=quiet)
        elif isinstance(exc, RestRejected):
            r = exc.refusal
            tracker.refused(t.request_id, now, r.code, r.reason, r.message)
        elif isinstance(exc, RestAuthRefused):
            self.down = str(exc)  # the road answers, but takes nothing of ours
            tracker.refused(t.request_id, now, None, "AUTH", str(exc))
        else:
            self.down = str(exc)  # sent, never answered (a timeout, a dropped connection): the road is not working
            tracker.road_failed(t.request_id, now, str(exc))
        self._journal_note(f"REST {t.action}: {t.state.value}: {exc}", t.request_id, t.order_id)
        self.desk.changed()

    def _acked(self, t: Tracked) -> None:
        self.down = None
        self.desk.tracker.acked(t.request_id, self._now())
        self._journal_note(f"REST {t.action}: ACK", t.request_id, t.order_id)
        self.desk.changed()

    def fold(self, records: Iterable[RestOrder]) -> None:
        """What REST says about orders, into the store by its normal update path."""
        orders = [order_from_rest(r) for r in records if r.is_complete]
        if orders:
            self.desk.fold_orders(orders, self._now(), source=CONFIRMED_BY)

    # -- cancel one ----------------------------------------------------------------------------
    def cancel_order(
        self, order_id: str, symbol: str, now: float, note: str = "", retry_of: str | None = None
    ) -> Tracked:
        request = CancelOrder(order_id=order_id, symbol=symbol)
        t = self.desk.tracker.sent(
            request.request_id,
            "cancel-order",
            now,
            symbol=symbol,
            order_id=order_id,
            retry_of=retry_of,
            note=note,
            road=REST,
            announce=False,
        )
        self._spawn(self._cancel_order(t, request), f"rest-{request.request_id}")
        return t

    async def _cancel_order(self, t: Tracked, request: CancelOrder) -> None:
        wire_id = rest_request_id(t.request_id)

        def went_out() -> None:
            self.desk.tracker.announce(t.request_id)
            self._journal_sent(request, f"REST DELETE v2/futures/order id={wire_id}")
            self.desk.changed()

        try:
            await self.client.cancel_order(
                request.order_id, request.symbol, request_id=wire_id, deadline=self._timeout, on_sent=went_out
            )
        except RestCallError as exc:
            self._failed(t, exc)
            if t.state is State.SENT:  # went out, no answer: it may have acted; ask
                await self.confirm_by_status([t], lambda: self._ids([request.order_id], [t]))
            return
        self._acked(t)
        await self.confirm_by_status([t], lambda: self._ids([request.order_id], [t]))

    # -- cancel all -------------------------------------------------------------------------------
    def cancel_all(
        self,
        symbol: str | None,
        targets: set[str],
        now: float,
        verify: bool,
        retry_of: str | None = None,
        blind: bool = False,
    ) -> Tracked:
        """Cancel-all over REST (with the symbol filter); ``verify``: then ask REST for the
        open orders on that scope, which gives the verdict. ``blind``: sent before any
        open-orders snapshot (see :attr:`Tracked.blind`)."""
        request = CancelAll(symbol=symbol)
        t = self.desk.tracker.sent(
            request.request_id,
            "cancel-all",
            now,
            symbol=symbol,
            targets=targets,
            retry_of=retry_of,
            road=REST,
            announce=False,
            blind=blind,
        )
        self._spawn(self._cancel_all(t, request, verify), f"rest-{request.request_id}")
        return t

    def _target_ids(self, t: Tracked) -> list[str]:
        ids = []
        for key in sorted(t.targets - t.confirmed):
            entry = self.desk.store.get(key)
            if entry is not None and entry.is_open and not entry.order.order_id.startswith("?"):
                ids.append(entry.order.order_id)
        return ids

    async def _cancel_all(self, t: Tracked, request: CancelAll, verify: bool) -> None:
        def went_out() -> None:
            self.desk.tracker.announce(t.request_id)
            self._journal_sent(request, f"REST DELETE v2/futures/order/all symbol={request.symbol or ''}")
            self.desk.changed()

        try:
            await self.client.cancel_all(request.symbol, deadline=self._timeout, on_sent=went_out)
        except RestCallError as exc:
            self._failed(t, exc)
            if t.state is State.SENT:
                await self.confirm_by_status([t], lambda: self._target_ids(t))
            return
        self._acked(t)
        await self.confirm_by_status([t], lambda: self._target_ids(t))
        if verify and t.verdict is None and t.state in (State.ACKED, State.CONFIRMED, State.TIMED_OUT):
            self.desk.mark_verifying(t.request_id)  # the housekeeping does not ask the stream as well
            await self.fetch_open_orders(t.symbol)

    def repeat_cancel_all(self, ws: Tracked, after: float, verify: bool) -> None:
        """Watch a WebSocket cancel-all: with no ACK (nor ERR) within ``after`` seconds, send
        it again over REST, under its own request id."""
        self._spawn(self._repeat_cancel_all(ws, after, verify), f"rest-watch-{ws.request_id}")

    async def _repeat_cancel_all(self, ws: Tracked, after: float, verify: bool) -> None:
        await asyncio.sleep(after)
        if ws.state is not State.SENT or ws.acked_at is not None or self.desk.read_only:
            return
        self.desk.log.add(
            f"{ws.request_id} no ACK in {after:g} s on the WebSocket: cancel-all repeated via REST",
            "warn",
            request_id=ws.request_id,
        )
        targets = {e.order_id for e in self.desk.store.open_by_symbol(ws.symbol)}
        self.repeats[ws.request_id] = self.cancel_all(
            ws.symbol, targets, self._now(), verify, retry_of=ws.request_id, blind=self.desk.snapshot_count == 0
        )

    # -- batch cancel (the retry) --------------------------------------------------------------------
    def batch_cancel(self, pairs: list[tuple[str, str]], headline: Tracked, now: float) -> list[Tracked]:
        """Cancel these (order id, symbol) pairs over REST, at most 10 per call, each under its
        own request id, as a retry of ``headline`` (a cancel-all). If none could go out, ONE
        line says so (at ``headline``'s id)."""
        tracked: list[Tracked] = []
        for order_id, symbol in pairs:
            request = CancelOrder(order_id=order_id, symbol=symbol)
            tracked.append(
                self.desk.tracker.sent(
                    request.request_id,
                    "cancel-order",
                    now,
                    symbol=symbol,
                    order_id=order_id,
                    retry_of=headline.request_id,
                    note="(batch)",
                    road=REST,
                    announce=False,
                )
            )
        self._spawn(self._batch_cancel(tracked, headline), f"rest-batch-{headline.request_id}")
        return tracked

    async def _batch_cancel(self, tracked: list[Tracked], headline: Tracked) -> None:
        by_wire = {rest_request_id(t.request_id): t for t in tracked}
        items = [CancelItem(t.order_id or "", t.symbol or "", rest_request_id(t.request_id)) for t in tracked]
        said = False

        def went_out(chunk: tuple[CancelItem, ...]) -> None:
            nonlocal said
            if not said:
                said = True
                self.desk.log.add(
                    f"{headline.request_id} retry: cancelling the {len(items)} order(s) still open via REST "
                    f"(batch cancel, at most {BATCH_CANCEL_MAX} per call)",
                    "warn",
                    request_id=headline.request_id,
                )
            for item in chunk:
                t = by_wire[item.request_id]
                self.desk.tracker.announce(t.request_id)
                self._journal_sent(
                    CancelOrder(request_id=t.request_id, order_id=item.order_id, symbol=item.symbol),
                    f"REST DELETE v2/futures/order/batch id={item.request_id}",
                )
            self.desk.changed()

        results = await self.client.batch_cancel(items, deadline=self._timeout, on_sent=went_out)
        unsent = [r for r in results if r.error is not None and not by_wire[r.items[0].request_id].announced]
        if unsent and len(unsent) == len(results):
            error = unsent[0].error
            self.down = str(error)
            self.desk.log.add(
                f"{headline.request_id} retry: {len(items)} order(s) still open: NOT SENT: "
                f"{self.desk.ws_down_reason()}; {error}",
                "error",
                request_id=headline.request_id,
            )
        for result in results:
            chunk = [by_wire[i.request_id] for i in result.items]
            if result.error is None:
                for t in chunk:
                    self._acked(t)
                continue
            error = result.error
            for t in chunk:
                refusal = error.refusal if isinstance(error, RestRejected) else None
                wire_id = rest_request_id(t.request_id)
                own = next((i for i in refusal.items if i.request_id == wire_id), None) if refusal else None
                if own is not None and t.announced:
                    self.desk.tracker.refused(t.request_id, self._now(), own.code, own.reason, own.message)
                else:
                    self._failed(t, error, quiet=bool(unsent) and len(unsent) == len(results))
        live = [t for t in tracked if t.state in (State.SENT, State.ACKED)]
        if live:
            await self.confirm_by_status(live, lambda: self._ids([t.order_id or "" for t in live], live))

    # -- confirmation by REST order status ------------------------------------------------------------
    @staticmethod
    def _ids(order_ids: list[str], tracked: list[Tracked]) -> list[str]:
        """The order ids of requests still waiting for their order's end."""
        waiting = {t.order_id for t in tracked if t.in_flight}
        return [o for o in order_ids if o in waiting]

    async def confirm_by_status(self, tracked: list[Tracked], ids: Callable[[], list[str]]) -> None:
        """Poll ``order/status`` for ``ids()`` with backoff until every request in ``tracked`` is
        settled (confirmed by the stream or by what REST says) or the request timeout has
        passed since it was sent. Each answer is folded into the store."""
        loop = asyncio.get_running_loop()
        start = min(t.sent_at for t in tracked)
        deadline = loop.time() + max(0.0, self._timeout - (self._now() - start))
        delay = STATUS_FIRST_POLL
        said = False
        while any(t.in_flight for t in tracked):
            left = deadline - loop.time()
            if left <= 0:
                return
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, STATUS_POLL_MAX)
            wanted = ids()
            left = deadline - loop.time()
            if not wanted or left <= 0:
                if not wanted:
                    return
                continue
            try:
                records = await self.client.order_status(wanted, deadline=left)
            except RestCallError as exc:
                if not said:  # once per request: the next polls say nothing new
                    said = True
                    for t in tracked:
                        if t.in_flight:
                            self.desk.log.add(
                                f"{t.request_id} order status via REST failed: {exc}",
                                "warn",
                                request_id=t.request_id,
                                order_id=t.order_id,
                            )
                continue
            self.down = None
            self.fold(records)

    # -- open orders ------------------------------------------------------------------------------------
    async def fetch_open_orders(self, symbol: str | None, timeout: float | None = None) -> SnapshotQuery:
        """Open orders on ``symbol`` over REST, folded as the stream's snapshot would be: the
        query's record (answered, refused, timed out, lost or not sent) in ``desk.queries``."""
        desk = self.desk
        timeout = self._timeout if timeout is None else timeout
        rid = new_request_id("oo")
        q = desk.queries.asked(rid, symbol, self._now())
        went_out = False

        def sent() -> None:
            nonlocal went_out
            went_out = True

        try:
            records = await self.client.open_orders(symbol, deadline=timeout, on_sent=sent)
        except RestCallError as exc:
            now = self._now()
            if not went_out:
                self.down = str(exc)
                desk.queries.not_sent(q, now, f"{desk.ws_down_reason()}; {exc}")
                desk.log.add(f"{rid} open-orders ({q.scope}) NOT SENT: {q.reason}", "error", request_id=rid)
            elif isinstance(exc, RestRejected):
                r = exc.refusal
                code = "" if r.code is None else f"{r.code} "
                desk.queries.refused(rid, r.code, f"{code}{r.reason or '-'} {r.message} (via REST)".rstrip(), now)
            else:
                state = QueryState.TIMED_OUT if isinstance(exc, RestTimeout) else QueryState.LOST
                q.state, q.done_at, q.reason = state, now, f"via REST: {exc}"
                desk.log.add(f"{rid} open-orders ({q.scope}) failed via REST: {exc}", "error", request_id=rid)
            desk.changed()
            return q
        self.down = None
        orders = [order_from_rest(r) for r in records]
        desk.log.add(f"{rid} open-orders ({q.scope}) answered via REST: {len(orders)} listed", "info", request_id=rid)
        desk.fold_snapshot(OpenOrders(request_id=rid, orders=orders))
        return q
