"""Prometheus metrics of provider requests, counted where every request is made
(``clicksend.http.HttpCore.request``): sends, polls, look-ups and cancels alike.

The endpoint label is the method and the path with its ids replaced by ``{id}``, so the
number of series stays bounded however many messages are looked up.
"""

from __future__ import annotations

import re

from prometheus_client import Counter, Histogram

PROVIDER_REQUESTS = Counter(
    "clarion_provider_requests",
    "Requests to the provider, by endpoint and HTTP status (connect_error: never left; "
    "no_answer: sent, no answer arrived)",
    ["endpoint", "status"],
)
PROVIDER_LATENCY = Histogram(
    "clarion_provider_request_duration_seconds",
    "Time from sending a provider request to its answer",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
PROVIDER_RATE_LIMITED = Counter(
    "clarion_provider_rate_limited",
    "429 answers from the provider, by endpoint",
    ["endpoint"],
)

_KEEP = re.compile(r"[a-z][a-z-]*|v\d+")
_endpoints: dict[str, str] = {}


def endpoint(method: str, path: str) -> str:
    """``PUT /sms/{id}/cancel`` for ``PUT /sms/ab12.../cancel``: ids become ``{id}``."""
    where = f"{method} {path}"
    found = _endpoints.get(where)
    if found is None:
        segments = path.split("?", 1)[0].split("/")
        label = "/".join(s if not s or _KEEP.fullmatch(s) else "{id}" for s in segments)
        found = f"{method} {label}"
        if len(_endpoints) < 10_000:  # a cache, bounded however many ids pass through
            _endpoints[where] = found
    return found


def observe(method: str, path: str, status: int | str, seconds: float | None) -> None:
    """Count one request; ``seconds`` is None when no answer arrived."""
    name = endpoint(method, path)
    PROVIDER_REQUESTS.labels(name, str(status)).inc()
    if seconds is not None:
        PROVIDER_LATENCY.labels(name).observe(seconds)
    if status == 429:
        PROVIDER_RATE_LIMITED.labels(name).inc()
