"""billing state on entitlements: the required action and the pending change

`required_action` ({code, flow, invoice_url, since, deadline, key}) and `pending_change`
({plan, interval, seats, effective_at}), JSON with times as unix seconds, projected by the
webhook applier like every other entitlement column (`billing.entitlements.billing_state`).
Rows written before it have neither until their customer is applied again: `drift` reports
the orgs Stripe already has an open action or a schedule for, `drift --fix` fills them in.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the two nullable JSON columns."""
    op.add_column("entitlements", sa.Column("required_action", sa.JSON(none_as_null=True), nullable=True))
    op.add_column("entitlements", sa.Column("pending_change", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("entitlements") as batch:
        batch.drop_column("pending_change")
        batch.drop_column("required_action")
