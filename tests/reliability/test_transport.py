"""Transport: certificates are checked for wss://, and plain ws:// is for loopback only.

The simulator serves TLS with a self-signed certificate made here (with ``openssl``):
by default the desk refuses it (and says why and what to do), with ``ca_file`` set
to that certificate it connects.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from blotter.core import State
from blotter.desk import ConnState, Desk, DeskSettings
from blotter.net.endpoints import EndpointError
from blotter.net.session import Session, SessionSettings
from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET
from tests.helpers import eventually, running_desk, running_sim


def make_cert(directory: Path, names: str = "DNS:localhost,IP:127.0.0.1", cn: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate and its key (PEM)."""
    try:
        from cryptography import x509  # noqa: F401  (preferred, when installed)
    except ImportError:
        pass
    else:  # pragma: no cover - not installed in this venv
        return _make_cert_cryptography(directory, names, cn)
    if shutil.which("openssl") is None:
        pytest.skip(
            "neither the 'cryptography' package nor the 'openssl' command is available to make a test certificate"
        )
    cert, key = directory / f"{cn}-cert.pem", directory / f"{cn}-key.pem"
    result = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            f"/CN={cn}",
            "-addext",
            f"subjectAltName={names}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {result.stderr.strip()[:200]}")
    return cert, key


def _make_cert_cryptography(directory: Path, names: str, cn: str) -> tuple[Path, Path]:  # pragma: no cover
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    alt = []
    for item in names.split(","):
        kind, value = item.split(":", 1)
        alt.append(x509.DNSName(value) if kind == "DNS" else x509.IPAddress(ipaddress.ip_address(value)))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{cn}-cert.pem", directory / f"{cn}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    good = make_cert(directory)
    other = make_cert(directory, names="DNS:other.example", cn="other.example")
    return {"good": good, "other": other}


async def test_self_signed_wss_is_refused_by_default(certs):
    cert, key = certs["good"]
    async with running_sim(tls_cert=cert, tls_key=key) as sim:
        assert sim.url.startswith("wss://")
        async with running_desk(sim) as desk:
            assert not await desk.wait_live(1.5)
            assert desk.state is not ConnState.LIVE
            assert desk.snapshot_count == 0 and len(desk.store) == 0
            assert "certificate" in desk.detail and "--ca-file" in desk.detail, desk.detail
            print(f"\nrefused: {desk.detail}")
            assert any("certificate" in l.text for l in desk.log.lines())
            # Nothing was ever authenticated or asked: the server saw no frame from us.
            assert sim.received == [] and sim.authenticated_count == 0


async def test_self_signed_wss_is_accepted_with_its_ca_file(certs):
    cert, key = certs["good"]
    async with running_sim(tls_cert=cert, tls_key=key) as sim:
        for url in (sim.url, sim.url.replace("127.0.0.1", "localhost")):
            desk = Desk(
                DeskSettings(
                    url=url,
                    api_key=SecretStr(DEMO_API_KEY),
                    api_secret=SecretStr(DEMO_API_SECRET),
                    ca_file=str(cert),
                    backoff_max=0.5,
                )
            )
            task = asyncio.create_task(desk.run())
            try:
                assert await desk.wait_live(5), desk.detail
                want = {o["orderId"] for o in sim.open_orders()}
                assert {e.order_id for e in desk.store.open_entries()} == want
                tracked = await desk.cancel_order(sorted(want)[0])
                await eventually(lambda: tracked.state is State.CONFIRMED)
            finally:
                await desk.stop()
                await asyncio.wait_for(task, 5)


async def test_certificate_for_another_name_is_refused_even_with_its_ca_file(certs):
    cert, key = certs["other"]
    async with running_sim(tls_cert=cert, tls_key=key) as sim:
        async with running_desk(sim, ca_file=str(cert)) as desk:
            assert not await desk.wait_live(1.5)
            assert desk.state is not ConnState.LIVE and sim.authenticated_count == 0
            assert "certificate" in desk.detail, desk.detail
            print(f"\nrefused: {desk.detail}")


