"""Send one batch of a run: claim, wait for the rate limit, send, record.

``Dispatcher.dispatch_once`` is the whole life of one batch, as a plain function the
Celery task calls (the worker context, ``workers.context``, builds the dispatcher once per
process). The dispatcher sends; other callers get their clients from the context. Its
guarantees:

- a row is sent only while claimed under our token with enough lease left for the whole
  request, checked and marked in flight in one statement on the claim's row right before
  the request (``claims.fence``), and only after the run was seen 'sending' right before
  that;
- a 429 gives the batch back untouched (not an attempt) and blocks every worker;
- an ambiguous failure (5xx, timeout, dropped connection) marks the rows 'unknown';
  they are looked up at the provider (``workers.reconcile``) before any resend;
- leases, attempt times and look-up times come from the database's clock, so a worker
  whose own clock is wrong cannot shorten a lease or miss a message in the history.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from redis.exceptions import RedisError
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from campaigns import budget, canary, claims, frequency
from campaigns.activity import record_minute
from campaigns.claims import Claimed
from campaigns.clock import as_utc, db_now, db_now_sql
from campaigns.db import session_factory
from campaigns.definition import CampaignDefinition, load_definition
from campaigns.models import Campaign, Contact, Message, MessageStatus, Run
from campaigns.pricing import load_price_table
from campaigns.runs import finish_if_done, pause_campaign
from clicksend.client import ClickSendClient
from clicksend.errors import (
    AuthenticationError,
    ClickSendError,
    ConnectionFailedError,
    ForbiddenError,
    OutcomeUnknownError,
    RateLimitedError,
)
from clicksend.models import MessageResult, SendResponse
from clicksend.skillboss import SkillBossClient
from config.settings import FENCE_MARGIN_SECONDS, INLINE_WAIT_SECONDS, Settings
from scheduler.planning import PlanRules, recipient_zones
from scheduler.rules import plan_rules
from scheduler.windows import next_common_opening
from workers import reconcile
from workers.backoff import (
    next_try,
    outage_retry,
    outage_window,
    retry_or_give_up,
    retry_policy,
)
from workers.gates import LimiterGate
from workers.notify import is_notify_campaign, notify_one
from workers.outcomes import STATUS_WIDTH, Verdict, verdict
from workers.ratelimit import RateLimiter
from workers.sender import send_batch

log = logging.getLogger(__name__)

Action = Literal["again", "wait", "stopped", "done"]

# A run sends while it is still being expanded: the first batches leave while the rest of a
# large audience is written.
SENDABLE = ("expanding", "sending")
# How often a dispatch chain that caught up with an expansion looks again.
EXPANSION_POLL_SECONDS = 0.5
LIMITER_DOWN_WAIT = 5.0
# How soon a capped run's chain looks again while the first batch's price is awaited.
PRICE_WAIT_SECONDS = 0.5
EXPIRY_SETTLE_ROUNDS = 5


@dataclass(frozen=True)
class Outcome:
    """What the task should do next: run again now, wait ``delay`` s, or stop."""

    action: Action
    delay: float = 0.0
    sent: int = 0
    failed: int = 0
    # Whether the chain promises the run to be back after ``delay`` (``expect_back``). A
    # chain that only polls an expansion promises nothing: the run's activity is then the
    # expansion's own, and the tick restarts an expansion that stopped showing any.
    promise: bool = True


@dataclass
class Dispatcher:
    settings: Settings
    client: ClickSendClient
    limiter: RateLimiter
    hub: SkillBossClient | None = None  # for campaigns sent through prelude/notify-send
    # None: the database's clock (production). Tests that move time pass their own.
    clock: Callable[[], datetime] | None = None
    sleep: Callable[[float], None] = time.sleep
    # Rate-limit waits up to this long are slept in the task; longer ones give the
    # batch back and reschedule, so no worker sits on a claim for long (the lease is
    # sized for this wait plus the request, see config.settings).
    max_inline_wait: float = INLINE_WAIT_SECONDS
    # The client for history look-ups, under the same limit as sends (the worker context
    # passes its own); and the session factory. Built here when not given.
    history_client: ClickSendClient | None = None
    sessions: sessionmaker[Session] | None = None

    def __post_init__(self) -> None:
        self._sessions = self.sessions or session_factory(self.settings.database_url)
        self._definitions: dict[int, CampaignDefinition] = {}
        self._rules: dict[int, PlanRules] = {}
        self._history = self.history_client or self.client.gated(
            LimiterGate(self.limiter, sleep=self.sleep)
        )
        # Budget estimates and the frequency cap (campaigns.budget, campaigns.frequency).
        self._prices = load_price_table(self.settings.price_table)
        self._cap = frequency.parse_cap(self.settings.frequency_cap)

    def dispatch_once(self, run_id: int) -> Outcome:
        with self._sessions() as session:
            run = session.get(Run, run_id)
            if run is not None and run.status == "cancelled":
                # Nothing more leaves, but rows that may have left are still looked up.
                return self._settle_cancelled(session, run)
            if run is None or run.status not in SENDABLE:
                return Outcome("stopped")
            defn = self._definition(session, run.campaign_id)
            now = self._now(session)
            if run.expires_at is not None and now >= run.expires_at:
                return self._expire(session, run, defn, now)
            history = None if is_notify_campaign(defn) else self._history
            if reconcile.settle_ripe(session, history, run, defn.channel, self.settings, now=now):
                # A history look-up can take long: the claim's lease and the send window
                # count from after it.
                now = self._now(session)
            gate = canary.gate(session, run, defn, now, EXPANSION_POLL_SECONDS)
            if gate.stop:
                return Outcome("stopped")
            if gate.wait is not None:
                return Outcome("wait", gate.wait)
            token = uuid.uuid4().hex
            batch = claims.claim_batch(
                session,
                run_id,
                min(self.settings.batch_size, gate.limit or self.settings.batch_size),
                token=token,
                lease_until=claims.lease_deadline(now, self.settings.lease_seconds),
                now=now,
            )
            session.commit()
            if not batch:
                return self._idle(session, run)
            batch = self._send_window_check(session, run, token, batch, now)
            if not batch:
                claims.close(session, token)
                session.commit()
                return Outcome("again")
            return self._send(session, run, defn, token, batch)

    # -- one batch -----------------------------------------------------------------

    def _send_window_check(
        self, session: Session, run: Run, token: str, batch: list[Claimed], now: datetime
    ) -> list[Claimed]:
        """The send window again, right before the batch: expansion timed each message,
        but a send may have slipped (a resume, a backlog, a retry) past the window's end;
        such a message waits for the next opening (not an attempt)."""
        rules = self._plan_rules(session, run.campaign_id)
        if rules.window is None:
            return batch
        # Rows handed to the provider with its own schedule are timed there.
        local = [r for r in batch if not r.schedule]
        zones_of = _contact_zones(session, [r.id for r in local])
        later: list[claims.Hold] = []
        for row in local:
            zones = recipient_zones(row.phone, zones_of.get(row.id), rules)
            opening = next_common_opening(rules.window, now, zones)
            if opening > now:
                later.append(claims.Hold(row.id, until=opening))
        if later:
            claims.defer(session, token, later)
        session.commit()
        deferred = {h.id for h in later}
        return [r for r in batch if r.id not in deferred]

    def _plan_rules(self, session: Session, campaign_id: int) -> PlanRules:
        if campaign_id not in self._rules:
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            self._rules[campaign_id] = plan_rules(campaign.definition, None)
        return self._rules[campaign_id]

    def _send(
        self, session: Session, run: Run, defn: CampaignDefinition, token: str, batch: list[Claimed]
    ) -> Outcome:
        # An opt-out that arrived since the run was expanded (a STOP pushed to the webhook)
        # takes effect before this request.
        batch = claims.drop_suppressed(session, batch, token=token)
        if self._cap is not None:
            batch = frequency.hold_back(
                session,
                batch,
                token=token,
                now=self._now(session),
                cap=self._cap,
                policy=self.settings.frequency_policy,
            )
        if not batch:
            claims.close(session, token)
            session.commit()
            return Outcome("again")
        # These rows are no longer locked while the limiter waits, and the claim's row is
        # locked (by the fence) before message rows, as lease recovery locks them.
        session.commit()
        check = budget.over_budget(session, run, defn, batch, self._prices, token=token)
        if check.wait:
            # Given back (not an attempt) under the check's lock of the run's row, so the
            # chain checking next sees these rows gone.
            claims.release(session, token)
            session.commit()
            return Outcome("wait", PRICE_WAIT_SECONDS)
        # Ends that lock before any other row is locked: pausing locks the campaign's row,
        # which a user's pause or cancel locks before the run's.
        session.commit()
        if check.reason:
            claims.release(session, token)
            pause_campaign(session, run.campaign_id, reason=check.reason)
            session.commit()
            return Outcome("stopped")
        # A run with a cap learns the provider's price from what this batch is charged.
        channel = defn.channel if check.capped else None
        if is_notify_campaign(defn):
            return self._send_notify(session, run, defn, token, batch, learn_price=channel)
        left = self._gate(session, run, token, batch)
        if isinstance(left, Outcome):
            return left
        try:
            response = send_batch(self.client, defn, run.key, batch)
        except ClickSendError as exc:
            return self._failed(session, run, defn, token, batch, exc, left)
        return self._record(session, run, token, batch, response, left, learn_price=channel)

    def _gate(
        self, session: Session, run: Run, token: str, batch: list[Claimed], *, one: bool = False
    ) -> Outcome | datetime:
        """Everything between a claim and its request: the rate limit, pause/cancel, the
        deadline, and the fence. Returns when the request leaves (the rows' attempt time),
        or what to do instead (the claim then ended, its rows given back). ``one``: the
        claim's rows go one request each and ``batch`` is the one row leaving now."""
        wait = self._wait_for_rate_limit(len(batch))
        if wait > 0:
            claims.release(session, token)
            session.commit()
            return Outcome("wait", wait)
        status = session.scalar(select(Run.status).where(Run.id == run.id))
        if status not in SENDABLE:
            # Paused or cancelled while we waited: nothing more of this claim leaves.
            claims.release(session, token, cancelled=status == "cancelled")
            session.commit()
            return Outcome("stopped")
        if run.expires_at is not None and self._now(session) >= run.expires_at:
            # The deadline passed while we waited for the limit.
            claims.release(session, token)
            session.commit()
            defn = self._definition(session, run.campaign_id)
            return self._expire(session, run, defn, self._now(session))
        need = self.settings.http_timeout_seconds + FENCE_MARGIN_SECONDS
        # This chain promises to be back by the end of the request (see scheduler.tick).
        # Committed before the fence, so nothing waits between the fence's check and its
        # commit: this write of the run's row can wait on another chain recording its
        # batch, and after the fence the request would then leave with less lease left
        # than was checked.
        self._expect_back(session, run.id, need)
        session.commit()
        left = claims.fence(
            session,
            token,
            need_seconds=need,
            now=self.clock() if self.clock is not None else None,
            in_flight_id=batch[0].id if one else None,
        )
        if left is None:
            # Our lease ran out (or nearly), or was recovered: whatever is still ours goes
            # back unsent.
            claims.release_unsent(session, token)
            session.commit()
            log.warning(
                "run %s: claim lost or too short before the request; %d rows not sent",
                run.id,
                len(batch),
            )
            return Outcome("again")
        session.commit()
        return left

    def _send_notify(
        self,
        session: Session,
        run: Run,
        defn: CampaignDefinition,
        token: str,
        batch: list[Claimed],
        *,
        learn_price: str | None,
    ) -> Outcome:
        """One hub call per recipient, each its own request under the limit and the fence;
        each row is settled as its call returns. A failure settles only its own row; the
        rows after it were never attempted and go back to pending."""
        if self.hub is None:
            missing_key = AuthenticationError(
                "provider skillboss: CLARION_SKILLBOSS_API_KEY is not set"
            )
            return self._refused(session, run, token, missing_key)
        sent = failed = 0
        for i, row in enumerate(batch):
            left = self._gate(session, run, token, [row], one=True)
            if isinstance(left, Outcome):
                return replace(left, sent=sent, failed=failed)
            # The claim stays open (its row tells recovery which row was in flight) until
            # the last row is settled.
            last = i == len(batch) - 1
            try:
                result = notify_one(self.hub, defn, run.key, row)
            except ClickSendError as exc:
                outcome = self._failed(session, run, defn, token, [row], exc, left, closes=False)
                claims.release_unsent(session, token)
                session.commit()
                return replace(outcome, sent=sent, failed=failed + outcome.failed)
            if result.status == "SUCCESS":
                # The hub's answer names no price: the message counts toward the run's
                # spend (and its budget) at what the cap check estimated for it.
                price = budget.estimate(defn.channel, [(row.phone, row.body)], self._prices)
                result = replace(result, message_price=price)
            recorded = self._record(
                session,
                run,
                token,
                [row],
                _notify_response(result),
                left,
                closes=last,
                learn_price=learn_price,
            )
            sent, failed = sent + recorded.sent, failed + recorded.failed
        return Outcome("again", sent=sent, failed=failed)

    def _failed(
        self,
        session: Session,
        run: Run,
        defn: CampaignDefinition,
        token: str,
        batch: list[Claimed],
        exc: ClickSendError,
        left: datetime,
        *,
        closes: bool = True,
    ) -> Outcome:
        """The request failed as a whole: sort by what the error means. ``left``: when it
        left. ``closes``: the claim ends with these rows (else the caller ends it)."""
        if isinstance(exc, RateLimitedError):
            return self._rate_limited(session, run, token, exc)
        if isinstance(exc, AuthenticationError | ForbiddenError):
            return self._refused(session, run, token, exc)
        if isinstance(exc, ConnectionFailedError):
            return self._unreachable(session, run, token, batch, exc, left, closes)
        if isinstance(exc, OutcomeUnknownError):
            # The request may have been accepted: settle by look-up, never by resending blind.
            log.warning("run %s: outcome of %d messages unknown (%s)", run.id, len(batch), exc)
            if is_notify_campaign(defn):
                # Nothing to look a notify-send up in: at most once, never a duplicate.
                reason = f"outcome unknown, not resent: {exc}"[:500]
                self._give_up(session, token, batch, reason, left, closes)
                self._touch(session, run.id)
                return Outcome("again", failed=len(batch))
            if closes:
                claims.close(session, token)
            self._unknown(session, token, [r.id for r in batch], str(exc), left)
            self._touch(session, run.id)
            return Outcome("again")
        # BadRequestError, NotFoundError: this request is wrong and repeating it cannot help.
        # Only its own rows fail: one request per row, the rows after it were not attempted.
        reason = f"request rejected by the provider: {exc.response_msg or exc}"[:500]
        self._give_up(session, token, batch, reason, left, closes)
        self._touch(session, run.id)
        return Outcome("again", failed=len(batch))

    def _unreachable(
        self,
        session: Session,
        run: Run,
        token: str,
        batch: list[Claimed],
        exc: ClickSendError,
        left: datetime,
        closes: bool,
    ) -> Outcome:
        """The request could not connect: the provider never saw it, so it is no try of
        these messages; they wait as a try's backoff would, timed from when the run's
        requests stopped connecting. Once that is longer than a message's whole retry
        schedule the provider is down or the URL wrong, not these messages: like a 401,
        the run pauses with the reason, and a resume sends them once it is back."""
        now = self._now(session)
        since = session.scalar(
            update(Run)
            .where(Run.id == run.id)
            .values(unreachable_since=func.coalesce(Run.unreachable_since, now))
            .returning(Run.unreachable_since)
        )
        unreachable_for = (now - (as_utc(since) or now)).total_seconds()
        policy = retry_policy(self.settings)
        if unreachable_for >= outage_window(policy):
            claims.release(session, token)
            # A resume starts the outage's clock again.
            session.execute(update(Run).where(Run.id == run.id).values(unreachable_since=None))
            pause_campaign(
                session,
                run.campaign_id,
                reason=f"cannot reach the provider ({exc}); resume when it is back",
            )
            session.commit()
            return Outcome("stopped")
        if closes:
            claims.close(session, token)
        when = outage_retry(policy, now, unreachable_for)
        reason = f"connection failed: {exc}"[:500]
        later = [claims.Later(row.id, row.attempts, when, reason) for row in batch]
        claims.record(session, token, later, attempted_at=left, now=now)
        session.commit()
        return Outcome("again")

    def _refused(self, session: Session, run: Run, token: str, exc: ClickSendError) -> Outcome:
        """Wrong credentials: not these messages' fault; pause with the reason."""
        claims.release(session, token)
        pause_campaign(session, run.campaign_id, reason=f"provider refused the credentials: {exc}")
        session.commit()
        return Outcome("stopped")

    def _wait_for_rate_limit(self, messages: int) -> float:
        """Sleep through short waits; return a long one for the caller to reschedule."""
        while True:
            try:
                wait = self.limiter.acquire(messages)
            except RedisError as exc:
                # No answer from the shared limiter is no permission to send.
                log.warning("rate limiter unavailable (%s); batch given back", exc)
                return LIMITER_DOWN_WAIT
            if wait <= 0:
                return 0.0
            if wait > self.max_inline_wait:
                return wait
            self.sleep(wait)

    def _rate_limited(
        self, session: Session, run: Run, token: str, exc: RateLimitedError
    ) -> Outcome:
        claims.release(session, token)  # not an attempt: the provider did not look at it
        # The minute's row first, then the run's: every transaction takes them in that order
        # (``_record`` does), or two chains deadlock on them.
        record_minute(session, run.id, self._now(session), rate_limited=1)
        session.execute(
            update(Run).where(Run.id == run.id).values(rate_limited=Run.rate_limited + 1)
        )
        session.commit()
        try:
            blocked = self.limiter.penalise(exc.retry_after)
        except RedisError as err:
            # The batch is already back; other workers will meet the 429 themselves.
            log.warning("rate limiter unavailable, 429 not shared with other workers: %s", err)
            return Outcome("wait", max(exc.retry_after or 0.0, LIMITER_DOWN_WAIT))
        return Outcome("wait", blocked)

    def _unknown(
        self, session: Session, token: str, ids: list[int], error: str, left: datetime
    ) -> None:
        """The request ended without a verdict: look its rows up after the grace period,
        counted from now (the request's end), by the database's clock."""
        grace = timedelta(seconds=self.settings.reconcile_grace_seconds)
        claims.mark_unknown(
            session,
            token,
            ids,
            error=error,
            look_up_after=self._now(session) + grace,
            attempted_at=left,
        )

    def _give_up(
        self,
        session: Session,
        token: str,
        batch: list[Claimed],
        reason: str,
        left: datetime,
        closes: bool,
    ) -> None:
        """The request is not to be repeated: its rows fail (an attempt each)."""
        if closes:
            claims.close(session, token)
        results = [claims.Failed(r.id, r.attempts + 1, reason) for r in batch]
        claims.record(session, token, results, attempted_at=left, now=self._now(session))

    def _retry(self, row: Claimed, now: datetime, reason: str) -> claims.Later | claims.Failed:
        return retry_or_give_up(retry_policy(self.settings), row.id, row.attempts, now, reason)

    def _throttled(self, row: Claimed, now: datetime) -> claims.Later:
        # Like a 429 for one message: later, and not an attempt.
        policy = self.settings
        when = next_try(now, row.attempts + 1, policy.retry_base_seconds, policy.retry_max_seconds)
        return claims.Later(row.id, row.attempts, when, "provider status THROTTLED")

    def _record(
        self,
        session: Session,
        run: Run,
        token: str,
        batch: list[Claimed],
        response: SendResponse,
        left: datetime,
        *,
        closes: bool = True,
        learn_price: str | None = None,
    ) -> Outcome:
        """Settle each row by its result; ``left``: when the request left. ``closes``: the
        claim ends with these rows (the notify path keeps it open until its last row).
        ``learn_price``: the channel, for a run with a budget cap: the local estimate of
        the messages charged goes with their price (``budget.record_spend``)."""
        if closes:
            claims.close(session, token)
        now = self._now(session)
        by_phone: dict[str, MessageResult] = {m.to: m for m in response.messages}
        results: list[claims.Result] = []
        pause_reason = None
        missing = []
        for row in batch:
            result = by_phone.get(row.phone)
            if result is None:
                missing.append(row.id)
                continue
            v = verdict(result.status)
            status = result.status[:STATUS_WIDTH]
            if v is Verdict.SENT:
                results.append(
                    claims.Sent(
                        row.id,
                        row.attempts + 1,
                        result.message_id,
                        status,
                        result.message_parts,
                        result.message_price,
                        result.schedule,
                    )
                )
            elif v is Verdict.FAILED:
                price = result.message_price or Decimal("0")
                results.append(
                    claims.Failed(row.id, row.attempts + 1, result.status[:500], status, price)
                )
            elif v is Verdict.RETRY:
                results.append(self._retry(row, now, f"provider status {result.status}"))
            elif v is Verdict.THROTTLED:
                results.append(self._throttled(row, now))
            else:
                pause_reason = f"provider status {result.status}: sending paused"
                results.append(claims.Later(row.id, row.attempts, None, pause_reason))
        claims.record(session, token, results, attempted_at=left, now=now)
        sent = [r for r in results if isinstance(r, claims.Sent)]
        failed = [r for r in results if isinstance(r, claims.Failed)]
        if missing:
            # Claimed but absent from the answer: as ambiguous as a timeout.
            self._unknown(session, token, missing, "missing from the provider's answer", left)
        # The minute's row before the run's row, as in ``_rate_limited``: two chains that
        # took them in opposite orders deadlocked.
        record_minute(session, run.id, now, accepted=len(sent))
        estimated = None
        if learn_price is not None:
            # The rows the provider charged, estimated by the table as the cap check does.
            charged = [
                (row.phone, row.body)
                for row in batch
                if (r := by_phone.get(row.phone)) is not None and r.message_price
            ]
            estimated = budget.estimate(learn_price, charged, self._prices)
        budget.record_spend(
            session,
            run.id,
            (m.message_price for m in response.messages),
            # An answer: the provider is reachable (see ``_unreachable``).
            also={"last_activity_at": self._now_sql(session), "unreachable_since": None},
            estimated=estimated,
        )
        if pause_reason:
            pause_campaign(session, run.campaign_id, reason=pause_reason)
        session.commit()
        return Outcome("again", sent=len(sent), failed=len(failed))

    # -- no batch ------------------------------------------------------------------

    def _idle(self, session: Session, run: Run) -> Outcome:
        """Nothing claimable: finish the run, or say how long until something is due."""
        counts = dict(
            session.execute(
                select(Message.status, func.count())
                .where(
                    Message.run_id == run.id, Message.status.in_(("pending", "claimed", "unknown"))
                )
                .group_by(Message.status)
            ).all()
        )
        if run.status == "expanding":
            return Outcome("wait", EXPANSION_POLL_SECONDS, promise=False)
        if not counts:
            finish_if_done(session, run.id)
            session.commit()
            return Outcome("done")
        if counts.get("pending") or counts.get("unknown"):
            # Pending rows wait for their retry time, unknown ones for their look-up time.
            next_due = session.scalar(
                select(func.min(Message.not_before)).where(
                    Message.run_id == run.id, Message.status.in_(("pending", "unknown"))
                )
            )
            if next_due is not None:
                delay = (as_utc(next_due) - self._now(session)).total_seconds()  # type: ignore[operator]
                return Outcome("wait", max(0.05, delay))
            return Outcome("again")  # rows locked by a concurrent claim a moment ago
        return Outcome("done")  # others hold the remaining claims and will finish the run

    def _expire(
        self, session: Session, run: Run, defn: CampaignDefinition, now: datetime
    ) -> Outcome:
        """Past the deadline nothing more leaves, but what may have left is still looked
        up (a claim whose lease ran out becomes 'unknown' at the tick): the counts stay
        true, what was not sent is expired, and the run finishes."""
        self._settle_unknown(
            session,
            run,
            defn,
            now,
            MessageStatus.EXPIRED,
            "not sent before the campaign's deadline",
        )
        finished = finish_if_done(session, run.id)
        session.commit()
        if finished:
            return Outcome("done")
        return Outcome("wait", max(self.settings.reconcile_after_seconds, EXPANSION_POLL_SECONDS))

    def _settle_cancelled(self, session: Session, run: Run) -> Outcome:
        defn = self._definition(session, run.campaign_id)
        self._settle_unknown(
            session, run, defn, self._now(session), MessageStatus.CANCELLED, "campaign cancelled"
        )
        session.commit()
        open_rows = session.scalar(
            select(func.count()).where(
                Message.run_id == run.id, Message.status.in_(("claimed", "unknown"))
            )
        )
        if not open_rows:
            return Outcome("done")
        return Outcome("wait", max(self.settings.reconcile_after_seconds, EXPANSION_POLL_SECONDS))

    def _settle_unknown(
        self,
        session: Session,
        run: Run,
        defn: CampaignDefinition,
        now: datetime,
        final: Literal[MessageStatus.EXPIRED, MessageStatus.CANCELLED],
        error: str,
    ) -> None:
        """Look up the run's ripe 'unknown' rows; what was not sent (back to 'pending')
        becomes ``final``."""
        history = None if is_notify_campaign(defn) else self._history
        # A few batches of look-ups per call; the chain comes back for the rest.
        for _ in range(EXPIRY_SETTLE_ROUNDS):
            if not reconcile.settle_ripe(
                session, history, run, defn.channel, self.settings, now=now
            ):
                break
        claims.finish_pending(session, run.id, final, error)

    def _touch(self, session: Session, run_id: int) -> None:
        session.execute(
            update(Run).where(Run.id == run_id).values(last_activity_at=self._now_sql(session))
        )
        session.commit()

    def expect_back(self, run_id: int, delay: float) -> None:
        """The chain's next step runs in ``delay`` s: the tick leaves the run alone until
        then (and re-kicks it a few seconds after, if the step never came)."""
        with self._sessions() as session:
            self._expect_back(session, run_id, delay)
            session.commit()

    def _expect_back(self, session: Session, run_id: int, delay: float) -> None:
        promise = self._now_sql(session) + timedelta(seconds=delay)
        session.execute(
            update(Run)
            .where(
                Run.id == run_id,
                or_(Run.last_activity_at.is_(None), Run.last_activity_at < promise),
            )
            .values(last_activity_at=promise)
        )

    def _now(self, session: Session) -> datetime:
        return self.clock() if self.clock is not None else db_now(session)

    def _now_sql(self, session: Session) -> Any:
        """The clock for a value a statement only writes: no round trip of its own."""
        return self.clock() if self.clock is not None else db_now_sql(session)

    def _definition(self, session: Session, campaign_id: int) -> CampaignDefinition:
        if campaign_id not in self._definitions:
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            self._definitions[campaign_id] = load_definition(campaign.definition)
        return self._definitions[campaign_id]


def _notify_response(result: MessageResult) -> SendResponse:
    return SendResponse(
        http_code=200,
        response_code="SUCCESS",
        response_msg="sent through prelude/notify-send",
        total_price=Decimal("0"),
        total_count=1,
        queued_count=1,
        currency=None,
        messages=[result],
    )


def _contact_zones(session: Session, ids: list[int]) -> dict[int, str]:
    """The contact's own time zone of each message that has one."""
    if not ids:
        return {}
    rows = session.execute(
        select(Message.id, Contact.timezone)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.id.in_(ids), Contact.timezone.is_not(None))
    ).all()
    return {r.id: r.timezone for r in rows}
