"""Sync a ClickSend contact list into the local store.

The account's contacts pass through the same E.164 normalisation, dedupe and per-row
errors as a CSV import (``upsert_contacts``). After the first sync only contacts updated
since the last one are fetched (``updated_after``); ``full=True`` re-reads the whole list.

A read of the whole list drops from the local copy every contact it did not bring (each
one it brings is written, with the time). An update-only read cannot see a deletion, but
the list's own count can: ClickSend's count minus the local copy's (its bad numbers and
duplicates) is kept on the list (``sync_gap``), and when it shrinks a contact was deleted
there, so the whole list is read at once. Only a deletion in the same interval as a new
bad number or duplicate at ClickSend hides from that; ``full=True`` finds it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from campaigns.clock import utcnow
from campaigns.contacts_import import ImportReport, upsert_contacts
from campaigns.models import Contact, ContactList
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
    copy = _Copy(session, client, clicksend_list_id, lst.id, default_region, progress)
    started, synced_at, last_gap = utcnow(), lst.synced_at, lst.sync_gap
    if synced_at is None or full:
        report, whole = copy.read_whole(), True
    else:
        report, whole = copy.read(int(synced_at.timestamp()) - overlap_seconds), False
    gap = copy.gap(remote.contacts_count)
    if not whole and last_gap is not None and gap is not None and gap < last_gap:
        report = copy.read_whole()
        gap = copy.gap(remote.contacts_count)
    lst = session.get(ContactList, copy.list_id) or lst
    lst.synced_at = started
    lst.sync_gap = gap
    session.commit()
    return report


@dataclass(frozen=True)
class _Copy:
    """Reads of one ClickSend list into its local copy (local list ``list_id``)."""

    session: Session
    client: ClickSendClient
    clicksend_list_id: int
    list_id: int
    default_region: str
    progress: Callable[[int], None] | None

    def read(self, updated_after: int | None) -> ImportReport:
        """Upsert the contacts updated after ``updated_after`` (None: every contact)."""

        def rows() -> Iterator[tuple[int, Mapping[str, str]]]:
            contacts = self.client.contacts(self.clicksend_list_id, updated_after=updated_after)
            for number, contact in enumerate(contacts, start=1):
                yield number, dict(contact.fields)

        return upsert_contacts(
            self.session,
            self.list_id,
            rows(),
            default_region=self.default_region,
            import_id=f"sync-{uuid.uuid4().hex[:12]}",
            progress=self.progress,
        )

    def read_whole(self) -> ImportReport:
        """Read every contact, then drop the local ones the read did not write: deleted
        at ClickSend (or their number is no longer good). Not reached if the read fails."""
        started = utcnow()
        report = self.read(None)
        gone = self.session.execute(
            delete(Contact).where(Contact.list_id == self.list_id, Contact.updated_at < started)
        )
        report.removed = int(getattr(gone, "rowcount", 0) or 0)
        self.session.commit()
        return report

    def gap(self, remote_count: int | None) -> int | None:
        """ClickSend's count of the list minus the local copy's (None: no count given)."""
        if remote_count is None:
            return None
        query = select(func.count()).where(Contact.list_id == self.list_id)
        return remote_count - (self.session.scalar(query) or 0)
