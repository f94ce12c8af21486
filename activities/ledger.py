"""Append-only ledger writes to Postgres (asyncpg).

Every write is idempotent, so a retried activity changes nothing the first attempt wrote:
events and payments insert with ON CONFLICT DO NOTHING on their unique keys, and the deals
read model only moves forward in time (an older snapshot, delivered late, is ignored).
A row the schema refuses (e.g. sandbox money marked live) is a non-retryable `LedgerRejected`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from dealflow.messages import DealSnapshot, LedgerEvent, PaymentRecord

LEDGER_REJECTED = "LedgerRejected"

#: Seconds; a statement this slow means a sick database, and the activity should retry.
STATEMENT_TIMEOUT = 10.0


@asynccontextmanager
async def _schema_refusals(what: str) -> AsyncIterator[None]:
    """Constraint violations will fail the same way on every retry: make them non-retryable."""
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as error:
        raise ApplicationError(
            f"ledger refused {what}: {error.message}", type=LEDGER_REJECTED, non_retryable=True
        ) from error


class LedgerActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def record_event(self, event: LedgerEvent) -> bool:
        """True when written now, False when this event_key was already recorded."""
        async with _schema_refusals(f"event {event.event_key}"):
            written = await self._pool.fetchval(
                """INSERT INTO deal_events
                       (event_key, deal_id, milestone_key, kind, source, occurred_at, detail)
                   VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
                   ON CONFLICT (event_key) DO NOTHING
                   RETURNING true""",
                event.event_key,
                event.deal_id,
                event.milestone_key,
                event.kind,
                event.source,
                event.occurred_at,
                json.dumps(event.model_dump(mode="json", include={"detail"})["detail"]),
                timeout=STATEMENT_TIMEOUT,
            )
        return bool(written)

    @activity.defn
    async def upsert_deal(self, snapshot: DealSnapshot) -> None:
        """Insert or update the deal's row, unless the row already holds a newer snapshot."""
        async with _schema_refusals(f"snapshot of deal {snapshot.deal_id}"):
            await self._pool.execute(
                """INSERT INTO deals
                       (deal_id, workflow_id, title, client_email, vendor_email, currency, stage,
                        amount_total, funded, released, refunded, livemode, demo, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                   ON CONFLICT (deal_id) DO UPDATE SET
                       workflow_id = EXCLUDED.workflow_id,
                       title = EXCLUDED.title,
                       client_email = EXCLUDED.client_email,
                       vendor_email = EXCLUDED.vendor_email,
                       currency = EXCLUDED.currency,
                       stage = EXCLUDED.stage,
                       amount_total = EXCLUDED.amount_total,
                       funded = EXCLUDED.funded,
                       released = EXCLUDED.released,
                       refunded = EXCLUDED.refunded,
                       livemode = EXCLUDED.livemode,
                       demo = EXCLUDED.demo,
                       updated_at = EXCLUDED.updated_at
                   WHERE deals.updated_at <= EXCLUDED.updated_at""",
                snapshot.deal_id,
                snapshot.workflow_id,
                snapshot.title,
                snapshot.client_email,
                snapshot.vendor_email,
                snapshot.currency,
                snapshot.stage.value,
                snapshot.amount_total,
                snapshot.funded,
                snapshot.released,
                snapshot.refunded,
                snapshot.livemode,
                snapshot.demo,
                snapshot.updated_at,
                timeout=STATEMENT_TIMEOUT,
            )

    @activity.defn
    async def record_payment(self, payment: PaymentRecord) -> bool:
        """True when written now, False when (stripe_id, kind) was already recorded."""
        async with _schema_refusals(f"payment {payment.kind.value} {payment.stripe_id}"):
            written = await self._pool.fetchval(
                """INSERT INTO payments
                       (stripe_id, kind, deal_id, milestone_key, amount, currency, livemode, sandbox,
                        status, occurred_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                   ON CONFLICT (stripe_id, kind) DO NOTHING
                   RETURNING true""",
                payment.stripe_id,
                payment.kind.value,
                payment.deal_id,
                payment.milestone_key,
                payment.amount,
                payment.currency,
                payment.livemode,
                payment.sandbox,
                payment.status,
                payment.occurred_at,
                timeout=STATEMENT_TIMEOUT,
            )
        return bool(written)
