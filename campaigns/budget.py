"""Budget caps: a run stops before the batch that would take its spend (or its
campaign's) over the definition's ``budget``.

The spend is the provider's own ``message_price`` of every message it accepted, kept on
the run as each answer is recorded. Before a batch leaves, its cost is estimated from
its parts and the local price table, and so is every batch other workers have claimed
and not yet recorded: claims are committed before this check, so two workers checking
at once each count the other's batch, and together they cannot cross the cap.

A table below the account's real prices would still let every batch in flight cross the
cap by the difference. So a run with a cap learns, from each recorded batch, the ratio of
what the provider charged to what the table estimated for the same messages
(``Run.price_factor``, the highest seen), and estimates what is still to leave at that
ratio when it is above 1. Until that first answer is recorded, one batch at a time leaves:
a second chain's batch waits (``BudgetCheck.wait``), so only the first batch rests on the
table alone. The run's row is locked for that check, so of two chains checking at once
one goes and the other sees its batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from campaigns.claims import Claimed
from campaigns.definition import Budget, CampaignDefinition, definition_to_json, load_definition
from campaigns.models import Campaign, Message, Run
from campaigns.preview import country_of, encode
from campaigns.pricing import PriceTable
from campaigns.runs import CampaignError


def estimate(channel: str, rows: Iterable[tuple[str, str]], prices: PriceTable) -> Decimal:
    """Local cost of (phone, body) messages: parts times the price table's price."""
    return sum(
        (
            prices.cost(channel, country_of(phone), encode(channel, body).parts)
            for phone, body in rows
        ),
        Decimal("0"),
    )


def record_spend(
    session: Session,
    run_id: int,
    prices: Iterable[Decimal | None],
    *,
    also: Mapping[str, Any] | None = None,
    estimated: Decimal | None = None,
) -> Decimal:
    """Add what the provider charged for a batch to the run's spend (same transaction as
    the batch's results). ``also``: other columns of the run's row (values or SQL
    expressions), written by the same statement: one write of the row per batch, not two.
    ``estimated``: the local table's estimate of the messages charged (a run with a cap),
    from which the run learns the provider's price (``Run.price_factor``)."""
    total = sum((p for p in prices if p), Decimal("0"))
    values: dict[str, Any] = {}
    if total:
        values["spent"] = Run.spent + total
    if total and estimated:
        # Bounded to fit its column; a table a thousand times too low pauses the run anyway.
        factor = min(total / estimated, Decimal(1000)).quantize(Decimal("0.000001"))
        known = func.coalesce(Run.price_factor, 0)
        values["price_factor"] = case((known >= factor, Run.price_factor), else_=factor)
    values.update(also or {})
    if values:
        session.execute(update(Run).where(Run.id == run_id).values(**values))
    return total


def _in_flight(
    session: Session, run_id: int, channel: str, prices: PriceTable, token: str
) -> tuple[Decimal, bool]:
    """The estimate of every claimed row of the run, and whether other claims hold some."""
    rows = session.execute(
        select(Message.phone, Message.body, Message.claim_token).where(
            Message.run_id == run_id, Message.status == "claimed"
        )
    ).all()
    others = any(r.claim_token != token for r in rows)
    return estimate(channel, ((r.phone, r.body) for r in rows), prices), others


@dataclass(frozen=True)
class BudgetCheck:
    """``reason``: why the batch must not leave (a cap it would cross), or None.
    ``capped``: the campaign has a cap, so the batch's charges are to teach the run the
    provider's price (``record_spend``'s ``estimated``)."""

    reason: str | None = None
    capped: bool = False
    # No price learnt yet and another chain's batch is out: wait for its answer.
    wait: bool = False


def over_budget(
    session: Session,
    run: Run,
    defn: CampaignDefinition,
    batch: Sequence[Claimed],
    prices: PriceTable,
    *,
    token: str,
) -> BudgetCheck:
    """Whether the claimed ``batch`` (held under ``token``) may leave under the campaign's
    caps. The caller commits right after: the check may hold the run's row locked."""
    cap = current_budget(session, run.campaign_id)
    if cap is None:
        return BudgetCheck()
    price = select(Run.spent, Run.price_factor).where(Run.id == run.id)
    spent, factor = session.execute(price).one()
    if factor is None:
        # Read again under the row's lock: checks before the first price is learnt go one
        # at a time, each seeing the batches the ones before it let go.
        # FOR NO KEY UPDATE: rows referring to the run (its totals) are still written.
        spent, factor = session.execute(price.with_for_update(key_share=True)).one()
    spent = Decimal(spent or 0)
    # What the provider charged above the table so far, never below it.
    scale = max(Decimal(1), factor or Decimal(1))
    # Every claimed row of the run (this batch's included) is about to be charged.
    in_flight, others = _in_flight(session, run.id, defn.channel, prices, token)
    if factor is None and others:
        return BudgetCheck(capped=True, wait=True)
    coming = in_flight * scale
    mine = estimate(defn.channel, ((row.phone, row.body) for row in batch), prices) * scale
    if cap.run is not None and spent + coming > cap.run:
        return BudgetCheck(_reason("run", cap.run, spent, len(batch), mine), capped=True)
    if cap.campaign is not None:
        spent = Decimal(
            session.scalar(
                select(func.coalesce(func.sum(Run.spent), 0)).where(
                    Run.campaign_id == run.campaign_id
                )
            )
            or 0
        )
        if spent + coming > cap.campaign:
            return BudgetCheck(
                _reason("campaign", cap.campaign, spent, len(batch), mine), capped=True
            )
    return BudgetCheck(capped=True)


def current_budget(session: Session, campaign_id: int) -> Budget | None:
    """The campaign's caps as stored now: ``campaign budget`` may have raised them since
    the worker first read the definition."""
    stored = session.scalar(select(Campaign.definition).where(Campaign.id == campaign_id))
    raw = (stored or {}).get("budget")
    return Budget.model_validate(raw) if raw else None


def set_budget(
    session: Session,
    campaign_id: int,
    *,
    campaign: Decimal | None = None,
    run: Decimal | None = None,
) -> Budget:
    """Change a campaign's caps (e.g. to resume a run its cap paused). Raises
    DefinitionError naming the field when a value is not a positive amount."""
    row = session.get(Campaign, campaign_id)
    if row is None:
        raise CampaignError(f"campaign {campaign_id}: no such campaign")
    budget = dict(row.definition.get("budget") or {})
    for key, value in (("campaign", campaign), ("run", run)):
        if value is not None:
            budget[key] = str(value)
    definition = load_definition({**row.definition, "budget": budget})
    row.definition = definition_to_json(definition)
    assert definition.budget is not None
    return definition.budget


def _reason(scope: str, cap: Decimal, spent: Decimal, count: int, cost: Decimal) -> str:
    return (
        f"budget: the {scope} cap of {cap} would be crossed (spent {spent:.4f}; the next "
        f"batch of {count} messages costs about {cost:.4f}); raise budget.{scope} and resume"
    )
