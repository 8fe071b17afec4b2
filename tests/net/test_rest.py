"""The REST client against the simulator's REST side over real loopback sockets, and
against tiny raw servers that record exactly what they receive (redirects, silence,
hostile answers)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
from pydantic import SecretStr

from blotter.core.text import has_unsafe
from blotter.net.endpoints import EndpointError
from blotter.net.rest import (
    RestAuthRefused,
    RestCallError,
    RestClient,
    RestRedirected,
    RestRejected,
    RestServerError,
    RestSettings,
    RestThrottled,
    RestTimeout,
    RestUnavailable,
    account_group_from_url,
    check_rest_url,
    rest_base_url,
)
from blotter.protocol.rest import Threshold
from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET, SimConfig, SimServer
from blotter.sim.rest import RestApi, RestServer, serve_rest
from tests.reliability.test_transport import make_cert


@contextlib.asynccontextmanager
async def rest_sim(
    ssl_context: ssl.SSLContext | None = None, **config: Any
) -> AsyncIterator[tuple[SimServer, RestApi, RestServer]]:
    """A simulator's book behind the REST side on its own loopback port (the WebSocket is not started)."""
    fields = {"seed": 7, "rate": 0, "initial_orders": 30, **config}
    sim = SimServer(SimConfig(**fields))
    api = RestApi(sim.book, sim.config)
    server = await serve_rest(api, "127.0.0.1", 0, ssl_context)
    try:
        yield sim, api, server
    finally:
        await server.close()


def client_for(url: str, **settings: Any) -> RestClient:
    settings.setdefault("api_key", SecretStr(DEMO_API_KEY))
    settings.setdefault("api_secret", SecretStr(DEMO_API_SECRET))
    settings.setdefault("account_group", 1)
    return RestClient(RestSettings(base_url=url, **settings))


class RawServer:
    """Accepts connections, records every byte received, answers each request with ``answer``
    (None: never answers)."""

    def __init__(self, answer: bytes | None) -> None:
        self.answer = answer
        self.received = bytearray()
        self.connections = 0
        self.request_seen = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                self.received += chunk
                if b"\r\n\r\n" in self.received:
                    self.request_seen.set()
                    if self.answer is not None:
                        writer.write(self.answer)
                        await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=5)
            await self._server.wait_closed()


@contextlib.asynccontextmanager
async def raw_server(answer: bytes | None) -> AsyncIterator[RawServer]:
    server = await RawServer(answer).start()
    try:
        yield server
    finally:
        await server.stop()


def http(status: str, body: bytes = b"", **headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}"] + [
        f"{k.replace('_', '-')}: {v}" for k, v in headers.items()
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


# --- endpoints over real sockets -----------------------------------------------------------------------------------


async def test_status_of_several_ids_in_one_call():
    async with rest_sim() as (sim, api, server), client_for(server.url) as rest:
        ids = [o.order_id for o in sim.book.open_orders()[:3]]
        records = await rest.order_status(ids)
        assert [r.order_id for r in records] == ids
        assert [r.status for r in records] == [sim.book.orders[i].status for i in ids]
        assert len(api.calls) == 1 and dict(parse_qsl(api.calls[0].query)) == {"orderId": ",".join(ids)}
        assert api.calls[0].path == "/1/api/pro/v2/futures/order/status" and api.calls[0].method == "GET"


