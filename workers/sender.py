"""Turn claimed rows into one provider request for the campaign's channel."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from campaigns.claims import Claimed
from campaigns.definition import CampaignDefinition
from clicksend.client import ClickSendClient
from clicksend.models import HistoryItem, SendResponse

SOURCE = "clarion"


def build_messages(
    defn: CampaignDefinition, run_key: str, batch: Sequence[Claimed]
) -> list[dict[str, Any]]:
    spec = defn.message
    common: dict[str, Any] = {"source": SOURCE, "custom_string": run_key}
    if spec.from_:
        common["from"] = spec.from_
    if defn.channel == "mms" and spec.subject:
        common["subject"] = spec.subject
    if defn.channel == "voice":
        common["voice"] = spec.voice or "female"
        common["lang"] = spec.lang or "en-us"
        if spec.require_input is not None:
            common["require_input"] = int(spec.require_input)
        if spec.machine_detection is not None:
            common["machine_detection"] = int(spec.machine_detection)
    messages = []
    for row in batch:
        message = {**common, "to": row.phone, "body": row.body}
        if row.schedule:
            message["schedule"] = row.schedule
        messages.append(message)
    return messages


def send_batch(
    client: ClickSendClient, defn: CampaignDefinition, run_key: str, batch: Sequence[Claimed]
) -> SendResponse:
    messages = build_messages(defn, run_key, batch)
    if defn.channel == "mms":
        return client.send_mms(defn.message.media_file or "", messages)
    if defn.channel == "voice":
        return client.send_voice(messages)
    return client.send_sms(messages)


def history(
    client: ClickSendClient, channel: str, date_from: int, date_to: int
) -> Iterator[HistoryItem]:
    if channel == "mms":
        return client.mms_history(date_from=date_from, date_to=date_to)
    if channel == "voice":
        return client.voice_history(date_from=date_from, date_to=date_to)
    return client.sms_history(date_from=date_from, date_to=date_to)
