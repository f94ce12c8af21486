"""The `stripe_events` inbox: verified webhooks are stored before anything acts on them.

The event id is the primary key, so Stripe's redeliveries are no-ops. Rows wait as `pending`
until the relay hands them to their workflow (each row shows its attempts, last error and next
attempt); `orphan` rows name no deal and `undeliverable` rows are ones the relay gave up on
(their deal stayed missing, or had ended): both wait for an operator, except an orphan naming a
payment intent, which goes to its deal once that payment is known (`adopt_orphans`); `ignored`
rows are event types no deal reacts to (or, for an ended deal, outcomes that moved no money); `folded` rows
report a payment an earlier row of the same deal already reports (Stripe's
`checkout.session.completed` and `payment_intent.succeeded` for one card payment): the deal gets
that one only, and reads Stripe once; or a payment an ended deal's ledger shows it had.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import asyncpg


class InboxStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    ORPHAN = "orphan"
    IGNORED = "ignored"
    UNDELIVERABLE = "undeliverable"
    FOLDED = "folded"


@dataclass(frozen=True)
class InboxStats:
    received_last_day: int
    orphans_last_day: int
    #: Payment events kept without a signal of their own (another event reported the payment).
    folded_last_day: int
    backlog: int
    #: Pending events that failed at least once and are backing off.
    retrying: int
    undeliverable: int
    oldest_pending_at: datetime | None


@dataclass(frozen=True)
class Adopted:
    """An orphan handed to its deal once the payment it names was known."""

    event_id: str
    event_type: str
    deal_id: str
    payment_intent_id: str


class Inbox:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def store(
        self,
        *,
        event_id: str,
        event_type: str,
        livemode: bool,
        deal_id: str | None,
        raw_body: str,
        status: InboxStatus,
        note: str | None = None,
        funding_intent_id: str | None = None,
        orphan_intent_id: str | None = None,
    ) -> InboxStatus | None:
        """Keep the event exactly as Stripe sent it, and say as what: `status`, or FOLDED when an
        earlier event of the same deal reported the funding of the same payment intent (the
        unique index decides, so racing deliveries fold too). None when this event id is kept
        already. `orphan_intent_id`: the payment intent an orphan names, by which it can find its
        deal later."""
        row = (event_id, event_type, livemode, deal_id, raw_body)
        seq = await self.pool.fetchval(
            """INSERT INTO stripe_events
                   (event_id, type, livemode, deal_id, payload, status, last_error,
                    funding_intent_id, orphan_intent_id)
               VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9)
               ON CONFLICT DO NOTHING
               RETURNING received_seq""",
            *row,
            status.value,
            note,
            funding_intent_id,
            orphan_intent_id,
        )
        if seq is not None:
            return status
        if funding_intent_id is None or deal_id is None:
            return None
        folded = await self.pool.fetchval(
            """INSERT INTO stripe_events
                   (event_id, type, livemode, deal_id, payload, status, last_error, funding_intent_id)
               SELECT $1, $2, $3, $4, $5::jsonb, 'folded',
                      'folded into ' || relayed.event_id || ' (' || relayed.type
                          || '), which reports the same payment ' || $6 || ' to the deal',
                      $6
               FROM stripe_events AS relayed
               WHERE relayed.deal_id = $4 AND relayed.funding_intent_id = $6
                 AND relayed.status <> 'folded'
               ON CONFLICT (event_id) DO NOTHING
               RETURNING received_seq""",
            *row,
            funding_intent_id,
        )
        return InboxStatus.FOLDED if folded is not None else None

    async def deal_of_payment_intent(self, payment_intent_id: str) -> str | None:
        """The deal a payment intent funded: from the ledger, or from the signed payment event
        stored here (which named the deal before the ledger's row of it may exist). Disputes name
        only the intent (as at Stripe, a dispute carries no metadata), so this is how they find
        their deal; the deal then reads the dispute from Stripe before it acts on it."""
        return await self.pool.fetchval(
            """SELECT deal_id FROM payments
               WHERE stripe_id = $1 AND kind IN ('charge', 'authorization')
               UNION ALL
               SELECT deal_id FROM stripe_events
               WHERE funding_intent_id = $1 AND deal_id IS NOT NULL
               LIMIT 1""",
            payment_intent_id,
        )

    async def adopt_orphans(self, *, received_within: timedelta) -> list[Adopted]:
        """Hand each orphan received within `received_within` whose payment intent is now known
        (`deal_of_payment_intent`) to that deal: it becomes pending, and the relay signals it.

        A dispute can come before anything here knows its payment: the payment's own event
        delivered late (Stripe retries for days), the ledger's row of it written late (its batch
        retried after a worker restart). Only orphans naming an intent are looked at, by an index
        of orphans alone, so a sweep costs what the orphans of the window cost."""
        rows = await self.pool.fetch(
            """UPDATE stripe_events AS orphan
               SET deal_id = found.deal_id, status = 'pending', next_attempt_at = now(),
                   last_error = 'came naming no deal; found later to be about deal '
                       || found.deal_id || ' by its payment ' || orphan.orphan_intent_id
               FROM stripe_events AS waiting
               CROSS JOIN LATERAL (
                   SELECT deal_id FROM payments
                   WHERE stripe_id = waiting.orphan_intent_id
                     AND kind IN ('charge', 'authorization')
                   UNION ALL
                   SELECT deal_id FROM stripe_events
                   WHERE funding_intent_id = waiting.orphan_intent_id AND deal_id IS NOT NULL
                   LIMIT 1) AS found
               WHERE waiting.status = 'orphan' AND waiting.orphan_intent_id IS NOT NULL
                 AND waiting.received_at > now() - $1::interval
                 AND orphan.event_id = waiting.event_id AND orphan.status = 'orphan'
               RETURNING orphan.event_id, orphan.type, orphan.deal_id, orphan.orphan_intent_id""",
            received_within,
        )
        return [
            Adopted(row["event_id"], row["type"], row["deal_id"], row["orphan_intent_id"])
            for row in rows
        ]

    async def list(
        self, *, status: InboxStatus | None, deal_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            """SELECT event_id, type, livemode, deal_id, status, received_at, attempts,
                      last_error, CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at,
                      delivered_at
               FROM stripe_events
               WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR deal_id = $2)
               ORDER BY received_seq DESC
               LIMIT $3""",
            status.value if status else None,
            deal_id,
            limit,
        )
        return [dict(row) for row in rows]

    async def stats(self) -> InboxStats:
        row = await self.pool.fetchrow(
            """SELECT
                 (SELECT count(*) FROM stripe_events
                   WHERE received_at > now() - interval '24 hours') AS received,
                 (SELECT count(*) FROM stripe_events
                   WHERE received_at > now() - interval '24 hours' AND status = 'orphan') AS orphans,
                 (SELECT count(*) FROM stripe_events
                   WHERE received_at > now() - interval '24 hours' AND status = 'folded') AS folded,
                 (SELECT count(*) FROM stripe_events WHERE status = 'pending') AS backlog,
                 (SELECT count(*) FROM stripe_events
                   WHERE status = 'pending' AND attempts > 0) AS retrying,
                 (SELECT count(*) FROM stripe_events WHERE status = 'undeliverable') AS undeliverable,
                 (SELECT min(received_at) FROM stripe_events WHERE status = 'pending') AS oldest"""
        )
        return InboxStats(
            received_last_day=row["received"],
            orphans_last_day=row["orphans"],
            folded_last_day=row["folded"],
            backlog=row["backlog"],
            retrying=row["retrying"],
            undeliverable=row["undeliverable"],
            oldest_pending_at=row["oldest"],
        )
