"""Export of a run's 1,000,000 messages as CSV through the API, in constant memory: the
server streams keyset pages, so its memory does not grow with the run."""

from __future__ import annotations

import threading
import time

import psutil
import pytest
from sqlalchemy import text

from campaigns.db import get_engine, is_sqlite
from tests.apiclient import api_client
from tests.seed import seed_campaign, seed_list, us_numbers

ROWS = 1_000_000


def _fill(db_url: str, run_id: int) -> None:
    """A million sent messages, generated inside the database."""
    engine = get_engine(db_url)
    columns = "run_id, phone, body, status, attempts, provider_message_id, delivery_status"
    values = (
        f"{run_id}, '+1201' || substr('0000000' || g, -7, 7), '', 'sent', 1, 'M' || g, "
        "CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'delivered' END"
    )
    if is_sqlite(engine):
        sql = (
            "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :n) "
            f"INSERT INTO messages ({columns}) SELECT {values} FROM s"
        )
    else:
        values = values.replace("substr('0000000' || g, -7, 7)", "lpad(g::text, 7, '0')")
        sql = f"INSERT INTO messages ({columns}) SELECT {values} FROM generate_series(1, :n) g"
    with engine.begin() as conn:
        conn.execute(text(sql), {"n": ROWS})
        if not is_sqlite(engine):
            conn.execute(text("ANALYZE messages"))


@pytest.mark.slow
def test_export_of_a_million_messages_streams_in_constant_memory(db_url: str) -> None:
    seed_list(db_url, "customers", us_numbers(1))
    _, run_id = seed_campaign(db_url, ["customers"])
    _fill(db_url, run_id)
    process = psutil.Process()
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.02)

    with api_client(db_url) as client:
        client.get("/health")
        baseline = process.memory_info().rss
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        lines = size = 0
        first = b""
        with client.stream("GET", f"/api/v1/runs/{run_id}/messages.csv") as answer:
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/csv")
            for chunk in answer.iter_bytes():
                if not first:
                    first = chunk[:200]
                lines += chunk.count(b"\n")
                size += len(chunk)
        done.set()
        sampler.join()
    assert first.startswith(b"id,phone,status,error,attempts,provider_message_id,delivery_status")
    assert lines == ROWS + 1
    grown = (peak[0] - baseline) / 2**20
    # The CSV itself is this big; a server that built it in memory would grow by more.
    assert size / 2**20 > 40
    print(f"memory growth {grown:.1f} MiB for {size / 2**20:.0f} MiB of CSV")
    assert grown < 20, f"memory grew by {grown:.0f} MiB while streaming {size / 2**20:.0f} MiB"
