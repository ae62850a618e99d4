"""The content checks a campaign goes through before it sends, with their default level.

``error`` stops ``campaign create`` and ``campaign start``; ``warning`` is shown; ``off``
skips the check. A definition's ``checks:`` and ``CLARION_CHECKS`` change the levels.
"""

from __future__ import annotations

from typing import Literal

Level = Literal["error", "warning", "off"]
LEVELS: tuple[Level, ...] = ("error", "warning", "off")

DEFAULT_LEVELS: dict[str, Level] = {
    # a marketing message without "Reply STOP to opt out" or similar
    "opt_out": "warning",
    # a curly quote or long dash that makes the whole message UCS-2 (70 characters a part)
    "lookalike": "warning",
    # more than 6 parts: ClickSend cuts the rest (and bills 6)
    "parts": "error",
    # ClickSend may hold messages with links for new accounts
    "urls": "warning",
    # a recipient whose rendered message is empty (or only spaces)
    "empty_body": "error",
    # a placeholder that no recipient of the audience has (and no default covers)
    "placeholder_missing_all": "error",
    # a placeholder that some recipients lack: their messages fail
    "placeholder_missing_some": "warning",
    # a voice `lang` that the provider's GET /voice/lang does not list
    "voice_lang": "error",
    # an MMS media_file that is not a reachable jpg/gif of at most 250 kB
    "media_file": "error",
    # an alphanumeric sender ID sent to countries that do not allow one
    "sender_id": "warning",
}
