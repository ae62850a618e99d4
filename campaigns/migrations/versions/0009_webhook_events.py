"""webhook_events: what ClickSend pushed (receipts, inbound replies), recorded before it
is applied

A push is answered once it is recorded here; applying it follows. The unique key makes
a replayed or duplicated push a no-op.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
        ),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_events"),
        sa.UniqueConstraint("kind", "key", name="uq_webhook_events_kind_key"),
    )
    op.create_index(
        "ix_webhook_events_unapplied",
        "webhook_events",
        ["id"],
        postgresql_where=sa.text("applied_at IS NULL"),
        sqlite_where=sa.text("applied_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_events_unapplied", table_name="webhook_events")
    op.drop_table("webhook_events")