async def test_plain_wss_client_cannot_talk_to_tls_less_server_and_vice_versa(certs):
    async with running_sim() as sim:  # plain ws:// server
        url = sim.url.replace("ws://", "wss://")
        async with _desk(url) as desk:
            assert not await desk.wait_live(1.0)
            assert desk.state is not ConnState.LIVE and desk.detail


def _desk(url: str, **settings):
    import contextlib

    @contextlib.asynccontextmanager
    async def run():
        desk = Desk(
            DeskSettings(
                url=url,
                api_key=SecretStr(DEMO_API_KEY),
                api_secret=SecretStr(DEMO_API_SECRET),
                backoff_max=0.3,
                **settings,
            )
        )
        task = asyncio.create_task(desk.run())
        try:
            yield desk
        finally:
            await desk.stop()
            await asyncio.wait_for(task, 5)

    return run()


REMOTE_PLAIN = [
    "ws://example.com/1/api/pro/v2/stream",
    "ws://10.0.0.1:8080/1/api/pro/v2/stream",
    "ws://192.168.1.10/1/api/pro/v2/stream",
    "ws://localhost.example.com/1/api/pro/v2/stream",
    "ws://127.0.0.1.nip.io/1/api/pro/v2/stream",
    "ws://127.0.0.1:80@example.com/1/api/pro/v2/stream",
    "ws://[2001:db8::1]/1/api/pro/v2/stream",
]


@pytest.mark.parametrize("url", REMOTE_PLAIN)
def test_plain_ws_to_a_remote_host_is_refused_at_construction(url):
    kwargs = dict(api_key=SecretStr(DEMO_API_KEY), api_secret=SecretStr(DEMO_API_SECRET))
    with pytest.raises(EndpointError) as info:
        Session(SessionSettings(url=url, **kwargs), on_frame=lambda *a: None)
    message = str(info.value)
    assert "ws://" in message and "wss://" in message and "\n" not in message
    with pytest.raises(EndpointError):
        Desk(DeskSettings(url=url, **kwargs))


@pytest.mark.parametrize("url", ["ws://127.0.0.1:1/x", "ws://localhost:1/x", "ws://[::1]:1/x", "wss://example.com/x"])
def test_loopback_ws_and_any_wss_are_allowed(url):
    Session(SessionSettings(url=url, api_key=SecretStr("k"), api_secret=SecretStr("s")), on_frame=lambda *a: None)


def test_unusable_ca_file_is_one_clear_error(tmp_path):
    bogus = tmp_path / "not-a-cert.pem"
    bogus.write_text("hello\n")
    for path in (bogus, tmp_path / "missing.pem"):
        with pytest.raises(EndpointError) as info:
            Desk(
                DeskSettings(
                    url="wss://example.com/1/api/pro/v2/stream",
                    api_key=SecretStr("k"),
                    api_secret=SecretStr("s"),
                    ca_file=str(path),
                )
            )
        assert "--ca-file" in str(info.value)


async def test_cli_refuses_remote_plain_ws_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASCENDEX_")}
    env.update(
        ASCENDEX_API_KEY=DEMO_API_KEY,
        ASCENDEX_API_SECRET=DEMO_API_SECRET,
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "c"),
        XDG_DATA_HOME=str(tmp_path / "d"),
    )
    runs = [["orders"], ["cancel", "--symbol", "BTC-PERP", "--order-id", "x" * 32], ["cancel-all"]]
    procs = []
    for args in runs:
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "blotter",
                *args,
                "--url",
                "ws://example.com/1/api/pro/v2/stream",
                "--no-journal",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        )
    for proc in procs:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 2, (out, err)
        lines = err.decode().strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err.decode(), err
        assert lines[0].startswith("blotter:") and "ws://" in lines[0] and "wss://" in lines[0]
        assert out == b""