async def test_the_connection_pool_is_made_once_by_warm_up_or_the_first_call_from_any_thread():
    """httpx is not imported for a client made on the way to the WebSocket; ``warm_up`` (the
    CLI, on the screen's thread) or else the first call makes the one pool, and a call on
    another thread at the same moment uses that same pool."""
    import threading

    async with rest_sim() as (sim, api, server):
        rest = client_for(server.url)
        assert rest._http_client is None
        pools: list[object] = []
        threads = [threading.Thread(target=lambda: (rest.warm_up(), pools.append(rest._http))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({id(p) for p in pools}) == 1 and pools[0] is rest._http_client
        ids = [o.order_id for o in sim.book.open_orders()[:2]]
        assert [r.order_id for r in await rest.order_status(ids)] == ids
        assert rest._http is pools[0]
        await rest.aclose()
        fresh = client_for(server.url)  # no warm-up: the first call makes it
        assert [r.order_id for r in await fresh.order_status(ids)] == ids and fresh._http_client is not None
        await fresh.aclose()
        await client_for(server.url).aclose()  # never used: nothing to close


async def test_status_of_23_ids_takes_three_calls_of_at_most_ten():
    async with rest_sim() as (sim, api, server), client_for(server.url) as rest:
        ids = [o.order_id for o in sim.book.open_orders()[:23]]
        records = await rest.order_status(ids)
        assert sorted(r.order_id for r in records) == sorted(ids)
        assert [len(dict(parse_qsl(c.query))["orderId"].split(",")) for c in api.calls] == [10, 10, 3]


async def test_cancel_one_is_signed_and_cancels_that_order_only():
    async with rest_sim() as (sim, api, server), client_for(server.url) as rest:
        target, *others = sim.book.open_orders()
        reply = await rest.cancel_order(target.order_id, target.symbol)
        assert reply.meta.action == "cancel-order" and reply.meta.resp_inst == "ACK"
        assert reply.order is not None and reply.order.order_id == target.order_id
        assert sim.book.orders[target.order_id].status == "Canceled"
        assert all(o.is_open for o in others)
        call = api.calls[0]
        body = json.loads(call.body)
        assert (call.method, call.path) == ("DELETE", "/1/api/pro/v2/futures/order")
        assert set(body) == {"id", "orderId", "symbol", "time"} and body["id"].isalnum() and len(body["id"]) >= 9
        assert {"x-auth-key", "x-auth-timestamp", "x-auth-signature"} <= set(call.headers)
        assert call.headers["content-type"] == "application/json"


async def test_cancel_all_with_a_symbol_leaves_the_other_symbols():
    async with rest_sim() as (sim, api, server), client_for(server.url) as rest:
        symbols = {o.symbol for o in sim.book.open_orders()}
        assert "BTC-PERP" in symbols and len(symbols) > 1
        reply = await rest.cancel_all("BTC-PERP")
        assert reply.code == 0
        assert json.loads(api.calls[0].body) == {"symbol": "BTC-PERP"}
        assert sim.book.open_orders("BTC-PERP") == [] and sim.book.open_count() > 0
        assert await rest.open_orders("BTC-PERP") == []
        await rest.cancel_all()
        assert sim.book.open_count() == 0 and await rest.open_orders() == []


async def test_batch_of_23_is_split_into_calls_of_at_most_ten_and_cancels_all():
    async with rest_sim() as (sim, api, server), client_for(server.url) as rest:
        orders = sim.book.open_orders()[:23]
        results = await rest.batch_cancel([(o.order_id, o.symbol) for o in orders])
        assert [len(r.items) for r in results] == [10, 10, 3] and all(r.error is None for r in results)
        sizes = sorted(len(json.loads(c.body)["orders"]) for c in api.calls)
        assert sizes == [3, 10, 10] and all(c.path.endswith("/order/batch") for c in api.calls)
        assert all(sim.book.orders[o.order_id].status == "Canceled" for o in orders)


async def test_a_failed_batch_call_does_not_stop_the_others():
    async with rest_sim() as (sim, api, server), client_for(server.url) as rest:
        orders = sim.book.open_orders()[:12]
        pairs = [(o.order_id, o.symbol) for o in orders]
        pairs[11] = (orders[11].order_id, "NOPE-PERP")  # the second call fails its basic check
        results = await rest.batch_cancel(pairs)
        assert results[0].error is None and isinstance(results[1].error, RestRejected)
        assert results[1].error.refusal.code == 300013
        assert all(sim.book.orders[o.order_id].status == "Canceled" for o in orders[:10])
        assert all(sim.book.orders[o.order_id].is_open for o in orders[10:])  # all or nothing per call


async def test_history_position_and_account_info():
    async with rest_sim() as (sim, api, server), client_for(server.url) as rest:
        await rest.cancel_all("BTC-PERP")
        history = await rest.order_history(n=5)
        assert len(history) == 5 and all(o.is_final for o in history)
        positions = await rest.position()
        assert positions.collaterals[0].asset == "USDT"
        info = await rest.account_info()
        assert info.account_group == 1 and api.calls[-1].path == "/api/pro/v2/account/info"


async def test_connections_are_reused():
    async with rest_sim() as (sim, api, server), client_for(server.url) as rest:
        for _ in range(5):
            await rest.open_orders()
        await rest.cancel_all("ETH-PERP")
        assert len(api.calls) == 6 and server.connections_accepted == 1


# --- refusals, faults and deadlines --------------------------------------------------------------------------------------


async def test_a_refused_signature_names_the_key_form_used_and_the_switch():
    async with rest_sim() as (sim, api, server):
        async with client_for(server.url, secret_encoding="raw") as rest:
            with pytest.raises(RestAuthRefused) as info:
                await rest.open_orders()
        message = str(info.value)
        assert "raw key form" in message and "--secret-encoding base64" in message
        assert DEMO_API_SECRET not in message and DEMO_API_KEY not in message
        assert api.calls[-1].headers["x-auth-signature"] not in message
    # both forms work against an exchange that wants them
    async with rest_sim(secret_encoding="raw", api_secret="plain secret, not base64") as (sim, api, server):
        async with client_for(
            server.url, secret_encoding="raw", api_secret=SecretStr("plain secret, not base64")
        ) as rest:
            assert len(await rest.open_orders()) == 30


async def test_a_secret_unusable_in_the_key_form_is_refused_before_sending():
    async with rest_sim() as (sim, api, server):
        async with client_for(server.url, api_secret=SecretStr("not base64!")) as rest:
            with pytest.raises(RestAuthRefused) as info:
                await rest.open_orders()
        assert "--secret-encoding raw" in str(info.value) and "not base64!" not in str(info.value)
        assert api.calls == []


async def test_a_refused_cancel_is_a_typed_rejection_with_the_code_explained():
    async with rest_sim() as (sim, api, server), client_for(server.url) as rest:
        done = sim.book.open_orders()[0]
        await rest.cancel_order(done.order_id, done.symbol)
        with pytest.raises(RestRejected) as info:
            await rest.cancel_order(done.order_id, done.symbol)
        assert info.value.refusal.code == 300006 and "INVALID_ORDER_ID" in str(info.value)


async def test_the_deadline_ends_a_slow_call():
    async with rest_sim() as (sim, api, server), client_for(server.url, deadline=0.3) as rest:
        api.faults.delay = 30
        with pytest.raises(RestTimeout) as info:
            await rest.open_orders()
        assert "0.3 s" in str(info.value)
        with pytest.raises(RestTimeout):
            await rest.cancel_all(deadline=0.2)
        assert isinstance(info.value, RestUnavailable)


async def test_a_server_that_never_answers_hits_the_deadline():
    async with raw_server(None) as raw, client_for(f"http://127.0.0.1:{raw.port}", deadline=0.5) as rest:
        with pytest.raises(RestTimeout):
            await rest.order_status(["abc"])
        assert raw.request_seen.is_set()


async def test_5xx_is_a_server_error_and_acts_on_nothing():
    async with rest_sim() as (sim, api, server), client_for(server.url) as rest:
        api.faults.server_error = 503
        with pytest.raises(RestServerError) as info:
            await rest.cancel_all()
        assert info.value.status == 503 and "HTTP 503" in str(info.value)
        assert sim.book.open_count() == 30


async def test_rest_down_is_connection_refused_then_up_again():
    async with rest_sim() as (sim, api, server), client_for(server.url) as rest:
        assert len(await rest.open_orders()) == 30
        await server.go_down()
        with pytest.raises(RestUnavailable) as info:
            await rest.open_orders()
        assert "connection refused" in str(info.value)
        await server.come_up()
        assert len(await rest.open_orders()) == 30


async def test_a_connection_closed_without_answer_is_unavailable():
    async with rest_sim() as (sim, api, server), client_for(server.url) as rest:
        api.faults.drop_connections = True
        with pytest.raises(RestUnavailable) as info:
            await rest.cancel_all()
        assert "closed the connection" in str(info.value)


async def test_a_302_is_not_followed_and_auth_is_not_sent_again():
    async with raw_server(None) as elsewhere:
        location = f"http://127.0.0.1:{elsewhere.port}/steal?token=abc#frag"
        async with raw_server(http("302 Found", Location=location)) as raw:
            async with client_for(f"http://127.0.0.1:{raw.port}") as rest:
                with pytest.raises(RestRedirected) as info:
                    await rest.cancel_all()
            assert raw.received.count(b"x-auth-signature") == 1  # one request, sent once
            assert raw.received.count(b"DELETE ") == 1
        assert elsewhere.connections == 0 and elsewhere.received == b""
    message = str(info.value)
    assert "302" in message and f"127.0.0.1:{elsewhere.port}/steal" in message
    assert "token" not in message and "frag" not in message and info.value.status == 302


async def test_a_hostile_redirect_location_and_error_message_are_sanitised():
    hostile = b"HTTP/1.1 301 Moved\r\nLocation: http://evil.example/a\xe2\x80\xaeb\x9bc\r\nContent-Length: 0\r\n\r\n"
    async with raw_server(hostile) as raw:
        async with client_for(f"http://127.0.0.1:{raw.port}") as rest:
            with pytest.raises(RestRedirected) as info:
                await rest.open_orders()
    assert not has_unsafe(str(info.value)) and "evil.example/a" in str(info.value)
    async with raw_server(http("301 Moved", Location="http://evil.example/\x1b[2Jx")) as raw:
        async with client_for(f"http://127.0.0.1:{raw.port}") as rest:
            with pytest.raises(RestUnavailable, match="not valid HTTP"):
                await rest.open_orders()
    body = json.dumps({"code": 300001, "reason": "INVALID_PRICE", "message": "bad \x1b]0;pwned\x07 price"}).encode()
    async with raw_server(http("200 OK", body, Content_Type="application/json")) as raw:
        async with client_for(f"http://127.0.0.1:{raw.port}") as rest:
            with pytest.raises(RestRejected) as rejected:
                await rest.open_orders()
    assert "\x1b" not in str(rejected.value) and "\x07" not in str(rejected.value)
    assert rejected.value.refusal.message == "bad \x1b]0;pwned\x07 price"  # kept as data


async def test_http_403_is_not_blamed_on_the_key_form_but_401_is():
    async with raw_server(http("403 Forbidden", b"<html>Forbidden</html>")) as raw:
        async with client_for(f"http://127.0.0.1:{raw.port}") as rest:
            with pytest.raises(RestCallError) as info:
                await rest.open_orders()
    assert "403" in str(info.value) and "key form" in str(info.value) and "not the key form" in str(info.value)
    assert not isinstance(info.value, RestAuthRefused)
    async with raw_server(http("401 Unauthorized", b'{"code":2100,"message":"ApiKeyFailure"}')) as raw:
        async with client_for(f"http://127.0.0.1:{raw.port}") as rest:
            with pytest.raises(RestAuthRefused) as auth:
                await rest.open_orders()
    assert "base64 key form" in str(auth.value) and "--secret-encoding raw" in str(auth.value)


async def test_a_reply_that_is_not_the_documented_shape_is_a_clear_error():
    async with raw_server(http("200 OK", b"<html>hello</html>")) as raw:
        async with client_for(f"http://127.0.0.1:{raw.port}") as rest:
            with pytest.raises(RestCallError) as info:
                await rest.open_orders()
    assert "not the documented shape" in str(info.value) and "\n" not in str(info.value)


# --- usage and throttling ----------------------------------------------------------------------------------------------------


async def test_usage_counts_per_type_and_housekeeping_is_held_back_but_cancels_never():
    limits = {"open_orders": Threshold("futures_open_orders", 2, 3), "cancel_order": Threshold("cancel_order", 1, 1)}
    async with rest_sim() as (sim, api, server), client_for(server.url, thresholds=limits, hold_at=1.0) as rest:
        await rest.open_orders()
        await rest.open_orders()
        with pytest.raises(RestThrottled):
            await rest.open_orders()
        assert len(api.calls) == 2  # the held-back call was not sent
        for order in sim.book.open_orders()[:3]:
            await rest.cancel_order(order.order_id, order.symbol)
        usage = rest.usage()
        assert usage["open_orders"].last_minute == 2 and usage["cancel_order"].last_minute == 3
        assert usage["cancel_order"].share == 3.0 and len(api.calls) == 5


# --- URLs ---------------------------------------------------------------------------------------------------------------------------


def test_base_url_and_account_group_come_from_the_websocket_url():
    ws = "wss://ascendex.com:443/4/api/pro/v2/stream"
    assert rest_base_url(ws) == "https://ascendex.com:443" and account_group_from_url(ws) == 4
    assert rest_base_url("ws://127.0.0.1:8765/1/api/pro/v2/stream") == "http://127.0.0.1:8765"
    assert rest_base_url("ws://localhost:9/1/api/pro/v2/stream") == "http://localhost:9"
    assert rest_base_url(ws, "https://other.example:8443/") == "https://other.example:8443"
    assert account_group_from_url("wss://ascendex.com/api/pro/v2/stream") is None
    settings = RestSettings.from_ws_url(ws, SecretStr("k"), SecretStr("s"))
    assert (settings.base_url, settings.account_group) == ("https://ascendex.com:443", 4)
    assert RestSettings.from_ws_url(ws, SecretStr("k"), SecretStr("s"), account_group=9).account_group == 9
    with pytest.raises(EndpointError, match="--account-group"):
        RestSettings.from_ws_url("wss://ascendex.com/api/pro/v2/stream", SecretStr("k"), SecretStr("s"))


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://ascendex.com", "only loopback"),
        ("http://10.0.0.1:80", "only loopback"),
        ("ftp://127.0.0.1", "https://"),
        ("https://user:pw@ascendex.com", "credentials"),
        ("https://ascendex.com/1/api/pro", "base only"),
        ("https://ascendex.com/?x=1", "base only"),
        ("https://", "no host"),
        ("https://ascendex.com:99999", "bad --rest-url"),
    ],
)
def test_rest_urls_the_blotter_refuses(url, why):
    with pytest.raises(EndpointError, match=why) as info:
        check_rest_url(url)
    assert "pw" not in str(info.value)


