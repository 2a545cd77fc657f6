"""notify stored webhook events (PostgreSQL)

Every committed insert of webhook events with work for the applier NOTIFYs
`billing_webhook_events` (once per statement: the intake stores a batch in one), so the
appliers of every process, `python main.py worker` included, look for due work at once instead
of at their next poll (webhooks/applier.py). SQLite needs nothing: its appliers run in the
process that stored the event, or poll.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the notify function and its statement-level trigger on PostgreSQL."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION billing_notify_events() RETURNS trigger AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM stored WHERE status = 'received') THEN
            PERFORM pg_notify('billing_webhook_events', '');
          END IF;
          RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER webhook_events_notify AFTER INSERT ON webhook_events"
        " REFERENCING NEW TABLE AS stored"
        " FOR EACH STATEMENT EXECUTE FUNCTION billing_notify_events()"
    )


def downgrade() -> None:
    """Drop the trigger and its function."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS webhook_events_notify ON webhook_events")
    op.execute("DROP FUNCTION IF EXISTS billing_notify_events()")
