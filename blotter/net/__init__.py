"""Talking to the exchange: endpoint rules, the WebSocket transport and session."""
