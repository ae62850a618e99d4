"""Money: the local price table, and the provider's own price for a set of messages.

The local estimate is parts times a price per part, by channel and the recipient's
country (``CLARION_PRICE_TABLE``). The provider's price (``POST /sms/price``,
``/mms/price``, ``/voice/price``) is exact for the account, at one request per 1000
messages; it is asked only when the user asks for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from clicksend.endpoints import MAX_MESSAGES_PER_REQUEST

CHANNELS = ("sms", "mms", "voice")
# The sandbox's prices; set CLARION_PRICE_TABLE to your account's (ClickSend's pricing
# page lists them per country).
BUILT_IN: dict[str, dict[str, Decimal]] = {
    "sms": {"default": Decimal("0.0250")},
    "mms": {"default": Decimal("0.3000")},
    "voice": {"default": Decimal("0.0700")},
}


class PriceTableError(ValueError):
    """A price table that cannot be read; the message names the entry."""


@dataclass(frozen=True)
class PriceTable:
    """Price per part by channel and country (ISO 3166 code, or "default")."""

    prices: Mapping[str, Mapping[str, Decimal]]

    def per_part(self, channel: str, country: str | None) -> Decimal:
        by_country = self.prices.get(channel) or BUILT_IN[channel]
        if country and country in by_country:
            return by_country[country]
        return by_country.get("default", BUILT_IN[channel]["default"])

    def cost(self, channel: str, country: str | None, parts: int) -> Decimal:
        return self.per_part(channel, country) * parts


def _price(where: str, value: Any) -> Decimal:
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise PriceTableError(f"price_table.{where}: not a price: {value!r}") from None
    if isinstance(value, bool) or not price.is_finite() or price < 0:
        raise PriceTableError(f"price_table.{where}: not a price: {value!r}")
    return price


def parse_price_table(data: Any) -> PriceTable:
    """{"sms": {"default": 0.025, "GB": 0.04}, ...} -> PriceTable; PriceTableError names
    the entry that is wrong."""
    if not isinstance(data, Mapping):
        raise PriceTableError("price_table: a mapping of channel -> {country: price} expected")
    prices: dict[str, dict[str, Decimal]] = {}
    for channel, by_country in data.items():
        if channel not in CHANNELS:
            raise PriceTableError(f"price_table.{channel}: unknown channel (sms, mms or voice)")
        if not isinstance(by_country, Mapping):
            raise PriceTableError(f"price_table.{channel}: a mapping of country -> price expected")
        prices[channel] = {
            str(country) if country == "default" else str(country).upper(): _price(
                f"{channel}.{country}", value
            )
            for country, value in by_country.items()
        }
    return PriceTable({**BUILT_IN, **prices})


def load_price_table(spec: str) -> PriceTable:
    """The table from ``CLARION_PRICE_TABLE``: inline JSON, or a YAML/JSON file's path."""
    if not spec.strip():
        return PriceTable(BUILT_IN)
    text = spec
    if not spec.lstrip().startswith("{"):
        try:
            text = Path(spec).read_text(encoding="utf-8")
        except OSError as exc:
            raise PriceTableError(f"price_table: cannot read {spec}: {exc.strerror}") from None
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise PriceTableError(f"price_table: not valid JSON or YAML: {exc}") from None
    return parse_price_table(data)


@dataclass
class ProviderPrice:
    """What the provider says a set of messages costs."""

    total: Decimal = Decimal("0")
    messages: int = 0
    refused: int = 0  # messages the provider would not send (status other than SUCCESS)
    requests: int = 0
    currency: str | None = None


PriceCall = Callable[[Sequence[Mapping[str, Any]]], Any]


def provider_price(price: PriceCall, messages: Iterable[Mapping[str, Any]]) -> ProviderPrice:
    """Ask ``price`` (the client's price_sms, price_voice, or price_mms bound to the media
    file) about ``messages`` in requests of up to 1000, streaming."""
    result = ProviderPrice()
    batch: list[Mapping[str, Any]] = []

    def flush() -> None:
        answer = price(batch)
        result.requests += 1
        result.total += Decimal(str(answer.total_price))
        result.messages += len(answer.messages)
        result.refused += sum(1 for m in answer.messages if m.status != "SUCCESS")
        result.currency = answer.currency or result.currency
        batch.clear()

    for message in messages:
        batch.append(message)
        if len(batch) == MAX_MESSAGES_PER_REQUEST:
            flush()
    if batch:
        flush()
    return result
