"""messages: ``run_id`` no longer a foreign key

PostgreSQL checks a foreign key with one planned query per inserted row: a quarter of the
expansion's writing CPU (bench/RESULTS.md, "Expansion"). What the key guarded holds
without it: the expansion is the only writer of message rows, for a run it has just read,
and it renews the run's lease (an UPDATE of the run's row) before each chunk commits; a run
is never deleted while it has messages (only a draft campaign is deleted, and a draft has
no run). ``ix_messages_run_status`` (run_id first) keeps the run's rows indexed.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

FK = "fk_messages_run_id_runs"


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint(FK, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.create_foreign_key(FK, "runs", ["run_id"], ["id"], ondelete="CASCADE")
