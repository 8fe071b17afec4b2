"""The audit journal: schema and opening, redaction, the writer thread, history queries."""

from .writer import (
    SCHEMA_VERSION,
    Journal,
    JournalError,
    Reply,
    RequestHistory,
    format_history,
    format_time,
    history_json,
    parse_since,
    read_history,
)

__all__ = [
    "Journal",
    "JournalError",
    "Reply",
    "RequestHistory",
    "SCHEMA_VERSION",
    "format_history",
    "format_time",
    "history_json",
    "parse_since",
    "read_history",
]
