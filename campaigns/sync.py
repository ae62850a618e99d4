"""Sync a ClickSend contact list into the local store.

The account's contacts pass through the same E.164 normalisation, dedupe and per-row
errors as a CSV import (``upsert_contacts``). After the first sync only contacts updated
since the last one are fetched (``updated_after``); ``full=True`` re-reads the whole list.
Contacts deleted at ClickSend stay in the local copy.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.clock import utcnow
from campaigns.contacts_import import ImportReport, upsert_contacts
from campaigns.models import ContactList
from clicksend.client import ClickSendClient

# Clocks differ; re-reading a minute of updates costs little and misses nothing.
OVERLAP_SECONDS = 60


def local_list_for(session: Session, clicksend_list_id: int, name: str) -> ContactList:
    found = session.scalars(
        select(ContactList).where(ContactList.clicksend_list_id == clicksend_list_id)
    ).first()
    if found is not None:
        return found
    lst = ContactList(name=name, source="clicksend", clicksend_list_id=clicksend_list_id)
    session.add(lst)
    session.flush()
    return lst


def sync_list(
    session: Session,
    client: ClickSendClient,
    clicksend_list_id: int,
    *,
    default_region: str,
    name: str | None = None,
    full: bool = False,
    progress: Callable[[int], None] | None = None,
    overlap_seconds: int = OVERLAP_SECONDS,
) -> ImportReport:
    """Bring the local copy of ClickSend list ``clicksend_list_id`` up to date."""
    remote = client.get_list(clicksend_list_id)
    lst = local_list_for(session, clicksend_list_id, name or remote.name)
    started = utcnow()
    updated_after = None
    if lst.synced_at is not None and not full:
        updated_after = int(lst.synced_at.timestamp()) - overlap_seconds

    def rows() -> Iterator[tuple[int, Mapping[str, str]]]:
        contacts = client.contacts(clicksend_list_id, updated_after=updated_after)
        for number, contact in enumerate(contacts, start=1):
            yield number, dict(contact.fields)

    report = upsert_contacts(
        session,
        lst.id,
        rows(),
        default_region=default_region,
        import_id=f"sync-{uuid.uuid4().hex[:12]}",
        progress=progress,
    )
    lst = session.get(ContactList, lst.id) or lst
    lst.synced_at = started
    session.commit()
    return report
