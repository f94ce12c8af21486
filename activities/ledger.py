"""Append-only ledger writes to Postgres (asyncpg).

Every write is idempotent, so a retried activity changes nothing the first attempt wrote:
events and payments insert with ON CONFLICT DO NOTHING on their unique keys, and the deals
read model only moves forward (an older snapshot, delivered late, is ignored).

A row Postgres refuses for good (a NUL byte, a lone surrogate, a broken constraint) would fail
the same way on every retry. It is quarantined instead: kept, escaped to ASCII, in
`ledger_quarantine`, and reported to the workflow, so it never blocks the rows after it.
Trouble with the database itself (down, slow) is raised, and the activity retries.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from dealflow.messages import (
    DealSnapshot,
    LedgerBatch,
    LedgerEvent,
    LedgerWriteResult,
    PaymentRecord,
    QuarantinedRow,
)

LEDGER_REJECTED = "LedgerRejected"

#: Seconds; a statement this slow means a sick database, and the activity should retry.
STATEMENT_TIMEOUT = 10.0

#: Errors that the same row will raise on every attempt: bad data (class 22: NUL bytes,
#: untranslatable characters, values out of range), broken constraints (class 23), and text
#: asyncpg cannot even encode (lone surrogates).
PERMANENT_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, UnicodeError)

Connection = asyncpg.Connection | asyncpg.Pool


async def insert_event(conn: Connection, event: LedgerEvent) -> bool:
    """True when written now, False when this event_key was already recorded."""
    written = await conn.fetchval(
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


async def upsert_snapshot(conn: Connection, snapshot: DealSnapshot) -> None:
    """Insert or update the deal's row, unless the row already holds a newer snapshot."""
    await conn.execute(
        """INSERT INTO deals
               (deal_id, workflow_id, title, client_email, vendor_email, currency, stage,
                amount_total, funded, released, refunded, livemode, demo, updated_at, version,
                vendor_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
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
               updated_at = EXCLUDED.updated_at,
               version = EXCLUDED.version,
               vendor_id = EXCLUDED.vendor_id
           WHERE (deals.version, deals.updated_at) <= (EXCLUDED.version, EXCLUDED.updated_at)""",
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
        snapshot.version,
        snapshot.vendor_id,
        timeout=STATEMENT_TIMEOUT,
    )


