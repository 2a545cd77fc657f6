"""The background applier: stored events applied per customer, one Stripe re-read for all.

Every API process runs one (and `python main.py worker` runs one alone). It takes the
customers with events due, longest waiting first, locks each (`billing.kit.customer_locks`:
one holder per customer across every process), re-reads the customer from Stripe once (its
subscriptions and its active entitlements, side by side), projects it and marks every event of
that customer it saw applied, in one transaction. A failed apply leaves its events failed with
a backoff; a 429 from Stripe only slows every request down (`billing.gateway.throttle`) and the
events stay due. In an API process each apply starts in a turn the webhook deliveries leave
free (`webhooks.priority`): acknowledging Stripe comes first."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from functools import partial

from sqlalchemy.orm import Session

from billing.container import Services
from billing.entitlements.billing_state import Reported
from billing.entitlements.projection import project_customer, read_customer
from billing.gateway.errors import StripeRateLimited
from billing.gateway.views import CustomerState
from billing.kit import metrics
from billing.kit.logs import bind_event_id, bind_org_id, in_log_scope
from billing.models import utcnow
from billing.retention.records import record_facts
from webhooks.priority import IntakeFirst
from webhooks.store import (
    Outcome,
    StoredEvent,
    due_customers,
    lag_seconds,
    mark_applied,
    mark_failed,
    mark_ignored_again,
    pending_of,
    replay_targets,
)

log = logging.getLogger(__name__)

CONCURRENCY = 8
"""Customers applied at once per process. Each holds a database connection while it re-reads
Stripe; the rest of the pool (10 + 10 on PostgreSQL) stays free for the API."""
BATCH = 256
"""Due customers fetched per query."""
ELSEWHERE_COOLDOWN = 1.0
"""Seconds a customer another process holds is left alone before this one looks again."""
IDLE_POLL = 1.0
"""Seconds between looks for due work when nothing wakes the applier: retries coming due, and
on SQLite other processes' events (on PostgreSQL their NOTIFY wakes it,
`billing.kit.change_feed`)."""
STOP_GRACE = 10.0
"""Seconds `stop` lets applies in flight finish (an unfinished one rolls back and is redone)."""


@in_log_scope
async def apply_customer(
    services: Services,
    customer_id: str,
    *,
    also: frozenset[str] = frozenset(),
    wait: float = 0.0,
) -> dict[str, Outcome] | None:
    """Apply a customer's pending events (and `also`) with one re-read; None if locked elsewhere.

    Returns each event's outcome ({} when none was pending); after a 429 they are DEFERRED.
    While it runs, its log lines name the events (comma-joined) and the org (the events' hint,
    then the org the projection found)."""
    async with services.db.locks.hold(customer_id, wait=wait) as lock:
        if lock is None:
            return None
        events = await pending_of(services, customer_id, also)
        if not events:
            return {}
        hint = next((e.target.org_hint for e in events if e.target and e.target.org_hint), None)
        bind_event_id(",".join(e.id for e in events))
        bind_org_id(hint)
        try:
            state = await read_customer(services.stripe, customer_id)
            org_id = await lock.write(partial(_project_and_mark, services, state, hint, events))
        except StripeRateLimited:
            log.info("customer %s: Stripe asked us to slow down; its events stay due", customer_id)
            return _counted(events, Outcome.DEFERRED)
        except Exception as exc:
            log.exception("customer %s: applying %d event(s) failed", customer_id, len(events))
            await mark_failed(services, events, exc)
            return _counted(events, Outcome.FAILED)
    outcome = Outcome.PROCESSED if org_id else Outcome.IGNORED
    bind_org_id(org_id)
    _log_applied(customer_id, org_id, events)
    return _counted(events, outcome)


def _counted(events: list[StoredEvent], outcome: Outcome) -> dict[str, Outcome]:
    """Each event's outcome, counted in the metrics (with its lag once applied)."""
    now = utcnow()
    for event in events:
        metrics.count(metrics.WEBHOOK_EVENTS, event.type, outcome.value)
        if outcome in (Outcome.PROCESSED, Outcome.IGNORED):
            metrics.WEBHOOK_APPLY_LAG.observe(lag_seconds(event.created, now))
    return {e.id: outcome for e in events}


def _project_and_mark(
    services: Services,
    state: CustomerState,
    hint: str | None,
    events: list[StoredEvent],
    session: Session,
) -> str | None:
    """The apply's one transaction: the projection and its events marked applied."""
    reported = [
        Reported(e.target.report, e.created) for e in events if e.target and e.target.report
    ]
    org_id = project_customer(services.catalog, session, state, hint, reported)
    if org_id is not None:
        facts = [fact for e in events if e.target for fact in e.target.facts]
        record_facts(session, org_id, state.customer.id, facts, state.subscriptions)
    mark_applied(session, events, org_id)
    return org_id


