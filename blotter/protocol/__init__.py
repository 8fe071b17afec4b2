"""The exchange protocol, sans I/O: models, ``parse``, ``encode``, signing.

Nothing here opens a socket or needs an event loop, and nothing here imports
Textual or Rich (a test enforces it).
"""

from .messages import (
    ACK,
    CANCELED,
    FILLED,
    FINAL_STATUSES,
    NEW,
    OPEN_STATUSES,
    PARTIALLY_FILLED,
    PENDING_NEW,
    REJECTED,
    UNREADABLE,
    AccountSnapshot,
    AccountUpdate,
    AuthResult,
    BadFrame,
    Connected,
    Disconnected,
    Event,
    InvalidMessage,
    OpenOrders,
    Order,
    OrderUpdate,
    Pong,
    RequestAck,
    RequestError,
    ServerPing,
    SubAck,
    Unknown,
)
from .parse import parse, parse_value
from .requests import (
    AccountSnapshotQuery,
    Auth,
    CancelAll,
    CancelOrder,
    OpenOrdersQuery,
    Ping,
    PlaceOrder,
    PongReply,
    Request,
    RequestFormatError,
    request_from_wire,
    Subscribe,
    Unsubscribe,
    encode,
    new_request_id,
    valid_request_id,
)
from .signing import SECRET_ENCODINGS, SecretEncoding, SigningError, auth_headers, mask_key, now_ms, sign, sign_message

__all__ = [name for name in dir() if not name.startswith("_")]
