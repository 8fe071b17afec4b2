"""Widgets of the blotter screen."""

from .detail_line import DetailLine
from .log_pane import LogPane
from .orders_table import OrdersTable
from .positions_pane import PositionsPane
from .status_bar import StatusBar

__all__ = ["DetailLine", "LogPane", "OrdersTable", "PositionsPane", "StatusBar"]
