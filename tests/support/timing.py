"""Time in tests: how long work took, waiting until a condition holds, and starting a test
early enough in a rate-limit window."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from billing.ratelimit import WINDOW_SECONDS

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


def wait_for_fresh_window(needed: float = 20.0) -> None:
    """Sleep into the next rate-limit window when fewer than `needed` seconds are left in
    this one, so a test's calls all fall in one window."""
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < needed:
        time.sleep(left + 0.05)
