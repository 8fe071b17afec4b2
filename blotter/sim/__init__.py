"""A local AscendEX futures exchange for demos, tests and benchmarks.

``SimServer`` is a real ``websockets`` server that speaks the protocol described in
the exchange's futures API v2 documentation (summarised in the
README's "The simulator" section) — header and ``op:auth`` authentication, keep-alive, the
``futures-order`` channel, both dialects of request replies — and can be told to
misbehave in every way the blotter must survive (see :class:`SimConfig`).

Depends on :mod:`blotter.protocol` only; never imports Textual or Rich.
"""

from .book import SimOrder
from .config import DEMO_API_KEY, DEMO_API_SECRET, SimConfig
from .server import ReceivedFrame, SimServer

__all__ = ["DEMO_API_KEY", "DEMO_API_SECRET", "ReceivedFrame", "SimConfig", "SimOrder", "SimServer"]
