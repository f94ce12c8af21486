"""Reading the signing certificates the certificate activity kept (`signing_certificates`): the
admin API and the CLI hand them out."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class KeptCertificate:
    sow_version: int
    pdf: bytes
    sha256: str

    @property
    def filename(self) -> str:
        return f"signing-certificate-v{self.sow_version}.pdf"


async def kept_certificate(
    conn: asyncpg.Connection | asyncpg.Pool, deal_id: str, sow_version: int | None = None
) -> KeptCertificate | None:
    """A deal's certificate of `sow_version`, or its latest one; None if it has none."""
    row = await conn.fetchrow(
        """SELECT sow_version, pdf, pdf_sha256 FROM signing_certificates
           WHERE deal_id = $1 AND ($2::integer IS NULL OR sow_version = $2)
           ORDER BY sow_version DESC LIMIT 1""",
        deal_id,
        sow_version,
    )
    return KeptCertificate(row["sow_version"], row["pdf"], row["pdf_sha256"]) if row else None
