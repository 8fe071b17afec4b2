"""blotter/core/text.py: the one sanitiser, for the screen, the journal printout and JSON."""

from __future__ import annotations

import json
import unicodedata

import pytest

from blotter.core.text import LINE_LIMIT, json_safe, safe, url_without_credentials

ZERO_WIDTH = [
    "\u200b",
    "\u200c",
    "\u200d",
    "\u200e",
    "\u200f",  # zero-width space/joiners, LRM, RLM
    "\u2060",
    "\u2061",
    "\u2062",
    "\u2063",
    "\u2064",  # word joiner, invisible operators
    "\ufeff",
    "\u180e",
    "\u00ad",
    "\u034f",
    "\u061c",  # BOM, Mongolian vowel sep., soft hyphen, CGJ, ALM
    "\u115f",
    "\u1160",
    "\u3164",
    "\uffa0",  # Hangul fillers (drawn as nothing)
    "\ufe0f",
    "\U000e0001",
    "\U000e0041",  # variation selector, language tag, tag letter
    "\u00a0",
    "\u2007",
    "\u202f",
    "\u3000",  # spaces that look like a space
]


@pytest.mark.parametrize("ch", ZERO_WIDTH, ids=lambda c: f"U+{ord(c):04X}")
def test_invisible_characters_are_escaped_visibly(ch: str) -> None:
    out = safe(f"BTC{ch}-PERP")
    assert ch not in out
    assert out != "BTC-PERP" and out.startswith("BTC\\") and out.endswith("-PERP")
    code = ord(ch)
    assert (
        out
        == "BTC"
        + (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        + "-PERP"
    )


def test_a_status_with_a_zero_width_tail_does_not_look_final() -> None:
    assert safe("Canceled\u200b") == "Canceled\\u200b"


def test_every_invisible_or_control_code_point_is_escaped() -> None:
    """Whatever this Python's Unicode tables call a control, a format character, a
    surrogate or a separator (other than the space) is shown as an escape."""
    missed = []
    for code in range(0x110000):
        ch = chr(code)
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Cs", "Zs", "Zl", "Zp") and ch != " " and safe(ch, None) == ch:
            missed.append(f"U+{code:04X} {cat}")
    assert missed == []


def test_plain_text_passes_unchanged() -> None:
    for text in ("BTC-PERP", "Order not found", "a b\\c [bold]x[/]", "ordre annulé", "注文", "Ελληνικά", "😀"):
        assert safe(text, None) == text


def test_json_safe_escapes_what_a_terminal_would_obey_and_round_trips() -> None:
    message = "ok\u202eKO\u2066x\u2069\u200e\u2028\x1b[2J\x07\x9b\u200bend\U000e0001"
    line = json_safe({"reason": "INVALID", "message": message, "n": 3, "nested": [message, None]})
    assert "\n" not in line
    assert all(ch.isprintable() for ch in line) and line.isascii()
    for esc in (
        "\\u202e",
        "\\u2066",
        "\\u200e",
        "\\u2028",
        "\\u001b",
        "\\u0007",
        "\\u009b",
        "\\u200b",
        "\\udb40\\udc01",
    ):
        assert esc in line
    assert json.loads(line) == {"reason": "INVALID", "message": message, "n": 3, "nested": [message, None]}
    assert json.loads(json_safe({"text": "plain é 注文"})) == {"text": "plain é 注文"}


def test_json_safe_caps_long_strings_and_takes_decimals() -> None:
    from decimal import Decimal

    doc = json.loads(json_safe({"m": "A" * 300_000, "p": Decimal("1.50")}))
    assert len(doc["m"]) <= LINE_LIMIT and doc["m"].endswith("…")
    assert doc["p"] == "1.50"


@pytest.mark.parametrize(
    "url,shown",
    [
        ("wss://ascendex.com/1/api/pro/v2/stream", "wss://ascendex.com/1/api/pro/v2/stream"),
        ("wss://user:pa%40ss@ascendex.com:443/x?token=abc#frag", "wss://ascendex.com:443/x"),
        ("ws://127.0.0.1:8765/api", "ws://127.0.0.1:8765/api"),
        ("ws://key@[::1]:9/x", "ws://[::1]:9/x"),
    ],
)
def test_url_without_credentials(url: str, shown: str) -> None:
    assert url_without_credentials(url) == shown


def test_url_without_credentials_never_raises() -> None:
    assert "\x1b" not in url_without_credentials("ws://a\x1b[2J@b/\u202e")
    assert url_without_credentials("not a url") == "not a url"
    assert url_without_credentials("ws://[bad") == "ws://[bad"


def test_json_safe_takes_a_lone_surrogate() -> None:
    line = json_safe({"a": "x\ud800y"})
    assert line.isascii() and json.loads(line) == {"a": "x\ud800y"}