def test_plain_ws_to_a_remote_host_gives_no_rest_url_either():
    with pytest.raises(EndpointError):
        rest_base_url("ws://ascendex.com/1/api/pro/v2/stream")


# --- TLS ------------------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("rest-tls"))


async def test_https_checks_the_certificate_and_takes_a_ca_file(cert):
    cert_path, key_path = cert
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    async with rest_sim(ssl_context=context) as (sim, api, server):
        assert server.url.startswith("https://")
        async with client_for(server.url) as rest:
            with pytest.raises(RestUnavailable) as info:
                await rest.open_orders()
        assert "certificate" in str(info.value) and "--ca-file" in str(info.value)
        assert api.calls == []  # nothing was sent before the certificate was checked
        async with client_for(server.url, ca_file=str(cert_path)) as rest:
            assert len(await rest.open_orders()) == 30
        with pytest.raises(EndpointError, match="--ca-file"):
            client_for(server.url, ca_file=str(cert_path) + ".missing")


async def test_the_deadline_covers_the_whole_call_not_each_read():
    """A server that trickles its answer (each byte well within any per-read timeout) still
    ends the call at the deadline."""
    started = asyncio.Event()

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        started.set()
        try:
            for _ in range(1000):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.05)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with client_for(f"http://127.0.0.1:{port}", deadline=0.6) as rest:
            with pytest.raises(RestTimeout):
                await rest.position()
        assert started.is_set()
    finally:
        server.close()
        await server.wait_closed()


