"""runs: ``price_factor``, the provider's price over the local estimate

A budget cap estimates each batch from the local price table; a table below the account's
real prices let a run cross its cap by the difference on every batch in flight. The
workers now keep, for a run with a cap, the highest ratio of what the provider charged a
batch to what the table estimated for the same messages, and estimate the batches still
to leave at it (``campaigns.budget``). NULL: nothing learnt yet.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("price_factor", sa.Numeric(12, 6), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("price_factor")
