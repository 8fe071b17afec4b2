"""blotter: a terminal order blotter for the AscendEX futures exchange."""

__version__ = "0.1.0"
