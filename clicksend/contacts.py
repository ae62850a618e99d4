"""Contact list and contact endpoints (``/lists/*``), including import from a file URL."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from clicksend.coerce import as_mapping
from clicksend.endpoints import Endpoints, segment
from clicksend.pagination import MAX_LIMIT
from clicksend.resources import CONTACT_FIELDS, Contact, ContactList


def contact_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of a contact create/update: known fields only, as text; a None
    value is left out (to clear a field, pass "").

    Raises ValueError naming an unknown field, so a typo is not silently dropped.
    """
    unknown = sorted(set(fields) - set(CONTACT_FIELDS))
    if unknown:
        raise ValueError(
            f"contact.{unknown[0]}: unknown field (known: {', '.join(CONTACT_FIELDS)})"
        )
    return {k: str(v) for k, v in fields.items() if v is not None}


class ContactEndpoints(Endpoints):
    """Lists: list, get, create, rename, delete, remove duplicates / opted-out contacts,
    import. Contacts: list, get, create, update, delete, copy, transfer."""

    def lists(self, *, limit: int = MAX_LIMIT) -> Iterator[ContactList]:
        """GET /lists, every page."""
        return self._pages("/lists", ContactList.from_json, limit=limit)

    def get_list(self, list_id: int) -> ContactList:
        """GET /lists/{list_id}."""
        return ContactList.from_json(self._data("GET", f"/lists/{segment(list_id)}"))

    def create_list(self, name: str) -> ContactList:
        """POST /lists."""
        return ContactList.from_json(self._data("POST", "/lists", json={"list_name": name}))

    def rename_list(self, list_id: int, name: str) -> ContactList:
        """PUT /lists/{list_id}."""
        path = f"/lists/{segment(list_id)}"
        return ContactList.from_json(self._data("PUT", path, json={"list_name": name}))

    def delete_list(self, list_id: int) -> None:
        """DELETE /lists/{list_id}."""
        self._call("DELETE", f"/lists/{segment(list_id)}")

    def remove_duplicates(self, list_id: int, fields: Sequence[str] = ("phone_number",)) -> int:
        """PUT /lists/{list_id}/remove-duplicates: contacts equal on all ``fields`` are
        merged; returns how many were deleted."""
        unknown = [f for f in fields if f not in CONTACT_FIELDS]
        if not fields or unknown:
            raise ValueError(f"fields: contact field names required, got {list(fields)!r}")
        # ClickSend's schema: an object whose keys (each mapped to itself) are the fields.
        body = {"fields": {f: f for f in fields}}
        return self._count(
            "PUT", f"/lists/{segment(list_id)}/remove-duplicates", "deleted", json=body
        )

    def remove_opted_out(self, list_id: int, opt_out_list_id: int) -> int:
        """PUT /lists/{list_id}/remove-opted-out-contacts/{opt_out_list_id}: drop every
        contact whose number is on the opt-out list; returns how many were deleted."""
        path = f"/lists/{segment(list_id)}/remove-opted-out-contacts/{segment(opt_out_list_id)}"
        return self._count("PUT", path, "deleted", json={})

    def import_contacts(
        self, list_id: int, file_url: str, field_order: Sequence[str]
    ) -> Mapping[str, Any]:
        """POST /lists/{list_id}/import: ClickSend fetches the CSV at ``file_url`` and
        queues the import; ``field_order`` names the file's columns. Returns ``data``."""
        if not field_order:
            raise ValueError("field_order: at least one column name is required")
        body = {"file_url": file_url, "field_order": list(field_order)}
        return as_mapping(self._data("POST", f"/lists/{segment(list_id)}/import", json=body))

    def contacts(
        self, list_id: int, *, updated_after: int | None = None, limit: int = MAX_LIMIT
    ) -> Iterator[Contact]:
        """GET /lists/{list_id}/contacts, every page (only those updated after a Unix time)."""
        params = {"updated_after": updated_after}
        path = f"/lists/{segment(list_id)}/contacts"
        return self._pages(path, Contact.from_json, limit=limit, params=params)

    def get_contact(self, list_id: int, contact_id: int) -> Contact:
        """GET /lists/{list_id}/contacts/{contact_id}."""
        return Contact.from_json(self._data("GET", _contact_path(list_id, contact_id)))

    def create_contact(self, list_id: int, fields: Mapping[str, Any]) -> Contact:
        """POST /lists/{list_id}/contacts with fields from CONTACT_FIELDS."""
        path = f"/lists/{segment(list_id)}/contacts"
        return Contact.from_json(self._data("POST", path, json=contact_body(fields)))

    def update_contact(self, list_id: int, contact_id: int, fields: Mapping[str, Any]) -> Contact:
        """PUT /lists/{list_id}/contacts/{contact_id}: change the given fields."""
        path = _contact_path(list_id, contact_id)
        return Contact.from_json(self._data("PUT", path, json=contact_body(fields)))

    def delete_contact(self, list_id: int, contact_id: int) -> None:
        """DELETE /lists/{list_id}/contacts/{contact_id}."""
        self._call("DELETE", _contact_path(list_id, contact_id))

    def copy_contact(self, from_list_id: int, contact_id: int, to_list_id: int) -> Contact:
        """PUT /lists/{from}/contacts/{id}/copy/{to}: the new copy in the target list."""
        path = f"{_contact_path(from_list_id, contact_id)}/copy/{segment(to_list_id)}"
        return Contact.from_json(self._data("PUT", path, json={}))

    def transfer_contact(self, from_list_id: int, contact_id: int, to_list_id: int) -> Contact:
        """PUT /lists/{from}/contacts/{id}/transfer/{to}: move the contact."""
        path = f"{_contact_path(from_list_id, contact_id)}/transfer/{segment(to_list_id)}"
        return Contact.from_json(self._data("PUT", path, json={}))


def _contact_path(list_id: int, contact_id: int) -> str:
    return f"/lists/{segment(list_id)}/contacts/{segment(contact_id)}"
