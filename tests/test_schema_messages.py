"""The messages table as the migrations leave it, on both databases."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from campaigns.migrate import downgrade, upgrade


def _foreign_keys(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        return [fk["name"] for fk in inspect(engine).get_foreign_keys("messages")]
    finally:
        engine.dispose()


def test_message_rows_are_written_with_no_check_per_row(db_url: str) -> None:
    """PostgreSQL checks a foreign key with a query per inserted row, a quarter of the
    expansion's writing; the rows' own indexes stay."""
    assert _foreign_keys(db_url) == []
    engine = create_engine(db_url)
    try:
        indexes = {ix["name"] for ix in inspect(engine).get_indexes("messages")}
    finally:
        engine.dispose()
    assert "ix_messages_run_status" in indexes


def test_the_key_comes_back_with_a_downgrade(db_url: str) -> None:
    downgrade(db_url, "0013")
    assert _foreign_keys(db_url) == ["fk_messages_run_id_runs"]
    upgrade(db_url)
    assert _foreign_keys(db_url) == []
