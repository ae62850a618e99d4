"""runs.expanded_at: when the run's expansion finished

A run is complete only once every recipient has a message row and none is left to send.
Without a record of the expansion's end, a run resumed while (or after) its expansion was
cut short looked complete as soon as the rows written so far were sent.

Runs that were sending or had ended are marked expanded; scheduled, expanding and paused
runs are not, so a paused run is expanded again on resume (expansion is idempotent).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("expanded_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE runs SET expanded_at = COALESCE(started_at, created_at) "
        "WHERE status NOT IN ('scheduled', 'expanding', 'paused')"
    )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("expanded_at")
