"""The schema the migrations build is the one the models describe, on both databases:
a column or index changed in one and not the other shows here, not in production."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from campaigns.models import Base

# Indexes the models create on one database only (``Index.ddl_if``), which the comparison
# does not know of: on the other, their absence is right.
ONE_DATABASE_ONLY = {"sqlite": set(), "postgresql": {"ix_messages_run_receipts"}}


def _is_expected(difference: Any, dialect: str) -> bool:
    kind, *rest = difference if isinstance(difference, tuple) else (None,)
    return kind == "add_index" and rest[0].name in ONE_DATABASE_ONLY[dialect]


def test_the_migrated_schema_is_the_models(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    dialect = engine.dialect.name
    assert [d for d in differences if not _is_expected(d, dialect)] == []
