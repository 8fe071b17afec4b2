"""The console script (``blotter``) and ``python -m blotter``.

Loading the modules takes a fraction of a second at start; a Ctrl-C then ends with 130
and no traceback, as it does at any later point (:func:`blotter.cli.main.main`)."""

from __future__ import annotations

EXIT_INTERRUPTED = 130


def main() -> int:
    try:
        from .main import main as run

        return run()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
