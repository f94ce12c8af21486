"""EmailActivities.send_email against a real SMTP server (aiosmtpd on a free port)."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.email import CLIENT_KINDS, VENDOR_LINK_KINDS, EmailActivities
from dealflow.access_codes import access_code, access_code_digest
from dealflow.links import PortalLinks, verify_link, verify_token, verify_vendor_page_token
from dealflow.mailer import SmtpEndpoint
from dealflow.messages import (
    OPERATOR_MAILBOX,
    AccessCodeMail,
    EmailAttachment,
    EmailInput,
    EmailKind,
)
from dealflow.serve import free_port
from dealflow.settings import ConfigError
from devstack.mailsink import MailSink

SECRET = "test-secret-key-0123456789"
PUBLIC_URL = "https://deals.example.test"
DEAL = "acme-logo"

MILESTONE = {"milestone_key", "milestone_title", "amount_display"}
ALWAYS = {"deal_id", "deal_title", "client_name", "vendor_name", "demo"}

#: The context keys each kind's templates need: the workflow must supply at least these.
REQUIRED_KEYS: dict[EmailKind, set[str]] = {
    EmailKind.SOW_SENT: ALWAYS | {"sow", "sow_sha256", "milestones", "total_display"},
    EmailKind.SIGN_REMINDER: ALWAYS,
    EmailKind.VENDOR_SIGN_REQUEST: ALWAYS
    | {"sow", "sow_sha256", "milestones", "total_display", "reminder"},
    EmailKind.SOW_SIGNED: ALWAYS | {"sow_sha256", "sow_version", "certificate_sha256"},
    EmailKind.AMENDMENT_PROPOSED: ALWAYS
    | {"version", "sow_sha256", "reason", "proposed_by", "changes", "total_before", "total_after"},
    EmailKind.AMENDMENT_ANSWERED: ALWAYS | {"version", "accepted", "sow_sha256", "reason", "certificate_sha256"},
    EmailKind.PAYMENT_LINK: ALWAYS | MILESTONE | {"checkout_url", "checkout_expires_at"},
    EmailKind.FUND_REMINDER: ALWAYS | MILESTONE | {"checkout_url", "checkout_expires_at"},
    EmailKind.PAYMENT_RECEIVED: ALWAYS | MILESTONE,
    EmailKind.DEBIT_FAILED: ALWAYS | MILESTONE | {"reason"},
    EmailKind.WORK_ORDER: ALWAYS | MILESTONE,
    EmailKind.DELIVERY_OVERDUE: ALWAYS | MILESTONE,
    EmailKind.DELIVERABLE_READY: ALWAYS | MILESTONE | {"summary", "artifacts", "review_deadline"},
    EmailKind.REVIEW_REMINDER: ALWAYS | MILESTONE,
    EmailKind.REVISION_REQUESTED: ALWAYS | MILESTONE | {"notes"},
    EmailKind.APPROVED_RECEIPT: ALWAYS
    | MILESTONE
    | {"receipt_number", "released_display", "artifacts"},
    EmailKind.PAYOUT_SENT: ALWAYS | MILESTONE | {"transfer_id"},
    EmailKind.PAYOUT_WAITING: ALWAYS | MILESTONE | {"reason", "recheck", "vendor_id"},
    EmailKind.DISPUTE_OPENED: ALWAYS | MILESTONE | {"reason"},
    EmailKind.DISPUTE_RESOLVED: ALWAYS | MILESTONE | {"resolution", "notes"},
    EmailKind.DISPUTE_EVIDENCE: ALWAYS
    | MILESTONE
    | {"dispute_id", "dispute_amount_display", "due_by", "submitted", "problem", "evidence"},
    EmailKind.DEAL_CANCELLED: ALWAYS | {"reason", "refunds"},
    EmailKind.DEAL_EXPIRED: ALWAYS | {"reason"},
    EmailKind.DEAL_COMPLETED: ALWAYS,
    EmailKind.ACCESS_CODE: ALWAYS | {"access_code"},
    EmailKind.SIGNING_LOCKED: ALWAYS | {"attempts", "for_operator"},
    # Built by DeliveryActivities.deliver_artifacts from ArtifactDeliveryInput.
    EmailKind.ARTIFACTS_DELIVERED: {"deal_id", "demo", "title", "milestone_key", "artifacts"},
}

FULL_CONTEXT: dict[str, Any] = {
    "deal_id": DEAL,
    "deal_title": "Acme logo redesign",
    "client_name": "Ada Client",
    "vendor_name": "Vera Vendor",
    "demo": False,
    "milestone_key": "concepts",
    "milestone_title": "Three logo concepts",
    "amount_display": "$1,250.00",
    "sow": "Three concepts, two revision rounds, final files in SVG and PNG.",
    "sow_sha256": "a" * 64,
    "milestones": [
        {"title": "Three logo concepts", "amount_display": "$1,250.00", "due": "2026-12-01"},
        {"title": "Final files", "amount_display": "$750.00", "due": None},
    ],
    "total_display": "$2,000.00",
    "reminder": 0,
    "sow_version": 1,
    "certificate_sha256": "c" * 64,
    "version": 2,
    "proposed_by": "vendor",
    "changes": [{"key": "concepts", "before": "$1,250.00", "after": "$1,500.00"}],
    "total_before": "$2,000.00",
    "total_after": "$2,250.00",
    "accepted": True,
    "checkout_url": "https://checkout.example.test/c/pay_123",
    "checkout_expires_at": "2026-12-02T10:00:00+00:00",
    "summary": "Concepts A, B and C attached.",
    "artifacts": [
        {
            "name": "concepts.pdf",
            "url": "https://files.example.test/concepts.pdf",
            "sha256": "b" * 64,
            "size_display": "52,133 bytes",
        }
    ],
    "review_deadline": "2026-12-16T10:00:00+00:00",
    "notes": "Make concept B bolder.",
    "reason": "The work was not delivered.",
    "resolution": "refund",
    "receipt_number": "DF-2026-000123",
    "released_display": "$1,250.00",
    "transfer_id": "tr_1Abc",
    "recheck": "1 hour",
    "vendor_id": "ven_1abc",
    "refunds": [{"milestone_title": "Three logo concepts", "amount_display": "$1,250.00"}],
    "title": "Three logo concepts",
    "dispute_id": "dp_1Abc",
    "dispute_amount_display": "$1,250.00",
    "due_by": "2026-12-20T10:00:00+00:00",
    "submitted": False,
    "problem": "StripeInvalidRequest: This dispute is lost",
    "evidence": [{"field": "product_description", "text": "Three logo concepts, as signed."}],
    "access_code": "048213",
    "attempts": 5,
    "for_operator": False,
}


class RefusingMailSink(MailSink):
    """The dev mail sink, refusing the recipients a test names with the reply the test chooses."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        #: recipient address -> SMTP reply, e.g. "550 5.1.1 no such user"
        self.refuse: dict[str, str] = {}
        self.recipients: list[str] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        self.recipients.append(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[RefusingMailSink]:
    sink = RefusingMailSink(tmp_path / "mail")
    await sink.start()
    yield sink
    await sink.stop()


def email_activities(smtp_url: str) -> EmailActivities:
    return EmailActivities(
        smtp_url=smtp_url,
        mail_from="dealflow <deals@dealflow.test>",
        links=PortalLinks(PUBLIC_URL, SECRET, days=30),
    )


def mail(kind: EmailKind = EmailKind.PAYMENT_LINK, **changes: Any) -> EmailInput:
    fields: dict[str, Any] = {
        "deal_id": DEAL,
        "kind": kind,
        "to": "ada@client.test",
        "subject": "Fund milestone: Three logo concepts",
        "message_key": f"{kind.value}:concepts:1",
        "context": {key: FULL_CONTEXT[key] for key in REQUIRED_KEYS[kind]},
    }
    fields.update(changes)
    return EmailInput(**fields)


async def send(sink: RefusingMailSink, input: EmailInput) -> str:
    result = await ActivityEnvironment().run(email_activities(sink.url).send_email, input)
    return result.message_id


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


async def test_mail_has_text_and_html_amounts_headers_and_a_valid_portal_link(
    sink: RefusingMailSink,
) -> None:
    message_id = await send(sink, mail())

    [message] = sink.messages
    assert sink.recipients == ["ada@client.test"]
    assert message["From"] == "dealflow <deals@dealflow.test>"
    assert message["Message-ID"] == message_id
    assert message["Subject"] == "Fund milestone: Three logo concepts"
    assert message["X-Dealflow-Deal"] == DEAL
    assert message["X-Dealflow-Kind"] == "payment_link"
    text, html = parts(message)
    for body in (text, html):
        assert "$1,250.00" in body
        assert "https://checkout.example.test/c/pay_123" in body
        assert "DEMO" not in body
    link = re.search(r"Open your deal: (\S+)", text)
    assert link is not None
    assert link.group(1).replace("&", "&amp;") in html
    url = urlparse(link.group(1))
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{PUBLIC_URL}/portal/{DEAL}"
    expires = verify_token(SECRET, DEAL, parse_qs(url.query)["token"][0])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)


