"""``NO_COLOR``: no colour at all reaches the terminal.

Textual's own answer to ``NO_COLOR`` turns colours grey (``Monochrome``) or resets them
to the terminal's defaults (``NoColor``): either way the terminal still receives
colour codes. This filter removes every colour from what is drawn, so the driver
writes text and attributes only; the theme (``Theme.no_color``) and the stylesheet
(``:nocolor``) carry the meaning with bold, dim, reverse and underline instead.
"""

from __future__ import annotations

from functools import lru_cache

from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.filter import ANSIToTruecolor, DimFilter, LineFilter, Monochrome, NoColor

__all__ = ["TEXTUAL_COLOUR_FILTERS", "TEXTUAL_NO_COLOR_FILTERS", "StripColour"]

TEXTUAL_NO_COLOR_FILTERS = (Monochrome, NoColor)
"""Textual's own answers to ``NO_COLOR`` (grey, or the terminal's default colours)."""
TEXTUAL_COLOUR_FILTERS = (*TEXTUAL_NO_COLOR_FILTERS, ANSIToTruecolor, DimFilter)
"""Textual's filters that work on colours, replaced by :class:`StripColour` under
``NO_COLOR`` (``ANSIToTruecolor`` and ``DimFilter`` would turn the dim attribute into a
dimmed colour, which the terminal then never sees)."""


@lru_cache(1024)
def _without_colour(style: Style) -> Style:
    return style.without_color


class StripColour(LineFilter):
    """Drop the foreground and background colour of every segment; keep the attributes."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        strip = _without_colour
        return [Segment(text, None if style is None else strip(style), control) for text, style, control in segments]
