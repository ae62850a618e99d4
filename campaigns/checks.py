"""Content checks: what would make a campaign fail, be cut, be held or cost more than it
looks, found before anything is sent.

Each check yields problems as (check, field, text); ``judge`` gives each its level from
the configuration (``campaigns.checknames``) and drops those turned off. The checks on
the audience read the totals of a preview (``campaigns.preview``), so they see the
audience as it is at ``create`` and again at ``start``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from campaigns.checknames import DEFAULT_LEVELS, LEVELS, Level
from campaigns.definition import CampaignDefinition
from campaigns.preview import Totals, encode
from campaigns.templates import PLACEHOLDER
from clicksend.parts import GSM7_CHARS

Problem = tuple[str, str, str]  # (check, field, text)

# Opt-out wording ClickSend's and carriers' guidance accepts: "Reply STOP to opt out",
# "Text STOP to unsubscribe", "opt-out: ...".
OPT_OUT = re.compile(r"\b(stop|unsubscribe|opt[\s-]?out)\b", re.IGNORECASE)
URL = re.compile(
    r"\bhttps?://\S+|\bwww\.\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/\S*", re.IGNORECASE
)
# Characters outside GSM 03.38 that have a GSM-7 stand-in: one of them makes the whole
# message UCS-2, 70 characters a part instead of 160.
LOOKALIKES: dict[str, str] = {
    "\u2018": "'",  # left single quote
    "\u2019": "'",  # right single quote / apostrophe
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",  # prime
    "\u201c": '"',  # left double quote
    "\u201d": '"',  # right double quote
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",  # horizontal bar
    "\u2212": "-",  # minus sign
    "\u2026": "...",  # ellipsis
    "\u00a0": " ",  # no-break space
    "\u2009": " ",  # thin space
    "\u202f": " ",
}
# Countries whose networks do not carry alphanumeric sender IDs (North American
# numbering: the sender must be a number).
ALPHA_SENDER_UNSUPPORTED = frozenset({"US", "CA", "PR"})
MMS_MEDIA_MAX_BYTES = 250 * 1024
MMS_MEDIA_TYPES = {"image/jpeg": (".jpg", ".jpeg"), "image/gif": (".gif",)}


class ConfigError(ValueError):
    """A bad CLARION_CHECKS value; the message names the entry."""


@dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    field: str
    message: str

    def line(self) -> str:
        return f"{self.field}: {self.message} [{self.check}]"

    def to_json(self) -> dict[str, str]:
        return {
            "check": self.check,
            "level": self.level,
            "field": self.field,
            "message": self.message,
        }


def parse_levels(spec: str) -> dict[str, Level]:
    """ "urls=error, opt_out=off" -> {"urls": "error", "opt_out": "off"}."""
    levels: dict[str, Level] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, level = (text.strip() for text in item.partition("="))
        if name not in DEFAULT_LEVELS:
            raise ConfigError(f"CLARION_CHECKS: unknown check {name!r}")
        if level not in LEVELS:
            raise ConfigError(f"CLARION_CHECKS: {name}: level must be error, warning or off")
        levels[name] = level
    return levels


def levels_for(defn: CampaignDefinition, configured: str = "") -> dict[str, Level]:
    """Defaults, then CLARION_CHECKS, then the definition's own ``checks:``."""
    return {**DEFAULT_LEVELS, **parse_levels(configured), **defn.checks}


def judge(problems: Iterable[Problem], levels: Mapping[str, Level]) -> list[Finding]:
    found = [Finding(check, levels[check], where, text) for check, where, text in problems]
    return [f for f in found if f.level != "off"]


# -- the message itself ---------------------------------------------------------------


def _texts(defn: CampaignDefinition, template_body: str | None) -> list[tuple[str, str]]:
    """(field, text) of everything that becomes message text."""
    spec = defn.message
    texts = [("message.body", spec.body if spec.body is not None else template_body or "")]
    texts += [(f"message.variables.{k}", v) for k, v in (spec.variables or {}).items()]
    texts += [(f"message.defaults.{k}", v) for k, v in spec.defaults.items()]
    return texts


def content_problems(defn: CampaignDefinition, template_body: str | None = None) -> list[Problem]:
    """Checks on the text as written: opt-out wording, UCS-2 lookalikes, links."""
    problems: list[Problem] = []
    texts = _texts(defn, template_body)
    literal = " ".join(PLACEHOLDER.sub("", text) for _, text in texts)
    marketing = defn.purpose == "marketing" and defn.channel in ("sms", "mms")
    if marketing and not OPT_OUT.search(literal):
        problems.append(
            (
                "opt_out",
                "message.body",
                "a marketing message without opt-out text (add e.g. 'Reply STOP to opt "
                "out', or set purpose: transactional)",
            )
        )
    if defn.channel == "sms":
        for where, text in texts:
            found = sorted({ch for ch in text if ch in LOOKALIKES and ch not in GSM7_CHARS})
            if found:
                listed = ", ".join(
                    f"{ch!r} (U+{ord(ch):04X}) -> {LOOKALIKES[ch]!r}" for ch in found
                )
                problems.append(
                    (
                        "lookalike",
                        where,
                        f"makes every message UCS-2 (70 characters a part instead of 160); "
                        f"write the GSM-7 character instead: {listed}",
                    )
                )
    for where, text in texts:
        urls = URL.findall(text)
        if urls:
            problems.append(
                (
                    "urls",
                    where,
                    f"has a link ({urls[0]}): ClickSend may hold messages with links for a new "
                    "account until it is verified",
                )
            )
    return problems


