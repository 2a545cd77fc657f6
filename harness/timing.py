"""Time in tests: how long work took, and waiting until a condition holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def timed(work: Awaitable[T]) -> tuple[T, float]:
    """The result of awaiting `work`, and how many seconds it took."""
    started = time.monotonic()
    result = await work
    return result, time.monotonic() - started


def _timed_out(what: str, timeout: float, last: object) -> AssertionError:
    return AssertionError(f"timed out after {timeout:g} s waiting for {what}; last value: {last!r}")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], object] = bool,
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "the condition",
) -> T:
    """Await `probe()` every `interval` seconds until `until(value)` holds; return that value.

    The probe runs at least once, and once more after the deadline; then the wait fails with
    an AssertionError naming `what` and the last value the probe returned. A probe may assert
    on the values it sees on the way, or raise to stop the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, value)
        await asyncio.sleep(interval)


def eventually_sync(
    probe: Callable[[], T],
    until: Callable[[T], object] = bool,
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "the condition",
) -> T:
    """`eventually` for code without an event loop: blocks between the calls of `probe()`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, value)
        time.sleep(interval)


class ManualClock:
    """A clock that moves only when told, for code that takes one (a cache's monotonic seconds,
    the rate limit's seconds since the epoch)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass."""
        self.now += seconds
