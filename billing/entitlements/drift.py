"""`drift`: every org's entitlement compared with Stripe's state, column by column; `--fix`
re-syncs the orgs that differ.

An org differs when `project_customer` would change what it serves for Stripe's state now: an
entitlement column (`expected_columns`; `updated_at` is never compared) or the account's
deletion (Stripe deleted the customer, `deleted_at` is NULL). A missing entitlement row stands
for what the API serves without one, the default plan never subscribed: an org that opened
Checkout and never paid has none and does not differ, one whose subscription never reached
the projection does.

Every billing account is checked, deleted ones included, as `resync` rebuilds them all. Each
org is checked under its customer's lock (`billing.kit.customer_locks`), as the applier
applies it: Stripe is read, then the stored rows, and no projection commits in between.
CONCURRENCY orgs are read at once; every request keeps the gateway's pace
(`billing.gateway.throttle`), and a 429 makes the org wait out the throttle's pause and try
again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from billing.accounts import account_customers
from billing.catalog.plans import Catalog
from billing.entitlements.projection import (
    LOCK_WAIT,
    expected_columns,
    marks_deleted,
    read_customer,
    resync_customer,
    stored_value,
)
from billing.gateway.client import StripeGateway
from billing.gateway.errors import StripeRateLimited, StripeRejected, StripeUnavailable
from billing.gateway.views import CustomerState
from billing.kit.database import Database
from billing.models import BillingAccount, Entitlement

A = TypeVar("A")
R = TypeVar("R")

CONCURRENCY = 4
"""Orgs checked (or fixed) at once; the throttle keeps their requests under STRIPE_RATE_LIMIT."""
RATE_LIMITED_TRIES = 10
"""Attempts per org while Stripe answers 429 (the throttle's pauses add up to about a minute)."""
FAILURES = (StripeUnavailable, StripeRejected, SQLAlchemyError, TimeoutError, LookupError)
"""What makes one org an error while the run goes on for the others."""

Step = Callable[[], None]
Track = Callable[[str, int], Step]
"""Starts a progress bar (`what`, `total` steps) and returns what advances it one step."""


@dataclass(frozen=True)
class Difference:
    """One column whose stored value is not what Stripe's state projects to."""

    column: str
    stored: Any
    stripe: Any


@dataclass(frozen=True)
class OrgCheck:
    """One org compared with Stripe: no differences, no drift."""

    org_id: str
    customer_id: str
    differences: tuple[Difference, ...]


@dataclass(frozen=True)
class OrgError:
    """An org that could not be checked or fixed; `during` is "check" or "fix"."""

    org_id: str
    customer_id: str
    during: str
    error: str


@dataclass
class DriftReport:
    """A run: orgs checked, those that differed, those fixed (None without `--fix`), errors."""

    checked: int
    drifted: list[OrgCheck]
    errors: list[OrgError]
    fixed: list[str] | None = None

    @property
    def ok(self) -> bool:
        """True when nothing failed and nothing differs any more (exit 0)."""
        return not self.errors and (self.fixed is not None or not self.drifted)


def untracked(what: str, total: int) -> Step:
    """No progress bar."""
    return lambda: None


def _served(catalog: Catalog, account: BillingAccount, row: Entitlement | None) -> Entitlement:
    """The row, or what a missing one stands for: the default plan, never subscribed."""
    if row is not None:
        return row
    return Entitlement(
        org_id=account.org_id,
        plan=catalog.default,
        stripe_customer_id=account.stripe_customer_id,
    )


def differences(
    catalog: Catalog, state: CustomerState, account: BillingAccount, row: Entitlement | None
) -> tuple[Difference, ...]:
    """What `project_customer` would change for this read: the account's deletion, then columns."""
    found = [Difference("deleted", False, True)] if marks_deleted(state, account) else []
    served = _served(catalog, account, row)
    for column, value in expected_columns(catalog, state, row).items():
        if (stored := stored_value(served, column)) != value:
            found.append(Difference(column, stored, value))
    return tuple(found)


async def check_org(
    db: Database, stripe: StripeGateway, catalog: Catalog, org_id: str, customer_id: str
) -> OrgCheck:
    """Compare one org with Stripe, under its customer's lock."""
    async with db.locks.hold(customer_id, wait=LOCK_WAIT) as lock:
        if lock is None:
            raise TimeoutError(f"customer {customer_id} stayed locked for {LOCK_WAIT:.0f}s")
        state = await read_customer(stripe, customer_id)
        async with db.read() as session:
            account = await session.get(BillingAccount, org_id)
            row = await session.get(Entitlement, org_id)
    if account is None or account.stripe_customer_id != customer_id:
        raise LookupError(f"org {org_id} was linked to another customer during the check")
    return OrgCheck(org_id, customer_id, differences(catalog, state, account, row))


async def _patiently(stripe: StripeGateway, call: Callable[[], Awaitable[R]]) -> R:
    """`call`, again after the throttle's pause each time Stripe answers 429."""
    for _ in range(RATE_LIMITED_TRIES - 1):
        try:
            return await call()
        except StripeRateLimited:
            await stripe.throttle.paused()
    return await call()


def _message(exc: Exception) -> str:
    """An error in one line: its type and the first line of its message."""
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}".rstrip(": ")


