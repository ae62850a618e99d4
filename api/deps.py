"""Request-scoped dependencies: the settings and a database session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.auth import settings_of
from campaigns.db import session_scope
from config.settings import Settings


def db_session(request: Request) -> Iterator[Session]:
    with session_scope(settings_of(request).database_url) as session:
        yield session


# scope="function": committed before the answer leaves, so a client that reads right
# after a write sees it.
SessionDep = Annotated[Session, Depends(db_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(settings_of)]
