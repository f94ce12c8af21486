"""Append-only ledger writes to Postgres (asyncpg).

CONTRACT (being implemented): signatures below are fixed; the workflow calls these by reference.
"""

from __future__ import annotations

from temporalio import activity

from dealflow.messages import DealSnapshot, LedgerEvent, PaymentRecord


class LedgerActivities:
    @activity.defn
    async def record_event(self, event: LedgerEvent) -> bool:
        """True when written now, False when this event_key was already recorded."""
        raise NotImplementedError

    @activity.defn
    async def upsert_deal(self, snapshot: DealSnapshot) -> None:
        raise NotImplementedError

    @activity.defn
    async def record_payment(self, payment: PaymentRecord) -> bool:
        """True when written now, False when (stripe_id, kind) was already recorded."""
        raise NotImplementedError
