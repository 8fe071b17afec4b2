"""The session against a hostile or broken server, over real loopback sockets: an
upgrade answered with a redirect, 403 and 429 at the upgrade, an ``op:auth`` never
answered or answered with ``m:"error"``, server pings in either spelling, and a
server that echoes the login back."""

from __future__ import annotations

import asyncio
import contextlib
import http
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from pydantic import SecretStr
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from blotter.desk import ConnState, Desk, DeskSettings
from blotter.protocol.signing import mask_key
from tests.helpers import eventually

KEY = "kEyQ7w3Zr9LmXv2Tb8NcHs5Jd4Pf6Ga1"
SECRET = "c2VjcmV0LWZvci10ZXN0cy1vbmx5"
AUTH_HEADERS = ("x-auth-key", "x-auth-timestamp", "x-auth-signature")


class Exchange:
    """A scriptable WebSocket server on a loopback address. ``on_connect`` may answer
    the upgrade itself (a redirect, 403, 429); ``script`` runs the connection."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.upgrades: list[Headers] = []
        self.received: list[dict[str, Any]] = []
        self.connections = 0
        self.on_upgrade: Callable[[Request], Response | None] = lambda request: None
        self.script: Callable[[ServerConnection, Exchange], Any] = standard

    def url(self, path: str = "/1/api/pro/v2/stream") -> str:
        return f"ws://{self.host}:{self.port}{path}"

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.upgrades.append(request.headers)
        return self.on_upgrade(request)

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        try:
            await self.script(ws, self)
        except ConnectionClosed:
            pass

    async def read(self, ws: ServerConnection) -> dict[str, Any]:
        data = orjson.loads(await ws.recv())
        self.received.append(data)
        return data

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Exchange]:
        async with serve(
            self._handler, self.host, 0, ping_interval=None, process_request=self._process_request
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            yield self


async def answer(ws: ServerConnection, exchange: Exchange, data: dict[str, Any]) -> None:
    """The ordinary replies: subscription, pong, an empty open-orders snapshot, auth OK."""
    op = data.get("op")
    if op == "sub":
        await ws.send(orjson.dumps({"m": "sub", "id": data.get("id"), "ch": data.get("ch"), "code": 0}).decode())
    elif op == "ping":
        await ws.send('{"m":"pong","code":0,"hp":3}')
    elif op == "auth":
        await ws.send(orjson.dumps({"m": "auth", "id": data.get("id"), "code": 0}).decode())
    elif op == "req" and data.get("action") == "futures-open-orders":
        await ws.send(
            orjson.dumps(
                {"m": "futures-open-orders", "code": 0, "id": data["id"], "ac": "FUTURES", "data": []}
            ).decode()
        )


async def standard(ws: ServerConnection, exchange: Exchange) -> None:
    authenticated = "x-auth-key" in ws.request.headers
    await ws.send(orjson.dumps({"m": "connected", "type": "auth" if authenticated else "unauth"}).decode())
    while True:
        await answer(ws, exchange, await exchange.read(ws))


@contextlib.asynccontextmanager
async def desk_at(url: str, **settings: Any) -> AsyncIterator[Desk]:
    settings.setdefault("backoff_max", 0.3)
    desk = Desk(DeskSettings(url=url, api_key=SecretStr(KEY), api_secret=SecretStr(SECRET), **settings))
    task = asyncio.create_task(desk.run())
    try:
        yield desk
    finally:
        await desk.stop()
        await asyncio.wait_for(task, 10)


def log_text(desk: Desk) -> str:
    return "\n".join(line.text for line in desk.log.lines())


# -- item 1: redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize("target_host", ["127.0.0.2", "0.0.0.0"])
@pytest.mark.parametrize("status", [http.HTTPStatus.FOUND, http.HTTPStatus.TEMPORARY_REDIRECT])
async def test_a_redirect_is_not_followed_and_the_login_goes_nowhere_else(target_host, status):
    other = Exchange("127.0.0.2")
    async with other.running(), Exchange().running() as first:
        host = target_host if target_host != "0.0.0.0" else "0.0.0.0"
        location = f"ws://user:pw@{host}:{other.port}/1/api/pro/v2/stream?leak=1"

        def redirect(request: Request) -> Response:
            return Response(status.value, status.phrase, Headers([("Location", location), ("Content-Length", "0")]))

        first.on_upgrade = redirect
        async with desk_at(first.url()) as desk:
            await eventually(lambda: len(first.upgrades) >= 2 and desk.state is ConnState.RECONNECTING, 10)
            assert not desk.session.live.is_set()
            detail = desk.detail
        # The first host got the login it was given; nobody else got anything.
        assert all(h in first.upgrades[0] for h in AUTH_HEADERS)
        assert other.upgrades == [] and other.connections == 0
        expected = f"ws://{host}:{other.port}/1/api/pro/v2/stream"
        assert detail == f"the server redirected to {expected}; redirects are not followed on the private stream"
        assert "pw@" not in log_text(desk) and "leak" not in log_text(desk)
        assert desk.endpoint_label == first.url()


async def test_headless_orders_does_not_print_the_other_servers_orders(tmp_path):
    import os
    import sys

    other = Exchange("127.0.0.2")
    async with other.running(), Exchange().running() as first:
        first.on_upgrade = lambda request: Response(
            302, "Found", Headers([("Location", other.url()), ("Content-Length", "0")])
        )
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
            "orders",
            "--url",
            first.url(),
            "--no-journal",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode != 0, out
        assert b"redirects are not followed" in out + err
        assert other.connections == 0 and other.upgrades == []


# -- issue 13: the upgrade refused with 403 or 429 -------------------------------------------------


async def test_http_403_at_the_upgrade_says_forbidden_not_only_wrong_key_form():
    async with Exchange().running() as ex:
        ex.on_upgrade = lambda request: Response(403, "Forbidden", Headers([("Content-Length", "0")]))
        async with desk_at(ex.url()) as desk:
            await eventually(lambda: desk.state is ConnState.AUTH_REFUSED, 10)
            detail = desk.detail
    assert "HTTP 403 forbidden" in detail
    assert "IP" in detail and "geo" in detail and "--secret-encoding raw" in detail


@pytest.mark.parametrize(
    ("retry_after", "said"),
    [(None, "trying again in 0.3 s"), ("1", "trying again in 1 s"), ("86400", "trying again in 0.3 s")],
)
async def test_http_429_at_the_upgrade_is_rate_limited_and_retried(retry_after, said):
    headers = [("Content-Length", "0")] + ([("Retry-After", retry_after)] if retry_after else [])
    async with Exchange().running() as ex:
        ex.on_upgrade = lambda request: (
            Response(429, "Too Many Requests", Headers(headers)) if len(ex.upgrades) <= 1 else None
        )
        async with desk_at(ex.url()) as desk:
            await eventually(lambda: desk.state is ConnState.RECONNECTING, 10)
            assert "HTTP 429" in desk.detail and "rate limited" in desk.detail and said in desk.detail
            assert "key form" not in desk.detail
            assert await desk.wait_live(10), desk.detail


# -- item 12 and issue 13: op:auth --------------------------------------------------------------


async def silent_auth(ws: ServerConnection, exchange: Exchange) -> None:
    """Never answers op:auth, but keeps the connection busy with pings (so no read times out)."""
    await ws.send('{"m":"connected","type":"unauth"}')

    async def pings() -> None:
        while True:
            await ws.send('{"m":"ping","hp":3}')
            await asyncio.sleep(0.05)

    task = asyncio.create_task(pings())
    try:
        while True:
            data = await exchange.read(ws)
            if data.get("op") != "auth":
                await answer(ws, exchange, data)
    finally:
        task.cancel()


async def test_an_auth_never_answered_times_out_and_reconnects_with_backoff():
    async with Exchange().running() as ex:
        ex.script = silent_auth
        async with desk_at(ex.url(), auth_mode="op", reply_timeout=0.5) as desk:
            await eventually(lambda: desk.attempt >= 2 and desk.state is ConnState.RECONNECTING, 20)
            assert "no reply to the login (op:auth) within 0.5 s" in desk.detail
            assert ex.connections >= 2
            assert "connection: reconnecting (attempt 2)" in log_text(desk)
        assert sum(1 for d in ex.received if d.get("op") == "auth") >= 2


async def test_an_error_during_auth_is_handled_at_once():
    async def refuse(ws: ServerConnection, exchange: Exchange) -> None:
        await ws.send('{"m":"connected","type":"unauth"}')
        while True:
            data = await exchange.read(ws)
            if data.get("op") == "auth":
                await ws.send(
                    orjson.dumps(
                        {
                            "m": "error",
                            "id": data.get("id"),
                            "code": 200006,
                            "reason": "INVALID_SIGNATURE",
                            "info": "bad sig",
                        }
                    ).decode()
                )

    async with Exchange().running() as ex:
        ex.script = refuse
        # The auth deadline is long: only an immediate handling of the error passes.
        async with desk_at(ex.url(), auth_mode="op", reply_timeout=60) as desk:
            await eventually(lambda: desk.state is ConnState.AUTH_REFUSED, 10)
            assert "200006" in desk.detail and "INVALID_SIGNATURE" in desk.detail
            assert "--secret-encoding raw" in desk.detail


@pytest.mark.parametrize("spelling", ["m", "op"])
async def test_a_server_ping_is_answered_with_op_pong(spelling):
    async def pinging(ws: ServerConnection, exchange: Exchange) -> None:
        await ws.send('{"m":"connected","type":"auth"}')
        pinged = False
        while True:
            data = await exchange.read(ws)
            await answer(ws, exchange, data)
            if data.get("action") == "futures-open-orders" and not pinged:
                pinged = True
                await ws.send(orjson.dumps({spelling: "ping", "hp": 3}).decode())

    async with Exchange().running() as ex:
        ex.script = pinging
        async with desk_at(ex.url(), ping_interval=60) as desk:
            assert await desk.wait_live(10), desk.detail
            await eventually(lambda: any(d.get("op") == "pong" for d in ex.received), 10)


# -- item 2: a server that echoes the login back ------------------------------------------------


def escaped(text: str) -> str:
    """``text`` as JSON-string content with its first character as a ``\\u`` escape and ``/`` as ``\\/``."""
    return f"\\u{ord(text[0]):04x}" + text[1:].replace("/", "\\/")


def order_update(order_id: str, **over: Any) -> dict[str, Any]:
    base = {
        "m": "futures-order",
        "orderId": order_id,
        "s": "BTC-PERP",
        "sd": "Buy",
        "ot": "Limit",
        "p": "64000.5",
        "q": "0.25",
        "cfq": "0",
        "ap": "0",
        "st": "New",
        "sn": 101,
        "a": "futACCOUNT",
        "t": 1_700_000_000_001,
    }
    base.update(over)
    return base


def everything_shown(desk: Desk) -> list[str]:
    texts = [desk.detail, desk.key_label, desk.endpoint_label] + [line.text for line in desk.log.lines()]
    for entry in desk.store.open_by_symbol(None):
        texts.append(repr(entry.order))
    return texts


@pytest.mark.parametrize("auth_mode", ["headers", "op"])
async def test_a_login_echoed_back_is_redacted_in_everything_handed_up(auth_mode):
    seen: dict[str, str] = {}

    async def echo(ws: ServerConnection, exchange: Exchange) -> None:
        headers = ws.request.headers
        if "x-auth-key" in headers:
            seen.update(key=headers["x-auth-key"], sig=headers["x-auth-signature"], t=headers["x-auth-timestamp"])
            await ws.send('{"m":"connected","type":"auth"}')
        else:
            await ws.send('{"m":"connected","type":"unauth"}')
        while True:
            data = await exchange.read(ws)
            if data.get("op") == "auth":
                seen.update(key=data["key"], sig=data["sig"], t=str(data["t"]))
            await answer(ws, exchange, data)
            if data.get("action") != "futures-open-orders":
                continue
            key, sig, t = seen["key"], seen["sig"], seen["t"]
            frames = [
                f'{{"m":"error","code":100001,"reason":"INVALID_AUTH","info":"bad sig {sig} for key {key} at {t}"}}',
                f'{{"m":"error","code":100002,"reason":"ESCAPED","info":"key {escaped(key)} sig {escaped(sig)}"}}',
                orjson.dumps(order_update("s18f1a2b3c4dU1234567890echoAAAA1", s=key)).decode(),
                orjson.dumps(order_update("s18f1a2b3c4dU1234567890echoAAAA2", err=f"{sig} {t}")).decode(),
                f'{{"m":"disconnected","code":100005,"reason":"{key}","info":"{escaped(sig)}"}}',
                orjson.dumps({"m": "sub", "id": "x", "ch": key, "code": 1, "err": sig}).decode(),
                orjson.dumps({"m": "mystery-" + key}).decode(),
            ]
            for text in frames:
                await ws.send(text)
            await ws.send(orjson.dumps(order_update("s18f1a2b3c4dU1234567890markerAA9")).decode())
            await asyncio.sleep(0.3)
            await ws.close(4000, f"{key} {sig}"[:120])
            return

    async with Exchange().running() as ex:
        ex.script = echo
        async with desk_at(ex.url(), auth_mode=auth_mode) as desk:
            await eventually(lambda: "s18f1a2b3c4dU1234567890markerAA9" in desk.store, 10)
            await eventually(lambda: desk.state is ConnState.RECONNECTING, 10)
            shown = everything_shown(desk)
            session_detail = desk.session.detail
    key, sig, t = seen["key"], seen["sig"], seen["t"]
    assert key == KEY
    joined = "\n".join(shown + [session_detail])
    assert KEY not in joined and KEY[4:-4] not in joined
    assert sig not in joined and sig.replace("/", "\\/") not in joined
    assert t not in joined
    # What was redacted is still said: the frames were handled, with the key masked.
    assert mask_key(KEY) in joined and "[signature]" in joined
    assert "INVALID_AUTH" in joined and "ESCAPED" in joined


async def test_an_auth_refusal_echoing_the_login_is_redacted():
    async def refuse(ws: ServerConnection, exchange: Exchange) -> None:
        await ws.send('{"m":"connected","type":"unauth"}')
        while True:
            data = await exchange.read(ws)
            if data.get("op") == "auth":
                await ws.send(
                    orjson.dumps(
                        {
                            "m": "auth",
                            "id": data["id"],
                            "code": 200006,
                            "err": f"bad signature {data['sig']} for {data['key']} at {data['t']}",
                        }
                    ).decode()
                )

    async with Exchange().running() as ex:
        ex.script = refuse
        async with desk_at(ex.url(), auth_mode="op") as desk:
            await eventually(lambda: desk.state is ConnState.AUTH_REFUSED, 10)
            joined = "\n".join(everything_shown(desk))
    auth = next(d for d in ex.received if d.get("op") == "auth")
    assert auth["key"] not in joined and auth["sig"] not in joined and str(auth["t"]) not in joined
    assert "200006" in joined and "[signature]" in joined


async def test_a_connected_message_that_never_comes_times_out_despite_pings():
    async def pings_only(ws: ServerConnection, exchange: Exchange) -> None:
        while True:
            await ws.send('{"m":"ping","hp":3}')
            await asyncio.sleep(0.05)

    async with Exchange().running() as ex:
        ex.script = pings_only
        async with desk_at(ex.url(), reply_timeout=0.5) as desk:
            await eventually(lambda: desk.attempt >= 2 and desk.state is ConnState.RECONNECTING, 20)
            assert "no 'connected' message within 0.5 s" in desk.detail