async def test_proxy_settings_in_the_environment_are_not_used(monkeypatch):
    async with raw_server(http("200 OK", b'{"code":0}')) as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with rest_sim() as (sim, api, server), client_for(server.url) as rest:
            await rest.cancel_all("BTC-PERP")
            assert len(api.calls) == 1 and sim.book.open_orders("BTC-PERP") == []
        assert proxy.connections == 0


async def test_open_orders_of_a_symbol_are_filtered_here_too():
    """The ``symbol`` filter of order/open is undocumented: an exchange that ignores it must
    not make another symbol's orders look like this symbol's."""
    records = [
        {"orderId": "a1", "symbol": "BTC-PERP", "status": "New"},
        {"orderId": "e1", "symbol": "ETH-PERP", "status": "New"},
    ]
    async with raw_server(http("200 OK", json.dumps({"code": 0, "data": records}).encode())) as raw:
        async with client_for(f"http://127.0.0.1:{raw.port}") as rest:
            assert [o.order_id for o in await rest.open_orders("BTC-PERP")] == ["a1"]
            assert len(await rest.open_orders()) == 2


async def test_a_clock_far_off_is_reported_as_such_not_as_a_key_problem(monkeypatch):
    import blotter.protocol.rest as proto

    real = proto.now_ms
    monkeypatch.setattr(proto, "now_ms", lambda: real() - 60_000)
    async with rest_sim() as (sim, api, server), client_for(server.url) as rest:
        with pytest.raises(RestRejected) as info:
            await rest.open_orders()
    assert info.value.refusal.code == 100011 and "clock" in str(info.value)
    assert not isinstance(info.value, RestAuthRefused)


async def test_http_429_says_slow_down():
    async with raw_server(http("429 Too Many Requests", b"")) as raw:
        async with client_for(f"http://127.0.0.1:{raw.port}") as rest:
            with pytest.raises(RestCallError, match="429.*slow down") as info:
                await rest.order_history()
    assert info.value.status == 429 and not isinstance(info.value, RestAuthRefused)
