"""messages: vacuum often

Every message row is updated twice (claimed, then its result) and the run-status index
changes with it, so each update leaves a dead index entry in the 'pending' range that
claims read through. PostgreSQL's default (vacuum after 20 % of the table is dead) lets a
million-row run pile up over a million such entries before the first vacuum; claims then
slow down as the run goes on.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE messages SET (autovacuum_vacuum_scale_factor = 0.0, "
            "autovacuum_vacuum_threshold = 50000, autovacuum_vacuum_cost_delay = 0, "
            "autovacuum_analyze_scale_factor = 0.05)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE messages RESET (autovacuum_vacuum_scale_factor, "
            "autovacuum_vacuum_threshold, autovacuum_vacuum_cost_delay, "
            "autovacuum_analyze_scale_factor)"
        )
