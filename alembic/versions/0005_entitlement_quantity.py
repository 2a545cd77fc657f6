"""the subscribed quantity on entitlements

The current subscription item's quantity, projected by the webhook applier like every other
entitlement column (NULL without a subscription). On a per-seat plan it is the seat count.
Rows written before it get 1, the quantity every earlier version bought, so `drift` reports
only the subscriptions whose quantity was changed in Stripe (and `drift --fix` mends those).

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable `quantity` column, 1 on rows with a subscription."""
    op.add_column("entitlements", sa.Column("quantity", sa.Integer(), nullable=True))
    op.execute("UPDATE entitlements SET quantity = 1 WHERE subscription_id IS NOT NULL")


def downgrade() -> None:
    """Drop it again."""
    with op.batch_alter_table("entitlements") as batch:
        batch.drop_column("quantity")