async def test_same_message_key_gives_the_same_message_id(sink: RefusingMailSink) -> None:
    first = await send(sink, mail())
    retried = await send(sink, mail())
    other = await send(sink, mail(message_key="payment_link:concepts:2"))

    assert first == retried == sink.messages[0]["Message-ID"] == sink.messages[1]["Message-ID"]
    assert other != first
    assert re.fullmatch(r"<dealflow\.[0-9a-f]{32}@dealflow\.test>", first)


async def test_attachments_are_attached_with_their_content_type(sink: RefusingMailSink) -> None:
    pdf = b"%PDF-1.7 receipt bytes"
    attachment = EmailAttachment(
        filename="receipt DF-2026-000123.pdf",
        content_type="application/pdf",
        content_b64=base64.b64encode(pdf).decode(),
    )
    await send(sink, mail(EmailKind.APPROVED_RECEIPT, attachments=[attachment]))

    [message] = sink.messages
    [attached] = list(message.iter_attachments())
    assert attached.get_content_type() == "application/pdf"
    assert attached.get_filename() == "receipt DF-2026-000123.pdf"
    assert attached.get_content() == pdf


async def test_an_attachment_that_is_not_base64_is_refused(sink: RefusingMailSink) -> None:
    broken = EmailAttachment(
        filename="receipt.pdf", content_type="application/pdf", content_b64="%%%"
    )

    with pytest.raises(ApplicationError) as raised:
        await send(sink, mail(EmailKind.APPROVED_RECEIPT, attachments=[broken]))

    assert raised.value.type == "InvalidAttachment"
    assert raised.value.non_retryable
    assert "'receipt.pdf'" in str(raised.value)
    assert sink.messages == []


