"""Campaign definitions: the YAML/JSON a user writes, validated into typed models.

A definition says who (``audience``), what (``message``), through which ``channel`` and
``provider``, and when (``schedule``). Every model forbids unknown keys, so a typo such
as ``bdy:`` is an error rather than a silently ignored field. All problems are reported
together as ``DefinitionError.errors``, one line per problem, each starting with the
field's path (``message.bdy: unknown key``; formatted in ``campaigns.definition_errors``).
The source is read by ``campaigns.definition_source`` (YAML 1.2 scalars, JSON, a file).

The schedule's models only validate: what a window or a reminder means at send time is
decided in one place, ``scheduler.windows`` and ``scheduler.planning``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from croniter import croniter
from croniter.croniter import CroniterBadDateError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    model_validator,
)

from campaigns.checknames import DEFAULT_LEVELS, Level
from campaigns.definition_errors import DefinitionError, error_lines, raise_if
from campaigns.definition_source import read_source
from campaigns.phones import check_timezone
from campaigns.templates import is_identifier, placeholders

MMS_BODY_MAX = 1500
MMS_SUBJECT_MAX = 20
VOICE_BODY_MAX = 1200  # 300 characters per credit, cut after 4 credits
SENDER_ID_MAX = 11  # alphanumeric sender IDs; a number may be longer
NAME_MAX = 200  # campaigns.name / contact_lists.name columns


# -- scalar types ---------------------------------------------------------------------

_DURATION = re.compile(r"([+-]?)((?:\d+[smhdw])+)\Z")
_DURATION_PART = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
DURATION_MAX_SECONDS = 3650 * 86400  # ten years


def parse_duration(value: Any) -> timedelta:
    """ "30m", "6h", "2d", "1h30m", "-24h" -> timedelta (s, m, h, d, w units)."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(value.strip().lower()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30m, 6h, 2d or -24h)")
    seconds = sum(
        int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(match.group(2))
    )
    if seconds > DURATION_MAX_SECONDS:
        # Beyond this a deadline or an offset is a typo, and far beyond it the date
        # arithmetic of every tick would overflow.
        raise ValueError(f"out of range: at most {DURATION_MAX_SECONDS // 86400}d")
    return timedelta(seconds=-seconds if match.group(1) == "-" else seconds)


def format_duration(value: timedelta) -> str:
    """The inverse of parse_duration: timedelta(hours=-24) -> "-1d"."""
    seconds = int(value.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return sign + ("".join(parts) or "0s")


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)\Z")


def _parse_hhmm(value: Any) -> time:
    if isinstance(value, time):
        return value
    match = _HHMM.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not a time of day: {value!r} (use HH:MM, e.g. 09:00)")
    return time(int(match.group(1)), int(match.group(2)))


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_days(spec: str) -> frozenset[int]:
    """ "mon-fri", "sat,sun", "fri-mon" (wraps) -> weekday numbers (Monday = 0)."""
    days: set[int] = set()
    for item in spec.lower().replace(" ", "").split(","):
        first, _, last = item.partition("-")
        for name in (first, last or first):
            if name not in _DAYS:
                raise ValueError(f"unknown day {name!r} (use mon..sun, e.g. mon-fri or sat,sun)")
        start, stop = _DAYS.index(first), _DAYS.index(last or first)
        days.update((start + i) % 7 for i in range((stop - start) % 7 + 1))
    return frozenset(days)


def _days(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"not a list of days: {value!r} (use e.g. mon-fri or sat,sun)")
    parse_days(value)
    return value.strip().lower()


def _template_id(value: Any) -> int | str:
    # ClickSend's template ids are numbers; SkillBoss (Prelude) ones may be text.
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        return int(text) if text.isdigit() and int(text) > 0 else text
    raise ValueError(f"not a template id: {value!r}")


def _until(value: Any) -> date | datetime:
    if isinstance(value, date):  # a datetime is a date too
        return value
    if isinstance(value, str):
        try:
            text = value.strip()
            return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"not a date or date-time: {value!r} (use e.g. 2027-06-01)")


def _identifier(value: str) -> str:
    if not is_identifier(value):
        raise ValueError(f"{value!r} is not a field name (letters, digits, underscore)")
    return value


def _name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > NAME_MAX:
        raise ValueError(f"longer than {NAME_MAX} characters")
    return value


