"""How each per-message provider status is treated."""

from __future__ import annotations

from enum import Enum


class Verdict(Enum):
    SENT = "sent"
    FAILED = "failed"  # permanent: resending cannot help
    RETRY = "retry"  # transient: try again later, counts as an attempt
    THROTTLED = "throttled"  # the provider's per-message rate limit: later, not an attempt
    PAUSE = "pause"  # the account cannot send: hold the message, pause the campaign


# messages.provider_status width; the full text of an odd status goes to `error`.
STATUS_WIDTH = 40

ACCEPTED = {"SUCCESS", "QUEUED", "SCHEDULED"}
TRANSIENT = {"INTERNAL_ERROR"}
PAUSING = {"INSUFFICIENT_CREDIT"}


def verdict(status: str) -> Verdict:
    """Unknown statuses fail with their name: resending the unclassified risks a duplicate."""
    status = status.upper()
    if status in ACCEPTED:
        return Verdict.SENT
    if status == "THROTTLED":
        return Verdict.THROTTLED
    if status in TRANSIENT:
        return Verdict.RETRY
    if status in PAUSING:
        return Verdict.PAUSE
    return Verdict.FAILED