# -- the audience ---------------------------------------------------------------------


def audience_problems(
    defn: CampaignDefinition, totals: Totals, template_body: str | None = None
) -> list[Problem]:
    """Checks on the rendered messages of the whole audience (a preview's totals)."""
    problems: list[Problem] = []
    reachable = totals.reachable
    if totals.truncated or (not reachable and _template_too_long(defn, template_body)):
        limit = "6 parts" if defn.channel == "sms" else "4 credits of 300 characters"
        which = f"{totals.truncated} of {reachable} messages" if reachable else "the message"
        problems.append(
            (
                "parts",
                "message.body",
                f"{which} longer than {limit} (up to {totals.max_parts} parts): the provider "
                "cuts the rest and bills the parts it sends",
            )
        )
    if totals.empty:
        problems.append(
            (
                "empty_body",
                "message.body",
                f"renders to an empty message for {totals.empty} of {reachable} recipients",
            )
        )
    for name, count in sorted(totals.missing_fields.items()):
        if reachable and count >= reachable:
            problems.append(
                (
                    "placeholder_missing_all",
                    f"message.body {{{name}}}",
                    f"no recipient has a value for {name} ({reachable} would fail); "
                    f"fix the placeholder or give message.defaults.{name}",
                )
            )
        elif count:
            problems.append(
                (
                    "placeholder_missing_some",
                    f"message.body {{{name}}}",
                    f"{count} of {reachable} recipients have no {name}: their messages will "
                    f"fail (give message.defaults.{name} to send them)",
                )
            )
    sender = (defn.message.from_ or "").strip()
    if sender and not sender.lstrip("+").isdigit() and defn.channel in ("sms", "mms"):
        refused = {
            c: t.recipients for c, t in totals.by_country.items() if c in ALPHA_SENDER_UNSUPPORTED
        }
        if refused:
            where = ", ".join(f"{c} ({n})" for c, n in sorted(refused.items()))
            problems.append(
                (
                    "sender_id",
                    "message.from",
                    f"alphanumeric sender ID {sender!r} is not carried in {where}: the "
                    "message goes out from a number instead, or is refused; use a number "
                    "as `from`",
                )
            )
    return problems


def _template_too_long(defn: CampaignDefinition, template_body: str | None) -> bool:
    text = defn.message.body if defn.message.body is not None else template_body
    if not text or defn.channel == "mms":
        return False
    return encode(defn.channel, PLACEHOLDER.sub("", text)).truncated


# -- the provider ---------------------------------------------------------------------

_lang_cache: dict[str, tuple[float, frozenset[str]]] = {}


def cached_voice_langs(
    key: str, fetch: Callable[[], Iterable[str]], ttl: float, now: Callable[[], float] = time.time
) -> frozenset[str]:
    """The provider's voice languages, fetched at most once per ``ttl`` seconds per
    account (``key``): GET /voice/lang changes rarely and every check reads it."""
    hit = _lang_cache.get(key)
    if hit is not None and now() - hit[0] < ttl:
        return hit[1]
    langs = frozenset(code.lower() for code in fetch())
    _lang_cache[key] = (now(), langs)
    return langs


def voice_lang_problems(defn: CampaignDefinition, langs: frozenset[str]) -> list[Problem]:
    if defn.channel != "voice":
        return []
    lang = (defn.message.lang or "en-us").lower()
    if lang in langs:
        return []
    return [
        (
            "voice_lang",
            "message.lang",
            f"{lang!r} is not one of the provider's voice languages "
            f"({', '.join(sorted(langs)[:12])}{', ...' if len(langs) > 12 else ''})",
        )
    ]


def media_problems(
    defn: CampaignDefinition, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None
) -> list[Problem]:
    """An MMS media_file must be reachable, a jpg or gif, at most 250 kB."""
    if defn.channel != "mms" or not defn.message.media_file:
        return []
    problem = media_problem(defn.message.media_file, timeout=timeout, transport=transport)
    return [("media_file", "message.media_file", problem)] if problem else []


def media_problem(
    url: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None
) -> str | None:
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    allowed = tuple(ext for exts in MMS_MEDIA_TYPES.values() for ext in exts)
    if not path.endswith(allowed):
        return f"{url}: ClickSend sends jpg and gif files (.jpg, .jpeg, .gif)"
    try:
        # GET, streamed: a HEAD is not answered by every server, and the size is read
        # from the bytes themselves when no Content-Length comes.
        with (
            httpx.Client(timeout=timeout, transport=transport, follow_redirects=True) as http,
            http.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                return f"{url}: not reachable (HTTP {response.status_code})"
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind and kind not in MMS_MEDIA_TYPES and kind != "application/octet-stream":
                return f"{url}: served as {kind}, not a jpg or gif"
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MMS_MEDIA_MAX_BYTES:
                    return f"{url}: larger than {MMS_MEDIA_MAX_BYTES // 1024} kB"
    except httpx.HTTPError as exc:
        return f"{url}: not reachable ({type(exc).__name__}: {exc})"
    return None


def unchecked(check: str, where: str, exc: Any) -> Problem:
    """A provider check that could not run: shown as a warning, never silently passed."""
    return (check, where, f"could not be checked: {exc}")
