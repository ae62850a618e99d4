"""run_status_totals: a run's counts kept as it goes; lighter message indexes

``campaign status`` of a million-message run counted the messages by status and summed
the sent ones' price: a scan of the run's rows per look. On PostgreSQL, statement-level
triggers on ``messages`` now append, for every INSERT and UPDATE statement, one row per
(run, status) whose count, price or parts changed (a batch of 1000 results is one
statement, so two rows); the status reads the sum of a few thousand rows. The rows are
only ever appended (no two workers wait on one counter row), and deleting messages (the
retention purge) leaves them: a run's totals outlive its message rows. On SQLite (the
embedded mode, one process) the status counts the rows, and the purge appends the totals
of what it deletes.

Also: the provider message id index holds only rows that have one (a new message has
none, so expansion writes no entry for it), and pending rows held for later have a small
index of their own (the status's "waiting" count no longer reads every pending row).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_DELTAS = """
CREATE FUNCTION clarion_run_totals_{kind}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO run_status_totals (run_id, status, messages, price, parts)
    SELECT run_id, status, sum(n), sum(p), sum(k) FROM (
        {rows}
    ) d
    GROUP BY run_id, status
    HAVING sum(n) <> 0 OR sum(p) <> 0 OR sum(k) <> 0;
    RETURN NULL;
END $$
"""
_NEW = (
    "SELECT run_id, status, 1 AS n, coalesce(price, 0) AS p, coalesce(parts, 0) AS k FROM new_rows"
)
_OLD = "SELECT run_id, status, -1, -coalesce(price, 0), -coalesce(parts, 0) FROM old_rows"


def upgrade() -> None:
    op.create_table(
        "run_status_totals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.Numeric(14, 4), nullable=False),
        sa.Column("parts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_status_totals"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_status_totals_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_run_status_totals_run_id", "run_status_totals", ["run_id"])
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_provider_message_id")
        batch.create_index(
            "ix_messages_provider_message_id",
            ["provider_message_id"],
            postgresql_where=sa.text("provider_message_id IS NOT NULL"),
            sqlite_where=sa.text("provider_message_id IS NOT NULL"),
        )
        batch.create_index(
            "ix_messages_run_waiting",
            ["run_id", "not_before"],
            postgresql_where=sa.text("status = 'pending' AND not_before IS NOT NULL"),
            sqlite_where=sa.text("status = 'pending' AND not_before IS NOT NULL"),
        )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_DELTAS.format(kind="insert", rows=_NEW))
    op.execute(_DELTAS.format(kind="update", rows=f"{_NEW} UNION ALL {_OLD}"))
    op.execute(
        "CREATE TRIGGER messages_totals_insert AFTER INSERT ON messages"
        " REFERENCING NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION clarion_run_totals_insert()"
    )
    op.execute(
        "CREATE TRIGGER messages_totals_update AFTER UPDATE ON messages"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION clarion_run_totals_update()"
    )
    # The messages written before: their totals, in the same transaction as the triggers
    # (creating a trigger locks out writers until it commits).
    op.execute(
        "INSERT INTO run_status_totals (run_id, status, messages, price, parts)"
        " SELECT run_id, status, count(*), coalesce(sum(price), 0), coalesce(sum(parts), 0)"
        " FROM messages GROUP BY run_id, status"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER messages_totals_update ON messages")
        op.execute("DROP TRIGGER messages_totals_insert ON messages")
        op.execute("DROP FUNCTION clarion_run_totals_update()")
        op.execute("DROP FUNCTION clarion_run_totals_insert()")
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_run_waiting")
        batch.drop_index("ix_messages_provider_message_id")
        batch.create_index("ix_messages_provider_message_id", ["provider_message_id"])
    op.drop_index("ix_run_status_totals_run_id", "run_status_totals")
    op.drop_table("run_status_totals")
