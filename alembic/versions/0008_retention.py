"""retention: cancellations, retention offers, and the entitlement's discount

`cancellations` keeps each subscription's cancellation once per billing period (the latest
request's `cancellation_details`, its undo, a later resubscribe); `retention_offers` keeps each
retention coupon offered in a cancel flow once per period, and its acceptance. Both are written
from the webhook's events (`billing.retention.records`) and `openPortal` (the offers made), and
read by `python main.py cancellations` and `/metrics`. `entitlements.discount` is the current
subscription's discount, projected like every other column; rows written before it have none
until their customer is applied again (`drift --fix` fills in those with a discount).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    """Create the two tables and add the discount column."""
    op.add_column("entitlements", sa.Column("discount", sa.JSON(none_as_null=True), nullable=True))
    op.create_table(
        "cancellations",
        sa.Column("subscription_id", _ID(length=255), nullable=False),
        sa.Column("period_end", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("org_id", _ID(length=255), nullable=False),
        sa.Column("customer_id", _ID(length=255), nullable=False),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", _ID(length=64), nullable=True),
        sa.Column("feedback", _ID(length=64), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", "period_end"),
    )
    op.create_index("ix_cancellations_org_id", "cancellations", ["org_id"])
    op.create_table(
        "retention_offers",
        sa.Column("subscription_id", _ID(length=255), nullable=False),
        sa.Column("period_end", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("org_id", _ID(length=255), nullable=False),
        sa.Column("coupon", _ID(length=255), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("discount_id", _ID(length=255), nullable=True),
        sa.PrimaryKeyConstraint("subscription_id", "period_end"),
    )
    op.create_index("ix_retention_offers_org_id", "retention_offers", ["org_id"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_retention_offers_org_id", table_name="retention_offers")
    op.drop_table("retention_offers")
    op.drop_index("ix_cancellations_org_id", table_name="cancellations")
    op.drop_table("cancellations")
    with op.batch_alter_table("entitlements") as batch:
        batch.drop_column("discount")
