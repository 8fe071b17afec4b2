"""Shared fixtures for the reliability suite: unhandled-error capture."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest


class LoopErrors:
    """Records everything the event loop's exception handler is given
    (``Task exception was never retrieved``, callback errors, …)."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []

    def handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.errors.append(context)

    def describe(self) -> list[str]:
        return [f"{c.get('message')}: {c.get('exception')!r}" for c in self.errors]

    def assert_none(self) -> None:
        gc.collect()  # a task whose exception was never retrieved is reported when collected
        assert not self.errors, self.describe()


@pytest.fixture
async def loop_errors():
    loop = asyncio.get_running_loop()
    errors = LoopErrors()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(errors.handler)
    try:
        yield errors
    finally:
        gc.collect()
        loop.set_exception_handler(previous)


@pytest.fixture
def handler_failures(caplog):
    """Records of the session's ``frame handler failed`` (a desk bug on some frame)."""
    caplog.set_level(logging.DEBUG, logger="blotter")

    def failures() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name.startswith("blotter") and r.levelno >= logging.ERROR]

    return failures
