"""Secrets never leak: not the API secret, not the HMAC key bytes, not a signature,
and the API key only masked (first and last four characters with ``…`` between).

Checked wherever text goes: the desk's log lines and connection detail, the reprs of
settings and requests, exceptions of a refused authentication, Python logging (at
DEBUG, including the websockets library), and the headless commands' stdout/stderr
(success and failure) and every ``--help``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from blotter.desk import ConnState, Desk
from blotter.net.session import AuthRefused, Session, SessionSettings
from blotter.protocol import Auth
from blotter.protocol.signing import key_bytes, mask_key, now_ms, sign
from tests.helpers import eventually, running_desk, running_sim

KEY = "kEyQ7w3Zr9LmXv2Tb8NcHs5Jd4Pf6Ga1"
assert len(KEY) == 32
SECRET_B64 = base64.b64encode(b"sEcReT-do-not-leak:" + bytes(range(200, 229))).decode()
SECRET_RAW = "rawSeCrEt-DoNotLeak-7f3a9c1e5b2d8f4a6c0e"
WRONG_B64 = base64.b64encode(b"wrong-secret-also-never-shown-1234567").decode()
SIG_TOKEN = re.compile(r"[A-Za-z0-9+/]{43}=")


class Watch:
    """Collects text from everywhere and checks it for secrets."""

    def __init__(self, secrets: list[tuple[str, str]]) -> None:
        self.secrets = secrets  # (secret, encoding)
        self.texts: list[tuple[str, str]] = []
        self.start_ms = now_ms()

    def add(self, where: str, text: str) -> None:
        self.texts.append((where, text))

    def add_desk(self, desk: Desk, where: str = "desk") -> None:
        for line in desk.log.lines():
            self.add(f"{where} log", line.text)
        self.add(f"{where} detail", desk.detail)
        self.add(f"{where} repr(settings)", repr(desk.settings))
        self.add(f"{where} str(settings)", str(desk.settings))
        self.add(f"{where} settings json", desk.settings.model_dump_json())
        self.add(f"{where} repr(session settings)", repr(desk.session.settings))
        self.add(f"{where} key label", desk.key_label)

    def check(self) -> None:
        end_ms = now_ms()
        forbidden: list[tuple[str, str]] = [(KEY, "API key"), (KEY[4:-4], "middle of the API key")]
        signatures: set[str] = set()
        for secret, encoding in self.secrets:
            raw = key_bytes(secret, encoding)
            forbidden += [
                (secret, "API secret"),
                (raw.hex(), "key bytes (hex)"),
                (raw.decode("latin-1"), "key bytes"),
                (base64.b64encode(raw).decode(), "key bytes (base64)"),
            ]
            if len(secret) > 16:
                forbidden.append((secret[4:-4], "middle of the API secret"))
            # Every signature that could have been made during the run, ±60 s (only if
            # anything in the texts looks like one).
            if any(SIG_TOKEN.search(text) for _, text in self.texts):
                signatures |= {
                    base64.b64encode(hmac.new(raw, f"{t}+v2/stream".encode(), hashlib.sha256).digest()).decode()
                    for t in range(self.start_ms - 60_000, end_ms + 60_000)
                }
                assert sign(secret, self.start_ms, encoding) in signatures
        for where, text in self.texts:
            for value, what in forbidden:
                assert value not in text, f"{what} leaked in {where}: …{text[max(0, text.find(value) - 40) :][:120]!r}"
            for token in SIG_TOKEN.findall(text):
                assert token not in signatures, f"a signature leaked in {where}"
            # The key may appear masked, and only masked.
            masked = text.replace(mask_key(KEY), "")
            assert KEY[:8] not in masked and KEY[-8:] not in masked, f"key fragment in {where}"


@pytest.fixture
def debug_logging(caplog):
    """Everything logged at DEBUG anywhere (the websockets library logs headers and
    frames at DEBUG when asked to)."""
    caplog.set_level(logging.DEBUG)
    return caplog


def add_client_logging(watch: Watch, caplog) -> None:
    """Every record logged on the client side (the simulator's own server logs are the
    exchange's, not ours), message and arguments."""
    for record in caplog.records:
        if record.name.startswith(("websockets.server", "blotter.sim")):
            continue
        watch.add(f"python logging {record.name}", record.getMessage())
        watch.add(f"python logging {record.name} args", repr(record.args))


@pytest.mark.parametrize("auth_mode", ["headers", "op"])
@pytest.mark.parametrize("encoding", ["base64", "raw"])
async def test_desk_never_shows_secrets(auth_mode, encoding, debug_logging, tmp_path):
    secret = SECRET_B64 if encoding == "base64" else SECRET_RAW
    watch = Watch([(secret, encoding)])
    async with running_sim(api_key=KEY, api_secret=secret, secret_encoding=encoding, rate=50) as sim:
        async with running_desk(
            sim,
            api_key=SecretStr(KEY),
            api_secret=SecretStr(secret),
            secret_encoding=encoding,
            auth_mode=auth_mode,
            ping_interval=0.2,
        ) as desk:
            assert await desk.wait_live(5), desk.detail
            order = sim.open_orders()[0]
            tracked = await desk.cancel_order(order["orderId"])
            await eventually(lambda: tracked.state.final)
            await sim.drop_connections()  # a reconnect re-authenticates (and logs it)
            await eventually(lambda: desk.session.connections >= 2 and desk.state is ConnState.LIVE)
            await desk.cancel_all()
            await asyncio.sleep(0.3)
            watch.add_desk(desk)
        auths = [f.data for f in sim.received if isinstance(f.data, dict) and f.data.get("op") == "auth"]
        if auth_mode == "op":
            assert len(auths) >= 2
            for frame in auths:  # the signatures we must never see are exactly these
                assert frame["sig"] == sign(secret, frame["t"], encoding)
                assert frame["key"] == KEY
        else:
            assert auths == []
        request = Auth(time_ms=now_ms(), api_key=SecretStr(KEY), signature=SecretStr(sign(secret, now_ms(), encoding)))
        watch.add("repr(Auth)", repr(request))
        watch.add("str(Auth)", str(request))
        watch.add("Auth dump", str(request.model_dump()))
    add_client_logging(watch, debug_logging)
    watch.check()


@pytest.mark.parametrize("auth_mode", ["headers", "op"])
async def test_refused_auth_never_shows_secrets(auth_mode, debug_logging):
    watch = Watch([(WRONG_B64, "base64"), (SECRET_B64, "base64")])
    async with running_sim(api_key=KEY, api_secret=SECRET_B64) as sim:
        async with running_desk(
            sim, api_key=SecretStr(KEY), api_secret=SecretStr(WRONG_B64), auth_mode=auth_mode
        ) as desk:
            assert not await desk.wait_live(5)
            assert desk.state is ConnState.AUTH_REFUSED
            watch.add_desk(desk)
        # The exception itself, as a caller (or a traceback) would show it.
        settings = SessionSettings(
            url=sim.url, api_key=SecretStr(KEY), api_secret=SecretStr(WRONG_B64), auth_mode=auth_mode
        )
        session = Session(settings, on_frame=lambda *a: None)
        with pytest.raises(AuthRefused) as info:
            await session._connect_once()
        exc = info.value
        watch.add("str(AuthRefused)", str(exc))
        watch.add("repr(AuthRefused)", repr(exc))
        watch.add("traceback", "".join(traceback.format_exception(exc)))
        watch.add("exception args", repr(exc.args))
        # A secret that is not base64 at all: the signing error says so, without it.
        bad = SessionSettings(
            url=sim.url, api_key=SecretStr(KEY), api_secret=SecretStr(SECRET_RAW + "!"), auth_mode=auth_mode
        )
        with pytest.raises(AuthRefused) as info:
            await Session(bad, on_frame=lambda *a: None)._connect_once()
        assert "base64" in str(info.value)
        assert SECRET_RAW not in "".join(traceback.format_exception(info.value))
    add_client_logging(watch, debug_logging)
    watch.check()


# -- headless commands as processes ------------------------------------------------------------


def env_for(tmp_path: Path, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASCENDEX_")}
    env.update(
        ASCENDEX_API_KEY=KEY,
        ASCENDEX_API_SECRET=secret,
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        HOME=str(tmp_path),
        NO_COLOR="1",
        COLUMNS="200",
    )
    return env


async def blotter(env: dict[str, str], *args: str, timeout: float = 30) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "blotter", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


async def test_headless_commands_never_show_secrets(tmp_path):
    watch = Watch([(SECRET_B64, "base64"), (WRONG_B64, "base64")])
    good, wrong = env_for(tmp_path, SECRET_B64), env_for(tmp_path / "wrong", WRONG_B64)
    async with running_sim(api_key=KEY, api_secret=SECRET_B64, initial_orders=8) as sim:
        first = sim.open_orders()[0]
        runs: list[tuple[str, Any]] = [
            (
                "cancel ok",
                blotter(good, "cancel", "--url", sim.url, "--symbol", first["symbol"], "--order-id", first["orderId"]),
            ),
            (
                "cancel op-auth json",
                blotter(
                    good,
                    "cancel",
                    "--url",
                    sim.url,
                    "--auth-mode",
                    "op",
                    "--json",
                    "--no-journal",
                    "--symbol",
                    "BTC-PERP",
                    "--order-id",
                    "s0000000000000U0000000000nosuch01",
                ),
            ),
            ("orders", blotter(good, "orders", "--url", sim.url)),
            ("orders json op", blotter(good, "orders", "--url", sim.url, "--json", "--auth-mode", "op")),
            (
                "cancel wrong secret",
                blotter(
                    wrong,
                    "cancel",
                    "--url",
                    sim.url,
                    "--symbol",
                    "BTC-PERP",
                    "--order-id",
                    first["orderId"],
                    "--no-journal",
                ),
            ),
            ("orders wrong secret op", blotter(wrong, "orders", "--url", sim.url, "--auth-mode", "op", "--no-journal")),
            ("cancel-all wrong secret json", blotter(wrong, "cancel-all", "--url", sim.url, "--json", "--no-journal")),
            (
                "bad secret encoding",
                blotter(env_for(tmp_path / "raw", SECRET_RAW + "!"), "orders", "--url", sim.url, "--no-journal"),
            ),
            (
                "remote ws:// url",
                blotter(good, "orders", "--url", "ws://example.com/1/api/pro/v2/stream", "--no-journal"),
            ),
        ]
        results = await asyncio.gather(*(r for _, r in runs))
        for (name, _), (_code, out, err) in zip(runs, results, strict=True):
            watch.add(f"{name} stdout", out)
            watch.add(f"{name} stderr", err)
        codes = {name: code for (name, _), (code, _o, _e) in zip(runs, results, strict=True)}
        assert codes["cancel ok"] == 0 and codes["orders"] == 0 and codes["orders json op"] == 0, results
        assert codes["cancel wrong secret"] == 4 and codes["orders wrong secret op"] == 4
        assert codes["cancel-all wrong secret json"] == 4 and codes["remote ws:// url"] == 2
        assert codes["bad secret encoding"] in (2, 4)
        # The cancel-all with the right secret empties the book last.
        code, out, err = await blotter(good, "cancel-all", "--url", sim.url, "--auth-mode", "op")
        assert code == 0, out + err
        watch.add("cancel-all stdout", out)
        watch.add("cancel-all stderr", err)
    # The audit journal written by the runs above.
    journal_files = [path for path in (tmp_path / "data").rglob("*") if path.is_file()]
    assert journal_files, "the runs with a journal wrote none"
    for path in journal_files:
        watch.add(f"journal file {path.name}", path.read_bytes().decode("latin-1"))
    watch.check()


async def test_help_never_shows_secrets(tmp_path):
    env = env_for(tmp_path, SECRET_B64)
    commands = [[], ["cancel"], ["cancel-all"], ["orders"], ["journal"], ["demo"], ["sim"]]
    results = await asyncio.gather(*(blotter(env, *cmd, "--help") for cmd in commands))
    watch = Watch([(SECRET_B64, "base64")])
    for cmd, (code, out, err) in zip(commands, results, strict=False):
        assert code == 0, (cmd, err)
        assert "usage:" in out
        watch.add(f"{' '.join(cmd) or 'blotter'} --help", out + err)
    watch.check()


@pytest.mark.parametrize("leak", ["key", "secret", "signature", "key bytes", "masked ok"])
def test_the_watch_catches_each_kind_of_leak(leak):
    watch = Watch([(SECRET_B64, "base64")])
    text = {
        "key": f"key={KEY}",
        "secret": f"secret {SECRET_B64}",
        "signature": f"sig {sign(SECRET_B64, now_ms() - 30_000)} end",
        "key bytes": key_bytes(SECRET_B64).hex(),
        "masked ok": f"key {mask_key(KEY)}",
    }[leak]
    watch.add("planted", text)
    if leak == "masked ok":
        watch.check()
    else:
        with pytest.raises(AssertionError):
            watch.check()


# -- a key that cannot go in a header ------------------------------------------------------------

BAD_KEYS = [
    "KEYSTART\r\nX-Evil: 1ENDOFKEY1234",
    "KEYSTART\nENDOFKEY123456789",
    "KEYSTART ENDOFKEY123456789",
    "KEYSTART\x1b[2JENDOFKEY12345",
    "KEYSTARTéENDOFKEY1234567890",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_mask_key_never_shows_a_key_with_control_characters_or_spaces(key):
    masked = mask_key(key)
    assert "KEYS" not in masked and "1234" not in masked and "6789" not in masked
    assert masked.isprintable() and "\x1b" not in masked


@pytest.mark.parametrize("auth_mode", ["headers", "op"])
@pytest.mark.parametrize("key", BAD_KEYS[:2])
async def test_a_key_with_cr_lf_is_refused_in_one_line_without_showing_it(key, auth_mode, debug_logging):
    async with running_sim(api_key=KEY, api_secret=SECRET_B64) as sim:
        async with running_desk(
            sim, api_key=SecretStr(key), api_secret=SecretStr(SECRET_B64), auth_mode=auth_mode
        ) as desk:
            assert not await desk.wait_live(5)
            assert desk.state is ConnState.AUTH_REFUSED, desk.detail  # no point retrying: it cannot work
            texts = [desk.detail, desk.key_label] + [line.text for line in desk.log.lines()]
            texts += [
                r.getMessage()
                for r in debug_logging.records
                if not r.name.startswith(("websockets.server", "blotter.sim"))
            ]
            assert "API key" in desk.detail and "\n" not in desk.detail
            for text in texts:
                assert "KEYSTART" not in text and "ENDOFKEY" not in text and "X-Evil" not in text, text
        # Nothing reached the simulator: not as a header, not in an op:auth frame.
        assert not any(isinstance(f.data, dict) and f.data.get("op") == "auth" for f in sim.received)
