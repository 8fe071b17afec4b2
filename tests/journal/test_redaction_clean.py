"""``Redactor.clean``: the quick test the journal makes of a burst's frames. It may say
False of a text with nothing to hide; it must never say True of one that has."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from blotter.journal.redaction import Redactor

KEY = "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
SECRET = "s3cr3t/with/slashes+and+pluses0123456789abcd"
SIG = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF/="
TS = "1700000000123"


def _redactor() -> Redactor:
    r = Redactor(secrets=[SECRET], keys=[KEY])
    r.add_auth(key=KEY, signature=SIG, timestamp=TS)
    return r


PIECES = [
    '{"m":"futures-order","data":{"orderId":"a1","s":"BTC-PERP","st":"New"}}',
    KEY,
    KEY[:-1],
    SECRET,
    SECRET.replace("/", "\\/"),
    SIG,
    SIG.replace("/", "\\/"),
    TS,
    "X-Auth-Signature: abc",
    "x-AUTH-key=1",
    "=",
    "é",
    "\ud800",
    "plain text",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=5), st.text(max_size=20))
def test_clean_is_only_said_of_a_text_the_redactor_leaves_as_it_is(pieces: list[str], extra: str) -> None:
    r = _redactor()
    text = "".join(pieces) + extra
    if r.clean(text):
        assert r(text) == text


def test_clean_says_true_of_an_order_frame_and_false_of_each_secret() -> None:
    r = _redactor()
    frame = PIECES[0]
    assert r.clean(frame)
    for needle in (KEY, SECRET, SECRET.replace("/", "\\/"), SIG, SIG.replace("/", "\\/"), TS, "X-AUTH-", "=", "é"):
        assert not r.clean(frame + needle), needle


def test_a_signature_added_later_is_looked_for_too() -> None:
    r = Redactor()
    later = "A" * 43 + "="
    assert r.clean("abc" + "A" * 43)
    r.add_signature(later[:-1] + "/")
    assert not r.clean("x" + later[:-1] + "/")
    assert not r.clean("x" + later[:-1] + "\\/")
