"""The status bar: connection state, endpoint, account, counts, latency, warnings.

Everything is built as :class:`rich.text.Text` (never markup); values that came from
outside (endpoint, account, detail) go through :func:`~blotter.ui.text.safe`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from ...protocol.signing import mask_key
from ..text import safe
from ..themes import Theme

if TYPE_CHECKING:
    from ...desk import Desk


def state_label(desk: Desk) -> str:
    state = desk.state
    label = str(state.value).upper()
    if state.name == "RECONNECTING" or (state.name in ("CONNECTING", "AUTHENTICATING") and desk.attempt):
        label += f" (attempt {desk.attempt})"  # a login that keeps timing out shows it is a retry
    return label


def road_label(desk: Desk, warn: Style, bad: Style) -> Text:
    """While the stream is not live: which road a cancel takes now (REST), or that none is up."""
    if desk.rest is None:
        return Text("NO REST ROAD: cancels not possible", style=bad)
    down = desk.road.down
    if down:
        return Text("CANCELS VIA REST (last REST call failed)", style=bad)
    return Text("CANCELS VIA REST", style=warn)


def build_status(
    desk: Desk,
    theme: Theme,
    now: float,
    open_count: int,
    frozen: bool = False,
    session_error: str | None = None,
    width: int | None = None,
) -> Text:
    """Two logical lines: what matters now, then where we are connected. With a
    ``width`` too narrow for the second line, the account id is shortened (first and
    last four characters) so the header stays two lines and the table keeps its rows."""
    c = theme.colors
    warn = Style(color=theme.log.warn, bold=True)
    bad = Style(color=c.stale, bold=True, reverse=True)
    sep = Text(" │ ", style=Style(color=c.dim))
    state = desk.state
    state_style = {
        "LIVE": Style(color=theme.log.ok, bold=True),
        "AUTH_REFUSED": bad,
        "STOPPED": Style(color=theme.log.error, bold=True),
        "RECONNECTING": warn,
    }.get(state.name, Style(color=theme.log.warn))
    stale = desk.is_stale(now)
    if stale and state.name == "LIVE":
        # connected, but nothing came for stale_after although a quiet connection is pinged
        # before then: not called LIVE beside a table marked STALE
        parts: list[Text] = [Text("● STALE", style=bad)]
    else:
        parts = [Text(f"● {state_label(desk)}", style=state_style)]
    if session_error:
        parts.append(Text(f"SESSION FAILED: {safe(session_error, 120)}", style=bad))
    waiting = desk.snapshot_wait if state.name == "LIVE" else ""
    if waiting:
        parts.append(Text(safe(waiting, 80), style=warn))
    elif desk.snapshot_count == 0:  # not connected yet: no count is known, and 0 would be a guess
        parts.append(Text("open ? (not loaded)", style=warn))
    else:
        parts.append(Text(f"open {open_count}"))
    age = desk.frame_age(now)
    if frozen:
        parts.append(Text("last msg –"))
    elif age is None:
        parts.append(Text("last msg never"))
    else:
        parts.append(Text(f"last msg {age:.1f} s", style=bad if stale else Style()))
    if not frozen and desk.behind():  # frames wait to be folded: the table lags the wire
        lag = desk.session.lag
        parts.append(Text(f"CATCHING UP {lag:.1f} s" if lag >= 0.05 else "CATCHING UP", style=warn))
    rtt = desk.rtt_ms
    parts.append(Text("rtt –" if frozen or stale or rtt is None else f"rtt {rtt:.0f} ms"))  # (stale: no recent one)
    skew = desk.skew_ms
    if desk.skew_warning and skew is not None and not frozen:
        parts.append(Text(f"⚠ CLOCK SKEW {skew / 1000:+.1f} s", style=warn))
    for usage in desk.rate_warnings:  # our own requests near the exchange's per-minute threshold (§3.6)
        held = usage.level1 is not None and usage.last_minute >= usage.level1 * desk.limits.hold_at
        label = f"⚠ RATE {safe(usage.kind, 24)} {usage.last_minute}/{usage.level1} a minute"
        parts.append(Text(label + (" (housekeeping held)" if held else ""), style=bad if held else warn))
    if state.name != "LIVE" or stale:
        parts.append(road_label(desk, warn, bad))
    if desk.read_only:
        parts.append(Text("READ-ONLY", style=Style(color=theme.log.warn, bold=True, reverse=True)))
    elif desk.cancel_on_hangup:  # read-only sends nothing, on a hangup neither
        until, note = desk.hangup_countdown, desk.hangup_note  # set by the switch (blotter/cli/hangup.py)
        if until is not None:  # no tmux/screen client attached: counting down to the cancel-all
            parts.append(Text(f"DETACHED: CANCEL-ALL IN {math.ceil(max(0.0, until - now))} s", style=bad))
        else:
            shown = note and (desk.hangup_note_until is None or now < desk.hangup_note_until)
            label = "CANCEL-ON-HANGUP ARMED" + (f" ({note})" if shown else "")
            parts.append(Text(label, style=Style(color=theme.log.warn, bold=True, reverse=True)))
    journal = getattr(getattr(desk, "journal", None), "status", None)  # blotter.journal.JournalStatus
    if journal is not None and (journal.state != "writing" or journal.dropped or journal.summarised):
        losses = [f"{n} {what}" for n, what in ((journal.summarised, "summarised"), (journal.dropped, "dropped")) if n]
        label = f"JOURNAL {journal.state.upper()}" + (f": {', '.join(losses)}" if losses else "")
        parts.append(Text(label, style=bad if journal.state == "stopped" else warn))
    line1 = sep.join(parts)

    where: list[Text] = [Text(safe(desk.endpoint_label, 120))]
    account = desk.account
    acct = safe(account, 40) if account else "?"
    key_text = f"key {safe(desk.key_label, 24)}"
    if width is not None and account and len(where[0]) + len(acct) + len(key_text) + 11 > width:
        acct = safe(mask_key(account), 40)
    where.append(Text(f"acct {acct}"))
    where.append(Text(key_text))
    detail = desk.detail
    if detail and state.name != "LIVE":
        where.append(Text(safe(detail, 160), style=warn))
    line2 = sep.join(where)
    line2.style = Style(color=c.dim)
    return Text("\n").join([line1, line2])


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        height: auto;
        max-height: 4;
        padding: 0 1;
    }
    """
