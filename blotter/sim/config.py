"""Simulator settings: one pydantic model, every behaviour and every fault a field.

The model validates on assignment, so tests can flip faults while the server runs
(``sim.config.ack_delay = 2.0``) and still get a clear error for a bad value.
Every fault is off by default: a default :class:`SimConfig` is a well-behaved
exchange with a lively but steady order flow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from blotter.protocol.errors import ERROR_CODES
from blotter.protocol.signing import SigningError, key_bytes

from .odd import Oddity

DEMO_API_KEY = "2CBd9iTu0DWkncbEaZCmCnexXCGVqpA5"
"""The API key the simulator accepts unless told otherwise. Not a real exchange key."""

DEMO_API_SECRET = "g+3UlIMZQ9RVgEzSeGU2RQFG3h3+R55xYY6pGchOYSkTRiLLbLIZJIozoW/Gjrze"
"""The matching demo secret (base64 text of 48 random bytes). Safe to print: it only
opens the simulator."""

DEFAULT_SYMBOLS = ("BTC-PERP", "ETH-PERP", "SOL-PERP", "XRP-PERP", "DOGE-PERP")

ERROR_REASONS: dict[int, str] = {code: e.reason for code, e in ERROR_CODES.items() if e.source != "ccxt"}
"""code -> reason, from the exchange's documented error codes (the one table,
:mod:`blotter.protocol.errors`; not ccxt's REST-era codes). The simulator refuses with these."""

# The smallest and largest millisecond times whose hex form has 11 digits, so that
# order ids stay exactly 32 characters (years 2004 to 2527).
_MIN_ID_MS = 0x100_0000_0000
_MAX_ID_MS = 0xFFF_FFFF_FFFF


