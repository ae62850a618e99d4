"""Campaigns: create from a definition, list, get, update or delete a draft, lifecycle,
stats and runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.auth import settings_of
from api.deps import SessionDep, SettingsDep
from api.errors import ApiError
from api.pagination import CursorQuery, LimitQuery, Page, page_of
from api.routes.guard import checked_definition
from campaigns import runs
from campaigns.db import session_scope
from campaigns.definition import DefinitionError, definition_to_json, load_definition
from campaigns.models import Campaign, Run
from campaigns.runs import CampaignError
from campaigns.stats import run_stats
from config.settings import Settings
from workers import control

router = APIRouter(prefix="/campaigns", tags=["campaigns"])


class CampaignOut(BaseModel):
    id: int
    name: str
    channel: str
    status: str
    status_reason: str | None
    # The scheduler's last error with this campaign (it stays active and is tried again).
    error: str | None = None
    created_at: datetime
    started_at: datetime | None
    definition: dict[str, Any]
    # The content checks' warnings when the definition was just stored (create, update).
    warnings: list[dict[str, str]] = []

    @classmethod
    def of(cls, c: Campaign, warnings: list[dict[str, str]] | None = None) -> CampaignOut:
        return cls(
            warnings=warnings or [],
            id=c.id,
            name=c.name,
            channel=c.channel,
            status=c.status,
            status_reason=c.status_reason,
            error=c.error,
            created_at=c.created_at,
            started_at=c.started_at,
            definition=c.definition,
        )


def _campaign(session: SessionDep, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise ApiError(404, f"campaign {campaign_id}: no such campaign", "campaign_id")
    return campaign


@router.get("", response_model=Page[CampaignOut])
def list_campaigns(
    session: SessionDep,
    status: Annotated[str | None, Query(description="Only campaigns in this status.")] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> Page[CampaignOut]:
    query = select(Campaign).order_by(Campaign.id).limit(limit + 1)
    if status:
        query = query.where(Campaign.status == status)
    if cursor is not None:
        query = query.where(Campaign.id > cursor)
    rows = list(session.scalars(query))
    return page_of([CampaignOut.of(c) for c in rows], [c.id for c in rows], limit)


@router.get("/{campaign_id}", response_model=CampaignOut)
def get_campaign(session: SessionDep, campaign_id: int) -> CampaignOut:
    return CampaignOut.of(_campaign(session, campaign_id))


# -- definitions -------------------------------------------------------------------------


async def _definition(request: Request) -> dict[str, Any]:
    """The request's definition, validated; a 422 naming every bad field otherwise."""
    raw = (await request.body()).decode("utf-8", errors="replace")
    if not raw.strip():
        raise ApiError(422, "the body holds no definition", "body")
    try:
        return definition_to_json(load_definition(raw if "\n" in raw else raw + "\n"))
    except DefinitionError as exc:
        errors = [_field_error(line) for line in exc.errors]
        raise DefinitionProblem(errors) from None


def _field_error(line: str) -> dict[str, str]:
    field, _, message = line.partition(": ")
    return {"field": field, "message": message} if message else {"field": "", "message": line}


class DefinitionProblem(ApiError):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        first = errors[0] if errors else {"field": "", "message": "invalid definition"}
        super().__init__(422, first["message"], first["field"] or None)
        self.errors = errors


def _conflict(exc: CampaignError) -> ApiError:
    text = str(exc)
    if "no such campaign" in text:
        return ApiError(404, text, "campaign_id")
    field, sep, rest = text.partition(": ")
    if sep and field in ("name", "audience.lists"):
        return ApiError(409 if field == "name" else 422, rest, field)
    return ApiError(409, text)


async def _store(
    request: Request, write: Callable[[Session, dict[str, Any]], Campaign]
) -> CampaignOut:
    """Validate the request's definition, write it with ``write`` and check it against the
    audience, in one transaction: a check error stores nothing (422)."""
    definition = await _definition(request)
    settings = settings_of(request)

    def store() -> CampaignOut:
        with session_scope(settings.database_url) as session:
            try:
                campaign = write(session, definition)
            except CampaignError as exc:
                raise _conflict(exc) from None
            warnings = checked_definition(session, definition, settings)
            return CampaignOut.of(campaign, warnings)

    return await run_in_threadpool(store)


# A definition arrives as JSON or YAML, so the body is read by hand; this tells OpenAPI so.
DEFINITION_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
        "required": True,
    }
}


@router.post(
    "",
    status_code=201,
    response_model=CampaignOut,
    openapi_extra=DEFINITION_BODY,
)
async def create(
    request: Request,
    replace: Annotated[bool, Query(description="Replace the draft of the same name.")] = False,
) -> CampaignOut:
    """Validate a definition and store it as a draft."""
    return await _store(
        request,
        lambda session, definition: runs.create_campaign(
            session, definition, unique_name=True, replace=replace
        ),
    )


@router.put(
    "/{campaign_id}",
    response_model=CampaignOut,
    openapi_extra=DEFINITION_BODY,
)
async def update_draft(request: Request, campaign_id: int) -> CampaignOut:
    """Replace a draft's definition."""
    return await _store(
        request, lambda session, definition: runs.update_draft(session, campaign_id, definition)
    )


