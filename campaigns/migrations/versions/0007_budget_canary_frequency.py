"""runs.spent, runs.canary_state, runs.canary_until; an index for the frequency cap

A run keeps what the provider charged (budget caps) and where its canary slice stands.
The frequency cap reads each recipient's recent messages over every campaign: a partial
index on (phone, sent_at) of sent rows.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("spent", sa.Numeric(14, 4), nullable=False, server_default="0"))
        batch.add_column(sa.Column("canary_state", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("canary_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_messages_phone_sent",
        "messages",
        ["phone", "sent_at"],
        postgresql_where=sa.text("sent_at IS NOT NULL"),
        sqlite_where=sa.text("sent_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_phone_sent", table_name="messages")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("canary_until")
        batch.drop_column("canary_state")
        batch.drop_column("spent")
