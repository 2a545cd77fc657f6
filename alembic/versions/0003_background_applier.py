"""events applied in the background, together per customer

`customer_id` names the Stripe customer an event is about, so the applier applies a
customer's pending events with one re-read; `next_attempt_at` holds a failed event back until
its backoff ends. Pending events stored before this revision get their customer from their
payload here (or are marked ignored when they name none).

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from webhooks.handlers import target_of

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the columns and the index the applier picks events by."""
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_id", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_webhook_events_customer_id", ["customer_id"], unique=False)
    _backfill()


def _backfill() -> None:
    """Name the customer of every event still waiting to be applied."""
    bind = op.get_bind()
    pending = bind.execute(
        sa.text(
            "SELECT id, type, payload FROM webhook_events WHERE status IN ('received', 'failed')"
        )
    ).all()
    for event_id, event_type, payload in pending:
        target = target_of(event_type, json.loads(payload))
        if target is None:
            bind.execute(
                sa.text(
                    "UPDATE webhook_events SET status = 'ignored', processed_at = :now "
                    "WHERE id = :id"
                ),
                {"id": event_id, "now": datetime.now(UTC)},
            )
        else:
            bind.execute(
                sa.text("UPDATE webhook_events SET customer_id = :customer WHERE id = :id"),
                {"id": event_id, "customer": target.customer_id},
            )


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_events_customer_id")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("customer_id")
