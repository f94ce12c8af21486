"""Signing certificates of countersigned statements of work, rendered as PDF and kept in the
ledger (`signing_certificates`), one per (deal, SOW version).

The input is the deal's own record of its signatures, so a retried attempt renders the same
bytes; the row is written once and never changed (a trigger refuses UPDATE and DELETE), and a
retry, or a second worker racing the first, returns the certificate already kept.
"""

from __future__ import annotations

import base64
import hashlib
import json

import asyncpg
from temporalio import activity

from activities.certificate_pdf import render_certificate_pdf
from activities.heartbeat import heartbeating
from dealflow.activity_timeouts import CERTIFICATES
from dealflow.messages import CertificateInput, CertificateResult

_WAIT = CERTIFICATES.statement_timeout


class CertificateActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    @heartbeating
    async def issue_signing_certificate(self, input: CertificateInput) -> CertificateResult:
        """Idempotent per (deal_id, sow_version): the certificate kept first is the one returned."""
        pdf = render_certificate_pdf(input)
        async with self._pool.acquire(timeout=_WAIT) as conn:
            await conn.execute(
                """INSERT INTO signing_certificates
                       (deal_id, sow_version, sow_sha256, completed_at, printed, pdf, pdf_sha256)
                   VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
                   ON CONFLICT (deal_id, sow_version) DO NOTHING""",
                input.deal_id,
                input.sow_version,
                input.sow_sha256,
                input.completed_at,
                json.dumps(input.model_dump(mode="json")),
                pdf,
                hashlib.sha256(pdf).hexdigest(),
                timeout=_WAIT,
            )
            kept = await conn.fetchrow(
                """SELECT pdf, pdf_sha256 FROM signing_certificates
                   WHERE deal_id = $1 AND sow_version = $2""",
                input.deal_id,
                input.sow_version,
                timeout=_WAIT,
            )
        return CertificateResult(
            pdf_b64=base64.b64encode(kept["pdf"]).decode("ascii"), sha256=kept["pdf_sha256"]
        )

