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
        for status in ("New", "PartiallyFilled", "Filled", "Canceled", "Rejected", "PendingNew", "NotOpen",
                       "PENDING CANCEL", "UNKNOWN"):
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


@pytest.mark.parametrize("content, needle", [
    ("this is = = not toml", "not valid TOML"),
    ('name = "x"\n[colors]\nbackground = "#000000"\n', "Field required"),
    ((builtin_dir() / "dark.toml").read_text().replace('buy = "#3fb950"', 'buy = "not-a-colour"'), "colors.buy"),
    ((builtin_dir() / "dark.toml").read_text() + '\n[extra]\nx = "#000000"\n', "extra"),
])
def test_malformed_theme_is_one_line_naming_the_file(tmp_path: Path, content: str, needle: str):
    path = tmp_path / "broken.toml"
    path.write_text(content)
    with pytest.raises(ThemeFileError) as info:
        load_theme("broken", tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and needle in message
