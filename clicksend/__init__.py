"""Clients for the ClickSend REST API v3 and the SkillBoss API hub.

``ClickSendClient`` covers the ClickSend endpoints (directly or through the hub);
``SkillBossClient`` calls the hub's ``/v1/run`` models. See docs/client.md.
"""

from clicksend.client import ClickSendClient
from clicksend.errors import (
    AuthenticationError,
    BadRequestError,
    ClickSendError,
    ConnectionFailedError,
    ForbiddenError,
    NoAnswerError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    ServerError,
)
from clicksend.models import (
    Account,
    HistoryItem,
    InboundMessage,
    MessageResult,
    Receipt,
    SendResponse,
)
from clicksend.resources import Contact, ContactList, Country, EmailAddress, Template, VoiceLang
from clicksend.skillboss import SkillBossClient

__all__ = [
    "Account",
    "AuthenticationError",
    "BadRequestError",
    "ClickSendClient",
    "ClickSendError",
    "ConnectionFailedError",
    "Contact",
    "ContactList",
    "Country",
    "EmailAddress",
    "ForbiddenError",
    "HistoryItem",
    "InboundMessage",
    "MessageResult",
    "NoAnswerError",
    "NotFoundError",
    "OutcomeUnknownError",
    "RateLimitedError",
    "Receipt",
    "SendResponse",
    "ServerError",
    "SkillBossClient",
    "Template",
    "VoiceLang",
]
