"""The one error-code table (ADDENDUM §3.7), shared by REST, WebSocket and the simulator."""

from __future__ import annotations

from blotter.protocol import errors, rest
from blotter.sim.config import ERROR_REASONS


def test_one_table_for_rest_websocket_and_the_simulator():
    assert rest.ERROR_CODES is errors.ERROR_CODES and rest.code_text is errors.code_text
    for code, reason in ERROR_REASONS.items():  # the simulator refuses with the table's words
        assert errors.ERROR_CODES[code].reason == reason
    assert ERROR_REASONS[300014] == "TICK_SIZE_VIOLATION"


def test_explain_words_a_refusal():
    assert errors.explain(300006, "INVALID_ORDER_ID", "Client Order Id too Long: x") == (
        "300006 INVALID_ORDER_ID Client Order Id too Long: x (the order id is invalid (unknown, or not open))"
    )
    assert (
        errors.explain(300012, "", "")
        == "300012 INVALID_PRODUCT (not a product the exchange supports (check the symbol))"
    )
    assert errors.explain(None, "", "gone") == "- gone"
    assert errors.explain(None, "WHY", "") == "WHY"
    assert errors.explain(7, "", "x") == "7 - x (undocumented error code)"
