"""blotter/ui/text.py: the one sanitiser for wire strings."""

from blotter.ui.text import safe


def test_controls_and_bidi_become_visible_escapes():
    assert safe("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert safe("\x1b]52;c;aGk=\x07") == "\\x1b]52;c;aGk=\\x07"
    assert safe("x\u202ey\u2066z\u2069") == "x\\u202ey\\u2066z\\u2069"
    assert safe("nul\x00cr\rlf\n\x9b") == "nul\\x00cr\\x0dlf\\x0a\\x9b"


def test_markup_is_left_as_text():
    assert safe("[bold red]x[/]") == "[bold red]x[/]"
    assert safe("[@click=app.quit]") == "[@click=app.quit]"


def test_long_values_are_capped_visibly():
    out = safe("A" * 100_000)
    assert len(out) == 200 and out.endswith("…")
    assert safe("\x1b" * 100_000, limit=10) == "\\x1b\\x1b\\…"
    assert safe("short", limit=None) == "short"
    assert safe(None) == ""
    assert safe(12) == "12"
