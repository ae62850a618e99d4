"""Test sends: the campaign's message, rendered exactly as a run would render it, sent
to a few numbers of the user's choice without touching any run.

``--to`` numbers get the message rendered for one contact of the audience (the first
one not opted out, or the one asked for); each member of a seed list gets the message
rendered with their own fields, which tries the template on real data.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.definition import CampaignDefinition
from campaigns.expand import body_renderer
from campaigns.models import Contact, ContactList
from campaigns.outgoing import Plain
from campaigns.phones import InvalidPhone, normalise
from campaigns.preview import audience_rows
from campaigns.templates import MissingField

TEST_CUSTOM_STRING = "clarion-test-{campaign_id}"


class TrialSendError(ValueError):
    """A test send that cannot be made; the message names the option or field."""


def _render(
    defn: CampaignDefinition,
    template_body: str | None,
    phone: str,
    fields: dict[str, Any],
    who: str,
) -> str:
    try:
        return body_renderer(defn, template_body)(
            {**fields, "phone_number": phone}, dict(defn.message.defaults)
        )
    except MissingField as exc:
        raise TrialSendError(f"message.body: {who} has no {exc.field} (and no default)") from None


def rendered_for(
    session: Session,
    defn: CampaignDefinition,
    template_body: str | None,
    contact: str | None = None,
) -> tuple[str, str]:
    """(the audience contact whose fields were used, the rendered body)."""
    for row in audience_rows(session, defn):
        if row.suppressed and contact is None:
            continue
        if contact is None or row.phone == contact:
            return row.phone, _render(
                defn, template_body, row.phone, row.fields or {}, f"contact {row.phone}"
            )
    if contact is not None:
        raise TrialSendError(f"--contact: {contact} is not in the campaign's audience")
    raise TrialSendError("audience: no contact to render the message for (give --seed-list)")


def trial_messages(
    session: Session,
    defn: CampaignDefinition,
    template_body: str | None,
    *,
    to: list[str],
    seed_list: str | None = None,
    contact: str | None = None,
    region: str = "US",
) -> list[Plain]:
    """The messages of a test send: one per ``to`` number, one per seed-list member."""
    if not to and seed_list is None:
        raise TrialSendError("--to: give at least one number (or --seed-list)")
    messages: list[Plain] = []
    if to:
        try:
            numbers = [normalise(raw, region) for raw in to]
            chosen = normalise(contact, region) if contact else None
        except InvalidPhone as exc:
            raise TrialSendError(f"--to: {exc}") from None
        _, body = rendered_for(session, defn, template_body, chosen)
        messages += [Plain(number, body) for number in dict.fromkeys(numbers)]
    if seed_list is not None:
        list_id = session.scalar(select(ContactList.id).where(ContactList.name == seed_list))
        if list_id is None:
            raise TrialSendError(f"--seed-list: no contact list named {seed_list!r}")
        for phone, fields in session.execute(
            select(Contact.phone, Contact.fields)
            .where(Contact.list_id == list_id)
            .order_by(Contact.id)
        ):
            body = _render(defn, template_body, phone, fields or {}, f"seed contact {phone}")
            messages.append(Plain(phone, body))
        if not messages:
            raise TrialSendError(f"--seed-list: {seed_list!r} has no contacts")
    if len(messages) > 100:
        raise TrialSendError(f"--to: a test send goes to at most 100 numbers, not {len(messages)}")
    return messages
