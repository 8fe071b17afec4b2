"""Plain-Python state: the order store, the account, the request tracker, the event log.

No sockets, no event loop, no Textual: time is passed in, so every rule is tested
with plain fixtures."""

from .account import AccountState
from .log import EventLog, LogLine
from .orders import NOT_OPEN, OrderEntry, OrderStore, UpdateResult
from .tracker import RequestTracker, State, Tracked

__all__ = [
    "AccountState",
    "EventLog",
    "LogLine",
    "NOT_OPEN",
    "OrderEntry",
    "OrderStore",
    "UpdateResult",
    "RequestTracker",
    "State",
    "Tracked",
]
