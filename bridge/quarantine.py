"""The ledger's quarantine, read for operators: rows Postgres refused for good (a NUL byte, a
lone surrogate, a broken constraint), kept escaped by the worker instead of retried in front of
the rows after them. Each also stands as an anomaly in its deal's status."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from pydantic import BaseModel


class QuarantinedLedgerRow(BaseModel):
    deal_id: str
    entry: str
    key: str
    error: str
    #: The row as the workflow sent it, JSON with every non-ASCII character escaped.
    payload: str
    quarantined_at: datetime


async def count_quarantined(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM ledger_quarantine")


async def list_quarantined(
    pool: asyncpg.Pool, *, deal_id: str | None, limit: int
) -> list[QuarantinedLedgerRow]:
    rows = await pool.fetch(
        """SELECT deal_id, entry, key, error, payload, quarantined_at FROM ledger_quarantine
           WHERE $1::text IS NULL OR deal_id = $1
           ORDER BY id DESC LIMIT $2""",
        deal_id,
        limit,
    )
    return [QuarantinedLedgerRow(**dict(row)) for row in rows]
