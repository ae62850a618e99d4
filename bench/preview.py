"""Preview: `clarion campaign preview` over a large audience (streamed, no rows written).

    flock /tmp/bench.lock .venv/bin/python bench/preview.py --recipients 1000000 --runs 3

A fresh PostgreSQL database with ``--recipients`` contacts (one in 1000 suppressed) and a
draft SMS campaign with a one-placeholder body. Timed, ``--runs`` times each: the domain
preview in this process (``campaigns.preflight.preflight``: every recipient rendered,
encoded, priced and checked), and the whole command, `clarion campaign preview ID -n 10
--json`, in a process of its own (start-up, settings, printing included). Prints JSON
with every run's seconds, the medians and the peak memory of the command.
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

from bench.common import CLARION, MemorySampler, scratch_database, seed_contacts

SUPPRESS_EVERY = 1000
BODY = "Hi {first_name}, 20% off everything this weekend. Reply STOP to opt out"


def prepare(db_url: str, recipients: int) -> int:
    from sqlalchemy import insert, select

    from campaigns.db import session_scope
    from campaigns.models import Contact, Suppression
    from campaigns.runs import create_campaign

    seed_contacts(db_url, "bench", recipients)
    with session_scope(db_url) as session:
        phones = list(
            session.scalars(select(Contact.phone).where(Contact.id % SUPPRESS_EVERY == 0))
        )
        session.execute(insert(Suppression), [{"phone": p, "reason": "bench"} for p in phones])
        campaign = create_campaign(
            session,
            {
                "name": "bench-preview",
                "channel": "sms",
                "audience": {"lists": ["bench"]},
                "message": {"body": BODY, "from": "+12015550999"},
            },
        )
        return campaign.id


def domain_preview(db_url: str, campaign_id: int) -> tuple[float, dict[str, object]]:
    from campaigns.db import session_scope
    from campaigns.definition import load_definition
    from campaigns.preflight import preflight
    from campaigns.pricing import BUILT_IN, PriceTable
    from campaigns.runs import get_campaign

    with session_scope(db_url) as session:
        defn = load_definition(get_campaign(session, campaign_id).definition)
        started = time.perf_counter()
        result = preflight(session, defn, PriceTable(BUILT_IN), sample=10)
        elapsed = time.perf_counter() - started
    return elapsed, result.preview.totals.to_json()


def command_preview(db_url: str, campaign_id: int) -> tuple[float, float, dict[str, object]]:
    env = {**os.environ, "CLARION_DATABASE_URL": db_url, "CLARION_LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*CLARION, "campaign", "preview", str(campaign_id), "-n", "10", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with MemorySampler([proc.pid], interval=0.2) as memory:
        out, err = proc.communicate()
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(err.decode())
    peak_mb = max(memory.peaks.values(), default=0) / 2**20
    return elapsed, peak_mb, json.loads(out)["totals"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with scratch_database() as db_url:
        started = time.perf_counter()
        campaign_id = prepare(db_url, args.recipients)
        seeded = time.perf_counter() - started
        domain, command, peaks = [], [], []
        totals: dict[str, object] = {}
        for _ in range(args.runs):
            seconds, totals = domain_preview(db_url, campaign_id)
            domain.append(round(seconds, 2))
            seconds, peak, cli_totals = command_preview(db_url, campaign_id)
            assert cli_totals["messages"] == totals["messages"]
            command.append(round(seconds, 2))
            peaks.append(round(peak, 1))
    print(
        json.dumps(
            {
                "recipients": args.recipients,
                "seed_seconds": round(seeded, 1),
                "domain_preview_seconds": domain,
                "domain_median": statistics.median(domain),
                "command_seconds": command,
                "command_median": statistics.median(command),
                "command_peak_mb": peaks,
                "messages": totals.get("messages"),
                "suppressed": totals.get("suppressed"),
                "parts": totals.get("parts"),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
