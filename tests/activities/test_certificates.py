"""The signing certificate activity on embedded Postgres: the PDF states every signature's
evidence, renders the same bytes for the same deal, and is kept once, never changed."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from activities.certificate_pdf import render_certificate_pdf, signature_lines
from activities.certificates import CertificateActivities
from dealflow.certificates import kept_certificate
from dealflow.messages import CertificateInput, CertificateResult, Signature, SignerParty

SIGNED_AT = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)


def certificate(**changes: object) -> CertificateInput:
    fields: dict[str, object] = {
        "deal_id": "acme-site",
        "deal_title": "Acme site",
        "sow_sha256": "a" * 64,
        "sow_version": 1,
        "parties": [
            SignerParty(party="client", name="Zoë Client", email="zoe@client.test"),
            SignerParty(party="vendor", name="Vera Vendor", email="vera@vendor.test"),
        ],
        "signatures": [
            Signature(
                signer_name="Zoë Client", signed_at=SIGNED_AT, sow_sha256="a" * 64,
                ip="203.0.113.9", user_agent="Firefox/130", party="client",
            ),
            Signature(
                signer_name="Vera Vendor", signed_at=SIGNED_AT.replace(hour=10), sow_sha256="a" * 64,
                ip=None, user_agent="vendor-tool/2", party="vendor",
            ),
        ],
        "completed_at": SIGNED_AT.replace(hour=10),
    }
    fields.update(changes)
    return CertificateInput.model_validate(fields)


async def issue(pool: asyncpg.Pool, input: CertificateInput) -> CertificateResult:
    return await ActivityEnvironment().run(CertificateActivities(pool).issue_signing_certificate, input)


def test_the_same_signatures_render_the_same_pdf_with_their_evidence() -> None:
    first = render_certificate_pdf(certificate())
    assert first == render_certificate_pdf(certificate())
    assert first.startswith(b"%PDF")
    client, vendor = certificate().signatures
    lines = dict(signature_lines(certificate(), client))
    assert lines["Party"] == "client: Zoë Client <zoe@client.test>"
    assert lines["Consent"] == "given: agreed to sign electronically"
    assert lines["Signed at"] == "2026-11-30 09:15:00 UTC"
    assert (lines["IP address"], lines["Browser"]) == ("203.0.113.9", "Firefox/130")
    assert dict(signature_lines(certificate(), vendor))["IP address"] == "not recorded"
    assert render_certificate_pdf(certificate(sow_version=2)) != first


async def test_a_certificate_is_kept_once_and_never_changed(db_pool: asyncpg.Pool) -> None:
    issued = await issue(db_pool, certificate())
    pdf = base64.b64decode(issued.pdf_b64)
    assert issued.sha256 == hashlib.sha256(pdf).hexdigest()
    assert await issue(db_pool, certificate()) == issued

    kept = await kept_certificate(db_pool, "acme-site")
    assert kept is not None and (kept.sow_version, kept.pdf, kept.sha256) == (1, pdf, issued.sha256)
    assert await kept_certificate(db_pool, "acme-site", 2) is None
    printed = await db_pool.fetchval("SELECT printed FROM signing_certificates WHERE deal_id = 'acme-site'")
    assert "Zoë Client" in printed
    with pytest.raises(asyncpg.PostgresError):
        await db_pool.execute("UPDATE signing_certificates SET pdf_sha256 = $1", "b" * 64)
    with pytest.raises(asyncpg.PostgresError):
        await db_pool.execute("DELETE FROM signing_certificates")

    second = await issue(db_pool, certificate(sow_version=2))
    latest = await kept_certificate(db_pool, "acme-site")
    assert latest is not None and (latest.sow_version, latest.sha256) == (2, second.sha256)
