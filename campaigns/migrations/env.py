from __future__ import annotations

from alembic import context

from campaigns.db import get_engine
from campaigns.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url is not None


def run_migrations_online() -> None:
    engine = get_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=engine.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
