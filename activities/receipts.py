"""Immutable receipts for released milestones, stored in the ledger and rendered as PDF.

One receipt per (deal, milestone). The number comes from a database sequence, the PDF is stored
with its SHA-256, and the row can never be changed (a trigger refuses UPDATE and DELETE), so a
retried activity, or a second worker racing the first, returns the receipt already issued.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.receipt_pdf import render_receipt_pdf
from dealflow.activity_timeouts import RECEIPTS
from dealflow.messages import ReceiptInput, ReceiptResult

#: The error type of a receipt that can never be issued as asked.
INVALID_RECEIPT = "InvalidReceipt"
_EXISTING = """SELECT receipt_number, pdf, pdf_sha256, amount, currency, livemode, sandbox
               FROM receipts WHERE deal_id = $1 AND milestone_key = $2"""
#: What a receipt states about money; a second request for the milestone must agree on all of it.
_MONEY_FIELDS = ("amount", "currency", "livemode", "sandbox")
#: Seconds for each wait on Postgres; RECEIPTS derives the attempt's worst case from it.
_WAIT = RECEIPTS.statement_timeout


def _refuse(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID_RECEIPT, non_retryable=True)


def _check(input: ReceiptInput) -> None:
    if input.amount <= 0:
        raise _refuse(f"amount: must be a positive number of minor units, got {input.amount}")
    if input.livemode and input.sandbox:
        raise _refuse("sandbox: sandbox money is never live (livemode and sandbox both set)")


def _result(row: asyncpg.Record, input: ReceiptInput) -> ReceiptResult:
    differing = [name for name in _MONEY_FIELDS if row[name] != getattr(input, name)]
    if differing:
        raise _refuse(
            f"{differing[0]}: receipt {row['receipt_number']} for {input.deal_id}/"
            f"{input.milestone_key} was issued with {row[differing[0]]!r}, not {getattr(input, differing[0])!r}"
        )
    return ReceiptResult(
        receipt_number=row["receipt_number"],
        pdf_b64=base64.b64encode(row["pdf"]).decode("ascii"),
        sha256=row["pdf_sha256"],
    )


class ReceiptActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    @heartbeating
    async def issue_receipt(self, input: ReceiptInput) -> ReceiptResult:
        """Idempotent per (deal_id, milestone_key): a retry returns the receipt already issued."""
        _check(input)
        async with self._pool.acquire(timeout=_WAIT) as conn:
            existing = await conn.fetchrow(
                _EXISTING, input.deal_id, input.milestone_key, timeout=_WAIT
            )
            if existing:
                return _result(existing, input)
            issued_at = datetime.now(UTC).replace(microsecond=0)
            serial = await conn.fetchval("SELECT nextval('receipt_numbers')", timeout=_WAIT)
            number = f"R-{issued_at.year}-{serial:06d}"
            pdf = render_receipt_pdf(number, input, issued_at)
            inserted = await conn.fetchrow(
                """INSERT INTO receipts (receipt_number, deal_id, milestone_key, amount, currency,
                       livemode, sandbox, payment_intent_id, charge_id, transfer_id, released_at,
                       issued_at, printed, pdf, pdf_sha256)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14, $15)
                   ON CONFLICT (deal_id, milestone_key) DO NOTHING
                   RETURNING receipt_number, pdf, pdf_sha256, amount, currency, livemode, sandbox""",
                number,
                input.deal_id,
                input.milestone_key,
                input.amount,
                input.currency,
                input.livemode,
                input.sandbox,
                input.payment_intent_id,
                input.charge_id,
                input.transfer_id,
                input.released_at,
                issued_at,
                json.dumps(input.model_dump(mode="json")),
                pdf,
                hashlib.sha256(pdf).hexdigest(),
                timeout=_WAIT,
            )
            # None: a concurrent attempt issued it first; its number wins and this one is unused.
            row = inserted or await conn.fetchrow(
                _EXISTING, input.deal_id, input.milestone_key, timeout=_WAIT
            )
            return _result(row, input)
