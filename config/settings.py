"""Settings from ``CLARION_*`` environment variables and an optional ``.env`` file.

The variable names are a public contract (operators' scripts use them); see the README.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.logging import redact

ProviderName = Literal["clicksend", "skillboss", "sandbox"]

# A claimed batch may wait this long for the rate limit before its request (longer waits
# give the batch back), so a claim must outlast that wait plus the whole request.
INLINE_WAIT_SECONDS = 2.0
# Lease a request must still have left when it leaves, beyond the HTTP timeout.
FENCE_MARGIN_SECONDS = 1.0


class Settings(BaseSettings):
    """Everything Clarion reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="CLARION_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str = "sqlite:///clarion.db"
    broker_url: str = "memory://"
    # The Celery queue (and, on RabbitMQ, its exchange). With a Redis broker the key prefix
    # below keeps deployments apart; on RabbitMQ give each deployment its own vhost or its
    # own queue name.
    broker_queue: str = Field(default="clarion", min_length=1)
    # Redis for the global rate limit and the scheduler lock; empty means in-process
    # (the embedded default, one process only).
    redis_url: str = ""
    # Prefix of every Redis key Clarion writes (rate limit, locks, and the Celery broker's
    # own keys), so several deployments or test runs can share one Redis.
    redis_key_prefix: str = "clarion:"

    provider: ProviderName = "sandbox"
    clicksend_base_url: str = "https://rest.clicksend.com/v3"
    clicksend_username: str = ""
    clicksend_api_key: SecretStr = SecretStr("")
    skillboss_base_url: str = "https://api.skillboss.com"
    skillboss_api_key: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("CLARION_SKILLBOSS_API_KEY", "SKILLBOSS_API_KEY"),
    )
    # Where the sandbox provider listens when CLARION_PROVIDER=sandbox and it is run
    # in-process or as `clarion sandbox`.
    sandbox_url: str = "http://127.0.0.1:8765/v3"
    sandbox_username: str = "sandbox"
    sandbox_api_key: SecretStr = SecretStr("sandbox-key")

    batch_size: int = Field(default=1000, ge=1, le=1000)
    default_region: str = "US"
    # How many dispatch tasks one run keeps in flight (one per worker process is right).
    dispatch_parallelism: int = Field(default=2, ge=1, le=64)
    # A claim older than this is presumed dead and recovered by the scheduler tick.
    lease_seconds: float = Field(default=120.0, gt=0)
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    # A request whose outcome is unknown (timeout, 5xx, dropped answer) is looked up in the
    # provider's history this long after it ended: a slow provider may still be accepting it.
    reconcile_grace_seconds: float = Field(default=90.0, ge=0)
    # A first "not found" is looked up again this long later before anything is resent.
    reconcile_after_seconds: float = Field(default=10.0, ge=0)

    # Global rate limit, shared by every worker through Redis (0 = unlimited).
    rate_limit_requests_per_second: float = Field(default=0.0, ge=0)
    rate_limit_messages_per_second: float = Field(default=0.0, ge=0)
    # Requests are granted this share under the request rate, with a burst of this many
    # seconds of it (at least one request): docs/rate-limit.md (a smaller burst and a margin
    # were measured; with few workers they cost more throughput than the 429s they save).
    rate_limit_margin: float = Field(default=0.0, ge=0, lt=1)
    rate_limit_burst_seconds: float = Field(default=0.5, gt=0)
    retry_after_ceiling_seconds: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=300.0, gt=0)

    scheduler_tick_seconds: float = Field(default=1.0, gt=0)
    # The scheduler deletes the message rows of runs finished this many days ago (0: never);
    # run totals stay (campaigns/retention.py).
    retention_days: float = Field(default=0.0, ge=0)
    inbound_poll_seconds: float = Field(default=15.0, gt=0)
    receipts_poll_seconds: float = Field(default=60.0, gt=0)
    # A message deferred (send window, reminder) further ahead than this is handed to the
    # provider at once with its `schedule`; a nearer one waits in our database. 0 = never.
    scheduler_handover_seconds: float = Field(default=900.0, ge=0)
    log_level: str = "INFO"
    # Worker processes serve Prometheus metrics on this port plus their pool index
    # (0, 1, ... for `clarion worker -c N`); 0 turns it off. See docs/metrics.md.
    metrics_port: int = Field(default=0, ge=0, le=65535)

    # The HTTP API (`clarion serve`, `clarion api`): bearer tokens, comma-separated (several
    # so one can be rotated out while another is in use); none configured refuses every call.
    api_tokens: SecretStr = SecretStr("")
    # The secret path segment of the webhook URLs ClickSend pushes receipts and replies to
    # (ClickSend does not sign its pushes); empty disables the webhooks.
    webhook_secret: SecretStr = SecretStr("")

    def api_token_list(self) -> list[str]:
        return [t.strip() for t in self.api_tokens.get_secret_value().split(",") if t.strip()]

    # Local price table for cost estimates: a YAML/JSON file or inline JSON, e.g.
    # {"sms": {"default": 0.025, "GB": 0.04}, "mms": {"default": 0.30}}; prices per part
    # (an MMS is one part, a voice credit 300 characters). Empty: the built-in table.
    price_table: str = ""
    # Content-check levels over the defaults, "urls=error,opt_out=off" (a definition's
    # own `checks:` wins over these).
    checks: str = ""
    # How long the provider's voice languages (GET /voice/lang) are kept.
    voice_lang_cache_seconds: float = Field(default=3600.0, ge=0)
    # No recipient gets more than K messages in a rolling window, over all campaigns:
    # "3/24h" (empty: no cap). Over the cap a message is deferred or skipped.
    frequency_cap: str = ""
    frequency_policy: Literal["defer", "skip"] = "defer"

    def missing_credentials(self) -> list[str]:
        """The credential variables the configured provider needs that are empty."""
        if self.provider == "clicksend":
            needed = {
                "CLARION_CLICKSEND_USERNAME": self.clicksend_username,
                "CLARION_CLICKSEND_API_KEY": self.clicksend_api_key.get_secret_value(),
            }
        elif self.provider == "skillboss":
            needed = {"CLARION_SKILLBOSS_API_KEY": self.skillboss_api_key.get_secret_value()}
        else:
            needed = {"CLARION_SANDBOX_API_KEY": self.sandbox_api_key.get_secret_value()}
        return [name for name, value in needed.items() if not value.strip()]

    def __repr_args__(self) -> Any:
        # URLs may carry a password (redis://:password@host): never in a repr or a log.
        for name, value in super().__repr_args__():
            yield name, redact(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _redis_broker_shares_its_limit(self) -> Settings:
        if self.broker_url.startswith(("redis://", "rediss://")) and not self.redis_url:
            raise ValueError(
                "CLARION_REDIS_URL is empty but CLARION_BROKER_URL is a Redis broker: "
                "workers on a broker must share the rate limit, set CLARION_REDIS_URL"
            )
        return self

    @model_validator(mode="after")
    def _lease_covers_a_request(self) -> Settings:
        needed = self.http_timeout_seconds + INLINE_WAIT_SECONDS + FENCE_MARGIN_SECONDS
        if self.lease_seconds < needed:
            raise ValueError(
                f"CLARION_LEASE_SECONDS ({self.lease_seconds:g}) must be at least "
                f"CLARION_HTTP_TIMEOUT_SECONDS ({self.http_timeout_seconds:g}) + "
                f"{INLINE_WAIT_SECONDS + FENCE_MARGIN_SECONDS:g} s, so a claim outlasts "
                "its request"
            )
        return self

    def provider_credentials(self) -> tuple[str, str, str]:
        """(base_url, username, api_key) of the configured ClickSend-compatible provider."""
        if self.provider == "sandbox":
            return (
                self.sandbox_url,
                self.sandbox_username,
                self.sandbox_api_key.get_secret_value(),
            )
        if self.provider == "skillboss":
            return (self.skillboss_base_url, "", self.skillboss_api_key.get_secret_value())
        return (
            self.clicksend_base_url,
            self.clicksend_username,
            self.clicksend_api_key.get_secret_value(),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()
