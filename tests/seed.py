"""Test data written straight to the database (bulk, like production code does)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from campaigns.db import session_scope
from campaigns.models import Contact, ContactList
from campaigns.runs import create_campaign, start_campaign


def status_counts(url: str, run_id: int) -> dict[str, int]:
    from campaigns.stats import status_counts as counts

    with session_scope(url) as session:
        return counts(session, run_id)


def us_numbers(count: int, start: int = 0) -> list[str]:
    """Valid, distinct US numbers (area code 201, exchange 2xx)."""
    return [
        f"+1201{200 + (i // 10000) % 800:03d}{i % 10000:04d}" for i in range(start, start + count)
    ]


def seed_list(url: str, name: str, phones: list[str], fields: dict[str, Any] | None = None) -> int:
    with session_scope(url) as session:
        lst = ContactList(name=name)
        session.add(lst)
        session.flush()
        rows = [
            {"list_id": lst.id, "phone": p, "fields": {"first_name": f"N{i}", **(fields or {})}}
            for i, p in enumerate(phones)
        ]
        for start in range(0, len(rows), 5000):
            session.execute(insert(Contact), rows[start : start + 5000])
        return lst.id


def definition(
    lists: list[str], body: str = "Hi {first_name}, 20% off", **extra: Any
) -> dict[str, Any]:
    return {
        "name": "test-campaign",
        "channel": "sms",
        "audience": {"lists": lists},
        "message": {"body": body, "from": "Clarion"},
        **extra,
    }


def seed_campaign(url: str, lists: list[str], **extra: Any) -> tuple[int, int]:
    """A started, unscheduled campaign; returns (campaign id, run id)."""
    with session_scope(url) as session:
        campaign = create_campaign(session, definition(lists, **extra))
        run = start_campaign(session, campaign.id)
        assert run is not None
        return campaign.id, run.id
