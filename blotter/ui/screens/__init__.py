"""Modal screens: confirmation, quit, filter, help."""

from .confirm import ConfirmScreen
from .filter import FilterScreen
from .flatten import FlattenScreen
from .help import HelpScreen
from .quit import QuitChoice, QuitScreen

__all__ = ["ConfirmScreen", "FilterScreen", "FlattenScreen", "HelpScreen", "QuitChoice", "QuitScreen"]