def _log_applied(customer_id: str, org_id: str | None, events: list[StoredEvent]) -> None:
    """One line per apply, naming its events."""
    log.info(
        "applied customer %s org=%s events=%d %s",
        customer_id,
        org_id or "-",
        len(events),
        ",".join(e.id for e in events),
    )


class Applier:
    """Applies due events in the background until stopped."""

    def __init__(self, services: Services, concurrency: int = CONCURRENCY) -> None:
        self.services = services
        self.concurrency = concurrency
        self._wake = asyncio.Event()
        self._queue: deque[str] = deque()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._elsewhere: dict[str, float] = {}
        self._loop: asyncio.Task[None] | None = None
        self._intake: IntakeFirst | None = None
        services.db.change_feed.on_events_stored(self.wake)  # stored by any process (PostgreSQL)

    def defer_to(self, intake: IntakeFirst) -> None:
        """Start applies only in the turns the deliveries this process answers leave free."""
        self._intake = intake

    def wake(self) -> None:
        """New events were stored: look for work now."""
        self._wake.set()

    async def start(self) -> None:
        """Run in the background."""
        self._loop = asyncio.create_task(self._run(), name="webhook-applier")

    async def stop(self) -> None:
        """Stop taking work; let applies in flight finish for a while, then cancel them."""
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
            self._loop = None
        running = list(self._inflight.values())
        if running:
            _, late = await asyncio.wait(running, timeout=STOP_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _run(self) -> None:
        """Fill free slots with due customers; sleep until woken or the next poll."""
        while True:
            self._wake.clear()
            try:
                await self._fill()
            except Exception:
                log.exception("webhook applier: looking for due events failed")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=IDLE_POLL)
            except TimeoutError:
                pass

    async def _fill(self) -> None:
        """Start applies for due customers while slots are free."""
        while len(self._inflight) < self.concurrency:
            if not self._queue:
                now = time.monotonic()
                self._elsewhere = {c: t for c, t in self._elsewhere.items() if t > now}
                busy = set(self._inflight) | set(self._elsewhere)
                found = await due_customers(self.services, busy, BATCH)
                self._queue.extend(found)
                if not found:
                    return
            if self._intake is not None and await self._intake.turn():
                metrics.WEBHOOK_APPLY_WAITS.inc()
            customer = self._queue.popleft()
            if customer not in self._inflight and customer not in self._elsewhere:
                self._inflight[customer] = asyncio.create_task(self._apply(customer))

    async def _apply(self, customer_id: str) -> None:
        """One customer's apply; its slot is freed and the loop woken either way.

        A customer another process holds is skipped for a moment rather than retried at once."""
        try:
            if await apply_customer(self.services, customer_id) is None:
                self._elsewhere[customer_id] = time.monotonic() + ELSEWHERE_COOLDOWN
        except Exception:
            log.exception("webhook applier: customer %s", customer_id)
        finally:
            del self._inflight[customer_id]
            self._wake.set()


REPLAY_WAIT = 60.0
"""Seconds `events replay` waits for another applier holding a customer."""
REPLAY_TRIES = 5
"""Attempts per customer when Stripe keeps answering 429."""


async def replay(
    services: Services, *, failed_only: bool = False, event_id: str | None = None
) -> Counter[str]:
    """Apply stored events now, whatever their backoff (`events replay`); outcomes counted.

    With `event_id`, that event is applied again even if it already was."""
    targets = await replay_targets(services, failed_only=failed_only, event_id=event_id)
    if event_id and not targets:
        raise ValueError(f"no stored event {event_id}")
    if targets:
        services.stripe  # noqa: B018  (fails fast when Stripe is not configured)
    outcomes: Counter[str] = Counter()
    for customer_id, ids in targets.items():
        if customer_id is None:
            await mark_ignored_again(services, ids)
            outcomes[Outcome.IGNORED.value] += len(ids)
            continue
        also = frozenset(ids) if event_id else frozenset()
        for attempt in range(REPLAY_TRIES):
            done = await apply_customer(services, customer_id, also=also, wait=REPLAY_WAIT)
            if done is None:
                raise TimeoutError(f"customer {customer_id} stayed locked for {REPLAY_WAIT:.0f}s")
            if Outcome.DEFERRED not in done.values() or attempt == REPLAY_TRIES - 1:
                outcomes.update(outcome.value for outcome in done.values())
                break
    return outcomes
