"""blotter/ui/themes.py: theme files, search order, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from blotter.ui.themes import ThemeFileError, UnknownTheme, builtin_dir, list_themes, load_theme

REQUIRED = {"dark", "light", "high-contrast"}


def test_builtin_themes_load_and_define_every_colour():
    assert REQUIRED <= set(list_themes())
    for name in list_themes():
        theme = load_theme(name)
        assert theme.name == name
        for status in (
            "New",
            "PartiallyFilled",
            "Filled",
            "Canceled",
            "Rejected",
            "PendingNew",
            "NotOpen",
            "PENDING CANCEL",
            "UNKNOWN",
        ):
            assert theme.status_style(status).color is not None
        theme.to_textual()


def test_high_contrast_buy_sell_are_not_red_green():
    theme = load_theme("high-contrast")
    buy = theme.side_style("Buy").color.get_truecolor()
    sell = theme.side_style("Sell").color.get_truecolor()
    assert buy.blue > buy.red and buy.blue > buy.green  # blue
    assert sell.red > sell.blue and sell.green > sell.blue  # orange


def test_unknown_theme_is_one_line_listing_valid_names(tmp_path: Path):
    with pytest.raises(UnknownTheme) as info:
        load_theme("neon", tmp_path)
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, ValueError)
    for name in REQUIRED:
        assert name in message


def test_user_dir_comes_first_and_adds_themes(tmp_path: Path):
    text = (builtin_dir() / "dark.toml").read_text()
    (tmp_path / "mine.toml").write_text(text.replace('buy = "#3fb950"', 'buy = "#0000ff"'))
    (tmp_path / "dark.toml").write_text(text.replace('sell = "#f85149"', 'sell = "#ff00ff"'))
    assert "mine" in list_themes(tmp_path)
    assert load_theme("mine", tmp_path).colors.buy == "#0000ff"
    assert load_theme("dark", tmp_path).colors.sell == "#ff00ff"
    assert load_theme("dark").colors.sell == "#f85149"


@pytest.mark.parametrize(
    "content, needle",
    [
        ("this is = = not toml", "not valid TOML"),
        ('name = "x"\n[colors]\nbackground = "#000000"\n', "Field required"),
        ((builtin_dir() / "dark.toml").read_text().replace('buy = "#3fb950"', 'buy = "not-a-colour"'), "colors.buy"),
        ((builtin_dir() / "dark.toml").read_text() + '\n[extra]\nx = "#000000"\n', "extra"),
    ],
)
def test_malformed_theme_is_one_line_naming_the_file(tmp_path: Path, content: str, needle: str):
    path = tmp_path / "broken.toml"
    path.write_text(content)
    with pytest.raises(ThemeFileError) as info:
        load_theme("broken", tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and needle in message


def _contrast(a: str, b: str) -> float:
    from rich.color import Color

    def luminance(colour: str) -> float:
        channels = []
        for v in Color.parse(colour).get_truecolor():
            v /= 255
            channels.append(v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4)
        r, g, b = channels
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("name", ["dark", "light", "high-contrast"])
def test_every_text_colour_is_readable_on_every_row_background(name):
    """At least 3:1 (WCAG's minimum for large or bold text) for each text colour on the
    background, the selected row and a highlighted row: a selected cancelled order
    must stay readable."""
    theme = load_theme(name)
    c = theme.colors
    texts = {
        "foreground": c.foreground,
        "dim": c.dim,
        "buy": c.buy,
        "sell": c.sell,
        **{f"status.{k}": v for k, v in theme.status.model_dump().items()},
    }
    backgrounds = {"background": c.background, "cursor": c.cursor, "highlight": c.highlight}
    poor = [
        f"{t} on {b}: {_contrast(tv, bv):.1f}"
        for t, tv in texts.items()
        for b, bv in backgrounds.items()
        if _contrast(tv, bv) < 3.0
    ]
    assert poor == []


def test_a_theme_file_that_is_not_there_is_said_to_be_missing(tmp_path: Path):
    missing = tmp_path / "mine.toml"
    with pytest.raises(UnknownTheme) as info:
        load_theme(str(missing), user_dir=tmp_path)
    text = str(info.value)
    assert text.count("\n") == 0 and f"no theme file {str(missing)!r}" in text and "dark" in text
