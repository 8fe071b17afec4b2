"""The audit journal, by what each module holds:

- :mod:`.schema`: the file's tables, and opening it safely (regular files you own only);
- :mod:`.redaction`: keeping keys, secrets and signatures out of it;
- :mod:`.writer`: :class:`Journal`, the writer thread, its state and counters;
- :mod:`.history`: the request histories behind ``blotter journal``.
"""

from .history import (
    CANCEL_ALL_WINDOW_MS,
    Reply,
    RequestHistory,
    SessionInfo,
    format_history,
    format_time,
    history_json,
    parse_since,
    read_history,
)
from .redaction import REDACTED, Redactor
from .schema import SCHEMA_VERSION, JournalError
from .writer import Journal, JournalStatus

__all__ = [
    "CANCEL_ALL_WINDOW_MS",
    "REDACTED",
    "SCHEMA_VERSION",
    "Journal",
    "JournalError",
    "JournalStatus",
    "Redactor",
    "Reply",
    "RequestHistory",
    "SessionInfo",
    "format_history",
    "format_time",
    "history_json",
    "parse_since",
    "read_history",
]
