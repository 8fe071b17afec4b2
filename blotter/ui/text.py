"""One sanitiser for every string that came over the wire.

Exchange strings are data, not markup: widgets build :class:`rich.text.Text`
objects (never markup strings), and before that every wire string goes through
:func:`safe`, which makes control and bidi characters *visible* instead of letting
the terminal act on them, and caps the length so one hostile value cannot flood
the screen.
"""

from __future__ import annotations

import re

LIMIT = 200
"""Default cap on characters shown for one value."""

# C0 controls (includes NUL, ESC, CR, LF, TAB, BEL), DEL, C1 controls, bidi embeddings
# and overrides (U+202A–U+202E), bidi isolates (U+2066–U+2069), LRM/RLM/ALM, line and
# paragraph separators, BOM/zero-width no-break space.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u061c\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def safe(value: object, limit: int | None = LIMIT) -> str:
    """``value`` as one printable line: control/bidi characters become visible escapes
    (``\\x1b``, ``\\u202e``) and anything longer than ``limit`` characters is cut and
    ends with ``…``. ``None`` becomes ``""``."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    if limit is not None and len(s) > limit * 8:
        s = s[: limit * 8]  # cheap pre-cut: escapes at most quadruple the length
    s = _UNSAFE.sub(_escape, s)
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 0)] + "…"
    return s
