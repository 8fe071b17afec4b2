"""Endpoint URLs and the transport rules for them.

Plain ``ws://`` is accepted only for loopback hosts (the simulator); anything else
must be ``wss://`` with certificate checks on, so credentials and orders never
cross a network in clear text.
"""

from __future__ import annotations

import ipaddress
import ssl
from urllib.parse import urlsplit

ENVIRONMENTS = {
    "mainnet": "wss://ascendex.com:443/{grp}/api/pro/v2/stream",
    "testnet": "wss://api-test.ascendex-sandbox.com:443/{grp}/api/pro/v2/stream",
}


class EndpointError(ValueError):
    """A URL the blotter will not use; the message is one line saying what to do."""


def build_url(env: str, account_group: int | str) -> str:
    if env not in ENVIRONMENTS:
        raise EndpointError(f"unknown --env {env!r}; use one of: {', '.join(ENVIRONMENTS)}")
    try:
        grp = int(account_group)
    except (TypeError, ValueError):
        raise EndpointError("--account-group must be a whole number (your API key's account group)") from None
    if grp < 0:
        raise EndpointError("--account-group must be a whole number (your API key's account group)")
    return ENVIRONMENTS[env].format(grp=grp)


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> str:
    """Return ``url`` if the blotter may connect to it, else raise :class:`EndpointError`."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise EndpointError(f"bad URL {url!r}: {exc}") from None
    if parts.scheme not in ("ws", "wss"):
        raise EndpointError(f"bad URL {url!r}: it must start with wss:// (or ws:// for a loopback simulator)")
    if not host:
        raise EndpointError(f"bad URL {url!r}: no host")
    if parts.scheme == "ws" and not is_loopback(host):
        raise EndpointError(
            f"refusing plain ws:// to {host}: only loopback hosts may use ws://; use wss:// for a remote exchange"
        )
    return url


def ssl_context(url: str, ca_file: str | None = None) -> ssl.SSLContext | None:
    """Certificate-checking TLS context for ``wss://`` (with an extra CA file if given)."""
    if urlsplit(url).scheme != "wss":
        return None
    ctx = ssl.create_default_context()
    if ca_file:
        try:
            ctx.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise EndpointError(f"cannot use --ca-file {ca_file}: {exc.strerror or exc}") from None
    return ctx


def display_url(url: str) -> str:
    """The URL as shown on screen (no credentials ever live in it; strip a query anyway)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
