"""The "textbook sender" that `bench/textbook.py` measures: a tiny Celery app, one task per
message, one HTTP request per message, one row update per message.

    celery -A bench.textbook_app worker -c 1 --pool prefork -Q <queue>

Configured from the environment (set by `bench/textbook.py`):

    TEXTBOOK_DATABASE_URL     the scratch database holding ``textbook_messages``
    TEXTBOOK_SANDBOX_URL      the sandbox's /v3 base URL
    TEXTBOOK_SANDBOX_USERNAME HTTP Basic username (default "sandbox")
    TEXTBOOK_SANDBOX_API_KEY  HTTP Basic password
    TEXTBOOK_QUEUE            this run's queue (unique per run)
    TEXTBOOK_RUN_ID           this run's id; every message carries custom_string textbook-<id>

The broker is Redis at ``bench.common.REDIS_URL``.
"""

from __future__ import annotations

import os
from datetime import datetime

import httpx
from celery import Celery
from sqlalchemy import DateTime, Engine, String, create_engine, func
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from bench.common import REDIS_URL

QUEUE = os.environ.get("TEXTBOOK_QUEUE", "textbook")

app = Celery("textbook", broker=REDIS_URL)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


class Base(DeclarativeBase):
    pass


class TextbookMessage(Base):
    __tablename__ = "textbook_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String)
    body: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String, default="pending", index=True)
    message_id: Mapped[str | None] = mapped_column(String, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# Created lazily, once per (pool child) process: nothing is shared across the fork.
_engine: Engine | None = None
_client: httpx.Client | None = None


def engine() -> Engine:
    global _engine
    if _engine is None:
        _engine = create_engine(os.environ["TEXTBOOK_DATABASE_URL"], pool_pre_ping=False)
    return _engine


def client() -> httpx.Client:
    global _client
    if _client is None:
        _client = httpx.Client(
            base_url=os.environ["TEXTBOOK_SANDBOX_URL"],
            auth=(
                os.environ.get("TEXTBOOK_SANDBOX_USERNAME", "sandbox"),
                os.environ["TEXTBOOK_SANDBOX_API_KEY"],
            ),
            timeout=30,
        )
    return _client


def custom_string() -> str:
    return f"textbook-{os.environ['TEXTBOOK_RUN_ID']}"


@app.task(name="textbook.send_one")
def send_one(message_id: int) -> str:
    """Load the row, POST it to /sms/send as a one-message request, record the outcome."""
    with Session(engine()) as session:
        row = session.get(TextbookMessage, message_id)
        if row is None or row.status != "pending":
            return "skipped"
        response = client().post(
            "/sms/send",
            json={
                "messages": [
                    {
                        "source": "textbook",
                        "to": row.phone,
                        "body": row.body,
                        "custom_string": custom_string(),
                    }
                ]
            },
        )
        response.raise_for_status()
        entry = response.json()["data"]["messages"][0]
        status = "sent" if entry.get("status") == "SUCCESS" else "failed"
        row.status = status
        row.message_id = entry.get("message_id")
        row.sent_at = func.clock_timestamp()
        session.commit()
        return status
