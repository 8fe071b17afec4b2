"""Widgets of the blotter screen."""

from .log_pane import LogPane
from .orders_table import OrdersTable
from .status_bar import StatusBar

__all__ = ["LogPane", "OrdersTable", "StatusBar"]
