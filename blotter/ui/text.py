"""The sanitiser every widget uses for strings that came over the wire.

It lives in :mod:`blotter.core.text` so the log, the headless commands and the
screen share one definition; widgets build :class:`rich.text.Text` objects from
its output, never markup strings.
"""

from ..core.text import LIMIT, safe

__all__ = ["LIMIT", "safe"]
