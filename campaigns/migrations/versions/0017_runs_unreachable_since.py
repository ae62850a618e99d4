"""runs: ``unreachable_since``, since when the provider could not be reached

A request that could not connect was counted as one of each message's tries, so an outage
used up the tries of every batch it met: after the pause it causes and a resume, those
messages failed at their first transient error, and one refused connection paused the
run again. Such a request is no try now (the provider never saw it); the run keeps since
when none of its requests could connect, and pauses once that is longer than a message's
retry schedule (``workers.backoff.outage_window``). NULL: the last request connected.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("unreachable_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("unreachable_since")
