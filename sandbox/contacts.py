"""Contact lists and contacts: create, rename, copy, transfer, de-duplicate, remove opted-out.

Every account starts with the list ClickSend gives it, "Opt-Out List".
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from sandbox.records import CONTACT_FIELDS, Contact, ContactList

OPT_OUT_LIST_NAME = "Opt-Out List"


class NotFound(LookupError):
    """A list or contact id that does not exist."""


class ContactBook:
    """All lists of the account; the caller holds the state lock."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock
        self._list_ids = itertools.count(3555277)
        self._contact_ids = itertools.count(1581565666)
        self.lists: dict[int, ContactList] = {}
        self.opt_out = self.create_list(OPT_OUT_LIST_NAME)

    def create_list(self, name: str) -> ContactList:
        contact_list = ContactList(list_id=next(self._list_ids), list_name=name)
        self.lists[contact_list.list_id] = contact_list
        return contact_list

    def get_list(self, list_id: int | str) -> ContactList:
        try:
            return self.lists[int(list_id)]
        except (KeyError, ValueError):
            raise NotFound(f"list {list_id}") from None

    def delete_list(self, list_id: int | str) -> None:
        contact_list = self.get_list(list_id)
        del self.lists[contact_list.list_id]

    def get_contact(self, list_id: int | str, contact_id: int | str) -> Contact:
        contact_list = self.get_list(list_id)
        try:
            return contact_list.contacts[int(contact_id)]
        except (KeyError, ValueError):
            raise NotFound(f"contact {contact_id}") from None

    def add_contact(self, list_id: int | str, values: Mapping[str, Any]) -> Contact:
        contact_list = self.get_list(list_id)
        now = self._clock()
        fields = {
            name: str(values[name]) for name in CONTACT_FIELDS if values.get(name) is not None
        }
        contact = Contact(next(self._contact_ids), contact_list.list_id, fields, now, now)
        contact_list.contacts[contact.contact_id] = contact
        return contact

    def update_contact(
        self, list_id: int | str, contact_id: int | str, values: Mapping[str, Any]
    ) -> Contact:
        contact = self.get_contact(list_id, contact_id)
        for name in CONTACT_FIELDS:
            if name in values and values[name] is not None:
                contact.fields[name] = str(values[name])
        contact.date_updated = self._clock()
        return contact

    def delete_contact(self, list_id: int | str, contact_id: int | str) -> None:
        contact = self.get_contact(list_id, contact_id)
        del self.lists[contact.list_id].contacts[contact.contact_id]

    def copy_contact(
        self, from_list: int | str, contact_id: int | str, to_list: int | str
    ) -> Contact:
        contact = self.get_contact(from_list, contact_id)
        return self.add_contact(to_list, contact.fields)

    def transfer_contact(
        self, from_list: int | str, contact_id: int | str, to_list: int | str
    ) -> Contact:
        target = self.get_list(to_list)
        contact = self.get_contact(from_list, contact_id)
        del self.lists[contact.list_id].contacts[contact.contact_id]
        contact.list_id = target.list_id
        contact.date_updated = self._clock()
        target.contacts[contact.contact_id] = contact
        return contact

    def remove_duplicates(self, list_id: int | str, fields: Mapping[str, Any] | None = None) -> int:
        """Drop later contacts with the same phone number (and the named fields); count them."""
        contact_list = self.get_list(list_id)
        names = [
            "phone_number",
            *[n for n in (fields or {}) if n in CONTACT_FIELDS and n != "phone_number"],
        ]
        seen: set[tuple[str, ...]] = set()
        removed = 0
        for contact_id, contact in list(contact_list.contacts.items()):
            key = tuple(contact.fields.get(n, "") for n in names)
            if key in seen:
                del contact_list.contacts[contact_id]
                removed += 1
            seen.add(key)
        return removed

    def remove_opted_out(self, list_id: int | str, opt_out_list_id: int | str) -> int:
        """Drop contacts whose number is in the opt-out list; count them."""
        contact_list = self.get_list(list_id)
        opted = {
            c.fields.get("phone_number") for c in self.get_list(opt_out_list_id).contacts.values()
        }
        doomed = [
            cid for cid, c in contact_list.contacts.items() if c.fields.get("phone_number") in opted
        ]
        for contact_id in doomed:
            del contact_list.contacts[contact_id]
        return len(doomed)
