"""The Textual user interface. Build it with :func:`blotter.ui.app.make_app`."""

from .settings import UiSettings

__all__ = ["UiSettings", "make_app", "BlotterApp"]


def __getattr__(name: str):  # lazy: importing blotter.ui.settings must not load Textual
    if name in ("make_app", "BlotterApp"):
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
