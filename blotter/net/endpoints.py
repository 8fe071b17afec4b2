"""Endpoint URLs and the transport rules for them.

Plain ``ws://`` is accepted only for loopback hosts (the simulator); anything else
must be ``wss://`` with certificate checks on, so credentials and orders never
cross a network in clear text. Loopback means a literal loopback address
(``127.0.0.0/8``, ``::1``) or exactly ``localhost``: never a name a DNS answer
decides (``*.localhost`` included).

A URL never carries credentials: ``user:password@`` is refused (the API key and
secret come from the environment or the config file), and :func:`display_url`
strips it anyway, with the query and fragment, from anything shown.
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
    """A literal loopback address, or exactly ``localhost`` (which the system resolves
    from its hosts file, not from DNS)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def check_url(url: str) -> str:
    """Return ``url`` if the blotter may connect to it, else raise :class:`EndpointError`."""
    shown = display_url(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise EndpointError(f"bad URL {shown!r}: {str(exc).replace(url, shown)}") from None
    if parts.scheme not in ("ws", "wss"):
        raise EndpointError(f"bad URL {shown!r}: it must start with wss:// (or ws:// for a loopback simulator)")
    if not host:
        raise EndpointError(f"bad URL {shown!r}: no host")
    if not _ip_literal(host):
        try:
            host.encode("idna")  # what the connection will do: a label over 63 characters, an empty one, …
        except UnicodeError:
            raise EndpointError(
                f"bad URL {shown[:120]!r}: the host name is not valid (each dot-separated part 1-63 characters)"
            ) from None
    if parts.scheme == "ws" and not is_loopback(host):
        raise EndpointError(
            f"refusing plain ws:// to {host}: only loopback hosts may use ws:// (127.0.0.0/8, ::1 or exactly localhost); "
            "use wss:// for a remote exchange"
        )
    if "@" in parts.netloc:
        raise EndpointError(
            f"bad URL {shown!r}: it carries user:password@; remove it (the API key and secret come from "
            "ASCENDEX_API_KEY / ASCENDEX_API_SECRET or the config file)"
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
    """The URL as shown on screen, in errors and in logs: scheme, host, port and path;
    never ``user:password@``, a query or a fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unreadable URL)"
    if not parts.scheme or not parts.netloc:  # not a URL at all: as given (without anything before an @)
        return url.rpartition("@")[2].split("?")[0].split("#")[0][:120]
    netloc = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{netloc}{parts.path}"
