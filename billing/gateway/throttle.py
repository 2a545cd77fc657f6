"""The pace of this process's Stripe requests: spaced under STRIPE_RATE_LIMIT, slower after 429s."""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5
"""Seconds every request waits after a 429 (without a Retry-After); doubles per 429 in a row."""
BACKOFF_MAX = 16.0
"""The longest pause a run of 429s causes."""
SPACING_MARGIN = 0.05
"""Turns are this much wider than 1/rate. At exactly 1/rate, rate + 1 requests span exactly one
second, so the smallest jitter between a turn and Stripe receiving the request (a busy event
loop, the network) puts rate + 1 of them into one second at Stripe's end; with the margin that
takes a compression of 50 ms (at 20/s), and `bench/webhooks.py` counts at the receiving end."""


class StripeThrottle:
    """A token bucket of capacity one: requests start at least 1/rate seconds apart (a little
    more: `SPACING_MARGIN`).

    Callers queue in order; each waits for its turn and the next turn is counted from the
    moment it actually went, so callers woken late by a busy event loop never leave together.
    A 429 from Stripe pauses every caller with a doubling backoff; the first success ends it."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("the Stripe request rate must be positive")
        self.rate = rate
        self._interval = (1.0 + SPACING_MARGIN) / rate
        self._next = 0.0
        self._paused_until = 0.0
        self._refusals = 0
        self._queue = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait for this request's turn."""
        async with self._queue:
            # A loop, not one sleep: a 429 during the wait moves the turn later.
            while (wait := max(self._next, self._paused_until) - time.monotonic()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
            self._next = time.monotonic() + self._interval

    async def paused(self) -> None:
        """Wait while requests are paused after a 429."""
        while (wait := self.paused_for) > 0:  # noqa: ASYNC110  (a new 429 extends it)
            await asyncio.sleep(wait)

    def rate_limited(self, retry_after: float | None) -> float:
        """Stripe answered 429: pause every request; returns the pause in seconds."""
        self._refusals += 1
        backoff = min(BACKOFF_FIRST * 2.0 ** (self._refusals - 1), BACKOFF_MAX)
        pause = max(retry_after or 0.0, backoff)
        self._paused_until = max(self._paused_until, time.monotonic() + pause)
        log.warning("stripe rate limited this process (429): pausing requests for %.1fs", pause)
        return pause

    def succeeded(self) -> None:
        """A request went through: a later 429 starts the backoff afresh."""
        self._refusals = 0

    @property
    def paused_for(self) -> float:
        """Seconds until requests may start again after a 429 (0 when not paused)."""
        return max(0.0, self._paused_until - time.monotonic())
