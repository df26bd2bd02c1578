"""Fixtures for the sandbox tests: a clock and a random source the tests drive by hand, and
a way to let hung plugin threads go at the end of a test."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """An event hung plugin code waits on; set at teardown so no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()