async def test_refused_recipient_is_a_permanent_smtp_error(sink: RefusingMailSink) -> None:
    sink.refuse["nobody@client.test"] = "550 5.1.1 <nobody@client.test>: no such user"

    with pytest.raises(ApplicationError) as raised:
        await send(sink, mail(to="nobody@client.test"))

    assert raised.value.type == "PermanentSmtpError"
    assert raised.value.non_retryable
    assert "550" in str(raised.value)
    assert sink.messages == []


async def test_temporary_refusal_and_unreachable_server_are_retried(sink: RefusingMailSink) -> None:
    sink.refuse["busy@client.test"] = "451 4.3.0 try again later"
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await send(sink, mail(to="busy@client.test"))

    unreachable = email_activities(f"smtp://127.0.0.1:{free_port()}")
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await ActivityEnvironment().run(unreachable.send_email, mail())


@pytest.mark.parametrize("kind", list(EmailKind))
async def test_every_kind_renders_from_its_required_keys(
    sink: RefusingMailSink, kind: EmailKind
) -> None:
    message_id = await send(sink, mail(kind))

    [message] = sink.messages
    assert message["Message-ID"] == message_id
    assert message["X-Dealflow-Kind"] == kind.value
    text, html = parts(message)
    for body in (text, html):
        assert DEAL in body
        assert (
            FULL_CONTEXT["title" if kind is EmailKind.ARTIFACTS_DELIVERED else "deal_title"] in body
        )
        if "amount_display" in REQUIRED_KEYS[kind]:
            assert "$1,250.00" in body
        # The portal link is the client's key to the deal: never in a mail the vendor reads,
        # except the vendor's own link in their sign request.
        assert ("/portal/" in body) == (kind in CLIENT_KINDS | VENDOR_LINK_KINDS)


