"""What the dashboard's pages show, read from the database with indexed queries only.

Counts by status come from ``RunCounts`` (kept fresh in the background); everything else
is a read of a small table (campaigns, runs, run_minutes, lists) or a bounded page of
message rows found through the (run_id, status, id) index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.dashboard.counts import FAILED, ListCounts, RunCounts
from campaigns.activity import Minute, minutes
from campaigns.clock import as_utc, utcnow
from campaigns.models import (
    MESSAGE_STATUSES,
    Campaign,
    Contact,
    ContactList,
    Message,
    Run,
    Suppression,
)
from campaigns.templates import render
from clicksend.parts import sms_parts, voice_parts
from scheduler.listing import Upcoming, upcoming

QUEUED = ("pending", "claimed", "unknown")
SHOWN = ("pending", "sent", "delivered", "undelivered", "failed", "suppressed", "expired")
CHART_MINUTES = 30
PAGE = 50


@dataclass
class Progress:
    """A run's live numbers."""

    run_id: int
    status: str
    status_reason: str | None
    counts: dict[str, int]
    total: int
    done: int
    rate: float  # messages accepted per second over the last full minute(s)
    eta_seconds: float | None
    rate_limited: int
    chart: list[Minute] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 0.0

    @property
    def shown(self) -> list[tuple[str, int]]:
        return [(s, self.counts.get(s, 0)) for s in SHOWN]


def progress(
    session: Session, counts: RunCounts, run: Run, *, now: datetime | None = None
) -> Progress:
    now = now or utcnow()
    shown = counts.get(run.id, run.status)
    # A delivered or undelivered message is still 'sent': receipts are counted apart.
    raw = {s: n for s, n in shown.items() if s in MESSAGE_STATUSES}
    queued = sum(raw.get(s, 0) for s in QUEUED)
    shown = shown | {"pending": queued}
    total = sum(raw.values())
    # The chart always spans the last CHART_MINUTES minutes of the run (up to its end).
    finished = as_utc(run.finished_at)
    until = min(now, finished) if finished else now
    chart = minutes(
        session, run.id, since=until - timedelta(minutes=CHART_MINUTES - 1), until=until
    )
    active = run.status in ("expanding", "sending")
    rate = _rate(chart, now, as_utc(run.started_at)) if active else 0.0
    eta = queued / rate if active and rate > 0 else None
    return Progress(
        run_id=run.id,
        status=run.status,
        status_reason=run.status_reason,
        counts=shown,
        total=total,
        done=total - queued,
        rate=rate,
        eta_seconds=eta,
        rate_limited=run.rate_limited,
        chart=chart,
    )


def _rate(chart: list[Minute], now: datetime, started: datetime | None) -> float:
    """Messages accepted per second over the current and the previous minute, counting
    only the seconds since the run started."""
    recent = chart[-2:]
    if not recent:
        return 0.0
    begin = recent[0].minute
    if started is not None and started > begin:
        begin = started
    seconds = max((now - begin).total_seconds(), 1.0)
    return sum(m.accepted for m in recent) / seconds


@dataclass
class CampaignRow:
    campaign: Campaign
    next_at: datetime | None
    zone: str
    run: Run | None
    progress: Progress | None


def campaign_rows(
    session: Session, counts: RunCounts, *, limit: int = PAGE, offset: int = 0
) -> list[CampaignRow]:
    campaigns = list(
        session.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(limit).offset(offset))
    )
    schedule = {u.campaign_id: u for u in upcoming(session, count=1, include_finished=True)}
    rows = []
    for c in campaigns:
        run = latest_run(session, c.id)
        up = schedule.get(c.id)
        rows.append(
            CampaignRow(
                campaign=c,
                next_at=up.next[0] if up and up.next else None,
                zone=up.zone if up else "UTC",
                run=run,
                progress=progress(session, counts, run) if run else None,
            )
        )
    return rows


def latest_run(session: Session, campaign_id: int) -> Run | None:
    return session.scalar(
        select(Run).where(Run.campaign_id == campaign_id).order_by(Run.id.desc()).limit(1)
    )


def runs_of(session: Session, campaign_id: int, limit: int = 20) -> list[Run]:
    return list(
        session.scalars(
            select(Run).where(Run.campaign_id == campaign_id).order_by(Run.id.desc()).limit(limit)
        )
    )


@dataclass
class Sample:
    phone: str
    body: str
    encoding: str
    parts: int


