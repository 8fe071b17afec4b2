"""Themes: colour files in ``themes/`` (TOML), loaded into a :class:`Theme`.

Search order for a theme named ``NAME``:

1. ``user_dir/NAME.toml`` (the ``themes/`` folder in the user's config dir: a
   trader can add a theme, or override a built-in one, by dropping a file there);
2. the built-in folder: this package's own directory (``blotter/ui/themes/``),
   which ships inside the wheel like any package data.

A theme defines every colour the UI uses (see ``blotter/ui/themes/dark.toml``). Each state is
also spelled out in text, so no theme ever carries meaning by colour alone.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from rich.color import Color, ColorParseError
from rich.style import Style

if TYPE_CHECKING:
    # Textual only to make the screen's theme: the command line checks a theme (and
    # says what is wrong with it) before the desk's thread starts, and Textual is
    # imported after that (blotter/cli/main.py).
    from textual.theme import Theme as TextualTheme


def builtin_dir() -> Path:
    """The folder of built-in themes: this package's own directory."""
    return Path(__file__).resolve().parent


class UnknownTheme(ValueError):
    """No theme of that name; the message is one line listing the valid names."""


class ThemeFileError(ValueError):
    """A theme file that cannot be used; the message is one line naming the file."""


def _check_color(value: str) -> str:
    try:
        Color.parse(value)
    except ColorParseError:
        raise ValueError(f"not a colour: {value!r}") from None
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    @field_validator("*")
    @classmethod
    def _colour(cls, v: str) -> str:
        return _check_color(v)


class Colors(_Section):
    background: str
    foreground: str
    surface: str
    header: str
    header_background: str
    accent: str
    buy: str
    sell: str
    highlight: str
    cursor: str
    stale: str
    dim: str


class StatusColors(_Section):
    New: str
    PartiallyFilled: str
    Filled: str
    Canceled: str
    Rejected: str
    PendingNew: str
    NotOpen: str
    pending_cancel: str
    unknown: str


class LogColors(_Section):
    info: str
    ok: str
    warn: str
    error: str


class Theme(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    dark: bool = True
    colors: Colors
    status: StatusColors
    log: LogColors
    path: Path | None = Field(None, exclude=True)
    no_color: bool = Field(False, exclude=True)
    """Set by the app (``NO_COLOR``): the styles below then carry their meaning with
    bold, dim, reverse and underline alone, and no colour at all."""

    # -- rich styles for line-API widgets ------------------------------------------
    def status_style(self, status: str) -> Style:
        key = {"PENDING CANCEL": "pending_cancel", "UNKNOWN": "unknown"}.get(status, status)
        if self.no_color:
            return Style(bold=key in _LOUD_STATUSES)
        color = getattr(self.status, key, None) if key in StatusColors.model_fields else None
        return Style(color=color or self.colors.foreground)

    def side_style(self, side: str) -> Style:
        s = side.lower()
        if self.no_color:
            return Style(bold=s in ("buy", "sell"))
        if s == "buy":
            return Style(color=self.colors.buy, bold=True)
        if s == "sell":
            return Style(color=self.colors.sell, bold=True)
        return Style(color=self.colors.foreground)

    def log_style(self, level: str) -> Style:
        if self.no_color:
            return Style(bold=level in ("warn", "error"))
        return Style(color=getattr(self.log, level, self.log.info))

    def style(self, role: str) -> Style:
        """The style of a role of the orders table: ``header``, ``cursor`` (the selected
        row), ``highlight`` (a row that just changed), ``dim`` (final orders), ``fg``."""
        if self.no_color:
            return _MONO_ROLES[role]
        c = self.colors
        return {
            "header": Style(color=c.accent, bold=True),
            "cursor": Style(bgcolor=c.cursor),
            "highlight": Style(bgcolor=c.highlight),
            "dim": Style(color=c.dim),
            "fg": Style(color=c.foreground),
        }[role]

    @property
    def textual_name(self) -> str:
        return f"blotter-{self.name}"

    def to_textual(self) -> TextualTheme:
        """The same colours as a Textual theme (CSS variables ``$blotter-*``)."""
        from textual.theme import Theme as TextualTheme

        c = self.colors
        return TextualTheme(
            name=self.textual_name,
            primary=c.accent,
            accent=c.accent,
            foreground=c.foreground,
            background=c.background,
            surface=c.surface,
            panel=c.header_background,
            error=c.stale,
            warning=self.log.warn,
            success=self.log.ok,
            dark=self.dark,
            variables=theme_variables(self),
        )


_LOUD_STATUSES = frozenset({"pending_cancel", "unknown", "NotOpen", "Rejected"})
"""Statuses drawn bold without colour: the ones that ask for the trader's attention."""
_MONO_ROLES = {
    "header": Style(bold=True, underline=True),
    "cursor": Style(reverse=True),
    "highlight": Style(underline=True),
    "dim": Style(dim=True),
    "fg": Style(),
}


def theme_variables(theme: Theme) -> dict[str, str]:
    c = theme.colors
    return {
        "blotter-stale": c.stale,
        "blotter-header": c.header,
        "blotter-header-background": c.header_background,
        "blotter-buy": c.buy,
        "blotter-sell": c.sell,
        "blotter-dim": c.dim,
        "blotter-cursor": c.cursor,
        "blotter-highlight": c.highlight,
        "blotter-warn": theme.log.warn,
        "blotter-error": theme.log.error,
    }


def _dirs(user_dir: Path | None) -> list[Path]:
    dirs = []
    if user_dir is not None:
        dirs.append(Path(user_dir))
    dirs.append(builtin_dir())
    return dirs


def list_themes(user_dir: Path | None = None) -> list[str]:
    """Names of every theme found (user themes and built-in ones), sorted."""
    names: set[str] = set()
    for d in _dirs(user_dir):
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.toml") if p.is_file())
    return sorted(names)


def load_theme_file(path: Path) -> Theme:
    """Load one theme file; any problem is a one-line :class:`ThemeFileError`."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThemeFileError(f"theme file {path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ThemeFileError(f"theme file {path}: not valid TOML: {' '.join(str(exc).split())}") from None
    data.setdefault("name", path.stem)
    data["name"] = path.stem  # the file name is the theme's name
    try:
        theme = Theme.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in errors[:5]
        ) + (f" (and {len(errors) - 5} more)" if len(errors) > 5 else "")
        raise ThemeFileError(f"theme file {path}: {problems}") from None
    return theme.model_copy(update={"path": path})


def load_theme(name: str, user_dir: Path | None = None) -> Theme:
    """The theme ``name`` (user dir first, then built-in); a path to a ``.toml`` file
    also works. Raises :class:`UnknownTheme` or :class:`ThemeFileError`."""
    candidate = Path(name)
    if name.endswith(".toml") and candidate.is_file():
        return load_theme_file(candidate)
    if "/" not in name and "\\" not in name and name not in ("", ".", ".."):
        for d in _dirs(user_dir):
            path = d / f"{name}.toml"
            if path.is_file():
                return load_theme_file(path)
    valid = ", ".join(list_themes(user_dir)) or "(none found)"
    if name.endswith(".toml") or "/" in name or "\\" in name:  # meant as a file: say that it is not there
        raise UnknownTheme(f"no theme file {name!r} (not found, or not a file); or name one of: {valid}")
    raise UnknownTheme(f"unknown theme {name!r}; valid themes: {valid}")
