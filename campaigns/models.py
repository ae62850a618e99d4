"""The database schema: the single source of truth for what must be sent and what was.

Celery messages carry only ids into these tables. Per-recipient rows are written and
claimed in bulk (see ``campaigns.expand`` and ``campaigns.claims``), never one ORM object
at a time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from campaigns.clock import utcnow

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT ids on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are stored and returned as aware UTC datetimes on every database
    (SQLite would otherwise hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


class ContactList(Base):
    __tablename__ = "contact_lists"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # 'local' (CSV imports) or 'clicksend' (synced from the account's list).
    source: Mapped[str] = mapped_column(String(20), default="local")
    clicksend_list_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    synced_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The list's contact count at ClickSend minus the local copy's, at the last sync (bad
    # numbers and duplicates stay out of the copy): if it shrinks, a contact was deleted
    # there (campaigns.sync).
    sync_gap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("list_id", "phone", name="uq_contacts_list_phone"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("contact_lists.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(20))  # E.164
    # ClickSend contact fields (first_name, custom_1, ...) and any extra CSV columns.
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # IANA zone that overrides the one derived from the number (send windows).
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    clicksend_contact_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportError_(Base):
    """One rejected row of a contact import, kept so the user can fix and re-import it."""

    __tablename__ = "import_errors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("contact_lists.id", ondelete="CASCADE"))
    import_id: Mapped[str] = mapped_column(String(40), index=True)
    row: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Suppression(Base):
    """A number that must never be messaged again (STOP reply, manual opt-out)."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(10))
    # The validated definition (campaigns.definition.CampaignDefinition) as JSON.
    definition: Mapped[dict[str, Any]] = mapped_column()
    # draft | active | paused | cancelled | finished
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The last error the scheduler's tick met with this campaign (cleared once a tick
    # gets through it); the campaign stays active and is tried again.
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set by `campaign start`; an unscheduled campaign's single run has this occurrence.
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Run(Base):
    """One occurrence of a campaign: its own audience snapshot and message rows."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("campaign_id", "occurrence", name="uq_runs_campaign_occurrence"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    # When this occurrence was due (UTC); unique per campaign so a double fire makes one run.
    occurrence: Mapped[datetime] = mapped_column()
    # scheduled | expanding | sending | paused | completed | cancelled | failed | skipped
    # (skipped: an occurrence recorded but not sent, see docs/scheduling.md)
    status: Mapped[str] = mapped_column(String(20), default="scheduled", index=True)
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Sent as custom_string with every message: identifies the run's messages at the
    # provider (history look-ups after an ambiguous outcome, cancel-all).
    key: Mapped[str] = mapped_column(String(60), unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    duplicates_removed: Mapped[int] = mapped_column(Integer, default=0)
    rate_limited: Mapped[int] = mapped_column(Integer, default=0)  # 429 answers seen
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # When expansion wrote the last recipient's row: until then the run is not complete,
    # however few rows are left open (a pause or a crash can cut an expansion short).
    expanded_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The lease of the expansion writing the run (campaigns.runs.claim_expansion): who
    # holds it, and until when. A kick hands an expansion out only once no lease holds.
    expansion_owner: Mapped[str | None] = mapped_column(String(32), nullable=True)
    expansion_until: Mapped[datetime | None] = mapped_column(nullable=True)
    last_activity_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Since when no request of this run could reach the provider (None: the last one did).
    unreachable_since: Mapped[datetime | None] = mapped_column(nullable=True)
    # What the provider charged for this run's messages so far (its message_price), for
    # the definition's budget caps.
    spent: Mapped[Decimal] = mapped_column(Numeric(14, 4), default=Decimal("0"))
    # For a run with a budget cap: the highest ratio, over its batches, of what the provider
    # charged to what the local price table estimated for the same messages; the batches
    # still to leave are estimated at it (campaigns.budget). None: nothing learnt yet.
    price_factor: Mapped[Decimal | None] = mapped_column(Numeric(12, 6), nullable=True)
    # The canary slice: None (no canary yet), sending, waiting, passed or failed; and when
    # its wait ends.
    canary_state: Mapped[str | None] = mapped_column(String(20), nullable=True)
    canary_until: Mapped[datetime | None] = mapped_column(nullable=True)


class Message(Base):
    """One recipient of one run. ``status`` moves only forward, except claims that
    are released (429, lease expiry, pause) which go back to ``pending``."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("run_id", "phone", name="uq_messages_run_phone"),
        # (run_id, status, id): a claim reads the oldest pending rows of a run straight off
        # the index, however many rows of the run were sent already.
        Index("ix_messages_run_status", "run_id", "status", "id"),
        # The frequency cap counts each recipient's recent messages over every campaign;
        # rows not sent yet (most of a run in progress) stay out of this index.
        Index(
            "ix_messages_phone_sent",
            "phone",
            "sent_at",
            postgresql_where=text("sent_at IS NOT NULL"),
            sqlite_where=text("sent_at IS NOT NULL"),
        ),
        # Only rows that have one: a new message has no provider id yet.
        Index(
            "ix_messages_provider_message_id",
            "provider_message_id",
            postgresql_where=text("provider_message_id IS NOT NULL"),
            sqlite_where=text("provider_message_id IS NOT NULL"),
        ),
        # Pending rows held for later (send windows, reminders), for the status's count.
        Index(
            "ix_messages_run_waiting",
            "run_id",
            "not_before",
            postgresql_where=text("status = 'pending' AND not_before IS NOT NULL"),
            sqlite_where=text("status = 'pending' AND not_before IS NOT NULL"),
        ),
        # SQLite counts a run's receipts from the rows (PostgreSQL keeps them counted,
        # migration 0013): the rows that have one, by run.
        Index(
            "ix_messages_run_receipts",
            "run_id",
            "delivery_status",
            sqlite_where=text("delivery_status IS NOT NULL"),
        ).ddl_if(dialect="sqlite"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Not a foreign key: checked per inserted row, it cost a quarter of the expansion's
    # writing; the expansion (the only writer) holds the run, and runs are not deleted
    # (migration 0014).
    run_id: Mapped[int] = mapped_column(BigId)
    contact_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    phone: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text, default="")
    # pending | claimed | unknown | sent | failed | suppressed | skipped | expired | cancelled
    status: Mapped[str] = mapped_column(String(20), default="pending")
    not_before: Mapped[datetime | None] = mapped_column(nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(40), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the last request carrying this message left, by the database's clock (bounds a
    # history look-up), written with the request's result. Whether the request of the
    # current claim has left is the claim's row (``Claim.attempted_at``), not this one.
    attempted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # History look-ups that did not find this message since its last request (a first
    # "not found" is confirmed by a second before a resend).
    lookups: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    provider_message_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    provider_status: Mapped[str | None] = mapped_column(String(40), nullable=True)
    parts: Mapped[int | None] = mapped_column(Integer, nullable=True)
    price: Mapped[Decimal | None] = mapped_column(Numeric(12, 4), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Provider-side schedule (unix seconds) when the message was handed over for later.
    provider_schedule: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    delivery_status: Mapped[str | None] = mapped_column(String(40), nullable=True)


class Claim(Base):
    """One claim of message rows (``Message.claim_token``), alive from the claim until its
    rows are settled or the lease is recovered: the single row the fence marks right before
    the request and lease recovery reads to tell rows in flight from rows never sent."""

    __tablename__ = "claims"
    # Lease recovery looks for the claims whose lease ran out.
    __table_args__ = (Index("ix_claims_lease_until", "lease_until"),)

    token: Mapped[str] = mapped_column(String(40), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("runs.id", ondelete="CASCADE"))
    lease_until: Mapped[datetime]
    # When the claim's request left (the fence), by the database's clock; NULL: it never did.
    attempted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Set when the claim's rows go one request each (the notify path): the only row whose
    # request may be in flight. NULL: one request carries every row of the claim.
    in_flight_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class RunMinute(Base):
    """Messages accepted by the provider and 429s seen, per run and minute (UTC)."""

    __tablename__ = "run_minutes"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    minute: Mapped[datetime] = mapped_column(primary_key=True)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    rate_limited: Mapped[int] = mapped_column(Integer, default=0)


class RunStatusTotal(Base):
    """Changes to a run's per-status totals, appended by PostgreSQL triggers on
    ``messages`` (migration 0008) and by the retention purge on SQLite; a run's totals
    are their sums. Deleting message rows leaves them, so totals outlive the rows."""

    __tablename__ = "run_status_totals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("runs.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20))
    messages: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    parts: Mapped[int] = mapped_column(BigInteger)


