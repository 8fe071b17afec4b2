"""Shared test helpers. Keep this small: per-layer fixtures live next to their tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PROTOCOL_FIXTURES


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
