"""Shared test helpers. Keep this small: per-layer fixtures live next to their tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PROTOCOL_FIXTURES

# A pytest-xdist worker has COLUMNS=80 and LINES=24 in its environment. A blotter that a
# test starts in a pseudo-terminal (or tmux, screen, the terminal benchmark) inherits them,
# and Textual takes its size from them before its terminal's: an 80x24 layout in a 120x36
# pty. The size of a child's terminal is its pty's, as for a trader.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("COLUMNS", "LINES"):
        os.environ.pop(_name, None)


def fixture_path(name: str) -> Path:
    """Path of ``tests/fixtures/protocol/<name>`` (``.json`` may be omitted)."""
    path = PROTOCOL_FIXTURES / name
    if not path.exists() and not name.endswith(".json"):
        path = PROTOCOL_FIXTURES / f"{name}.json"
    return path


def fixture_bytes(name: str) -> bytes:
    """The raw bytes of a protocol fixture, as a frame from the wire."""
    return fixture_path(name).read_bytes()


def fixture_json(name: str) -> Any:
    """A protocol fixture, decoded."""
    return json.loads(fixture_bytes(name))


@pytest.fixture(name="fixture_json")
def _fixture_json_fixture():
    """The :func:`fixture_json` loader, for tests that prefer a fixture argument."""
    return fixture_json
