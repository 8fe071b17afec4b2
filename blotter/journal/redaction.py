"""Keeping secrets out of the journal (and, if they like, out of anything else).

:class:`Redactor` replaces, wherever they appear in a text and whatever field they
came back in:

- configured secrets (the API secret) by ``[redacted]``;
- API keys by their mask (first and last four characters);
- signatures it was told about (an ``op:auth`` frame's ``sig``; the header-auth
  ``x-auth-signature`` given to :meth:`Redactor.add_auth`) by ``***``, and the
  timestamp signed with them too (a signature and its timestamp are a login for
  30 s);
- anything *shaped* like a signature — 43 base64 characters and ``=``, the form of
  every HMAC-SHA256 signature the exchange uses, JSON-escaped slashes included —
  by ``[signature?]``, so a signature nobody told us about (a server echoing the
  upgrade headers back in a field of its choosing) is still not written;
- the value after any ``x-auth-…`` header name by ``***``.

It is thread-safe for one writer of secrets and many readers (each call works on
a snapshot), and plain: the net layer may reuse it for what it shows.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from typing import Any

from pydantic import SecretStr

from ..protocol.signing import mask_key

REDACTED = "[redacted]"
SIGNATURE_SHAPED = "[signature?]"

_X_AUTH = re.compile(r"""(?i)(x-auth-[\w-]*["']?\s*[:=]\s*["']?)([^\s"',;}\]]+)""")
_SIGNATURE = re.compile(r"(?:[A-Za-z0-9+]|\\?/){43}=")


def encodable(text: str) -> str:
    """Text SQLite will take: lone surrogates (never valid UTF-8) become U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def secret_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value)


class Redactor:
    """Call it on a text to get the text with every known secret replaced."""

    MAX_SIGNATURES = 8

    def __init__(self, secrets: Iterable[Any] = (), keys: Iterable[Any] = ()) -> None:
        self.fixed: dict[str, str] = {}
        self.signatures: deque[str] = deque(maxlen=self.MAX_SIGNATURES)
        self._needles: tuple[str, ...] = ()
        """Every text :meth:`clean` looks for: the fixed values and the signatures (both
        spellings); swapped whole, never changed in place."""
        for k in keys:
            self.add(secret_text(k), masked=True)
        for s in secrets:
            self.add(secret_text(s), masked=False)

    def add(self, value: str, masked: bool = True) -> None:
        """Replace ``value`` wherever it appears: by its mask (an API key: first and
        last four characters) or, with ``masked=False`` (a secret), entirely."""
        if value and value not in self.fixed:
            replacement = mask_key(value) if masked else REDACTED
            fixed = dict(self.fixed)  # readers iterate the old dict: swap, never mutate
            fixed[value] = replacement
            escaped = value.replace("/", "\\/")  # as some JSON encoders write it
            if escaped != value:
                fixed[escaped] = replacement
            self._renew_needles(fixed)  # (the needles first: clean() never lags the replacements)
            self.fixed = fixed

    def _renew_needles(self, fixed: dict[str, str] | None = None, sigs: tuple[str, ...] | None = None) -> None:
        sigs = tuple(self.signatures) if sigs is None else sigs
        fixed = self.fixed if fixed is None else fixed
        self._needles = (*fixed, *sigs, *(s.replace("/", "\\/") for s in sigs if "/" in s))

    def add_signature(self, sig: str) -> None:
        if sig and sig not in self.signatures:
            # clean() looks for the old and the new signatures while the deque changes (it
            # never lags what a call replaces), then for what the deque holds
            self._renew_needles(sigs=(*self.signatures, sig))
            self.signatures.append(sig)
            self._renew_needles()

    def add_auth(
        self, key: str | None = None, signature: str | None = None, timestamp: str | int | None = None
    ) -> None:
        """The values of one login (``op:auth`` or the ``x-auth-*`` upgrade headers):
        the key is masked, the signature and the timestamp it signed are hidden."""
        if key:
            self.add(str(key), masked=True)
        if signature:
            self.add_signature(str(signature))
        if timestamp not in (None, ""):
            ts = str(timestamp)
            if ts not in self.fixed:
                fixed = {**self.fixed, ts: "***"}
                self._renew_needles(fixed)
                self.fixed = fixed

    def clean(self, text: str) -> bool:
        """True when ``text`` holds nothing this would replace, so that calling it would
        return ``text`` as it is (a quick test for the texts that hold no secret, which
        is nearly all of them). False is no verdict: call it then."""
        for needle in self._needles:
            if needle in text:
                return False
        return "=" not in text and text.isascii() and "x-auth-" not in text.lower()

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        if not isinstance(text, str):
            text = str(text)
        for needle, mask in tuple(self.fixed.items()):
            if needle in text:
                text = text.replace(needle, mask)
        for sig in tuple(self.signatures):
            if sig in text:
                text = text.replace(sig, "***")
            if "/" in sig:
                escaped = sig.replace("/", "\\/")
                if escaped in text:
                    text = text.replace(escaped, "***")
        if "=" in text:  # (an order update never holds one: the search is skipped)
            text = _SIGNATURE.sub(SIGNATURE_SHAPED, text)
        if "x-auth-" in text.lower():
            text = _X_AUTH.sub(r"\1***", text)
        return encodable(text)
