"""Dashboard benchmark: every page's answer time with 1,000,000 messages in a run.

    .venv/bin/python bench/dashboard.py --messages 1000000 --repeat 30

Seeds a fresh PostgreSQL database with one list of as many contacts, a campaign whose run
is mid-send (40 % sent, a tenth of those with receipts, 3 % failed under 5 reasons, 2 %
suppressed, the rest pending), 60 minutes of per-minute activity and 10,000 suppressions,
then serves the app with `clarion api` and times each page over HTTP: the first request
(cold: this process has not counted the run yet) and ``--repeat`` more, one every 0.3 s
(warm: counts come from the background-refreshed cache, which recounts the run while the
pages are read, as it does while someone watches a send).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import create_engine, text

from bench.common import CLARION, free_port, scratch_database, stop_groups
from campaigns.db import session_scope

TOKEN = "bench-dashboard-token"


def seed(url: str, messages: int) -> None:
    definition = json.dumps(
        {
            "name": "million",
            "channel": "sms",
            "audience": {"lists": ["customers"]},
            "message": {"body": "Hi {first_name}, 20% off this week", "from": "Clarion"},
        }
    )
    statements = [
        "INSERT INTO contact_lists (id, name, source, created_at) "
        "VALUES (1, 'customers', 'local', now())",
        f"INSERT INTO contacts (list_id, phone, fields, updated_at) SELECT 1, "
        f"'+1201' || lpad(g::text, 7, '0'), json_build_object('first_name', 'N' || g), now() "
        f"FROM generate_series(1, {messages}) g",
        "INSERT INTO campaigns (id, name, channel, definition, status, created_at, started_at) "
        f"VALUES (1, 'million', 'sms', '{definition}', 'active', now(), now() - interval '1 hour')",
        "INSERT INTO runs (id, campaign_id, occurrence, status, key, duplicates_removed, "
        "rate_limited, created_at, started_at, last_activity_at) VALUES (1, 1, "
        "now() - interval '1 hour', 'sending', 'bench-run-1', 0, 7, now(), "
        "now() - interval '1 hour', now())",
        # Status by position: 40 % sent (a tenth with receipts), 3 % failed, 2 % suppressed.
        f"INSERT INTO messages (run_id, phone, body, status, attempts, error, sent_at, "
        f"delivery_status, parts) SELECT 1, '+1201' || lpad(g::text, 7, '0'), "
        f"'Hi N' || g || ', 20% off this week', "
        f"CASE WHEN g % 100 < 40 THEN 'sent' WHEN g % 100 < 43 THEN 'failed' "
        f"WHEN g % 100 < 45 THEN 'suppressed' ELSE 'pending' END, "
        f"CASE WHEN g % 100 < 43 THEN 1 ELSE 0 END, "
        f"CASE WHEN g % 100 BETWEEN 40 AND 42 THEN 'provider status ' || "
        f"(ARRAY['INVALID_RECIPIENT','COUNTRY_NOT_ENABLED','BLOCKED','INVALID_SENDER_ID',"
        f"'SPAM_DETECTED'])[1 + g % 5] END, "
        f"CASE WHEN g % 100 < 40 THEN now() END, "
        f"CASE WHEN g % 1000 < 40 THEN 'Delivered' END, CASE WHEN g % 100 < 40 THEN 1 END "
        f"FROM generate_series(1, {messages}) g",
        "INSERT INTO run_minutes (run_id, minute, accepted, rate_limited) SELECT 1, "
        "date_trunc('minute', now()) - (g || ' minutes')::interval, 6000 + g * 10, "
        "CASE WHEN g % 9 = 0 THEN 2 ELSE 0 END FROM generate_series(0, 59) g",
        "INSERT INTO suppressions (phone, reason, created_at) SELECT '+1555' || "
        "lpad(g::text, 7, '0'), 'STOP reply', now() FROM generate_series(1, 10000) g",
    ]
    with session_scope(url) as session:
        for statement in statements:
            session.execute(text(statement))
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


PAGES = [
    ("campaigns", "/ui/"),
    ("campaigns table (refresh)", "/ui/campaigns-table"),
    ("campaign", "/ui/campaigns/1"),
    ("campaign live part (refresh)", "/ui/campaigns/1/live"),
    (
        "failures by reason, a page",
        "/ui/campaigns/1/runs/1/failures?reason=provider+status+BLOCKED",
    ),
    ("lists", "/ui/lists"),
    ("suppressions search", "/ui/suppressions?q=5550001"),
    ("schedule", "/ui/schedule"),
    ("/metrics", "/metrics"),
]


def measure(base: str, repeat: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        assert client.post("/ui/login", data={"token": TOKEN}).status_code == 303
        headers = {"Authorization": f"Bearer {TOKEN}"}
        for name, path in PAGES:
            times = []
            for i in range(repeat + 1):
                started = time.perf_counter()
                answer = client.get(path, headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
                times.append(elapsed)
                if i:
                    time.sleep(0.3)
            warm = sorted(times[1:])
            results[name] = {
                "first_ms": round(times[0], 1),
                "median_ms": round(statistics.median(warm), 1),
                "p95_ms": round(warm[max(0, int(len(warm) * 0.95) - 1)], 1),
                "max_ms": round(warm[-1], 1),
            }
            print(f"{name:32s} {results[name]}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with scratch_database() as url:
        started = time.monotonic()
        seed(url, args.messages)
        print(
            f"seeded {args.messages:,} messages in {time.monotonic() - started:.0f} s", flush=True
        )
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
        env.update(CLARION_DATABASE_URL=url, CLARION_API_TOKENS=TOKEN, CLARION_LOG_LEVEL="WARNING")
        proc = subprocess.Popen(
            [*CLARION, "api", "--port", str(port)], env=env, start_new_session=True
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{base}/health", timeout=2)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            results = measure(base, args.repeat)
        finally:
            stop_groups([proc], grace=10)
    print(json.dumps({"messages": args.messages, "pages": results}, indent=2))


if __name__ == "__main__":
    main()
