"""Countersigned statements of work on the time-skipping server: the spec's signing order,
the vendor's own sign request, work only once both signed, and the signing certificate."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment

from activities.certificate_pdf import certificate_lines, signature_lines
from dealflow.contract import EventKind
from dealflow.messages import DealStage, EmailKind, MilestoneState, SignSow
from dealflow.models import DealSpec
from tests.deal_harness import DealRun, make_spec, running_deal


def countersigned_spec(order: list[str], **policy: Any) -> DealSpec:
    return DealSpec.model_validate(
        {**make_spec(milestones=1, **policy).model_dump(), "signing_order": order}
    )


def signature(party: str, name: str) -> SignSow:
    return SignSow(
        signer_name=name, consent=True, ip=f"198.51.100.{len(name)}", user_agent=f"{party}-agent", party=party
    )


async def first_checkout(deal: DealRun) -> None:
    await deal.milestone_state("m1", MilestoneState.AWAITING_FUNDING)


async def test_vendor_signs_first_then_the_client_and_both_get_the_certificate(
    env: WorkflowEnvironment,
) -> None:
    spec = countersigned_spec(["vendor", "client"])
    async with running_deal(env, spec) as deal:
        await deal.wait_calls("the vendor's sign request", lambda f: f.mails(EmailKind.VENDOR_SIGN_REQUEST))
        request = deal.fake.mails(EmailKind.VENDOR_SIGN_REQUEST)[0]
        assert request.to == "vera@vendor.example"
        assert request.context["sow_sha256"] == hashlib.sha256(spec.sow.encode()).hexdigest()
        assert deal.fake.mails(EmailKind.SOW_SENT) == []

        early = await deal.rejected("sign_sow", signature("client", "Ada Client"))
        assert early == "the vendor signs the statement of work first; you will be asked once they have"

        answer = await deal.update("sign_sow", signature("vendor", "Vera Vendor"))
        assert answer.message == "Signed: thank you. The client signs next; work starts once they have."
        assert answer.stage is DealStage.SOW_SENT
        await deal.wait_calls("the client's SOW mail", lambda f: f.mails(EmailKind.SOW_SENT))
        status = await deal.status()
        assert status.awaiting_signature == "client"
        assert [s.party for s in status.signatures] == ["vendor"]
        assert status.signature is None
        assert deal.fake.args("create_checkout_session") == []
        again = await deal.rejected("sign_sow", signature("vendor", "Vera Vendor"))
        assert again == "the vendor has already signed the statement of work"

        await deal.update("sign_sow", signature("client", "Ada Client"))
        await first_checkout(deal)
        await deal.wait_calls("the certificate mails", lambda f: len(f.mails(EmailKind.SOW_SIGNED)) == 2)
        status = await deal.wait_for("the certificate", lambda s: s.certificate_sha256 is not None)
        await deal.replay()

    assert status.awaiting_signature is None
    assert [(s.party, s.signer_name, s.sow_version) for s in status.signatures] == [
        ("vendor", "Vera Vendor", 1),
        ("client", "Ada Client", 1),
    ]
    assert status.signature is not None and status.signature.party == "client"
    assert status.signing_order == ["vendor", "client"]

    certificate = deal.fake.args("issue_signing_certificate")[0]
    assert [s.user_agent for s in certificate.signatures] == ["vendor-agent", "client-agent"]
    assert certificate.completed_at == status.signatures[-1].signed_at
    assert ("Document SHA-256", status.sow_sha256) in certificate_lines(certificate)
    assert ("IP address", "198.51.100.10") in signature_lines(certificate, certificate.signatures[1])

    mails = deal.fake.mails(EmailKind.SOW_SIGNED)
    assert sorted(m.to for m in mails) == ["Ada@client.example", "vera@vendor.example"]
    for mail in mails:
        (attachment,) = mail.attachments
        pdf = base64.b64decode(attachment.content_b64)
        assert pdf.startswith(b"%PDF")
        assert hashlib.sha256(pdf).hexdigest() == status.certificate_sha256
        assert attachment.filename == f"signing-certificate-{spec.deal_id}-v1.pdf"

    kinds = [e.kind for e in sorted(deal.fake.ledger_events.values(), key=lambda e: e.occurred_at)]
    assert kinds.count(EventKind.SIGNATURE) == 2
    assert kinds.count(EventKind.SIGNED) == 1
    kept = [e for e in deal.fake.ledger_events.values() if e.kind == EventKind.SIGNING_CERTIFICATE]
    assert status.certificate_sha256 in kept[0].detail["message"]
    assert kept[0].detail["certificate_sha256"] == status.certificate_sha256
    signatures = [e.detail["signature"] for e in deal.fake.ledger_events.values() if e.kind == EventKind.SIGNATURE]
    assert sorted((s["party"], s["user_agent"]) for s in signatures) == [
        ("client", "client-agent"), ("vendor", "vendor-agent")
    ]


async def test_client_first_then_vendor_reminded_and_work_waits_for_the_countersignature(
    env: WorkflowEnvironment,
) -> None:
    spec = countersigned_spec(["client", "vendor"])
    async with running_deal(env, spec) as deal:
        await deal.wait_calls("the SOW mail", lambda f: f.mails(EmailKind.SOW_SENT))
        await deal.update("sign_sow", signature("client", "Ada Client"))
        await deal.wait_calls("the vendor's sign request", lambda f: f.mails(EmailKind.VENDOR_SIGN_REQUEST))
        await deal.advance(timedelta(days=3, minutes=1))
        await deal.wait_calls(
            "a reminder to the vendor", lambda f: len(f.mails(EmailKind.VENDOR_SIGN_REQUEST)) == 2
        )
        status = await deal.status()
        assert status.stage is DealStage.SOW_SENT
        assert status.awaiting_signature == "vendor"
        assert deal.fake.args("create_checkout_session") == []
        await deal.update("sign_sow", signature("vendor", "Vera Vendor"))
        await first_checkout(deal)
        await deal.replay()

    requests = deal.fake.mails(EmailKind.VENDOR_SIGN_REQUEST)
    assert [(m.message_key, m.context["reminder"]) for m in requests] == [
        ("vendor_sign_request:0", 0),
        ("vendor_sign_request:1", 1),
    ]
    assert deal.fake.mails(EmailKind.SIGN_REMINDER) == []


async def test_a_deal_the_vendor_never_countersigns_expires(env: WorkflowEnvironment) -> None:
    async with running_deal(env, countersigned_spec(["client", "vendor"])) as deal:
        await deal.wait_calls("the SOW mail", lambda f: f.mails(EmailKind.SOW_SENT))
        await deal.update("sign_sow", signature("client", "Ada Client"))
        await deal.advance(timedelta(days=15))
        final = await deal.result()

    assert final.stage is DealStage.EXPIRED
    assert deal.fake.args("issue_signing_certificate") == []


async def test_a_deal_the_client_signs_alone_refuses_the_vendor(env: WorkflowEnvironment) -> None:
    async with running_deal(env, make_spec(milestones=1)) as deal:
        refused = await deal.rejected("sign_sow", signature("vendor", "Vera Vendor"))
        assert refused == "party: only the client signs this deal's statement of work"
        await deal.sign()
        status = await deal.status()

    assert status.signing_order == ["client"]
    assert [s.party for s in status.signatures] == ["client"]
    assert deal.fake.args("issue_signing_certificate") == []
    assert deal.fake.mails(EmailKind.SOW_SIGNED) == []


@pytest.mark.parametrize(
    ("order", "problem"),
    [
        (["vendor"], "must include 'client'"),
        (["client", "client"], "names a party twice"),
        ([], "at least 1 item"),
        (["client", "auditor"], "'client' or 'vendor'"),
    ],
)
def test_a_signing_order_that_cannot_be_signed_is_refused(order: list[str], problem: str) -> None:
    with pytest.raises(ValidationError) as raised:
        countersigned_spec(order)
    assert "signing_order" in str(raised.value)
    assert problem in str(raised.value)
