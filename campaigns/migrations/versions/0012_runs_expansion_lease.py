"""runs.expansion_owner and runs.expansion_until: the lease of a run's expansion

An expansion holds its run's lease while it writes (renewed with every chunk); a kick
(start, resume, the scheduler's tick) hands an expansion out only when no lease holds, so
a dead expansion is taken up again within seconds and two never write one run at once.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("expansion_owner", sa.String(32), nullable=True))
        batch.add_column(sa.Column("expansion_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("expansion_until")
        batch.drop_column("expansion_owner")
