"""The second road to the exchange: its private REST API, over httpx.

What this adds to :mod:`blotter.protocol.rest` (which signs, builds and parses) is
the I/O and the rules a trader's credentials need on the way:

- **One connection pool** (``httpx.AsyncClient``) for the client's life: the TLS
  handshake is paid once, and a cancel does not wait for a new connection.
- **A deadline on every call** (default 5 s, per call overridable), covering connect,
  send and the whole answer; past it the call fails as :class:`RestTimeout`.
- **The same transport rules as the WebSocket**: ``https`` with certificate checks
  (plus ``--ca-file``); plain ``http`` only to a literal loopback address or
  ``localhost`` (:mod:`blotter.net.endpoints`). No proxy or ``.netrc`` from the
  environment (``trust_env=False``): nothing may add or divert credentials.
- **No redirects**: a 3xx is an error that says where it pointed (sanitised); the
  signed request is never sent anywhere else.
- **A refused login says which key form was used and how to switch.**
- **A per-type request counter** against the documented thresholds (ADDENDUM §3.6),
  readable with :meth:`RestClient.usage`. Housekeeping (status, history, open
  orders) is held back near a threshold; cancels never are.

Every text that came from the wire is passed through :func:`blotter.core.text.safe`
before it is put into a message; no message ever holds a key, secret or signature.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import SecretStr

from blotter.core.text import safe
from blotter.net.endpoints import EndpointError, check_url, is_loopback, ssl_context
from blotter.protocol import rest as proto
from blotter.protocol.rest import (
    AccountInfo,
    BatchCancelReply,
    CancelAllReply,
    CancelItem,
    OrderActionReply,
    Positions,
    RequestCounter,
    RestFormatError,
    RestOrder,
    RestRefusal,
    RestRequest,
    Threshold,
    Usage,
    code_text,
)
from blotter.protocol.signing import SigningError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "BatchResult",
    "RestAuthRefused",
    "RestCallError",
    "RestClient",
    "RestProtocolError",
    "RestRedirected",
    "RestRejected",
    "RestServerError",
    "RestSettings",
    "RestThrottled",
    "RestTimeout",
    "RestUnavailable",
    "account_group_from_url",
    "check_rest_url",
    "rest_base_url",
]

T = TypeVar("T")
_GROUP_IN_PATH = re.compile(r"^/(\d{1,9})/api/pro/")


# --- URLs ---------------------------------------------------------------------------------------------------


def check_rest_url(url: str) -> str:
    """``url`` as the REST base (``scheme://host[:port]``, no trailing slash) if the blotter may
    use it, else :class:`EndpointError` with a one-line reason and what to do."""
    shown = safe(url, 80)
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise EndpointError(f"bad --rest-url {shown}: {exc}") from None
    if parts.scheme not in ("https", "http"):
        raise EndpointError(
            f"bad --rest-url {shown}: it must start with https:// (or http:// for a loopback simulator)"
        )
    if not host:
        raise EndpointError(f"bad --rest-url {shown}: no host")
    if parts.username is not None or parts.password is not None:
        raise EndpointError("bad --rest-url: credentials do not belong in the URL; give https://host[:port] only")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise EndpointError(f"bad --rest-url {shown}: give the base only, https://host[:port] (the paths are added)")
    if parts.scheme == "http" and not is_loopback(host):
        raise EndpointError(
            f"refusing plain http:// to {safe(host, 80)}: only loopback hosts may use http://; use https:// for a remote exchange"
        )
    return f"{parts.scheme}://{parts.netloc}"


def rest_base_url(ws_url: str, override: str | None = None) -> str:
    """The REST base: ``override`` (checked) if given, else derived from the WebSocket URL —
    same host and port, ``https`` for ``wss``, ``http`` for a loopback ``ws``."""
    if override:
        return check_rest_url(override)
    parts = urlsplit(check_url(ws_url))
    scheme = "https" if parts.scheme == "wss" else "http"
    return check_rest_url(f"{scheme}://{parts.netloc}")


def account_group_from_url(ws_url: str) -> int | None:
    """The ``<grp>`` of ``wss://host/<grp>/api/pro/v2/stream``, or None if the path has none."""
    match = _GROUP_IN_PATH.match(urlsplit(ws_url).path or "")
    return int(match.group(1)) if match else None


# --- errors ---------------------------------------------------------------------------------------------------


class RestCallError(Exception):
    """A REST call that did not get an answer the blotter can use. The message is one line,
    sanitised, and never holds a credential. ``status`` is the HTTP status if one came."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RestUnavailable(RestCallError):
    """The REST road is down: connection refused or closed, TLS failed, or no answer in time."""


class RestTimeout(RestUnavailable):
    """No complete answer within the call's deadline."""


class RestRedirected(RestCallError):
    """The server answered 3xx; it was not followed. ``location`` is sanitised, without query."""

    def __init__(self, message: str, status: int, location: str) -> None:
        super().__init__(message, status)
        self.location = location


class RestServerError(RestCallError):
    """HTTP 5xx: the exchange (or a proxy before it) failed; the request may or may not have acted."""


class RestAuthRefused(RestCallError):
    """The credentials were refused. The message names the key form used and the other one."""


class RestRejected(RestCallError):
    """The exchange answered with a non-zero ``code``; :attr:`refusal` holds it as data."""

    def __init__(self, message: str, refusal: RestRefusal, status: int | None = None) -> None:
        super().__init__(message, status)
        self.refusal = refusal


class RestThrottled(RestCallError):
    """Not sent: this type of request is near its documented threshold (housekeeping only)."""


class RestProtocolError(RestCallError):
    """An answer that is not the documented shape, or an unexpected HTTP status."""


# --- the client -------------------------------------------------------------------------------------------------


@dataclass
class RestSettings:
    base_url: str
    """``https://host[:port]`` (see :func:`rest_base_url`)."""
    account_group: int
    api_key: SecretStr
    api_secret: SecretStr
    secret_encoding: Literal["base64", "raw"] = "base64"
    ca_file: str | None = None
    deadline: float = 5.0
    """Seconds for one whole call (connect, send, answer), unless the call gives its own."""
    connect_timeout: float = 3.0
    thresholds: Mapping[str, Threshold] | None = None
    """Per-type thresholds (default: the documented ones, ADDENDUM §3.6)."""
    hold_at: float = 0.8
    """Share of a level-1 threshold at which housekeeping calls are held back."""
    max_connections: int = 4

    @classmethod
    def from_ws_url(
        cls,
        ws_url: str,
        api_key: SecretStr,
        api_secret: SecretStr,
        *,
        rest_url: str | None = None,
        account_group: int | None = None,
        **kwargs: object,
    ) -> RestSettings:
        """Settings for the exchange the WebSocket URL names; the account group from the URL
        unless given (an :class:`EndpointError` says what to pass when neither has one)."""
        group = account_group if account_group is not None else account_group_from_url(ws_url)
        if group is None:
            raise EndpointError("the WebSocket URL has no account group (/<grp>/api/pro/...); pass --account-group")
        return cls(rest_base_url(ws_url, rest_url), group, api_key, api_secret, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class BatchResult:
    """One batch-cancel call: the items it carried, and its ACK or its error."""

    items: tuple[CancelItem, ...]
    reply: BatchCancelReply | None = None
    error: RestCallError | None = None


@dataclass
class _Stats:
    calls: int = 0
    failures: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


WARM_MODULES = ("httpx", "httpcore._backends.anyio", "anyio._backends._asyncio")
"""What a first REST call imports (httpx, then at the call httpcore's and anyio's asyncio
backends): about 100 ms, in which the thread that imports stands still."""


def warm_up() -> None:
    """Import :data:`WARM_MODULES` on the calling thread. The CLI calls it on the screen's
    thread as soon as the desk's thread is connecting, so that the desk's first REST call
    (the positions, once the account shows one; a cancel on the REST road) does not stop
    that thread — and every cancel key behind it — for the imports."""
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # pragma: no cover - (a backend moved: imported at the first call)
            pass


class RestClient:
    """Async client for the private futures REST endpoints. Use ``async with RestClient(s) as rest:``
    or call :meth:`aclose`. Safe to share between tasks (the pool is shared)."""

    def __init__(
        self,
        settings: RestSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.base_url = check_rest_url(settings.base_url)
        self._clock = clock
        self.counter = RequestCounter(settings.thresholds, settings.hold_at)
        self.stats = _Stats()
        verify: ssl.SSLContext | bool = True
        if self.base_url.startswith("https://"):
            context = ssl_context("wss://" + self.base_url.removeprefix("https://"), settings.ca_file)
            assert context is not None
            verify = context
        self._verify = verify
        self._transport = transport
        self._http_client: httpx.AsyncClient | None = None
        self._http_lock = threading.Lock()

    def warm_up(self) -> None:
        """Import what the first call imports and make the connection pool, on the
        calling thread (see :func:`warm_up`)."""
        warm_up()
        self._http  # noqa: B018  (made now, not at the first call)

    @property
    def _http(self) -> httpx.AsyncClient:
        """The connection pool, made by :meth:`warm_up` or at the first call: httpx is
        not on the way from the command to the WebSocket connection."""
        client = self._http_client
        if client is not None:
            return client
        with self._http_lock:  # (warm_up on one thread, the first call on another)
            if self._http_client is not None:
                return self._http_client
            import httpx

            s = self.settings
            client = self._http_client = httpx.AsyncClient(
                base_url=self.base_url,
                verify=self._verify,
                follow_redirects=False,
                trust_env=False,
                timeout=httpx.Timeout(s.deadline, connect=min(s.connect_timeout, s.deadline)),
                limits=httpx.Limits(max_connections=s.max_connections, max_keepalive_connections=s.max_connections),
                headers={"User-Agent": "blotter"},
                transport=self._transport,
            )
        return client

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http_client is not None:
            await self._http_client.aclose()

    def usage(self) -> dict[str, Usage]:
        """Calls per type in the last minute, with each type's documented thresholds."""
        return self.counter.usage(self._clock())

    # --- endpoints -------------------------------------------------------------------------------------------

    async def order_status(self, order_ids: Sequence[str], deadline: float | None = None) -> list[RestOrder]:
        """The records of these orders (several ids per call, at most 10 per call). Ids the
        exchange does not return are simply absent from the result."""
        requests = self._build(lambda: proto.order_status_chunks(self.settings.account_group, order_ids))
        replies = [await self._call(r, proto.parse_order_status, deadline) for r in requests]
        return [order for reply in replies for order in reply.orders]

    async def order_history(
        self,
        symbol: str | None = None,
        n: int | None = None,
        executed_only: bool | None = None,
        deadline: float | None = None,
    ) -> list[RestOrder]:
        """``order/hist/current``: the account's recent ended orders."""
        request = self._build(lambda: proto.order_hist_current(self.settings.account_group, symbol, n, executed_only))
        return list((await self._call(request, proto.parse_order_list, deadline)).orders)

    async def open_orders(
        self, symbol: str | None = None, deadline: float | None = None, on_sent: Callable[[], None] | None = None
    ) -> list[RestOrder]:
        """Open orders; with ``symbol``, only that symbol's (the filter is also applied here:
        the exchange does not document it)."""
        request = self._build(lambda: proto.open_orders(self.settings.account_group, symbol))
        orders = (await self._call(request, proto.parse_order_list, deadline, on_sent)).orders
        return [o for o in orders if symbol is None or o.symbol == symbol]

    async def cancel_order(
        self,
        order_id: str,
        symbol: str,
        request_id: str | None = None,
        deadline: float | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> OrderActionReply:
        """Cancel one order. The reply is an ACK: the outcome comes as an order update or a status query.
        ``on_sent`` is called once the request is on its way (see :meth:`_call`)."""

        def build() -> RestRequest:
            item = CancelItem(order_id, symbol, request_id or proto.new_cancel_id())
            return proto.cancel_order(self.settings.account_group, item)

        return await self._call(self._build(build), proto.parse_order_action, deadline, on_sent)

    async def cancel_all(
        self, symbol: str | None = None, deadline: float | None = None, on_sent: Callable[[], None] | None = None
    ) -> CancelAllReply:
        """Cancel every open order (of ``symbol`` only, if given). The reply lists no orders."""
        request = self._build(lambda: proto.cancel_all(self.settings.account_group, symbol))
        return await self._call(request, proto.parse_cancel_all, deadline, on_sent)

    async def batch_cancel(
        self,
        orders: Sequence[tuple[str, str] | CancelItem],
        deadline: float | None = None,
        on_sent: Callable[[tuple[CancelItem, ...]], None] | None = None,
    ) -> list[BatchResult]:
        """Cancel many orders, at most 10 per call (the documented cap), the calls sent at once.
        One result per call, in order; a failed call does not stop the others."""
        items = [o if isinstance(o, CancelItem) else CancelItem(o[0], o[1]) for o in orders]
        requests = self._build(lambda: proto.batch_cancel_chunks(self.settings.account_group, items))
        step = proto.BATCH_CANCEL_MAX
        chunks = [tuple(items[i : i + step]) for i in range(0, len(items), step)]

        async def one(request: RestRequest, chunk: tuple[CancelItem, ...]) -> BatchResult:
            sent = (lambda: on_sent(chunk)) if on_sent is not None else None
            try:
                return BatchResult(chunk, reply=await self._call(request, proto.parse_batch_cancel, deadline, sent))
            except RestCallError as exc:
                return BatchResult(chunk, error=exc)

        return list(await asyncio.gather(*(one(r, c) for r, c in zip(requests, chunks, strict=True))))

    async def position(self, deadline: float | None = None) -> Positions:
        request = self._build(lambda: proto.position(self.settings.account_group))
        return await self._call(request, proto.parse_position, deadline)

    async def account_info(self, deadline: float | None = None) -> AccountInfo:
        """Account info (no account group in its path): where the account group comes from."""
        return await self._call(proto.account_info(), proto.parse_account_info, deadline)

    # --- one call ----------------------------------------------------------------------------------------------

    @staticmethod
    def _build(make: Callable[[], T]) -> T:
        try:
            return make()
        except proto.RestInputError as exc:
            raise RestCallError(str(exc)) from None

    def _other_form(self) -> str:
        return "raw" if self.settings.secret_encoding == "base64" else "base64"

    def _auth_message(self, what: str) -> str:
        form = self.settings.secret_encoding
        return (
            f"REST authentication refused ({what}) with the {form} key form; check the API key and secret, "
            f"or try --secret-encoding {self._other_form()}"
        )

    async def _call(
        self,
        request: RestRequest,
        parse: Callable[[bytes], T],
        deadline: float | None,
        on_sent: Callable[[], None] | None = None,
    ) -> T:
        """One call. ``on_sent`` (if given) is called once, when the request starts going out
        on a connection (httpcore's trace: the request headers are being written), or at
        the latest when an answer arrived: a call that fails without it was never sent
        (no connection could be made), so it cannot have acted."""
        now = self._clock()
        if not self.counter.allows(request.kind, now, request.emergency):
            used = self.counter.count(request.kind, now)
            raise RestThrottled(
                f"REST {request.kind} held back: {used} calls in the last minute, near the exchange's threshold"
            )
        s = self.settings
        try:
            headers = proto.signed_headers(
                request, s.api_key.get_secret_value(), s.api_secret.get_secret_value(), s.secret_encoding
            )
        except SigningError as exc:
            raise RestAuthRefused(str(exc)) from None
        self.counter.record(request.kind, now)
        self.stats.calls += 1
        self.stats.by_kind[request.kind] = self.stats.by_kind.get(request.kind, 0) + 1
        limit = s.deadline if deadline is None else deadline
        went_out = False

        def sent() -> None:
            nonlocal went_out
            if not went_out and on_sent is not None:
                went_out = True
                on_sent()

        async def trace(name: str, info: Mapping[str, object]) -> None:
            if name.endswith("send_request_headers.started"):
                sent()

        import httpx

        try:
            try:
                async with asyncio.timeout(limit):
                    response = await self._http.request(
                        request.method,
                        request.target,
                        headers=headers,
                        content=request.body_bytes(),
                        timeout=httpx.Timeout(limit, connect=min(s.connect_timeout, limit)),
                        extensions={"trace": trace} if on_sent is not None else None,
                    )
                sent()
            except (TimeoutError, httpx.TimeoutException):
                raise RestTimeout(f"no REST answer within {limit:g} s from {self.base_url} ({request.kind})") from None
            except httpx.HTTPError as exc:
                raise RestUnavailable(self._transport_message(exc, request)) from None
            return self._answer(request, response, parse)
        except RestCallError:
            self.stats.failures += 1
            raise

    def _transport_message(self, exc: httpx.HTTPError, request: RestRequest) -> str:
        import httpx

        text = str(exc) or type(exc).__name__
        if _caused_by(exc, ssl.SSLCertVerificationError):
            return (
                f"REST at {self.base_url}: the server's certificate is not trusted; "
                "if it is your own test exchange, pass its CA with --ca-file"
            )
        if isinstance(exc, httpx.ConnectError):
            what = (
                "connection refused"
                if _caused_by(exc, ConnectionRefusedError)
                else f"cannot connect ({safe(text, 80)})"
            )
            return f"REST at {self.base_url} is not reachable: {what} ({request.kind})"
        if isinstance(exc, httpx.RemoteProtocolError) and "disconnected" not in text.lower():
            return f"REST at {self.base_url} answered something that is not valid HTTP ({request.kind})"
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
            return f"REST at {self.base_url} closed the connection before answering ({request.kind})"
        return f"REST call {request.kind} to {self.base_url} failed: {safe(text, 80)}"

    def _answer(self, request: RestRequest, response: httpx.Response, parse: Callable[[bytes], T]) -> T:
        status = response.status_code
        body = response.content
        if 300 <= status < 400:
            location = _shown_location(response.headers.get("location", ""))
            raise RestRedirected(
                f"REST {request.kind}: the server answered HTTP {status} pointing to {location or 'nowhere'}; "
                "not followed (credentials are sent only to the configured exchange); check --rest-url",
                status,
                location,
            )
        refusal = _refusal(body, status)
        if status >= 500:
            said = f" ({refusal.code} {code_text(refusal.code)})" if refusal is not None and refusal.code else ""
            raise RestServerError(
                f"the exchange's REST answered HTTP {status}{said} to {request.kind}; the call may or may not have acted",
                status,
            )
        if refusal is not None and (refusal.is_auth or status == 401):
            raise RestAuthRefused(self._auth_message(_refusal_label(refusal, status)), status)
        if status == 401:
            raise RestAuthRefused(self._auth_message(f"HTTP {status}"), status)
        if refusal is not None and refusal.code == 100011:
            raise RestRejected(
                "REST refused the timestamp (100011 INVALID_TIMESTAMP): this computer's clock is more than "
                "30 s away from the exchange's; set the clock right",
                refusal,
                status,
            )
        if status == 403:
            raise RestCallError(
                f"REST answered HTTP 403 (forbidden{', ' + _refusal_label(refusal, status) if refusal else ''}): "
                "not the key form — an IP outside the key's allowed list, an IP ban or a region block",
                status,
            )
        if status == 429:
            raise RestCallError(f"REST answered HTTP 429 (too many requests) to {request.kind}: slow down", status)
        if refusal is not None:
            message = f": {safe(refusal.message, 120)}" if refusal.message else ""
            raise RestRejected(
                f"the exchange refused {request.kind}: {refusal.code} {code_text(refusal.code)}{message}",
                refusal,
                status,
            )
        if status != 200:
            hint = "; check --rest-url and the account group" if status == 404 else ""
            raise RestProtocolError(f"REST answered HTTP {status} to {request.kind}{hint}", status)
        try:
            return parse(body)
        except RestRefusal as exc:  # pragma: no cover - _refusal saw it first
            raise RestRejected(f"the exchange refused {request.kind}: {exc}", exc, status) from None
        except RestFormatError as exc:
            raise RestProtocolError(f"{exc} ({request.kind})", status) from None


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _refusal(body: bytes, status: int) -> RestRefusal | None:
    try:
        return proto.refusal_of(proto.decode(body), status)
    except RestFormatError:
        return None


def _refusal_label(refusal: RestRefusal | None, status: int) -> str:
    if refusal is None:
        return f"HTTP {status}"
    reason = safe(refusal.reason, 40) or code_text(refusal.code).split(":")[0]
    code = refusal.code if refusal.code is not None else f"HTTP {status}"
    return f"{code} {reason}"


def _shown_location(location: str) -> str:
    """Where a redirect pointed, fit to show: scheme, host, port and path only (no
    credentials, query or fragment), sanitised and capped."""
    try:
        parts = urlsplit(location.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return safe(location.split("?", 1)[0], 120)
    if not parts.scheme and not host:
        return safe(parts.path, 120)
    return safe(f"{parts.scheme}://{host}{port}{parts.path}", 120)