async def insert_payment(conn: Connection, payment: PaymentRecord) -> bool:
    """True when written now, False when (stripe_id, kind) was already recorded."""
    written = await conn.fetchval(
        """INSERT INTO payments
               (stripe_id, kind, deal_id, milestone_key, amount, currency, livemode, sandbox,
                status, occurred_at, fee, net, fee_currency)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
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
        payment.fee,
        payment.net,
        payment.fee_currency,
        timeout=STATEMENT_TIMEOUT,
    )
    return bool(written)


def _ascii(text: str) -> str:
    """Text with every non-ASCII character and control escaped, so Postgres takes it whatever it
    holds (NUL bytes, lone surrogates)."""
    return json.dumps(text)[1:-1]


async def _quarantine(
    conn: Connection, deal_id: str, row: QuarantinedRow, payload: dict[str, Any]
) -> None:
    await conn.execute(
        """INSERT INTO ledger_quarantine (deal_id, entry, key, error, payload)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (entry, key) DO NOTHING""",
        _ascii(deal_id),
        row.entry,
        _ascii(row.key),
        _ascii(row.error),
        json.dumps(payload, default=str),
        timeout=STATEMENT_TIMEOUT,
    )


Row = tuple[str, str, LedgerEvent | DealSnapshot | PaymentRecord, Callable[[], Awaitable[Any]]]
"""(entry, key, the model, its write): one ledger row of a batch."""


async def _write_row(
    conn: asyncpg.Connection,
    deal_id: str,
    entry: str,
    key: str,
    model: LedgerEvent | DealSnapshot | PaymentRecord,
    write: Callable[[], Awaitable[Any]],
) -> tuple[Any, QuarantinedRow | None]:
    """Write one row in a savepoint: (what the write returned, None), or, refused for good,
    (None, the quarantined row)."""
    try:
        async with conn.transaction():
            return await write(), None
    except PERMANENT_ERRORS as error:
        row = QuarantinedRow.model_validate(
            {"entry": entry, "key": key, "error": f"{type(error).__name__}: {error}"}
        )
        await _quarantine(conn, deal_id, row, model.model_dump(mode="json"))
        return None, row


async def _write_rows(conn: asyncpg.Connection, deal_id: str, rows: list[Row]) -> list[QuarantinedRow]:
    """Every row in one savepoint, the usual case (a savepoint per row tripled the statements).
    When Postgres refuses one for good, all of them again, each in a savepoint of its own, so
    only the refused rows are quarantined: what they quarantined."""
    try:
        async with conn.transaction():
            for _, _, _, write in rows:
                await write()
        return []
    except PERMANENT_ERRORS:
        pass
    outcomes = [await _write_row(conn, deal_id, *row) for row in rows]
    return [refused for _, refused in outcomes if refused is not None]


class LedgerActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    @heartbeating
    async def write_ledger(self, batch: LedgerBatch) -> LedgerWriteResult:
        """One workflow step's rows in one transaction; refused rows quarantined, not retried."""
        async with self._pool.acquire(timeout=STATEMENT_TIMEOUT) as conn, conn.transaction():
            rows: list[Row] = [
                *(
                    ("event", e.event_key, e, lambda e=e: insert_event(conn, e))
                    for e in batch.events
                ),
                *(
                    (
                        "payment",
                        f"{p.kind.value}:{p.stripe_id}",
                        p,
                        lambda p=p: insert_payment(conn, p),
                    )
                    for p in batch.payments
                ),
            ]
            if batch.snapshot is not None:
                s = batch.snapshot
                rows.append(
                    ("snapshot", f"{s.deal_id}:{s.version}", s, lambda: upsert_snapshot(conn, s))
                )
            quarantined = await _write_rows(conn, batch.deal_id, rows)
        return LedgerWriteResult(written=len(rows) - len(quarantined), quarantined=quarantined)

    # One row per activity: the writes of deals whose histories predate `write_ledger`.

    @activity.defn
    async def record_event(self, event: LedgerEvent) -> bool:
        """True when written now, False when this event_key was already recorded."""
        return await self._single(
            event.deal_id, "event", event.event_key, event, lambda c: insert_event(c, event)
        )

    @activity.defn
    async def upsert_deal(self, snapshot: DealSnapshot) -> None:
        await self._single(
            snapshot.deal_id,
            "snapshot",
            f"{snapshot.deal_id}:{snapshot.updated_at.isoformat()}",
            snapshot,
            lambda c: upsert_snapshot(c, snapshot),
        )

    @activity.defn
    async def record_payment(self, payment: PaymentRecord) -> bool:
        """True when written now, False when (stripe_id, kind) was already recorded."""
        return await self._single(
            payment.deal_id,
            "payment",
            f"{payment.kind.value}:{payment.stripe_id}",
            payment,
            lambda c: insert_payment(c, payment),
        )

    async def _single(
        self,
        deal_id: str,
        entry: str,
        key: str,
        model: LedgerEvent | DealSnapshot | PaymentRecord,
        write: Callable[[asyncpg.Connection], Awaitable[Any]],
    ) -> Any:
        """One row; refused for good, it is quarantined and a non-retryable `LedgerRejected`."""
        async with self._pool.acquire(timeout=STATEMENT_TIMEOUT) as conn, conn.transaction():
            written, refused = await _write_row(
                conn, deal_id, entry, key, model, lambda: write(conn)
            )
        if refused is not None:
            raise ApplicationError(
                f"ledger refused {entry} {_ascii(key)}: {refused.error}",
                type=LEDGER_REJECTED,
                non_retryable=True,
            )
        return written
