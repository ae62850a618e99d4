"""Housekeeping the scheduler runs now and then: keep the messages table vacuumed, and
delete the rows of runs finished longer ago than the retention (CLARION_RETENTION_DAYS).

Every message row is rewritten twice during a run, and each rewrite leaves a dead entry in
the index that claims read through. PostgreSQL's autovacuum clears them (migration 0002
makes it do so often for this table), but where autovacuum is off or behind, a large run
slows down as it goes. This vacuums the table itself once enough dead rows pile up.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import text

from campaigns import retention
from campaigns.db import get_engine, session_scope

log = logging.getLogger(__name__)

DEAD_ROWS_THRESHOLD = 100_000


def vacuum_messages_if_needed(database_url: str, threshold: int = DEAD_ROWS_THRESHOLD) -> bool:
    """VACUUM (ANALYZE) messages when it has more than ``threshold`` dead rows; True if it did."""
    engine = get_engine(database_url)
    if engine.dialect.name != "postgresql":
        return False  # SQLite: one writer, small embedded runs; nothing to gain
    with engine.connect() as conn:
        dead = conn.scalar(
            text("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'messages'")
        )
    if dead is None or dead <= threshold:
        return False
    # VACUUM cannot run inside a transaction block.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) messages"))
    log.info("vacuumed messages (%d dead rows)", dead)
    return True


def purge_old_messages(database_url: str, retention_days: float) -> int:
    """A bounded share of the retention purge (0 days: keep everything); rows deleted."""
    if retention_days <= 0:
        return 0
    with session_scope(database_url) as session:
        report = retention.purge_messages(
            session,
            timedelta(days=retention_days),
            max_batches=retention.BATCHES_PER_HOUSEKEEPING,
        )
    if report.messages:
        log.info("retention: %d message rows of finished runs deleted", report.messages)
    return report.messages
