"""the customer's active entitlements in Stripe on entitlements

The lookup keys of the customer's active entitlements (Stripe Features), sorted, projected by
the webhook applier like every other entitlement column; `entitlement.features` is their union
with the current plan's features in the plans file. Rows written before it get `[]` until their
customer is applied again: `drift` reports the customers Stripe already entitles to a feature,
and `drift --fix` (or `resync`) fills them in.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the `stripe_features` JSON column, `[]` on every row."""
    op.add_column(
        "entitlements",
        sa.Column("stripe_features", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )


def downgrade() -> None:
    """Drop it again."""
    with op.batch_alter_table("entitlements") as batch:
        batch.drop_column("stripe_features")
