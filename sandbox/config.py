"""The sandbox's settings: credentials, prices, rate limit, faults and receipt behaviour."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

# Fields an operator may change while the sandbox runs (POST /_sandbox/config).
RUNTIME_FIELDS = frozenset(
    {
        "rate_limit_rps",
        "rate_limit_burst",
        "arrival_jitter_ms",
        "error_rate",
        "drop_rate",
        "hold_rate",
        "hold_seconds",
        "latency_ms",
        "throttle_window_seconds",
        "receipt_delay_seconds",
        "receipt_url",
        "receipt_failure_rate",
        "receipt_retry_seconds",
        "receipt_max_attempts",
        "seed",
    }
)


@dataclass
class SandboxConfig:
    """How the sandbox behaves. Defaults: generous balance, no faults, no rate limit."""

    username: str = "sandbox"
    api_key: str = field(default="sandbox-key", repr=False)  # HTTP Basic for /v3
    skillboss_api_key: str = field(default="sandbox-skillboss-key", repr=False)
    balance: Decimal = Decimal("1000000")
    currency: str = "USD"
    price_per_part: Decimal = Decimal("0.0250")  # SMS, per part
    mms_price: Decimal = Decimal("0.3000")  # per MMS
    voice_price_per_part: Decimal = Decimal("0.0700")  # per 300-character credit
    rate_limit_rps: float = 0.0  # requests/s per account, 0 = unlimited
    rate_limit_burst: int = 0  # bucket size (0 -> max(1, rps))
    # Each API request spends a random 0..this long on its way before the bucket counts
    # it: a provider counts arrivals, and the network and the client's CPU delay them.
    arrival_jitter_ms: float = 0.0
    error_rate: float = 0.0  # share of send requests answered 500 (nothing accepted)
    drop_rate: float = 0.0  # share of send requests accepted, then connection dropped
    # share of send requests held for hold_seconds before they are accepted and answered
    # (a client with a shorter timeout has given up by then; the messages go out anyway)
    hold_rate: float = 0.0
    hold_seconds: float = 0.0
    latency_ms: float = 0.0
    throttle_window_seconds: float = 0.0  # same body to same number within it -> THROTTLED
    receipt_delay_seconds: float = 1.0
    receipt_url: str | None = None  # push receipts here, form-encoded, retry on non-200
    receipt_failure_rate: float = 0.0  # share of sent messages whose receipt says failed
    receipt_retry_seconds: float = 600.0  # ClickSend retries a failed push every 10 minutes
    receipt_max_attempts: int = 10
    default_country: str = "US"  # region for numbers not written in E.164
    seed: int | None = None  # deterministic fault choice for tests

    def bucket_size(self) -> float:
        """Token bucket capacity."""
        return (
            float(self.rate_limit_burst)
            if self.rate_limit_burst > 0
            else max(1.0, self.rate_limit_rps)
        )

    def update(self, changes: Mapping[str, Any]) -> list[str]:
        """Apply a partial update of the run-time fields; returns the names changed.

        Raises ValueError naming the first field that is unknown, fixed or of a wrong type.
        """
        types = {f.name: f.type for f in fields(self)}
        parsed: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in RUNTIME_FIELDS:
                raise ValueError(f"{name}: not a field that can change at run time")
            parsed[name] = _coerce(name, str(types[name]), value)
        for name, value in parsed.items():
            setattr(self, name, value)
        return sorted(parsed)


def _coerce(name: str, type_name: str, value: Any) -> Any:
    """``value`` as the field's type, or ValueError naming the field."""
    if value is None and "None" in type_name:
        return None
    try:
        if type_name.startswith("float"):
            number = float(value)
            if number < 0:
                raise ValueError
            return number
        if type_name.startswith("int"):
            if isinstance(value, bool) or int(value) != value or int(value) < 0:
                raise ValueError
            return int(value)
        if type_name.startswith("str"):
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError):
        pass
    raise ValueError(f"{name}: expected {type_name}, got {value!r}")
