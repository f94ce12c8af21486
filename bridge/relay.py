"""Hands stored Stripe events to their workflows: many deals at once, each deal in order of receipt.

The webhook route only stores; this task delivers. It wakes when an event arrives (the route
wakes it in-process; events stored by other processes reach it as a Postgres NOTIFY), when an
attempt ends and when a retry falls due, and also polls, so events stored while Temporal was down
(or by a bridge that then stopped) go out once Temporal answers again.

- Only the oldest pending event of a deal is ever claimed, so a deal's events reach its workflow
  in the order they were received, even with several bridges on one inbox.
- A claim is a short transaction (FOR UPDATE SKIP LOCKED) that stamps the row with this relay's
  id and pushes `next_attempt_at` past the longest an attempt can take; no transaction stays open
  while Temporal is called. A bridge that dies loses its claims when they lapse.
- An event that fails backs off alone (exponential, jittered, persisted in the row); other deals
  go on. Events of a deal that does not exist are retried until it has been missing for
  `missing_deal_for`; an event whose deal has ended, or that cannot be read, is given up at once.
  Given-up events become `undeliverable`: kept, listed and counted, and the deal's next event goes.
  An ended deal's event that the deal had accounted for (`bridge.late_events`) is kept as
  `folded` or `ignored` instead, with a note: it needs nobody.
- Every `orphan_sweep` it hands orphans naming a payment intent to their deal once that payment
  is known (`Inbox.adopt_orphans`): a dispute that came before its payment's event or ledger row.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from bridge.deals import ActionRejected, DealEnded, DealNotFound, Deals, DealUnavailable
from bridge.inbox import Inbox
from bridge.late_events import Accounted, accounted_for
from bridge.metrics import BridgeMetrics
from bridge.stripe_events import MalformedEvent, deal_event

log = logging.getLogger("dealflow.bridge.relay")

#: The channel the inbox's trigger notifies when an event becomes pending (migration 007).
PENDING_CHANNEL = "stripe_events_pending"
#: An attempt lasts at most the Temporal deadline; a claim lasts this many deadlines, so only a
#: bridge that died (or froze) ever loses a claim it is still working on.
_CLAIM_DEADLINES = 4


@dataclass(frozen=True)
class Backoff:
    """The n-th retry waits `first * 2**(n-1)`, at most `longest`, less up to half (jitter) so that
    events that failed together do not all come back together."""

    first: timedelta = timedelta(seconds=0.5)
    longest: timedelta = timedelta(minutes=1)

    def delay(self, attempts: int) -> timedelta:
        ceiling = min(self.longest, self.first * 2 ** min(attempts - 1, 30))
        return ceiling * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class RelayPolicy:
    """How often the relay polls and how it retries; tests shorten these."""

    #: How often the relay looks for pending events when nothing wakes it.
    interval: float = 5.0
    retry: Backoff = field(default_factory=Backoff)
    #: A deal can be missing for a while (a webhook racing the workflow's start, a Temporal
    #: namespace being restored); after this long its events are given up.
    missing_deal_for: timedelta = timedelta(hours=1)
    #: How often orphans are matched against the payments known since.
    orphan_sweep: float = 60.0
    #: Orphans older than this are left to an operator: a payment's own event and its ledger row
    #: come within days (Stripe retries a webhook for 3 days, a ledger batch gives up after 3).
    orphans_adopted_within: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class _Claimed:
    event_id: str
    deal_id: str
    payload: str
    attempts: int


@dataclass(frozen=True)
class _Failure:
    error: str
    deal_missing: bool = False
    permanent: bool = False


class Relay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        deals: Deals,
        metrics: BridgeMetrics,
        *,
        concurrency: int,
        policy: RelayPolicy | None = None,
        listen_url: str | None = None,
    ) -> None:
        """`listen_url`: the database to LISTEN on for events other processes store (on a
        connection of its own); without it the relay learns of those only when it polls."""
        self.pool = pool
        self.listen_url = listen_url
        self.deals = deals
        self.metrics = metrics
        self.concurrency = concurrency
        self.policy = policy or RelayPolicy()
        #: Tells this relay's claims apart from other bridges' (and from its own earlier lives).
        self.relay_id = f"relay-{uuid.uuid4().hex[:12]}"
        self._claim_for = deals.timeout * _CLAIM_DEADLINES
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for events now rather than at the next poll (one was stored, or became due)."""
        self._wake.set()

    async def run(self) -> None:
        """Relay until cancelled; attempts in flight then finish (each within the Temporal deadline)."""
        in_flight: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            self.wake()

        helpers = [asyncio.create_task(self._adopt_orphans_forever(), name="stripe-orphan-sweep")]
        if self.listen_url is not None:
            helpers.append(
                asyncio.create_task(self._listen(self.listen_url), name="stripe-inbox-listener")
            )
        try:
            while True:
                self._wake.clear()
                room = self.concurrency - len(in_flight)
                try:
                    claimed = await self._claim(room) if room else []
                except (OSError, asyncpg.PostgresError) as error:
                    log.warning("relay cannot read the inbox: %s", error)
                    await asyncio.sleep(self.policy.interval)
                    continue
                except Exception:  # the relay must outlive any one bad pass
                    log.exception("relay pass failed; retrying after %.1fs", self.policy.interval)
                    await asyncio.sleep(self.policy.interval)
                    continue
                for event in claimed:
                    task = asyncio.create_task(self._attempt(event), name=f"relay-{event.event_id}")
                    in_flight.add(task)
                    task.add_done_callback(finished)
                if room and len(claimed) == room:
                    continue  # there may be more ready right now
                try:
                    await asyncio.wait_for(self._wake.wait(), self.policy.interval)
                except TimeoutError:
                    pass
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            if in_flight:
                await asyncio.wait(in_flight)

    async def _adopt_orphans_forever(self) -> None:
        inbox = Inbox(self.pool)
        while True:
            try:
                adopted = await inbox.adopt_orphans(
                    received_within=self.policy.orphans_adopted_within
                )
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("relay cannot match orphan events to deals: %s", error)
                adopted = []
            for orphan in adopted:
                self.metrics.orphans_adopted.inc()
                log.info(
                    "orphan event %s (%s) is deal %s's: its payment %s is known now",
                    orphan.event_id,
                    orphan.event_type,
                    orphan.deal_id,
                    orphan.payment_intent_id,
                )
            if adopted:
                self.wake()
            await asyncio.sleep(self.policy.orphan_sweep)

    async def _listen(self, url: str) -> None:
        """Wake on each NOTIFY of the inbox; on a lost connection, connect again (the relay polls
        meanwhile)."""
        while True:
            try:
                await self._listen_until_lost(url)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("relay cannot listen for new events (polling meanwhile): %s", error)
            await asyncio.sleep(self.policy.interval)

    async def _listen_until_lost(self, url: str) -> None:
        connection = await asyncpg.connect(url)
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(PENDING_CHANNEL, lambda *_notification: self.wake())
            self.wake()  # for what was stored while nobody listened
            await lost.wait()
        finally:
            with contextlib.suppress(OSError, TimeoutError, asyncpg.PostgresError):
                await connection.close(timeout=1)

    async def _claim(self, limit: int) -> list[_Claimed]:
        """Up to `limit` due events, each the oldest pending event of its deal, now ours."""
        rows = await self.pool.fetch(
            """UPDATE stripe_events AS e
               SET claimed_by = $1, next_attempt_at = now() + $2::interval
               WHERE e.event_id IN (
                   SELECT c.event_id FROM stripe_events AS c
                   WHERE c.status = 'pending' AND c.next_attempt_at <= now()
                     AND NOT EXISTS (
                         SELECT 1 FROM stripe_events AS earlier
                         WHERE earlier.status = 'pending' AND earlier.deal_id = c.deal_id
                           AND earlier.received_seq < c.received_seq)
                   ORDER BY c.received_seq
                   LIMIT $3
                   FOR UPDATE SKIP LOCKED)
               RETURNING e.event_id, e.deal_id, e.payload::text AS payload, e.attempts""",
            self.relay_id,
            self._claim_for,
            limit,
        )
        return [_Claimed(**dict(row)) for row in rows]

    async def _attempt(self, event: _Claimed) -> None:
        """Signal one claimed event and record the outcome; never raises (the claim lapses if the
        outcome cannot be written, and the event is tried again: workflows ignore a repeat)."""
        outcome = await self._signal(event)
        try:
            if outcome is None:
                await self._delivered(event)
            elif isinstance(outcome, Accounted):
                await self._kept(event, outcome)
            else:
                await self._failed(event, outcome)
        except (OSError, asyncpg.PostgresError) as error:
            log.warning("relay cannot record the outcome of event %s: %s", event.event_id, error)

    async def _signal(self, event: _Claimed) -> _Failure | Accounted | None:
        try:
            _deal_id, signal = deal_event(json.loads(event.payload))
            await self.deals.signal_stripe_event(event.deal_id, signal)
        except DealNotFound:
            return _Failure(f"no deal workflow for '{event.deal_id}'", deal_missing=True)
        except DealEnded as error:
            try:
                accounted = await accounted_for(self.pool, event.deal_id, signal, str(error))
            except (OSError, asyncpg.PostgresError) as lookup_error:
                return _Failure(f"{error}; its ledger could not be read: {lookup_error}")
            return accounted or _Failure(str(error), permanent=True)
        except (ActionRejected, MalformedEvent) as error:
            return _Failure(str(error), permanent=True)
        except DealUnavailable as error:
            return _Failure(str(error))
        except Exception as error:  # one bad event must not stop the relay
            log.exception("relaying event %s failed", event.event_id)
            return _Failure(f"{type(error).__name__}: {error}")
        return None

    async def _delivered(self, event: _Claimed) -> None:
        done = await self.pool.execute(
            """UPDATE stripe_events
               SET status = 'delivered', delivered_at = now(), attempts = attempts + 1,
                   claimed_by = NULL
               WHERE event_id = $1 AND claimed_by = $2 AND status = 'pending'""",
            event.event_id,
            self.relay_id,
        )
        if done == "UPDATE 1":
            self.metrics.relay.labels("delivered").inc()
        else:
            log.warning("event %s was delivered after its claim lapsed", event.event_id)

    async def _kept(self, event: _Claimed, accounted: Accounted) -> None:
        done = await self.pool.execute(
            """UPDATE stripe_events
               SET status = $3, last_error = $4, attempts = attempts + 1, claimed_by = NULL
               WHERE event_id = $1 AND claimed_by = $2 AND status = 'pending'""",
            event.event_id,
            self.relay_id,
            accounted.status.value,
            accounted.note,
        )
        if done == "UPDATE 1":
            self.metrics.relay.labels(accounted.status.value).inc()
            log.info("event %s kept as %s: %s", event.event_id, accounted.status.value, accounted.note)

    async def _failed(self, event: _Claimed, failure: _Failure) -> None:
        retry_in = self.policy.retry.delay(event.attempts + 1)
        outcome = await self.pool.fetchrow(
            """UPDATE stripe_events
               SET attempts = attempts + 1, last_error = $3, claimed_by = NULL,
                   next_attempt_at = now() + $4::interval,
                   deal_missing_since = CASE WHEN $5 THEN coalesce(deal_missing_since, now())
                                             ELSE deal_missing_since END,
                   status = CASE
                       WHEN $6 OR ($5 AND coalesce(deal_missing_since, now()) <= now() - $7::interval)
                       THEN 'undeliverable' ELSE 'pending' END
               WHERE event_id = $1 AND claimed_by = $2 AND status = 'pending'
               RETURNING status, deal_missing_since""",
            event.event_id,
            self.relay_id,
            failure.error,
            retry_in,
            failure.deal_missing,
            failure.permanent,
            self.policy.missing_deal_for,
        )
        if outcome is None:
            return
        if outcome["status"] == "undeliverable":
            self.metrics.relay.labels("undeliverable").inc()
            log.error("event %s is undeliverable: %s", event.event_id, failure.error)
            if failure.deal_missing:
                await self._still_missing(event.deal_id, outcome["deal_missing_since"])
            return
        self.metrics.relay.labels("retried").inc()
        delay = retry_in.total_seconds()
        log.warning("event %s retried in %.1fs: %s", event.event_id, delay, failure.error)
        asyncio.get_running_loop().call_later(delay, self.wake)

    async def _still_missing(self, deal_id: str, since: datetime) -> None:
        """The deal's later events have waited as long as this one: each is given up at its first
        attempt that still finds no deal, not after a wait of its own."""
        await self.pool.execute(
            """UPDATE stripe_events SET deal_missing_since = $2
               WHERE deal_id = $1 AND status = 'pending' AND deal_missing_since IS NULL""",
            deal_id,
            since,
        )
