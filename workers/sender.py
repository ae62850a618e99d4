"""Turn claimed rows into one provider request for the campaign's channel."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from campaigns import outgoing
from campaigns.claims import Claimed
from campaigns.definition import CampaignDefinition
from clicksend.client import ClickSendClient
from clicksend.models import HistoryItem, SendResponse

SOURCE = outgoing.SOURCE


def build_messages(
    defn: CampaignDefinition, run_key: str, batch: Sequence[Claimed]
) -> list[dict[str, Any]]:
    return outgoing.build_messages(defn, run_key, batch)


def send_batch(
    client: ClickSendClient, defn: CampaignDefinition, run_key: str, batch: Sequence[Claimed]
) -> SendResponse:
    return outgoing.send(client, defn, build_messages(defn, run_key, batch))


def history(
    client: ClickSendClient,
    channel: str,
    date_from: int,
    date_to: int,
    first_page: int = 1,
    *,
    q: str | None = None,
) -> Iterator[HistoryItem]:
    """The channel's history in the window; ``q`` (ClickSend's search) only for SMS,
    the one history that documents it."""
    if q is not None:
        if channel != "sms":
            raise ValueError(f"{channel} history has no search")
        return client.sms_history(date_from=date_from, date_to=date_to, q=q, first_page=first_page)
    if channel == "mms":
        return client.mms_history(date_from=date_from, date_to=date_to, first_page=first_page)
    if channel == "voice":
        return client.voice_history(date_from=date_from, date_to=date_to, first_page=first_page)
    return client.sms_history(date_from=date_from, date_to=date_to, first_page=first_page)