def _zone_name(value: str) -> str:
    return check_timezone(value.strip())


def _cron(value: str) -> str:
    value = " ".join(value.split())
    if not croniter.is_valid(value):
        raise ValueError(f"not a valid cron expression: {value!r} (e.g. '0 9 * * mon')")
    try:
        # croniter gives up after searching its window of years: a date that exists in
        # no year (30 February) would otherwise fail at every scheduler tick instead.
        croniter(value, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(f"{value!r} never fires (no such date in any year)") from None
    return value


Duration = Annotated[
    timedelta, PlainValidator(parse_duration), PlainSerializer(format_duration, return_type=str)
]
PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
LocalTime = Annotated[
    time,
    PlainValidator(_parse_hhmm),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
]
Identifier = Annotated[str, AfterValidator(_identifier)]
Name = Annotated[str, AfterValidator(_name)]
TemplateId = Annotated[int | str, PlainValidator(_template_id)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- schedule -------------------------------------------------------------------------


class Relative(_Model):
    """A reminder: each recipient's message is due at the date-time in one of their
    contact fields plus ``offset`` (e.g. 24 hours before an appointment: ``-24h``)."""

    field: Identifier
    offset: Duration = timedelta(0)


class Window(_Model):
    """When messages may go out, in each recipient's local time. ``start`` after ``end``
    is a window across midnight (20:00-08:00)."""

    start: LocalTime
    end: LocalTime
    days: Annotated[str, PlainValidator(_days)] = "mon-sun"

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        raise_if([("end", "must differ from start")] if self.start == self.end else [])
        return self

    def weekdays(self) -> frozenset[int]:
        """Allowed weekdays, Monday = 0."""
        return parse_days(self.days)


_CRON_ONLY = ("until", "overlap", "catch_up")


class Schedule(_Model):
    """When a campaign sends. ``send_at`` (once) or ``cron`` (recurring), or neither
    (the run starts when the campaign is started); the rest shape each run."""

    send_at: datetime | None = None
    cron: Annotated[str, AfterValidator(_cron)] | None = None
    timezone: Annotated[str, AfterValidator(_zone_name)] | None = None
    until: (
        Annotated[
            date | datetime,
            PlainValidator(_until),
            PlainSerializer(lambda v: v.isoformat(), return_type=str),
        ]
        | None
    ) = None
    overlap: Literal["skip", "queue"] = "skip"
    catch_up: Literal["latest", "none", "all"] = "latest"
    relative: Relative | None = None
    expires_after: PositiveDuration | None = None
    window: Window | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Schedule:
        problems: list[tuple[str, str]] = []
        if not self.model_fields_set - {"timezone"}:
            problems.append(("", "empty: give send_at, cron, relative, window or expires_after"))
        if self.send_at is not None and self.cron is not None:
            problems.append(("cron", "send_at and cron are mutually exclusive"))
        if self.send_at is not None and self.send_at.tzinfo is None and self.timezone is None:
            problems.append(("send_at", "no UTC offset: add one (+01:00) or set timezone"))
        if self.cron is None:
            problems.extend((key, "only with cron") for key in _CRON_ONLY if self._given(key))
        raise_if(problems)
        return self

    def _given(self, key: str) -> bool:
        return key in self.model_fields_set

    def zone(self) -> ZoneInfo:
        """The zone of send_at, cron and until (UTC when not given)."""
        return ZoneInfo(self.timezone or "UTC")

    def send_at_utc(self) -> datetime | None:
        """send_at as an aware UTC datetime."""
        if self.send_at is None:
            return None
        at = self.send_at if self.send_at.tzinfo else self.send_at.replace(tzinfo=self.zone())
        return at.astimezone(UTC)

    def last_occurrence_utc(self) -> datetime | None:
        """The latest instant a cron occurrence may have (UTC): a date ``until`` includes
        that whole day."""
        if self.until is None:
            return None
        if isinstance(self.until, datetime):
            until = self.until
        else:
            until = datetime.combine(self.until, time.max)
        if until.tzinfo is None:
            until = until.replace(tzinfo=self.zone())
        return until.astimezone(UTC)


# -- audience and message -------------------------------------------------------------


class Audience(_Model):
    """Who receives the campaign: local contact lists by name, and ClickSend lists (by
    id) to sync before each run."""

    lists: list[Name]
    clicksend_lists: list[Annotated[int, Field(gt=0)]] = []

    @model_validator(mode="after")
    def _distinct(self) -> Audience:
        problems = [("lists", "name at least one contact list")] if not self.lists else []
        seen: set[str] = set()
        for i, name in enumerate(self.lists):
            if name in seen:
                problems.append((f"lists[{i}]", f"{name!r} is listed twice"))
            seen.add(name)
        raise_if(problems)
        return self


def _sender_problem(sender: str) -> str | None:
    digits = sender.removeprefix("+")
    if digits.isdigit():
        return None if len(digits) <= 16 else "a number has at most 16 digits"
    if len(sender) > SENDER_ID_MAX:
        return f"an alphanumeric sender ID has at most {SENDER_ID_MAX} characters"
    if not re.fullmatch(r"[A-Za-z0-9 ]+", sender):
        return "an alphanumeric sender ID has only letters, digits and spaces"
    return None


class MessageSpec(_Model):
    """What is sent: a ``body`` with placeholders, or a provider-side ``template_id``;
    plus the sender and the channel's own options."""

    body: str | None = None
    template_id: TemplateId | None = None
    from_: str | None = Field(default=None, alias="from")
    defaults: dict[Identifier, str] = {}
    media_file: str | None = None
    subject: str | None = None
    voice: Literal["female", "male"] | None = None
    lang: str | None = None
    require_input: bool | None = None
    machine_detection: bool | None = None
    variables: dict[Identifier, str] | None = None

    @model_validator(mode="after")
    def _content(self) -> MessageSpec:
        problems: list[tuple[str, str]] = []
        if (self.body is None) == (self.template_id is None):
            problems.append(("body", "give exactly one of body and template_id"))
        if self.body is not None and not self.body.strip():
            problems.append(("body", "must not be empty"))
        if self.from_ is not None and (problem := _sender_problem(self.from_.strip())):
            problems.append(("from", problem))
        if self.lang is not None and not re.fullmatch(r"[a-z]{2,3}-[a-z]{2,4}", self.lang):
            problems.append(("lang", f"not a language code: {self.lang!r} (e.g. en-us)"))
        if self.media_file is not None and not re.match(r"https?://\S+\Z", self.media_file):
            problems.append(("media_file", "must be an http(s) URL"))
        problems.extend(self._unused_defaults())
        raise_if(problems)
        return self

    def _unused_defaults(self) -> list[tuple[str, str]]:
        # Catches typos ("frist_name"); with a provider template the fields are unknown.
        if self.body is None:
            return []
        used = placeholders(self.body)
        for value in (self.variables or {}).values():
            used |= placeholders(value)
        return [
            (f"defaults.{name}", f"the message has no {{{name}}} placeholder")
            for name in sorted(set(self.defaults) - used)
        ]

    def clicksend_template_id(self) -> int | None:
        """template_id as ClickSend's numeric id (None without one). A text id is a
        SkillBoss (Prelude) template and raises ValueError here."""
        if self.template_id is None or isinstance(self.template_id, int):
            return self.template_id
        raise ValueError(f"message.template_id: {self.template_id!r} is not a ClickSend id")


# -- guards: budget and canary --------------------------------------------------------


class Budget(_Model):
    """Spending caps in the account's currency, kept from the provider's per-message
    prices: a run pauses itself before a batch that would cross one."""

    campaign: Annotated[Decimal, Field(gt=0)] | None = None
    run: Annotated[Decimal, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _some(self) -> Budget:
        raise_if([] if self.campaign or self.run else [("", "give campaign, run or both")])
        return self


def _share(value: Any) -> float:
    """0.05 or "5%" -> 0.05."""
    text = str(value).strip()
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"not a share: {value!r} (use e.g. 0.05 or 5%)") from None
    if isinstance(value, bool) or not 0 <= share <= 1:
        raise ValueError(f"not a share between 0 and 1 (0% and 100%): {value!r}")
    return share


def _slice(value: Any) -> int | str:
    """A count of recipients (100) or a percentage of the run ("5%")."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.strip().endswith("%"):
        share = _share(value)
        if share <= 0:
            raise ValueError("must be more than 0%")
        return value.strip()
    raise ValueError(f"not a count or a percentage: {value!r} (use e.g. 100 or 5%)")


class Canary(_Model):
    """Send a first slice, wait, and go on only while its failure rate stays low."""

    first: Annotated[int | str, PlainValidator(_slice)]
    wait: PositiveDuration = timedelta(minutes=10)
    max_failure_rate: Annotated[float, PlainValidator(_share)] = 0.05

    def slice_size(self, total: int) -> int:
        """Recipients in the slice for a run of ``total`` sendable messages (at least 1)."""
        if isinstance(self.first, int):
            return self.first
        return max(1, round(total * _share(self.first)))


def _check_levels(value: dict[str, Level]) -> dict[str, Level]:
    unknown = sorted(set(value) - set(DEFAULT_LEVELS))
    if unknown:
        raise ValueError(
            f"unknown check {unknown[0]!r} (one of {', '.join(sorted(DEFAULT_LEVELS))})"
        )
    return value


# -- the definition -------------------------------------------------------------------

_ONLY_FOR = {
    "media_file": ("mms",),
    "subject": ("mms",),
    "voice": ("voice",),
    "lang": ("voice",),
    "require_input": ("voice",),
    "machine_detection": ("voice",),
}


class CampaignDefinition(_Model):
    """A whole campaign as the user wrote it (see docs/definitions.md)."""

    name: Name
    channel: Literal["sms", "mms", "voice"]
    provider: Literal["clicksend", "skillboss", "sandbox"] | None = None
    audience: Audience
    message: MessageSpec
    schedule: Schedule | None = None
    # marketing messages need opt-out text (the opt_out check)
    purpose: Literal["marketing", "transactional"] = "marketing"
    checks: Annotated[dict[str, Level], AfterValidator(_check_levels)] = {}
    budget: Budget | None = None
    canary: Canary | None = None

    @model_validator(mode="after")
    def _channel_and_provider(self) -> CampaignDefinition:
        raise_if(self._channel_problems() + self._provider_problems())
        return self

    def _channel_problems(self) -> list[tuple[str, str]]:
        msg = self.message
        problems = [
            (f"message.{key}", f"only for channel {' or '.join(channels)}")
            for key, channels in _ONLY_FOR.items()
            if getattr(msg, key) is not None and self.channel not in channels
        ]
        if self.channel == "mms":
            if msg.media_file is None:
                problems.append(("message.media_file", "field required for channel mms"))
            if msg.subject is not None and len(msg.subject) > MMS_SUBJECT_MAX:
                problems.append(("message.subject", f"longer than {MMS_SUBJECT_MAX} characters"))
            if msg.body is not None and len(msg.body) > MMS_BODY_MAX:
                problems.append(("message.body", f"longer than {MMS_BODY_MAX} characters"))
        if self.channel == "voice" and msg.body is not None and len(msg.body) > VOICE_BODY_MAX:
            problems.append(("message.body", f"longer than {VOICE_BODY_MAX} characters"))
        return problems

    def _provider_problems(self) -> list[tuple[str, str]]:
        msg, problems = self.message, []
        if self.provider == "skillboss":
            if msg.variables is not None and msg.template_id is None:
                problems.append(("message.variables", "only with template_id"))
            if msg.template_id is not None and self.channel != "sms":
                problems.append(("message.template_id", "SkillBoss templates send SMS only"))
        else:
            if msg.variables is not None:
                problems.append(("message.variables", "only with provider skillboss"))
            if isinstance(msg.template_id, str):
                problems.append(
                    (
                        "message.template_id",
                        "a ClickSend template id is a number (a text id needs provider skillboss)",
                    )
                )
        return problems


def load_definition(source: str | Path | Mapping[str, Any]) -> CampaignDefinition:
    """Validate a definition given as YAML or JSON text, a file path, or a mapping
    (e.g. ``definition_to_json`` output). Raises DefinitionError listing every problem."""
    data = read_source(source)
    if not isinstance(data, Mapping):
        hint = " (no such file)" if isinstance(source, str) and "\n" not in source else ""
        raise DefinitionError([f"(top level): a mapping of keys expected{hint}"])
    try:
        return CampaignDefinition.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(error_lines(exc)) from None


def definition_to_json(defn: CampaignDefinition) -> dict[str, Any]:
    """JSON-ready form (as stored in ``campaigns.definition``); load_definition reads it
    back into an equal definition."""
    return defn.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
