"""UI settings: what the trader can change about the screen (not the connection)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class UiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    theme: str = Field("dark", description="Colour theme: a name (see --list-themes) or a path to a .toml theme file.")
    theme_dir: Path | None = Field(
        None, description="User theme folder searched before the built-in themes (usually <config dir>/themes)."
    )
    keymap: dict[str, str] = Field(
        default_factory=dict,
        description='Remap keys by binding id, e.g. "blotter.cancel" = "delete" (ids: the ? screen or blotter --list-bindings).',
    )
    final_linger: float = Field(
        30.0, ge=0, le=86400, description="Seconds a final order stays visible, dimmed, in the table (unless 'f')."
    )
    show_final: bool = Field(False, description="Start with all final orders shown (the 'f' toggle).")
    no_color: bool = Field(
        default_factory=lambda: bool(os.environ.get("NO_COLOR")),
        description="No colour at all (default: on when the NO_COLOR environment variable is set and not empty).",
    )
    log_lines: int = Field(2000, ge=10, description="Lines kept by the log pane.")
    highlight: float = Field(1.0, ge=0, description="Seconds a changed row stays highlighted.")
    clock: Literal["local", "utc"] = Field("local", description="Time zone of times shown (order times, log times).")
    poll_hz: float = Field(30.0, gt=0, le=240, description="Screen refreshes per second at most.")
    frozen: bool = Field(
        False,
        description="Test hook for snapshot tests: ages, round-trip times, latencies and local clock times "
        "are drawn as fixed placeholders and rows are never highlighted, so the screen is deterministic.",
    )
