"""notify entitlement changes (PostgreSQL)

Every committed insert, update or delete of an entitlement or a billing account NOTIFYs
`billing_entitlement_changed` with the org id (a TRUNCATE with an empty payload: every org),
whoever writes it: the service, a CLI, another worker or a hand-made fix. Each process
LISTENs and drops its cached answers for that org (billing/kit/change_feed.py). SQLite needs nothing:
other processes' commits show in `PRAGMA data_version`.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("entitlements", "billing_accounts")


def upgrade() -> None:
    """Create the notify functions and triggers on PostgreSQL."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION billing_notify_org() RETURNS trigger AS $$
        BEGIN
          IF TG_OP <> 'INSERT' THEN
            PERFORM pg_notify('billing_entitlement_changed', OLD.org_id);
          END IF;
          IF TG_OP <> 'DELETE' THEN
            PERFORM pg_notify('billing_entitlement_changed', NEW.org_id);
          END IF;
          RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        """
        CREATE OR REPLACE FUNCTION billing_notify_all() RETURNS trigger AS $$
        BEGIN
          PERFORM pg_notify('billing_entitlement_changed', '');
          RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION billing_notify_org()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_notify_truncate AFTER TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION billing_notify_all()"
        )


def downgrade() -> None:
    """Drop the triggers and functions."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify_truncate ON {table}")
    op.execute("DROP FUNCTION IF EXISTS billing_notify_org()")
    op.execute("DROP FUNCTION IF EXISTS billing_notify_all()")
