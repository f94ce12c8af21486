"""A vendor's deals and payouts, from the read model (`deals.vendor_id`) and the ledger."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from pydantic import BaseModel

from dealflow.messages import DealStage


class VendorDeal(BaseModel):
    deal_id: str
    title: str
    stage: DealStage
    currency: str
    amount_total: int
    funded: int
    released: int
    refunded: int
    demo: bool
    created_at: datetime
    updated_at: datetime


class Payout(BaseModel):
    """Money that left escrow for the vendor: a Connect transfer, or a release paid outside Connect."""

    deal_id: str
    milestone_key: str
    kind: str
    stripe_id: str
    amount: int
    currency: str
    status: str
    occurred_at: datetime


async def vendor_deals(pool: asyncpg.Pool, vendor_id: str, *, limit: int) -> list[VendorDeal]:
    rows = await pool.fetch(
        """SELECT deal_id, title, stage, currency, amount_total, funded, released, refunded, demo,
                  created_at, updated_at
           FROM deals WHERE vendor_id = $1 ORDER BY created_at DESC, deal_id DESC LIMIT $2""",
        vendor_id,
        limit,
    )
    return [VendorDeal(**dict(row)) for row in rows]


async def vendor_payouts(pool: asyncpg.Pool, vendor_id: str, *, limit: int) -> list[Payout]:
    rows = await pool.fetch(
        """SELECT p.deal_id, p.milestone_key, p.kind, p.stripe_id, p.amount, p.currency, p.status,
                  p.occurred_at
           FROM payments p JOIN deals d USING (deal_id)
           WHERE d.vendor_id = $1 AND p.kind IN ('transfer', 'release')
           ORDER BY p.occurred_at DESC, p.id DESC LIMIT $2""",
        vendor_id,
        limit,
    )
    return [Payout(**dict(row)) for row in rows]
