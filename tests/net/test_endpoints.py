"""Endpoint rules (blotter/net/endpoints.py): which URLs the blotter connects to and
how a URL is shown. Plain ``ws://`` only to a literal loopback address or exactly
``localhost`` (never a name a DNS answer decides); credentials in a URL are refused
and never displayed."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from blotter.desk import Desk, DeskSettings
from blotter.net.endpoints import EndpointError, check_url, display_url, is_loopback
from blotter.net.session import Session, SessionSettings


@pytest.mark.parametrize(
    "host",
    [
        "foo.localhost",
        "127.0.0.1.localhost",
        "evil.example.localhost",
        "localhost.",
        "LOCALHOST.example",
        "localhost.localdomain",
    ],
)
def test_names_under_localhost_are_not_loopback(host):
    # They are resolved by DNS (or /etc/hosts): a DNS answer would decide where a cleartext login goes.
    assert not is_loopback(host)
    with pytest.raises(EndpointError) as info:
        check_url(f"ws://{host}:8080/1/api/pro/v2/stream")
    assert "wss://" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.0.0.2", "127.255.255.254", "[::1]"])
def test_literal_loopback_and_exactly_localhost_may_use_ws(host):
    assert check_url(f"ws://{host}:8080/1/api/pro/v2/stream")


@pytest.mark.parametrize(
    "url",
    [
        "wss://user:hunter2@ascendex.com/1/api/pro/v2/stream",
        "ws://user:hunter2@127.0.0.1:8080/1/api/pro/v2/stream",
        "wss://hunter2@ascendex.com/1/api/pro/v2/stream",
        "wss://:hunter2@ascendex.com:443/1/api/pro/v2/stream",
    ],
)
def test_credentials_in_the_url_are_refused_without_showing_them(url):
    with pytest.raises(EndpointError) as info:
        check_url(url)
    message = str(info.value)
    assert "hunter2" not in message and "\n" not in message
    assert "user:password@" in message  # says what is wrong
    kwargs = {"api_key": SecretStr("k" * 32), "api_secret": SecretStr("c2VjcmV0")}
    with pytest.raises(EndpointError) as info:
        Session(SessionSettings(url=url, **kwargs), on_frame=lambda *a: None)
    assert "hunter2" not in str(info.value)
    with pytest.raises(EndpointError):
        Desk(DeskSettings(url=url, **kwargs))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "wss://user:hunter2@ascendex.com:443/4/api/pro/v2/stream?x=hunter2#hunter2",
            "wss://ascendex.com:443/4/api/pro/v2/stream",
        ),
        ("ws://hunter2@127.0.0.1:9/x", "ws://127.0.0.1:9/x"),
        ("ws://[::1]:9/x", "ws://[::1]:9/x"),
        ("wss://ascendex.com/4/api/pro/v2/stream", "wss://ascendex.com/4/api/pro/v2/stream"),
    ],
)
def test_display_url_never_shows_credentials_query_or_fragment(url, shown):
    assert display_url(url) == shown


def test_a_bad_url_error_does_not_echo_credentials():
    with pytest.raises(EndpointError) as info:
        check_url("wss://user:hunter2@ascendex.com:notaport/x")
    assert "hunter2" not in str(info.value)


def test_a_text_that_is_not_a_url_is_shown_as_given_without_credentials():
    from blotter.net.endpoints import display_url

    assert display_url("not a url") == "not a url"
    assert "pw" not in display_url("user:pw@host") and display_url("user:pw@host") == "host"
    assert display_url("wss://u:p@example.com:443/x?token=1") == "wss://example.com:443/x"