@router.delete("/{campaign_id}", status_code=204)
def delete_draft(session: SessionDep, campaign_id: int) -> Response:
    try:
        runs.delete_draft(session, campaign_id)
    except CampaignError as exc:
        raise _conflict(exc) from None
    return Response(status_code=204)


# -- lifecycle ---------------------------------------------------------------------------


class OutcomeOut(BaseModel):
    campaign_id: int
    action: str
    message: str
    run_ids: list[int]
    next_occurrence: str | None
    zone: str | None
    extra: dict[str, Any] = {}


def _lifecycle(settings: Settings, campaign_id: int, action: str, **options: Any) -> OutcomeOut:
    from workers.preflight import GuardError, StartRefused

    func: Any = {
        "start": control.start,
        "pause": control.pause,
        "resume": control.resume,
        "cancel": control.cancel,
    }[action]
    try:
        outcome = func(settings, campaign_id, **options)
    except StartRefused as exc:  # the checks or the balance (control.start runs them)
        raise ApiError(409, str(exc)) from None
    except GuardError as exc:
        raise ApiError(502, str(exc), "provider") from None
    except CampaignError as exc:
        raise _conflict(exc) from None
    return _outcome_out(outcome)


def _outcome_out(outcome: control.Outcome) -> OutcomeOut:
    data = outcome.to_json()
    extra = {k: v for k, v in data.items() if k not in OutcomeOut.model_fields}
    return OutcomeOut(
        **{k: v for k, v in data.items() if k in OutcomeOut.model_fields}, extra=extra
    )


@router.post("/{campaign_id}/start", response_model=OutcomeOut)
def start(
    settings: SettingsDep,
    campaign_id: int,
    force: Annotated[
        bool, Query(description="Start even if the balance does not cover it.")
    ] = False,
) -> OutcomeOut:
    """Start a draft after its checks pass and the balance covers it: an unscheduled
    campaign's run is expanded and sent now; a scheduled one fires on its schedule (the
    answer says when). Check errors and a balance short of the cost answer 409."""
    return _lifecycle(settings, campaign_id, "start", force=force)


@router.post("/{campaign_id}/pause", response_model=OutcomeOut)
def pause(settings: SettingsDep, campaign_id: int) -> OutcomeOut:
    """Pause; answers once the batch already on the wire has settled."""
    return _lifecycle(settings, campaign_id, "pause")


@router.post("/{campaign_id}/resume", response_model=OutcomeOut)
def resume(settings: SettingsDep, campaign_id: int) -> OutcomeOut:
    """Resume a paused campaign where it stopped."""
    return _lifecycle(settings, campaign_id, "resume")


@router.post("/{campaign_id}/cancel", response_model=OutcomeOut)
def cancel(settings: SettingsDep, campaign_id: int) -> OutcomeOut:
    """Cancel: pending messages are never sent; those scheduled at the provider are
    cancelled there."""
    return _lifecycle(settings, campaign_id, "cancel")


# -- runs and stats ----------------------------------------------------------------------


class RunOut(BaseModel):
    id: int
    campaign_id: int
    occurrence: datetime
    status: str
    status_reason: str | None
    key: str
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, r: Run) -> RunOut:
        return cls(
            id=r.id,
            campaign_id=r.campaign_id,
            occurrence=r.occurrence,
            status=r.status,
            status_reason=r.status_reason,
            key=r.key,
            started_at=r.started_at,
            finished_at=r.finished_at,
        )


@router.get("/{campaign_id}/runs", response_model=Page[RunOut])
def list_runs(
    session: SessionDep, campaign_id: int, limit: LimitQuery = 100, cursor: CursorQuery = None
) -> Page[RunOut]:
    _campaign(session, campaign_id)
    query = select(Run).where(Run.campaign_id == campaign_id).order_by(Run.id).limit(limit + 1)
    if cursor is not None:
        query = query.where(Run.id > cursor)
    rows = list(session.scalars(query))
    return page_of([RunOut.of(r) for r in rows], [r.id for r in rows], limit)


@router.get("/{campaign_id}/stats")
def stats(
    session: SessionDep,
    campaign_id: int,
    run_id: Annotated[
        int | None, Query(description="A run of the campaign (default: latest).")
    ] = None,
) -> dict[str, Any]:
    """Counts by status (delivered and undelivered receipts too), rate, time left and
    failures by reason, for the campaign's latest run (or ``run_id``)."""
    campaign = _campaign(session, campaign_id)
    run = session.get(Run, run_id) if run_id is not None else runs.latest_run(session, campaign_id)
    if run is None or run.campaign_id != campaign_id:
        if run_id is not None:
            raise ApiError(404, f"run {run_id}: no such run of campaign {campaign_id}", "run_id")
        return {"campaign_id": campaign_id, "campaign_status": campaign.status, "run": None}
    data = run_stats(session, run.id).to_json()
    data["campaign_status"] = campaign.status
    return data
