"""The service's Prometheus metrics (README: "Metrics"), recorded where the work happens.

With PROMETHEUS_MULTIPROC_DIR set before this module is first imported (`main.py serve
--workers N` sets it for its workers), every process writes its values to files in that
folder and `GET /metrics` adds them up (`server/prometheus.py`); otherwise they live in this
process. Labels name operations, event types and outcomes only: never an org, a customer or
anything secret, so the number of series stays bounded.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics, multiprocess
from prometheus_client.metrics import MetricWrapperBase

disable_created_metrics()  # type: ignore[no-untyped-call]  # a `_created` series per series doubles the scrape for nothing

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's own setting: the folder the processes of one deployment share."""

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds, for request latencies (GraphQL operations, Stripe calls)."""
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
"""Seconds, for the time from Stripe creating an event to its apply."""

WEBHOOK_EVENTS = Counter(
    "billing_webhook_events",
    "Stripe webhook events by type and outcome: stored, duplicate and ignored (no handler) "
    "when received; processed, ignored, failed and deferred (Stripe answered 429) when applied.",
    ["type", "outcome"],
)
WEBHOOK_REJECTED = Counter(
    "billing_webhook_rejected",
    "Webhook deliveries refused with 400 (invalid signature, not a Stripe event).",
    ["reason"],
)
WEBHOOK_APPLY_LAG = Histogram(
    "billing_webhook_apply_lag_seconds",
    "Seconds from Stripe creating an event to its apply.",
    buckets=LAG_BUCKETS,
)
WEBHOOK_APPLY_WAITS = Counter(
    "billing_webhook_apply_waits",
    "Applies whose start waited while this process answered webhook deliveries (intake first).",
)
STRIPE_REQUESTS = Counter(
    "billing_stripe_requests",
    "Calls to Stripe by operation and outcome (ok, rate_limited, unavailable, timeout, "
    "not_found, rejected, canceled, error), after the SDK's own retries.",
    ["operation", "outcome"],
)
STRIPE_LATENCY = Histogram(
    "billing_stripe_request_duration_seconds",
    "Seconds a call to Stripe took, retries and its turn under STRIPE_RATE_LIMIT included.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
STRIPE_RATE_LIMITED = Counter(
    "billing_stripe_rate_limited_responses",
    "HTTP 429 answers from Stripe (each pauses this process's requests).",
)
GRAPHQL_OPERATIONS = Counter(
    "billing_graphql_operations",
    "GraphQL queries and mutations by operation (their root fields) and outcome (ok, "
    "billing_error, unauthenticated, invalid, error).",
    ["operation", "outcome"],
)
GRAPHQL_LATENCY = Histogram(
    "billing_graphql_operation_duration_seconds",
    "Seconds a GraphQL query or mutation took to answer.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
BILLING_ERRORS = Counter(
    "billing_errors",
    "BillingError results of the mutations, by code.",
    ["code"],
)
OPEN_SUBSCRIPTIONS = Gauge(
    "billing_graphql_subscriptions_open",
    "entitlementChanged subscriptions open now.",
    multiprocess_mode="livesum",
)


@cache
def _series(metric: MetricWrapperBase, labels: tuple[str, ...]) -> Any:
    """The series of these label values (looked up once: `labels()` costs microseconds)."""
    return metric.labels(*labels)


def count(counter: Counter, *labels: str) -> None:
    """Add one to the counter's series of these label values."""
    _series(counter, labels).inc()


def observe(
    latency: Histogram, total: Counter, operation: str, outcome: str, seconds: float
) -> None:
    """Count one operation by outcome and record how long it took."""
    _series(total, (operation, outcome)).inc()
    _series(latency, (operation,)).observe(seconds)


def observe_operation(operation: str, outcome: str, seconds: float) -> None:
    """A GraphQL query or mutation, batched until the next `flush` (the API's lifespan runs
    `flush_every`; each scrape flushes too)."""
    _pending.add(GRAPHQL_LATENCY, GRAPHQL_OPERATIONS, operation, outcome, seconds)


def flush() -> None:
    """Hand what `observe` batched to the metrics (each scrape does, and every second)."""
    _pending.flush()


class _Batch:
    """Operations observed since the last flush, added up per series: a request served in
    microseconds should not spend them on the metrics (a histogram observation costs more
    than a memory answer's dictionary lookups)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[Counter, str, str], int] = {}
        self._latencies: dict[tuple[Histogram, str], list[float]] = {}  # counts, then the sum

    def add(
        self, latency: Histogram, total: Counter, operation: str, outcome: str, seconds: float
    ) -> None:
        """One operation (a histogram of LATENCY_BUCKETS)."""
        key = (total, operation, outcome)
        self._counts[key] = self._counts.get(key, 0) + 1
        buckets = self._latencies.get((latency, operation))
        if buckets is None:
            buckets = self._latencies[(latency, operation)] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        for index, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                buckets[index] += 1
                break
        else:
            buckets[-2] += 1  # +Inf
        buckets[-1] += seconds

    def flush(self) -> None:
        """Write the sums into the series and start again."""
        counts, self._counts = self._counts, {}
        latencies, self._latencies = self._latencies, {}
        for (counter, *labels), n in counts.items():
            _series(counter, tuple(labels)).inc(n)
        for (histogram, operation), buckets in latencies.items():
            series = _series(histogram, (operation,))
            # prometheus-client observes one value at a time; its buckets take a sum as well.
            for index, observed in enumerate(buckets[:-1]):
                if observed:
                    series._buckets[index].inc(observed)
            series._sum.inc(buckets[-1])


_pending = _Batch()


async def flush_every(seconds: float = 1.0) -> None:
    """Flush the batch on this schedule until cancelled (the other workers' scrapes read
    what this process flushed)."""
    try:
        while True:
            await asyncio.sleep(seconds)
            flush()
    finally:
        flush()


@contextmanager
def subscription_open() -> Iterator[None]:
    """Count an open `entitlementChanged` subscription while the block runs."""
    OPEN_SUBSCRIPTIONS.inc()
    try:
        yield
    finally:
        OPEN_SUBSCRIPTIONS.dec()


def clock() -> Callable[[], float]:
    """A stopwatch: call the result for the seconds since."""
    started = time.perf_counter()
    return lambda: time.perf_counter() - started


def multiprocess_dir() -> Path | None:
    """The shared folder of a multi-process deployment, None for a single process."""
    folder = os.environ.get(MULTIPROC_ENV)
    return Path(folder) if folder else None


def process_started() -> None:
    """At a server process's start: forget the live gauges of processes that are gone (a
    crashed worker's open subscriptions would otherwise be counted forever)."""
    folder = multiprocess_dir()
    if folder is None:
        return
    for path in folder.glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]


def process_stopped() -> None:
    """At a server process's clean exit: its live gauges stop counting."""
    folder = multiprocess_dir()
    if folder is not None:
        multiprocess.mark_process_dead(os.getpid(), str(folder))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    """True while a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process
    return True
