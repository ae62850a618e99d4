"""Before the blast: a campaign's preview (rendered messages, totals, cost), its checks,
a definition's checks before it is created, and test sends outside any run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field

from api.deps import SessionDep, SettingsDep
from api.errors import ApiError
from campaigns.definition import DefinitionError, load_definition
from campaigns.runs import CampaignError, get_campaign
from campaigns.testsend import TrialSendError
from workers.preflight import GuardError, run_preflight, send_test

router = APIRouter(tags=["checks"])


def _definition(session: SessionDep, campaign_id: int) -> Any:
    try:
        return load_definition(get_campaign(session, campaign_id).definition)
    except CampaignError as exc:
        raise ApiError(404, str(exc), "campaign_id") from None


@router.get("/campaigns/{campaign_id}/preview")
def preview_campaign(
    session: SessionDep,
    settings: SettingsDep,
    campaign_id: int,
    count: Annotated[int, Query(ge=0, le=1000, description="Messages to render.")] = 10,
    provider_price: Annotated[
        bool, Query(description="Ask the provider's price (one request per 1000).")
    ] = False,
    balance: Annotated[bool, Query(description="Read the account's balance.")] = False,
) -> dict[str, Any]:
    """The first ``count`` messages exactly as they will go out (encoding, parts, the
    character that forced UCS-2), totals for the whole audience, the cost and the
    checks. Writes nothing."""
    defn = _definition(session, campaign_id)
    try:
        result = run_preflight(
            session, defn, settings, sample=count, provider_price=provider_price, balance=balance
        )
    except GuardError as exc:
        raise ApiError(502, str(exc)) from None
    return {"campaign_id": campaign_id, **result.to_json()}


@router.get("/campaigns/{campaign_id}/checks")
def check_campaign(session: SessionDep, settings: SettingsDep, campaign_id: int) -> dict[str, Any]:
    """The content checks against the audience as it is now: errors stop a start."""
    defn = _definition(session, campaign_id)
    try:
        result = run_preflight(session, defn, settings)
    except GuardError as exc:
        raise ApiError(502, str(exc)) from None
    return {
        "campaign_id": campaign_id,
        "ok": not result.errors,
        "errors": [f.to_json() for f in result.errors],
        "warnings": [f.to_json() for f in result.warnings],
    }


@router.post("/checks")
def check_definition(
    session: SessionDep,
    settings: SettingsDep,
    definition: Annotated[dict[str, Any], Body(description="A campaign definition.")],
) -> dict[str, Any]:
    """Check a definition before creating it (its audience lists must exist)."""
    try:
        defn = load_definition(definition)
    except DefinitionError as exc:
        first = exc.errors[0].split(":", 1)[0] if exc.errors else None
        raise ApiError(422, "; ".join(exc.errors), first) from None
    try:
        result = run_preflight(session, defn, settings)
    except GuardError as exc:
        raise ApiError(502, str(exc)) from None
    return {
        "ok": not result.errors,
        "errors": [f.to_json() for f in result.errors],
        "warnings": [f.to_json() for f in result.warnings],
        "totals": result.preview.totals.to_json(),
    }


class TrialRequest(BaseModel):
    to: list[str] = Field(default_factory=list, description="Numbers to send the test to.")
    seed_list: str | None = Field(None, description="A contact list; each gets their own.")
    contact: str | None = Field(None, description="Render for this audience contact.")


@router.post("/campaigns/{campaign_id}/test")
def test_send(
    session: SessionDep, settings: SettingsDep, campaign_id: int, request: TrialRequest
) -> dict[str, Any]:
    """Send the rendered message now to a few numbers, outside any run."""
    try:
        results = send_test(
            session,
            campaign_id,
            settings,
            to=request.to,
            seed_list=request.seed_list,
            contact=request.contact,
        )
    except CampaignError as exc:
        raise ApiError(404, str(exc), "campaign_id") from None
    except TrialSendError as exc:
        field = str(exc).split(":", 1)[0].lstrip("-").replace("-", "_")
        raise ApiError(422, str(exc), field) from None
    except GuardError as exc:
        raise ApiError(502, str(exc)) from None
    return {"campaign_id": campaign_id, "messages": [r.to_json() for r in results]}


def checked_definition(session: Any, definition: dict[str, Any], settings: Any) -> list[Any]:
    """The checks a definition goes through when it is stored (create, update): their
    warnings, or a 422 listing each error by field (nothing is stored)."""
    from api.errors import ApiError

    try:
        result = run_preflight(session, load_definition(definition), settings)
    except GuardError as exc:
        raise ApiError(502, str(exc), "provider") from None
    if result.errors:
        problem = CheckProblem(
            [{"field": f.field, "message": f"{f.message} [{f.check}]"} for f in result.errors]
        )
        raise problem
    return [f.to_json() for f in result.warnings]


class CheckProblem(ApiError):
    """Check errors: a 422 whose ``errors`` name each field."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(422, errors[0]["message"], errors[0]["field"])
        self.errors = errors