async def test_the_vendors_sign_request_carries_the_vendors_own_link(
    sink: RefusingMailSink,
) -> None:
    await send(sink, mail(EmailKind.VENDOR_SIGN_REQUEST, to="vera@vendor.test"))

    text, _ = parts(sink.messages[0])
    link = re.search(r"Open your deal: (\S+)", text)
    assert link is not None
    token = parse_qs(urlparse(link.group(1)).query)["token"][0]
    assert verify_link(SECRET, DEAL, token).party == "vendor"


@pytest.mark.parametrize(
    ("kind", "key"), [(kind, key) for kind, keys in REQUIRED_KEYS.items() for key in sorted(keys)]
)
async def test_a_missing_context_key_is_a_template_error_naming_it(
    kind: EmailKind, key: str
) -> None:
    input = mail(kind)
    del input.context[key]
    # Nothing listens here: a template error must stop the mail before any connection.
    activities = email_activities(f"smtp://127.0.0.1:{free_port()}")

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(activities.send_email, input)

    assert raised.value.type == "TemplateError"
    assert raised.value.non_retryable
    assert f"'{key}'" in str(raised.value)


async def test_demo_mail_says_sandbox_money(sink: RefusingMailSink) -> None:
    input = mail(EmailKind.PAYMENT_RECEIVED, subject="Payment received")
    input.context["demo"] = True
    await send(sink, input)

    [message] = sink.messages
    assert message["Subject"] == "[DEMO] Payment received"
    for body in parts(message):
        assert "DEMO — sandbox money" in body


async def test_html_part_escapes_context_and_text_part_keeps_it(sink: RefusingMailSink) -> None:
    input = mail(EmailKind.SIGN_REMINDER)
    input.context["deal_title"] = "<script>alert(1)</script> & co"
    await send(sink, input)

    text, html = parts(sink.messages[0])
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert "<script>" not in html
    assert "<script>alert(1)</script> & co" in text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://mail.test",
            SmtpEndpoint("mail.test", 25, None, None, use_tls=False, start_tls=False),
        ),
        (
            "smtp://u:p%2Fw@mail.test:2525",
            SmtpEndpoint("mail.test", 2525, "u", "p/w", use_tls=False, start_tls=False),
        ),
        (
            "smtp://mail.test:587?starttls=true",
            SmtpEndpoint("mail.test", 587, None, None, use_tls=False, start_tls=True),
        ),
        (
            "smtps://mail.test",
            SmtpEndpoint("mail.test", 465, None, None, use_tls=True, start_tls=False),
        ),
    ],
)
def test_smtp_url_forms(url: str, expected: SmtpEndpoint) -> None:
    assert SmtpEndpoint.parse(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.test",
        "smtp://",
        "smtp://mail.test?tls=1",
        "smtp://mail.test?starttls=maybe",
        "smtps://mail.test?starttls=true",
    ],
)
def test_bad_smtp_urls_are_config_errors_naming_the_setting(url: str) -> None:
    with pytest.raises(ConfigError, match="SMTP_URL"):
        SmtpEndpoint.parse(url)


