"""Receipts applied a chunk at a time end where the same receipts applied one by one
end, on both databases: several receipts of one message in one chunk included."""

from __future__ import annotations

import random

from sqlalchemy import String, cast, literal, select, update

from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Message
from campaigns.receipts import apply_receipts
from campaigns.stats import delivery_counts, run_stats
from tests.seed import seed_campaign, seed_list, us_numbers

# What each message has before the receipts, and the receipts it gets, in order.
CASES: list[tuple[str | None, list[str]]] = [
    (None, ["sent", "delivered"]),
    (None, ["delivered", "sent"]),  # a late "queued" after the final one
    (None, ["failed", "delivered", "sent"]),  # the last final one wins
    (None, ["sent", "temporary_failure"]),
    (None, ["temporary_failure", "sent"]),
    ("delivered", ["sent", "temporary_failure"]),  # passing ones never undo a final one
    ("delivered", ["sent", "failed", "sent"]),
    ("temporary_failure", ["sent"]),
    ("sent", ["undelivered", "expired"]),
    ("failed", ["failed"]),  # replayed
    (None, ["delivered"]),
    ("delivered", []),  # no receipt: left alone
]


def _sent_run(url: str, list_name: str) -> list[str]:
    """A run whose messages were all sent, with CASES' statuses; their provider ids."""
    seed_list(url, list_name, us_numbers(len(CASES)))
    _, run_id = seed_campaign(url, [list_name])
    with session_scope(url) as session:
        expand_run(session, run_id)
        ids = sorted(session.scalars(select(Message.id).where(Message.run_id == run_id)))
        session.execute(
            update(Message)
            .where(Message.id.in_(ids))
            .values(
                status="sent",
                provider_message_id=literal(f"{list_name}-", String) + cast(Message.id, String),
            )
        )
        for message_id, (before, _) in zip(ids, CASES, strict=True):
            session.execute(
                update(Message).where(Message.id == message_id).values(delivery_status=before)
            )
    return [f"{list_name}-{i}" for i in ids]


def _states(url: str, provider_ids: list[str]) -> list[str | None]:
    with session_scope(url) as session:
        found = dict(
            session.execute(
                select(Message.provider_message_id, Message.delivery_status).where(
                    Message.provider_message_id.in_(provider_ids)
                )
            ).all()
        )
    return [found[p] for p in provider_ids]


def test_a_chunk_ends_where_its_receipts_one_by_one_end(db_url: str) -> None:
    one_by_one = _sent_run(db_url, "single")
    chunked = _sent_run(db_url, "chunk")
    with session_scope(db_url) as session:
        for provider_id, (_, receipts) in zip(one_by_one, CASES, strict=True):
            for status in receipts:
                apply_receipts(session, [(provider_id, status)])
    # One chunk, the receipts of different messages interleaved (each message's own in
    # order, as the provider lists them by time).
    queues = [[(p, s) for s in receipts] for p, (_, receipts) in zip(chunked, CASES, strict=True)]
    rng = random.Random(7)
    chunk: list[tuple[str, str]] = []
    while any(queues):
        chunk.append(rng.choice([q for q in queues if q]).pop(0))
    with session_scope(db_url) as session:
        changed = apply_receipts(session, chunk)
    assert _states(db_url, chunked) == _states(db_url, one_by_one)
    assert _states(db_url, chunked)[:6] == [
        "delivered",
        "delivered",
        "delivered",
        "temporary_failure",
        "sent",
        "delivered",
    ]
    # Counted once per message written to: all with receipts but the one whose final
    # status only got passing ones.
    assert changed == sum(1 for _, receipts in CASES if receipts) - 1
    with session_scope(db_url) as session:
        for provider_ids in (one_by_one, chunked):
            run_id = session.scalar(
                select(Message.run_id).where(Message.provider_message_id == provider_ids[0])
            )
            assert run_id is not None
            stats = run_stats(session, run_id)
            assert delivery_counts(session, run_id) == (stats.delivered, stats.undelivered)
