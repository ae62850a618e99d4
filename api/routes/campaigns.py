"""Campaigns: create from a definition, list, get, update or delete a draft, lifecycle,
stats and runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from api.deps import SessionDep
from api.errors import ApiError
from api.pagination import CursorQuery, LimitQuery, Page, page_of
from campaigns.models import Campaign

router = APIRouter(prefix="/campaigns", tags=["campaigns"])


class CampaignOut(BaseModel):
    id: int
    name: str
    channel: str
    status: str
    status_reason: str | None
    created_at: datetime
    started_at: datetime | None
    definition: dict[str, Any]

    @classmethod
    def of(cls, c: Campaign) -> CampaignOut:
        return cls(
            id=c.id,
            name=c.name,
            channel=c.channel,
            status=c.status,
            status_reason=c.status_reason,
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
