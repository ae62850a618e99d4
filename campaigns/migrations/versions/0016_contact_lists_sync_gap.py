"""contact_lists: ``sync_gap``, how many contacts a synced list counts beyond its copy

A sync of a ClickSend list after the first reads only the contacts updated since, which
cannot show a deletion, so a contact deleted at ClickSend kept being sent to. The list's
own count can: the gap between it and the local copy (bad numbers and duplicates stay
out of the copy) shrinks when a contact is deleted there, and the sync then reads the
whole list and drops what it no longer holds (``campaigns.sync``). NULL: never synced.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contact_lists") as batch:
        batch.add_column(sa.Column("sync_gap", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contact_lists") as batch:
        batch.drop_column("sync_gap")
