"""Intake before applying: while deliveries are being answered, the applier waits its turn.

The API process that acknowledges Stripe's deliveries also applies them (the default
`WEBHOOK_APPLIER=server`). An apply costs the event loop milliseconds of CPU (two Stripe
answers parsed, a transaction projected), and at Stripe's live rate the applier starts up to
40 of them a second: in a renewal burst, time taken from the deliveries, which Stripe retries
if answered late. So the intake counts the deliveries it is answering, and the applier asks
for a turn before it starts each customer's apply:

- no delivery being answered for `QUIET` seconds: the turn is at once (the applier works at
  Stripe's rate, the CPU being otherwise idle);
- deliveries arriving: the applier waits for a pause of `QUIET` between them, or for its
  share, one apply started every `BUSY_SPACING` seconds, whichever comes first. So a burst
  keeps the core, and the applier still moves during it: a stream that never pauses cannot
  starve it, and once the burst ends it applies at Stripe's full rate again.

Only the start of an apply waits: an apply under way (holding its customer's lock, on
PostgreSQL a connection) runs to its end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

QUIET = 0.005
"""Seconds without a delivery being answered after which the intake counts as idle (longer
than the gap between a batch's answers and the next requests of a busy sender)."""
SETTLE_ROUNDS = 3
"""Turns of the event loop an idle-looking intake is given to show deliveries already received
(read, parsed and handed to the webhook take two)."""
BUSY_SPACING = 0.1
"""Seconds between two apply starts while deliveries keep arriving: 10 customers a second
(20 Stripe reads), a few percent of a core at the measured cost of an apply."""


class IntakeFirst:
    """The deliveries being answered, and the applier's turns around them."""

    def __init__(self) -> None:
        self.quiet = QUIET
        self.spacing = BUSY_SPACING
        self._answering = 0
        self._last = -float("inf")
        self._next = 0.0
        self._turns: asyncio.Lock | None = None

    @contextmanager
    def answering(self) -> Iterator[None]:
        """One delivery being verified, stored and answered."""
        self._answering += 1
        try:
            yield
        finally:
            self._answering -= 1
            self._last = time.monotonic()

    def busy(self) -> bool:
        """True while a delivery is being answered, or was less than `quiet` seconds ago."""
        return self._answering > 0 or time.monotonic() - self._last < self.quiet

    async def turn(self) -> bool:
        """Wait for the applier's next start; True if it had to wait for deliveries.

        One waiter at a time looks (the others queue behind it), every `quiet` at most."""
        if self._turns is None:
            self._turns = asyncio.Lock()
        waited = False
        async with self._turns:
            while (wait := await self._wait()) > 0:
                waited = True
                await asyncio.sleep(wait)
            self._next = time.monotonic() + self.spacing
        return waited

    async def _wait(self) -> float:
        """Seconds to wait before looking again; 0 when the applier may start now.

        An intake that looks idle is looked at again after the event loop has gone round a
        few times: deliveries already in the sockets' buffers (say, after the OS gave the core
        to another process for a while) reach the webhook before the apply starts."""
        for _ in range(SETTLE_ROUNDS):
            if (left := self._next - time.monotonic()) <= 0:
                return 0.0
            if self.busy():
                return min(left, self.quiet)
            await asyncio.sleep(0)
        return 0.0