async def test_payout_without_a_connect_account_says_how_it_is_paid(sink: RefusingMailSink) -> None:
    payout = mail(EmailKind.PAYOUT_SENT)
    payout = payout.model_copy(update={"context": {**payout.context, "transfer_id": None}})
    await send(sink, payout)
    for body in parts(sink.messages[-1]):
        assert "None" not in body
        assert "no Stripe Connect account" in body


async def test_an_operator_mail_goes_to_the_operator_and_says_what_was_not_sent(
    sink: RefusingMailSink,
) -> None:
    activities = EmailActivities(
        smtp_url=sink.url,
        mail_from="dealflow <deals@dealflow.test>",
        links=PortalLinks(PUBLIC_URL, SECRET, days=30),
        operator_email="ops@dealflow.test",
    )
    input = mail(EmailKind.DISPUTE_EVIDENCE, to=OPERATOR_MAILBOX)
    await ActivityEnvironment().run(activities.send_email, input)
    await ActivityEnvironment().run(
        email_activities(sink.url).send_email,
        mail(EmailKind.DISPUTE_EVIDENCE, to=OPERATOR_MAILBOX, message_key="again"),
    )

    assert sink.recipients == ["ops@dealflow.test", "deals@dealflow.test"]
    text, html = parts(sink.messages[0])
    for body in (text, html):
        assert "dp_1Abc" in body and "2026-12-20T10:00:00+00:00" in body
        assert "This dispute is lost" in body and "Three logo concepts, as signed." in body
        assert "/portal/" not in body


async def test_a_waiting_payout_mail_links_the_vendor_page_never_the_portal(sink: RefusingMailSink) -> None:
    await send(sink, mail(EmailKind.PAYOUT_WAITING, to="vera@vendor.test"))
    unnamed_vendor = {**FULL_CONTEXT, "vendor_id": None}
    await send(sink, mail(EmailKind.PAYOUT_WAITING, to="nina@vendor.test", message_key="w2", context=unnamed_vendor))

    named, unnamed = (parts(message) for message in sink.messages)
    for body in named:
        token = re.search(r"/vendor/ven_1abc\?token=([A-Za-z0-9_.=-]+)", body).group(1)
        assert verify_vendor_page_token(SECRET, "ven_1abc", token)
        assert "/portal/" not in body
    for body in unnamed:
        assert "/vendor/" not in body and "ask them for a new one" in body


async def test_payment_mails_announce_the_late_fee_before_it_applies(sink: RefusingMailSink) -> None:
    notice = "If it is still unpaid on 2026-12-05 00:00 UTC, a late fee of $25.00 is added."
    for kind in (EmailKind.PAYMENT_LINK, EmailKind.FUND_REMINDER):
        announced = mail(kind)
        announced = announced.model_copy(
            update={"context": {**announced.context, "late_fee_notice": notice}}
        )
        await send(sink, announced)
        for body in parts(sink.messages[-1]):
            assert "a late fee of $25.00 is added" in body
        await send(sink, mail(kind, message_key=f"{kind.value}:concepts:2"))
        for body in parts(sink.messages[-1]):
            assert "late fee" not in body


async def test_the_access_code_is_made_from_the_secret_key_and_only_its_digest_goes_back(
    sink: RefusingMailSink,
) -> None:
    activities = email_activities(sink.url)
    email = mail(EmailKind.ACCESS_CODE)
    email.context["access_code"] = None  # the worker puts the code in
    coded = AccessCodeMail(email=email, issue=2)
    sent = await ActivityEnvironment().run(activities.send_access_code, coded)
    again = await ActivityEnvironment().run(activities.send_access_code, coded)  # a retry

    code = access_code(SECRET, DEAL, 2)
    assert again == sent and sent.digest == access_code_digest(DEAL, 2, code)
    assert code not in sent.model_dump_json()
    text, html = parts(sink.messages[0])
    assert code in text and code in html
    assert parts(sink.messages[1]) == (text, html)  # the same code, the same mail

    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(
            activities.send_access_code, AccessCodeMail(email=mail(EmailKind.SOW_SENT), issue=1)
        )
    assert refused.value.non_retryable and "not sow_sent" in str(refused.value)
