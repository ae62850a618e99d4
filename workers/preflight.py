"""The checks before sending, with the configured provider: one implementation for the
command line, the HTTP API and the dashboard.

``run_preflight`` checks a definition (``campaigns.preflight``) with the account's
client under the shared rate limit; ``check_start`` lets a draft start only when its
checks pass and the balance covers it (or the caller forces the balance).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session

from campaigns import outgoing
from campaigns.definition import CampaignDefinition, load_definition
from campaigns.preflight import Preflight, preflight
from campaigns.pricing import load_price_table
from campaigns.runs import CampaignError, get_campaign
from campaigns.testsend import TEST_CUSTOM_STRING, TrialSendError, trial_messages
from clicksend.client import ClickSendClient
from clicksend.errors import ClickSendError
from config.settings import Settings
from workers.context import gated_client


class GuardError(CampaignError):
    """A preflight that cannot run (bad price table, template not found): one line."""


class StartRefused(CampaignError):
    """A start the checks or the balance stopped; ``result`` holds the findings."""

    def __init__(self, message: str, result: Preflight) -> None:
        super().__init__(message)
        self.result = result


@contextmanager
def provider_client(settings: Settings) -> Iterator[ClickSendClient]:
    client = gated_client(settings)
    try:
        yield client
    finally:
        client.close()


def template_body(client: ClickSendClient, defn: CampaignDefinition) -> str | None:
    """The provider template's text when the campaign sends one (ClickSend ids only)."""
    if defn.message.body is not None or not isinstance(defn.message.template_id, int):
        return None
    try:
        return client.sms_template(defn.message.template_id).body
    except ClickSendError as exc:
        raise GuardError(f"message.template_id: {defn.message.template_id}: {exc}") from None


def run_preflight(
    session: Session,
    defn: CampaignDefinition,
    settings: Settings,
    *,
    sample: int = 0,
    provider_price: bool = False,
    balance: bool = False,
) -> Preflight:
    try:
        prices = load_price_table(settings.price_table)
    except ValueError as exc:
        raise GuardError(str(exc)) from None
    with provider_client(settings) as client:
        body = template_body(client, defn)
        try:
            return preflight(
                session,
                defn,
                prices,
                client=client,
                configured_levels=settings.checks,
                template_body=body,
                sample=sample,
                ask_provider_price=provider_price,
                check_balance=balance,
                voice_lang_ttl=settings.voice_lang_cache_seconds,
                http_timeout=settings.http_timeout_seconds,
            )
        except ClickSendError as exc:  # the provider's price, asked for explicitly
            raise GuardError(f"the provider's price could not be read: {exc}") from None
        except ValueError as exc:  # CLARION_CHECKS
            raise GuardError(str(exc)) from None


def check_start(
    session: Session,
    campaign_id: int,
    settings: Settings,
    *,
    force: bool = False,
    provider_price: bool = False,
) -> Preflight:
    """Check a draft before it starts: again, since its audience may have changed since
    it was created, and against the balance. Raises StartRefused with the reasons,
    CampaignError for an unknown or non-draft campaign, GuardError when the checks cannot
    run. Starting is the caller's (``workers.control.start``)."""
    campaign = get_campaign(session, campaign_id)
    if campaign.status != "draft":
        raise CampaignError(f"campaign {campaign_id}: is {campaign.status}, not a draft")
    result = run_preflight(
        session,
        load_definition(campaign.definition),
        settings,
        provider_price=provider_price,
        balance=True,
    )
    if result.errors:
        raise StartRefused(
            f"campaign {campaign_id}: not started: " + "; ".join(f.line() for f in result.errors),
            result,
        )
    short = result.balance_problem()
    if short and not force:
        raise StartRefused(f"campaign {campaign_id}: not started: {short}", result)
    return result


def start_notes(result: Preflight) -> dict[str, Any]:
    """What a start answers besides its outcome: the warnings, and the balance it was
    forced past."""
    notes: dict[str, Any] = {}
    if result.warnings:
        notes["warnings"] = [f.to_json() for f in result.warnings]
    if result.balance_problem():
        notes["forced"] = result.balance_problem()
    return notes


@dataclass(frozen=True)
class TrialResult:
    to: str
    body: str
    status: str
    message_id: str | None
    parts: int | None
    price: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def send_test(
    session: Session,
    campaign_id: int,
    settings: Settings,
    *,
    to: list[str],
    seed_list: str | None = None,
    contact: str | None = None,
) -> list[TrialResult]:
    """Send the campaign's rendered message to ``to`` (and/or a seed list) now, outside
    any run: nothing is written to the campaign's runs or messages. Raises
    TrialSendError naming the option, GuardError when the provider refuses the request."""
    defn = load_definition(get_campaign(session, campaign_id).definition)
    if defn.provider == "skillboss" and isinstance(defn.message.template_id, str):
        raise TrialSendError(
            "message.template_id: test sends of SkillBoss templates are not supported"
        )
    with provider_client(settings) as client:
        body = template_body(client, defn)
        plain = trial_messages(
            session,
            defn,
            body,
            to=to,
            seed_list=seed_list,
            contact=contact,
            region=settings.default_region,
        )
        custom = TEST_CUSTOM_STRING.format(campaign_id=campaign_id)
        try:
            response = outgoing.send(client, defn, outgoing.build_messages(defn, custom, plain))
        except ClickSendError as exc:
            raise GuardError(f"the provider refused the test send: {exc}") from None
    by_phone = {m.to: m for m in response.messages}
    results = []
    for message in plain:
        answer = by_phone.get(message.phone)
        results.append(
            TrialResult(
                to=message.phone,
                body=message.body,
                status=answer.status if answer else "MISSING_FROM_ANSWER",
                message_id=answer.message_id if answer else None,
                parts=answer.message_parts if answer else None,
                price=str(answer.message_price)
                if answer and answer.message_price is not None
                else None,
            )
        )
    return results
