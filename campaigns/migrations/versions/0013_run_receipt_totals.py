"""run_receipt_totals: a run's delivery receipts counted as they arrive

The status's count of delivered and undelivered receipts grouped the run's messages by
``delivery_status``: on PostgreSQL a scan of the whole messages table per look (85 ms at
a million rows, growing with the table). Statement-level triggers on ``messages`` now
keep, per run and delivery status, how many of its messages carry that receipt; the
status sums a few rows. Receipts mostly arrive one per statement (a webhook call each),
so the triggers add into a counter instead of appending a row per statement: one counter
per (run, delivery status, server process that wrote it). Two transactions never share a
process, so no receipt ever waits on another's counter lock, and a run has a counter per
connection that recorded its receipts, not one row per receipt. Counters may go below
zero (a receipt that replaces another is taken from the writer's counter of the old
one); only their sum means anything. Deleting messages (the retention purge) leaves
them, as it leaves the run's status totals.

On SQLite (the embedded mode, no triggers) the status counts the run's receipts from the
rows through a partial index of the rows that have one, plus the counters the purge
keeps of the rows it deletes.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_COUNT = """
CREATE FUNCTION clarion_run_receipts_{kind}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO run_receipt_totals AS t (run_id, delivery_status, writer, messages)
    SELECT run_id, delivery_status, pg_backend_pid(), sum(n) FROM (
        {rows}
    ) d
    GROUP BY run_id, delivery_status
    HAVING sum(n) <> 0
    ON CONFLICT (run_id, delivery_status, writer)
    DO UPDATE SET messages = t.messages + excluded.messages;
    RETURN NULL;
END $$
"""
_NEW = "SELECT run_id, delivery_status, 1 AS n FROM new_rows WHERE delivery_status IS NOT NULL"
_OLD = "SELECT run_id, delivery_status, -1 FROM old_rows WHERE delivery_status IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "run_receipt_totals",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("delivery_status", sa.String(40), nullable=False),
        # The server process (pg_backend_pid) that counted; 0: counted otherwise.
        sa.Column("writer", sa.Integer(), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "run_id", "delivery_status", "writer", name="pk_run_receipt_totals"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_receipt_totals_run_id_runs", ondelete="CASCADE"
        ),
    )
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(
            "ix_messages_run_receipts",
            "messages",
            ["run_id", "delivery_status"],
            sqlite_where=sa.text("delivery_status IS NOT NULL"),
        )
        return
    op.execute(_COUNT.format(kind="insert", rows=_NEW))
    op.execute(_COUNT.format(kind="update", rows=f"{_NEW} UNION ALL {_OLD}"))
    op.execute(
        "CREATE TRIGGER messages_receipts_insert AFTER INSERT ON messages"
        " REFERENCING NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION clarion_run_receipts_insert()"
    )
    op.execute(
        "CREATE TRIGGER messages_receipts_update AFTER UPDATE ON messages"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION clarion_run_receipts_update()"
    )
    # The receipts recorded before, counted in the triggers' transaction (creating a
    # trigger locks out writers until it commits).
    op.execute(
        "INSERT INTO run_receipt_totals (run_id, delivery_status, writer, messages)"
        " SELECT run_id, delivery_status, 0, count(*) FROM messages"
        " WHERE delivery_status IS NOT NULL GROUP BY run_id, delivery_status"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER messages_receipts_update ON messages")
        op.execute("DROP TRIGGER messages_receipts_insert ON messages")
        op.execute("DROP FUNCTION clarion_run_receipts_update()")
        op.execute("DROP FUNCTION clarion_run_receipts_insert()")
    else:
        op.drop_index("ix_messages_run_receipts", "messages")
    op.drop_table("run_receipt_totals")