class RunReceiptTotal(Base):
    """A run's delivery receipts by ``delivery_status``: counters PostgreSQL triggers on
    ``messages`` add to (migration 0013), one per server process that wrote (``writer``),
    so no two transactions wait on one counter; on SQLite only the retention purge
    writes them (``writer`` 0). A run's receipt counts are their sums."""

    __tablename__ = "run_receipt_totals"

    run_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    delivery_status: Mapped[str] = mapped_column(String(40), primary_key=True)
    writer: Mapped[int] = mapped_column(Integer, primary_key=True)
    messages: Mapped[int] = mapped_column(BigInteger)


class MessageStatus(StrEnum):
    """The states of a message row. docs/message-states.md draws how a row moves between
    them; after expansion creates a row, every move is a function of ``campaigns.claims``."""

    PENDING = "pending"  # waiting to be claimed (``not_before`` may hold it back)
    CLAIMED = "claimed"  # held by a worker's claim; in flight once its ``Claim`` row says so
    UNKNOWN = "unknown"  # its request may have been accepted: a history look-up decides
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"  # opted out
    SKIPPED = "skipped"  # outside the audience rules (a reminder whose time has passed)
    EXPIRED = "expired"  # not sent before the run's deadline
    CANCELLED = "cancelled"


MESSAGE_STATUSES = tuple(status.value for status in MessageStatus)
FINAL_MESSAGE_STATUSES = ("sent", "failed", "suppressed", "skipped", "expired", "cancelled")


def table(model: type[Base]) -> Table:
    """The Core table of a model, typed as such (for bulk INSERT/UPDATE statements)."""
    return cast(Table, model.__table__)


class WebhookEvent(Base):
    """One push from the provider (a delivery receipt, an inbound reply), recorded before
    it is applied; (kind, key) is unique, so a replay records nothing new."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("kind", "key", name="uq_webhook_events_kind_key"),
        Index(
            "ix_webhook_events_unapplied",
            "id",
            postgresql_where=text("applied_at IS NULL"),
            sqlite_where=text("applied_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # receipt | inbound
    key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(nullable=True)