async def _check(
    db: Database, stripe: StripeGateway, catalog: Catalog, org_id: str, customer_id: str
) -> OrgCheck | OrgError:
    """One org's check, or the error that stopped it."""
    try:
        return await _patiently(stripe, lambda: check_org(db, stripe, catalog, org_id, customer_id))
    except FAILURES as exc:
        return OrgError(org_id, customer_id, "check", _message(exc))


async def _fix(
    db: Database, stripe: StripeGateway, catalog: Catalog, drifted: OrgCheck
) -> str | OrgError:
    """Re-sync one org and check it again; its id when it no longer differs."""
    org_id, customer_id = drifted.org_id, drifted.customer_id
    try:
        await _patiently(stripe, lambda: resync_customer(db, stripe, catalog, customer_id))
        again = await _patiently(
            stripe, lambda: check_org(db, stripe, catalog, org_id, customer_id)
        )
    except FAILURES as exc:
        return OrgError(org_id, customer_id, "fix", _message(exc))
    if again.differences:
        columns = ", ".join(d.column for d in again.differences)
        return OrgError(org_id, customer_id, "fix", f"still differs after resync: {columns}")
    return org_id


async def _bounded(items: Sequence[A], work: Callable[[A], Awaitable[R]], step: Step) -> list[R]:
    """`work` on every item, CONCURRENCY at a time; results in the items' order."""
    results: dict[int, R] = {}
    pending = iter(enumerate(items))

    async def worker() -> None:
        for index, item in pending:
            results[index] = await work(item)
            step()

    async with asyncio.TaskGroup() as group:
        for _ in range(min(CONCURRENCY, len(items))):
            group.create_task(worker())
    return [results[index] for index in range(len(items))]


async def find_drift(
    db: Database,
    stripe: StripeGateway,
    catalog: Catalog,
    org_id: str | None = None,
    *,
    fix: bool = False,
    track: Track = untracked,
) -> DriftReport:
    """Check every org (or one); with `fix`, re-sync those that differ and check them again."""
    accounts = await account_customers(db, org_id)
    if org_id is not None and not accounts:
        raise ValueError(f"org {org_id} has no billing account")
    step = track("drift", len(accounts))
    checks = await _bounded(accounts, lambda account: _check(db, stripe, catalog, *account), step)
    found = DriftReport(
        checked=len(accounts),
        drifted=[c for c in checks if isinstance(c, OrgCheck) and c.differences],
        errors=[c for c in checks if isinstance(c, OrgError)],
    )
    if fix:
        step = track("fix", len(found.drifted))
        fixes = await _bounded(
            found.drifted, lambda drifted: _fix(db, stripe, catalog, drifted), step
        )
        found.fixed = [f for f in fixes if isinstance(f, str)]
        found.errors += [f for f in fixes if isinstance(f, OrgError)]
    return found


def plain(value: Any) -> Any:
    """A column's value as JSON (datetimes in ISO 8601)."""
    return value.isoformat() if isinstance(value, datetime) else value


def report(found: DriftReport) -> dict[str, Any]:
    """The run as plain JSON values (the shape `drift --json` documents)."""
    return {
        "checked": found.checked,
        "drifted": [
            {
                "org_id": check.org_id,
                "customer_id": check.customer_id,
                "differences": [
                    {"column": d.column, "stored": plain(d.stored), "stripe": plain(d.stripe)}
                    for d in check.differences
                ],
            }
            for check in found.drifted
        ],
        "fixed": found.fixed,
        "errors": [
            {"org_id": e.org_id, "customer_id": e.customer_id, "during": e.during, "error": e.error}
            for e in found.errors
        ],
    }


def summary(found: DriftReport) -> list[str]:
    """The errors, one line each, then how the run ended."""
    lines = [f"org {e.org_id} ({e.customer_id}): {e.during}: {e.error}" for e in found.errors]
    unchecked = sum(e.during == "check" for e in found.errors)
    drifted = len(found.drifted)
    if found.fixed is not None and drifted:
        fixed = len(found.fixed)
        lines.append(
            f"fixed {fixed} org(s)" if fixed == drifted else f"fixed {fixed} of {drifted} org(s)"
        )
    elif drifted:
        lines.append(
            f"{drifted} of {found.checked} org(s) differ from Stripe; "
            "`python main.py drift --fix` re-syncs them"
        )
    else:
        lines.append(f"no drift in {found.checked - unchecked} org(s)")
    if unchecked:
        lines.append(f"{unchecked} of {found.checked} org(s) could not be checked")
    return lines
