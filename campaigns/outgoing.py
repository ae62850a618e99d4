"""The provider request fields of a campaign's messages: one place for the send, the
price request and a test send, so what is priced or tested is what goes out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from campaigns.definition import CampaignDefinition
from clicksend.client import ClickSendClient
from clicksend.models import SendResponse

SOURCE = "clarion"


class Outgoing(Protocol):
    @property
    def phone(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def schedule(self) -> int | None: ...


def common_fields(defn: CampaignDefinition, custom_string: str) -> dict[str, Any]:
    """Fields every message of the campaign carries (sender, channel options)."""
    spec = defn.message
    common: dict[str, Any] = {"source": SOURCE, "custom_string": custom_string}
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
    return common


def build_messages(
    defn: CampaignDefinition, custom_string: str, rows: Iterable[Outgoing]
) -> list[dict[str, Any]]:
    common = common_fields(defn, custom_string)
    messages = []
    for row in rows:
        message = {**common, "to": row.phone, "body": row.body}
        if row.schedule:
            message["schedule"] = row.schedule
        messages.append(message)
    return messages


def send(
    client: ClickSendClient, defn: CampaignDefinition, messages: Sequence[Mapping[str, Any]]
) -> SendResponse:
    """One send request on the campaign's channel (MMS: with its media file)."""
    if defn.channel == "mms":
        return client.send_mms(defn.message.media_file or "", messages)
    if defn.channel == "voice":
        return client.send_voice(messages)
    return client.send_sms(messages)


@dataclass(frozen=True)
class Plain:
    """A message to build that is not a claimed row (test sends, price requests)."""

    phone: str
    body: str
    schedule: int | None = None
