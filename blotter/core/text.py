"""One sanitiser for every string that came over the wire.

Exchange strings are data, not markup and not terminal commands. Before any of
them is shown — on the screen, in the log, in ``blotter journal``, or printed by a
headless command — it goes through :func:`safe`, which makes control, bidi and
invisible characters *visible* instead of letting the terminal act on them (or
draw them as nothing), and caps the length so one hostile value cannot flood the
screen or memory. ``--json`` output goes through :func:`json_safe`: the same
characters written as JSON ``\\uXXXX`` escapes, so a script reads the exact text
and a terminal shows it harmlessly.

What is escaped: every character Python's :meth:`str.isprintable` refuses — the
Unicode categories Cc (C0/C1 controls: ESC, BEL, CR, LF, NUL…), Cf (format: bidi
embeddings, overrides and isolates U+202A–U+202E and U+2066–U+2069, LRM/RLM/ALM,
zero-width space/joiners U+200B–U+200D, word joiner and invisible operators
U+2060–U+2064, U+FEFF, U+180E, soft hyphen, tag characters), Zl/Zp (U+2028,
U+2029), Zs other than the ASCII space (no-break and other look-alike spaces), Cs
(lone surrogates), Co and Cn (private use, unassigned) — plus the few printable
characters that are drawn as nothing: the combining grapheme joiner, Hangul
fillers, the blank braille pattern and variation selectors.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

LIMIT = 200
"""Default cap on characters shown for one value."""

LINE_LIMIT = 1000
"""Cap on one printed line of ``blotter journal`` (and on one string value in
``--json`` output): a 300 kB exchange message is cut, visibly, with ``…``."""

_INVISIBLE = "\u034f\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0\U00016fe4\ufe00-\ufe0f\U000e0100-\U000e01ef"
"""Characters :meth:`str.isprintable` accepts that are drawn as nothing."""
_INVISIBLE_RE = re.compile(f"[{_INVISIBLE}]")
_ASCII_UNSAFE = re.compile("[\x00-\x1f\x7f]")


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _unsafe_char(ch: str) -> bool:
    return not ch.isprintable() or _INVISIBLE_RE.match(ch) is not None


def has_unsafe(value: str) -> bool:
    """True when :func:`safe` would change more than the length of ``value``."""
    if value.isascii():
        return _ASCII_UNSAFE.search(value) is not None
    return not value.isprintable() or _INVISIBLE_RE.search(value) is not None


def _escape_all(s: str) -> str:
    if s.isascii():
        return _ASCII_UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", s)
    return "".join(_escape_char(ch) if _unsafe_char(ch) else ch for ch in s)


def safe(value: object, limit: int | None = LIMIT) -> str:
    """``value`` as one printable line: control, bidi, separator and zero-width
    characters become visible escapes (``\\x1b``, ``\\u202e``, ``\\u200b``,
    ``\\U000e0001``) and anything longer than ``limit`` characters is cut and ends
    with ``…``. ``None`` becomes ``""``. Plain printable text (the common case,
    checked with one C-level scan) is returned as it is."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    if limit is not None and len(s) > limit * 10:
        s = s[: limit * 10]  # cheap pre-cut: an escape is at most ten characters
    if s.isascii():
        if _ASCII_UNSAFE.search(s) is not None:
            s = _ASCII_UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", s)
    elif not s.isprintable() or _INVISIBLE_RE.search(s) is not None:
        s = _escape_all(s)
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 0)] + "…"
    return s


# -- JSON ---------------------------------------------------------------------------------
def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _capped(obj: Any, limit: int | None) -> Any:
    if isinstance(obj, str):
        if limit is not None and len(obj) > limit:
            return obj[: max(limit - 1, 0)] + "…"
        return obj
    if isinstance(obj, dict):
        return {k: _capped(v, limit) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_capped(v, limit) for v in obj]
    return obj


def json_safe(obj: Any, limit: int | None = LINE_LIMIT) -> str:
    """``obj`` as one line of JSON that is safe to print on a terminal: every
    character :func:`safe` would escape (controls, bidi, separators, zero-width…) is
    written as a JSON ``\\uXXXX`` escape, so ``json.loads`` gives back the exact
    text while a terminal shows the escape. String values longer than ``limit``
    characters are cut and end with ``…``. Values orjson does not know (``Decimal``)
    are written with ``str``. Never contains a newline."""
    capped = _capped(obj, limit)
    try:
        text = orjson.dumps(capped, default=str).decode("utf-8")
    except orjson.JSONEncodeError:  # a lone surrogate: the standard encoder escapes it
        return json.dumps(capped, default=str, ensure_ascii=True, separators=(",", ":")).replace("\x7f", "\\u007f")
    if text.isascii():
        # orjson already writes C0 controls as \\u00XX; only DEL is left raw.
        return text.replace("\x7f", "\\u007f")
    return re.sub("[^\x20-\x7e]", lambda m: m.group() if not _unsafe_char(m.group()) else _json_escape(m), text)


# -- URLs -------------------------------------------------------------------------------
def url_without_credentials(url: str) -> str:
    """``url`` fit to show or record: no ``user:password@``, no query, no fragment
    (tokens travel there), and the result passed through :func:`safe`. Never raises."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        shown = urlunsplit((parts.scheme, netloc, parts.path, "", "")) if parts.scheme and netloc else url
    except ValueError:  # e.g. an unclosed IPv6 bracket: cut by hand
        scheme, sep, rest = url.partition("://")
        host, slash, path = rest.partition("/")
        tail = path.split("?", 1)[0].split("#", 1)[0]
        shown = f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{tail}" if sep else url
    return safe(shown, LIMIT)
