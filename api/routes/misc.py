"""The schedule's next occurrences and the provider account's balance."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import SessionDep, SettingsDep
from api.errors import ApiError
from scheduler.listing import upcoming

router = APIRouter(tags=["schedule", "account"])


@router.get("/schedule")
def schedule(
    session: SessionDep,
    count: Annotated[int, Query(ge=1, le=100, description="Occurrences per campaign.")] = 5,
    campaign_id: int | None = None,
) -> list[dict[str, Any]]:
    """Next occurrences of each campaign not yet over, in the campaign's time zone."""
    return [item.to_json() for item in upcoming(session, count=count, campaign_id=campaign_id)]


@router.get("/account")
def account(settings: SettingsDep) -> dict[str, str]:
    """The provider account's balance and currency (one request, under the shared limit)."""
    from clicksend.errors import ClickSendError
    from workers.context import gated_client

    try:
        with gated_client(settings) as client:
            acct = client.account()
    except ClickSendError as exc:
        raise ApiError(502, f"the provider answered: {exc}", "provider") from None
    return {"username": acct.username, "balance": str(acct.balance), "currency": acct.currency}