def sample_message(session: Session, campaign: Campaign, run: Run | None) -> Sample | None:
    """The first message of the latest run as sent, or the template rendered for the
    first contact of the campaign's first list."""
    body: str | None = None
    phone = ""
    if run is not None:
        row = session.execute(
            select(Message.phone, Message.body).where(Message.run_id == run.id).limit(1)
        ).first()
        if row is not None:
            phone, body = row
    defn = campaign.definition
    message = defn.get("message") or {}
    if body is None and message.get("body"):
        lists = (defn.get("audience") or {}).get("lists") or []
        contact = None
        if lists:
            contact = session.scalar(
                select(Contact)
                .join(ContactList, ContactList.id == Contact.list_id)
                .where(ContactList.name == lists[0])
                .order_by(Contact.id)
                .limit(1)
            )
        fields = dict(contact.fields) if contact else {}
        phone = contact.phone if contact else ""
        try:
            body = render(message["body"], fields, message.get("defaults") or {})
        except Exception:  # a template missing a field shows as written
            body = message["body"]
    if body is None:
        return None
    if campaign.channel == "voice":
        return Sample(phone, body, "voice", voice_parts(body))
    encoding, parts = sms_parts(body)
    return Sample(phone, body, encoding, parts)


def failed_numbers(
    session: Session, run_id: int, reason: str | None, *, after_id: int = 0, limit: int = PAGE
) -> list[tuple[int, str, str, str | None, int]]:
    """(id, phone, status, provider status, attempts) of failed messages, by id, paged."""
    query = (
        select(Message.id, Message.phone, Message.status, Message.provider_status, Message.attempts)
        .where(Message.run_id == run_id, Message.status.in_(FAILED), Message.id > after_id)
        .order_by(Message.id)
        .limit(limit)
    )
    if reason is not None:
        query = query.where(
            Message.error.is_(None) if reason == "(no reason)" else Message.error == reason
        )
    return [(int(a), str(b), str(c), d, int(e)) for a, b, c, d, e in session.execute(query)]


@dataclass
class ListRow:
    id: int
    name: str
    source: str
    contacts: int
    created_at: datetime


def list_rows(session: Session, counts: ListCounts) -> list[ListRow]:
    contacts = counts.get()
    return [
        ListRow(lst.id, lst.name, lst.source, contacts.get(lst.id, 0), lst.created_at)
        for lst in session.scalars(select(ContactList).order_by(ContactList.name))
    ]


def suppressions(
    session: Session, q: str, *, offset: int = 0, limit: int = PAGE
) -> tuple[list[Suppression], int]:
    query = select(Suppression)
    if q:
        # Numbers are stored in E.164; the search is a prefix or substring of digits.
        digits = "".join(ch for ch in q if ch.isdigit())
        query = query.where(Suppression.phone.contains(digits or q))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(
        session.scalars(query.order_by(Suppression.created_at.desc()).offset(offset).limit(limit))
    )
    return rows, int(total)


def schedule(session: Session) -> list[Upcoming]:
    return [u for u in upcoming(session, count=5) if u.next or u.error]


def chart_svg(chart: list[Minute], width: int = 1040, height: int = 190) -> dict[str, Any]:
    """Coordinates for the inline SVG: bars of accepted messages per minute, red marks
    for minutes with 429s."""
    pad_left, pad_bottom, pad_top = 48, 22, 10
    inner_w, inner_h = width - pad_left - 8, height - pad_bottom - pad_top
    peak = max([m.accepted for m in chart] + [1])
    slot = inner_w / max(len(chart), 1)
    bars, marks, labels = [], [], []
    for i, m in enumerate(chart):
        h = inner_h * m.accepted / peak
        x = pad_left + i * slot
        bars.append(
            {
                "x": round(x + 1, 1),
                "y": round(pad_top + inner_h - h, 1),
                "w": round(max(slot - 2, 1), 1),
                "h": round(h, 1),
                "title": f"{m.minute:%H:%M} UTC: {m.accepted:,} accepted, {m.rate_limited} 429s",
            }
        )
        if m.rate_limited:
            marks.append({"x": round(x + slot / 2, 1), "y": pad_top + 4, "n": m.rate_limited})
        if i % max(1, len(chart) // 6) == 0:
            labels.append({"x": round(x + slot / 2, 1), "text": f"{m.minute:%H:%M}"})
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "marks": marks,
        "labels": labels,
        "peak": peak,
        "axis_y": pad_top + inner_h,
        "left": pad_left,
        "top": pad_top,
    }