class SimConfig(BaseModel):
    """Everything the simulated exchange does, including how it misbehaves.

    Mutable at run time: the server reads the fields each time it needs them."""

    model_config = ConfigDict(validate_assignment=True, extra="forbid", allow_inf_nan=False)

    # --- identity and authentication -------------------------------------------------
    api_key: str = Field(
        DEMO_API_KEY,
        min_length=1,
        max_length=256,
        pattern=r"^[\x21-\x7e]+$",
        description="The only API key accepted (printable ASCII, no spaces: a header value).",
    )
    api_secret: str = Field(DEMO_API_SECRET, min_length=1, description="Secret used to verify signatures.")
    secret_encoding: Literal["base64", "raw"] = Field(
        "base64",
        description="How the secret becomes the HMAC key: base64-decoded (official demos, ccxt) or its raw "
        "UTF-8 bytes (shell examples). The simulator accepts only signatures made the same way, so a "
        "client using the other form sees a realistic authentication failure.",
    )
    account_group: int = Field(1, ge=0, le=999, description="The <grp> in the URL path; other paths get HTTP 404.")
    account_id: str = Field(
        "futdwLu2Bk3eORlsZ6GaxSbH9xGsd5l8", min_length=1, description="Futures account id in messages."
    )
    user_uid: str = Field(
        "U4183920571", pattern=r"^U\d{10}$", description="User UID embedded in order ids ('U' + 10 digits)."
    )
    max_time_skew: float = Field(
        30.0, gt=0, description="Seconds a signature timestamp or a request's args.time may differ from server time."
    )

    # --- protocol flavour ------------------------------------------------------------------
    dialect: Literal["current", "2021"] = Field(
        "current", description="Shape of every request response: the current documentation or the 2021 pages."
    )

    # --- keep-alive --------------------------------------------------------------------------
    ping_interval: float = Field(15.0, ge=0, description="Seconds between server pings; 0 disables them.")
    ping_hp: int = Field(3, ge=1, description="hp carried by the first ping; it drops by one per unanswered ping.")
    max_missed_pongs: int = Field(
        2, ge=1, description="Consecutive unanswered pings after which the session gets 'disconnected' and is closed."
    )
    client_ping_quiet: float = Field(
        30.0, ge=0, description="After a client ping, the server sends no pings of its own for this many seconds."
    )

    # --- order flow --------------------------------------------------------------------------
    seed: int | None = Field(None, description="Seed of the order flow; None picks a random one (not reproducible).")
    symbols: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SYMBOLS),
        min_length=1,
        description="Traded symbols. Any text: tests give hostile ones (the command line takes plain ones only).",
    )
    initial_orders: int = Field(40, ge=0, le=100_000, description="Open orders in the book at start.")
    rate: float = Field(
        4.0, ge=0, le=100_000, description="Order lifecycle events per second from other sessions; 0 = none."
    )
    fixed_time_ms: int | None = Field(
        None,
        ge=_MIN_ID_MS,
        le=_MAX_ID_MS,
        description="If set, order creation and execution times are derived from this instant and advance "
        "deterministically, so a seeded run is identical every time (snapshot tests). Otherwise wall clock.",
    )

    # --- faults (all off by default) ----------------------------------------------------------
    ack_delay: float = Field(
        0.0, ge=0, description="Seconds to hold cancel-order, cancel-all and place-order before answering them."
    )
    refuse_cancels: int | None = Field(
        None,
        description="If set, an error code: every cancel-order and cancel-all is refused with it (and its reason).",
    )
    drop_every: int | None = Field(None, ge=1, description="Abort a connection after every N messages sent to it.")
    malformed_every: int | None = Field(None, ge=1, description="Send a non-JSON frame before every Nth message.")
    skip_sn_every: int | None = Field(
        None,
        ge=1,
        description="Every Nth order update, the sequence counter jumps a billion further than usual (a jump, "
        "not a lost message: every update is still sent).",
    )
    repeat_sn_every: int | None = Field(None, ge=1, description="Send every Nth order update twice (a repeated sn).")
    drop_updates_every: int | None = Field(
        None,
        ge=1,
        description="Send every Nth order update to nobody: the order changes in the book, its sn is used, and "
        "the clients never hear of it (a lost message, found only by asking the exchange again).",
    )
    no_pong: bool = Field(False, description="Ignore client pings (no pong, and they do not count as liveness).")
    silent: bool = Field(False, description="Send nothing at all (messages are dropped, not queued).")
    ignore_requests: bool = Field(
        False, description="Read op:req requests but never answer them (auth, sub and pings still work)."
    )
    odd_records: list[Oddity] = Field(
        default_factory=list,
        description="Spoil the records of open orders, one oddity each (the first open orders by id): in every "
        "open-orders reply and every update about them. The orders stay open. See blotter/sim/odd.py.",
    )
    open_orders_fault: Literal["none", "ignore", "garble"] = Field(
        "none",
        description="Open-orders queries only: 'ignore' never answers them, 'garble' answers with a frame that "
        "cannot be parsed (cut off mid-record). Everything else is answered.",
    )

    # --- REST (on the WebSocket's port, as the exchange serves it) -----------------------------------
    rest_delay: float = Field(
        0.0, ge=0, le=600, description="Seconds every REST call waits before it is answered (a slow REST)."
    )
    rest_error: int | None = Field(
        None,
        ge=500,
        le=599,
        description="If set (500-599), every REST call is answered with this HTTP status (a failing REST).",
    )
    rest_down: bool = Field(
        False, description="REST connections are closed after the request is read, with no answer (REST down)."
    )
    ws_refused: bool = Field(
        False,
        description="WebSocket upgrades are answered HTTP 503 (the stream is down) while REST keeps answering.",
    )

    # --- transport -----------------------------------------------------------------------------
    tls_cert: Path | None = Field(None, description="PEM certificate: serve wss:// (needs tls_key).")
    tls_key: Path | None = Field(None, description="PEM private key for tls_cert.")

    @field_validator("symbols")
    @classmethod
    def _symbols_ok(cls, value: list[str]) -> list[str]:
        cleaned = [s.strip().upper() for s in value if s.strip()]
        if not cleaned:
            raise ValueError("at least one symbol is needed")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("symbols repeat")
        return cleaned

    @field_validator("refuse_cancels")
    @classmethod
    def _known_code(cls, value: int | None) -> int | None:
        if value is not None and value not in ERROR_REASONS:
            raise ValueError(
                f"unknown error code {value}; use a documented code, e.g. 300006 or 300009 (see blotter sim --help)"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SimConfig:
        try:
            key_bytes(self.api_secret, self.secret_encoding)
        except SigningError as exc:
            raise ValueError(str(exc)) from None
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self

    @property
    def stream_path(self) -> str:
        """The one path the server upgrades: ``/<grp>/api/pro/v2/stream``."""
        return f"/{self.account_group}/api/pro/v2/stream"
