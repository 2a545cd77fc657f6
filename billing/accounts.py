"""The org's Stripe customer: found locally, created lazily and exactly once."""

from __future__ import annotations

from functools import partial

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col, select

from billing.gateway.client import StripeGateway
from billing.kit.change_feed import mark_changed
from billing.kit.database import Database
from billing.kit.sql import insert
from billing.models import BillingAccount, utcnow


async def find_account(db: Database, org_id: str) -> BillingAccount | None:
    """The org's billing account, deleted or not."""
    async with db.read() as session:
        return await session.get(BillingAccount, org_id)


async def live_customer(db: Database, org_id: str) -> str | None:
    """The org's Stripe customer id, unless it was deleted."""
    account = await find_account(db, org_id)
    return account.stripe_customer_id if account and account.deleted_at is None else None


async def ensure_customer(db: Database, stripe: StripeGateway, org_id: str) -> str:
    """The org's customer, created on first need; racing calls share one Stripe customer."""
    account = await find_account(db, org_id)
    if account and account.deleted_at is None:
        return account.stripe_customer_id
    # The key is the same for every racing call, so Stripe answers them all with one customer;
    # after a deletion it names the deleted customer, so the org gets exactly one new one.
    previous = account.stripe_customer_id if account else "first"
    key = f"org:{org_id}:customer:{previous}"
    customer_id = await stripe.create_customer(org_id, key)
    return await db.write(partial(_link_and_read, org_id, customer_id))


def _link_and_read(org_id: str, customer_id: str, session: Session) -> str:
    """Link the customer unless the org has a live one; the org's customer after that."""
    link_account(session, org_id, customer_id)
    stored = session.scalar(
        select(BillingAccount.stripe_customer_id).where(col(BillingAccount.org_id) == org_id)
    )
    return str(stored)


def link_account(session: Session, org_id: str, customer_id: str) -> None:
    """Record the org's customer unless the org already has a live one (or the customer is
    linked already).

    ON CONFLICT settles a race on the org's row only: on PostgreSQL two transactions linking
    the same customer at once (two processes answering one double click) meet on the
    customer's unique index too, and the later one would fail. Inside a savepoint that
    conflict means the link is already there; what is stored stands."""
    table = BillingAccount.__table__  # type: ignore[attr-defined]
    stmt = insert(session, table).values(
        org_id=org_id, stripe_customer_id=customer_id, created_at=utcnow()
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["org_id"],
        set_={"stripe_customer_id": customer_id, "deleted_at": None},
        where=table.c.deleted_at.is_not(None),
    )
    try:
        with session.begin_nested():
            session.execute(stmt)
    except IntegrityError:
        return
    mark_changed(session, org_id)


async def account_customers(
    db: Database, org_id: str | None = None, *, live_only: bool = False
) -> list[tuple[str, str]]:
    """(org, Stripe customer) of every billing account, or of one org's; live ones only."""
    stmt = select(col(BillingAccount.org_id), col(BillingAccount.stripe_customer_id)).order_by(
        col(BillingAccount.org_id)
    )
    if org_id is not None:
        stmt = stmt.where(col(BillingAccount.org_id) == org_id)
    if live_only:
        stmt = stmt.where(col(BillingAccount.deleted_at).is_(None))
    async with db.read() as session:
        return [(org, customer) for org, customer in (await session.execute(stmt)).all()]
