"""Everything checked before a campaign is stored and before it sends: the content
checks, a preview of the whole audience, the cost, and the account's balance.

``campaign create`` and ``campaign start`` (the CLI and the HTTP API alike) call
``preflight``: errors stop them, warnings are shown; at ``start`` a cost the balance
cannot cover stops the run too, unless forced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from campaigns import checks
from campaigns.definition import CampaignDefinition
from campaigns.outgoing import common_fields
from campaigns.preview import Preview, preview
from campaigns.pricing import PriceTable, ProviderPrice, provider_price
from clicksend.client import ClickSendClient
from clicksend.errors import ClickSendError

PRICE_CUSTOM_STRING = "clarion-price"


@dataclass
class Preflight:
    findings: list[checks.Finding]
    preview: Preview
    provider: ProviderPrice | None = None
    balance: Decimal | None = None
    currency: str | None = None
    notes: list[str] = field(default_factory=list)
    balance_error: str | None = None  # GET /account failed: the cost cannot be compared

    @property
    def errors(self) -> list[checks.Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[checks.Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def cost(self) -> Decimal:
        """The provider's price when it was asked, else the local estimate."""
        return self.provider.total if self.provider else self.preview.totals.estimate

    @property
    def short_of_balance(self) -> bool:
        return self.balance is not None and self.cost > self.balance

    def balance_problem(self) -> str | None:
        if self.balance_error is not None:
            return (
                f"the balance could not be read ({self.balance_error}), so the cost "
                f"({self.cost}) was not compared with it: start with --force to send anyway"
            )
        if not self.short_of_balance:
            return None
        source = "the provider's price" if self.provider else "estimated"
        return (
            f"the run costs {self.cost} ({source}) and the balance is {self.balance}"
            f"{' ' + self.currency if self.currency else ''}: top up, or start with --force"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **self.preview.to_json(),
            "errors": [f.to_json() for f in self.errors],
            "warnings": [f.to_json() for f in self.warnings],
            "cost": {
                "estimate": str(self.preview.totals.estimate),
                "provider": str(self.provider.total) if self.provider else None,
                "provider_requests": self.provider.requests if self.provider else 0,
                "balance": str(self.balance) if self.balance is not None else None,
                "currency": self.currency,
                "covered": None if self.balance is None else not self.short_of_balance,
            },
        }


def _pricer(client: ClickSendClient, defn: CampaignDefinition) -> Any:
    if defn.channel == "mms":
        media = defn.message.media_file or ""
        return lambda messages: client.price_mms(media, messages)
    return client.price_voice if defn.channel == "voice" else client.price_sms


def preflight(
    session: Session,
    defn: CampaignDefinition,
    prices: PriceTable,
    *,
    client: ClickSendClient | None = None,
    configured_levels: str = "",
    template_body: str | None = None,
    sample: int = 0,
    ask_provider_price: bool = False,
    check_balance: bool = False,
    voice_lang_ttl: float = 3600.0,
    http_timeout: float = 10.0,
) -> Preflight:
    """Run every check; with a ``client``, the provider's checks (voice languages), its
    price (``ask_provider_price``) and the balance (``check_balance``) too."""
    problems: list[checks.Problem] = checks.content_problems(defn, template_body)
    common = common_fields(defn, PRICE_CUSTOM_STRING)
    pending: list[dict[str, Any]] = []
    priced = ProviderPrice()
    pricer = _pricer(client, defn) if client is not None and ask_provider_price else None

    def each(phone: str, body: str) -> None:
        pending.append({**common, "to": phone, "body": body})
        if len(pending) == 1000:
            _ask(pricer, pending, priced)

    shown = preview(
        session,
        defn,
        prices,
        template_body=template_body,
        sample=sample,
        each=each if pricer is not None else None,
    )
    if pricer is not None and pending:
        _ask(pricer, pending, priced)
    problems += checks.audience_problems(defn, shown.totals, template_body)
    problems += checks.media_problems(defn, timeout=http_timeout)
    result = Preflight([], shown, provider=priced if pricer is not None else None)
    if client is not None and defn.channel == "voice":
        try:
            langs = checks.cached_voice_langs(
                client.base_url, lambda: [v.code for v in client.voice_langs()], voice_lang_ttl
            )
            problems += checks.voice_lang_problems(defn, langs)
        except ClickSendError as exc:
            problems.append(checks.unchecked("voice_lang", "message.lang", exc))
    elif defn.channel == "voice":
        result.notes.append("message.lang: not checked (no provider)")
    if client is not None and check_balance:
        try:
            account = client.account()
            result.balance, result.currency = account.balance, account.currency
        except ClickSendError as exc:
            result.balance_error = str(exc)
    levels = checks.levels_for(defn, configured_levels)
    result.findings = checks.judge(problems, levels)
    # Errors first, then by check name: a stable order to read and to test.
    result.findings.sort(key=lambda f: (f.level != "error", f.check, f.field))
    return result


def _ask(pricer: Any, pending: list[dict[str, Any]], into: ProviderPrice) -> None:
    part = provider_price(pricer, pending)
    into.total += part.total
    into.messages += part.messages
    into.refused += part.refused
    into.requests += part.requests
    into.currency = part.currency or into.currency
    pending.clear()
