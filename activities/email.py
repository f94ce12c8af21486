"""Mail through SMTP (aiosmtplib), rendered from Jinja2 HTML + text templates.

Each EmailKind has `templates/<kind>.html.j2` (autoescaped) and `templates/<kind>.txt.j2`, both
rendered with StrictUndefined: a context key the workflow forgot is a non-retryable
`TemplateError` naming the key, never a mail with a blank where the amount should be.
The context contract is in `EmailInput`'s docstring; the activity adds `subject` and
`portal_url` (a fresh signed link for client mails, the vendor's own for the vendor's sign
request, None otherwise).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from email.utils import parseaddr
from typing import Any

import jinja2
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from dealflow.access_codes import access_code, access_code_digest
from dealflow.links import PortalLinks
from dealflow.mailer import (
    PERMANENT_SMTP_ERROR,  # noqa: F401 (the workflow names it from here)
    Attachment,
    Mailer,
    OutgoingMail,
)
from dealflow.messages import (
    OPERATOR_MAILBOX,
    AccessCodeMail,
    AccessCodeSent,
    EmailAttachment,
    EmailInput,
    EmailKind,
    EmailResult,
)

TEMPLATE_ERROR = "TemplateError"
INVALID_ATTACHMENT = "InvalidAttachment"

#: Kinds the client reads. Only these carry the portal link: it is the client's key to the deal
#: (signing, approving), so mails to the vendor, or to both parties, never contain it.
CLIENT_KINDS = frozenset(
    {
        EmailKind.SOW_SENT,
        EmailKind.SIGN_REMINDER,
        EmailKind.AMENDMENT_PROPOSED,
        EmailKind.PAYMENT_LINK,
        EmailKind.FUND_REMINDER,
        EmailKind.PAYMENT_RECEIVED,
        EmailKind.DEBIT_FAILED,
        EmailKind.DELIVERABLE_READY,
        EmailKind.REVIEW_REMINDER,
        EmailKind.APPROVED_RECEIPT,
        EmailKind.ARTIFACTS_DELIVERED,
    }
)

#: Kinds the vendor reads that carry the vendor's own portal link (to countersign the SOW).
VENDOR_LINK_KINDS = frozenset({EmailKind.VENDOR_SIGN_REQUEST})
#: Vendor kinds that carry the vendor's page link (`vendor_page_url`, None when the deal names
#: no vendor record): where they finish their Stripe onboarding.
VENDOR_PAGE_KINDS = frozenset({EmailKind.PAYOUT_WAITING})

DEMO_SUBJECT_PREFIX = "[DEMO] "

#: Templates ship with the code, so none is looked at again on disk once loaded (auto_reload
#: stat()ed the file at every mail: an eighth of a mail's CPU).
_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("activities", "templates"),
    auto_reload=False,
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render(kind: EmailKind, context: Mapping[str, Any]) -> tuple[str, str]:
    """(text, html) of one mail; a missing key raises a non-retryable TemplateError naming it."""
    try:
        text = _templates.get_template(f"{kind.value}.txt.j2").render(context)
        html = _templates.get_template(f"{kind.value}.html.j2").render(context)
    except jinja2.UndefinedError as error:
        message = f"the {kind.value} mail cannot be rendered: {error.message} (missing context key)"
        raise _template_error(message) from error
    except jinja2.TemplateNotFound as error:
        raise _template_error(f"no template for mail kind {kind.value}: {error.name}") from error
    return text, html


def _template_error(message: str) -> ApplicationError:
    """Non-retryable: another attempt renders the same templates with the same context."""
    return ApplicationError(message, type=TEMPLATE_ERROR, non_retryable=True)


class EmailActivities:
    """Renders and sends every mail dealflow sends; DeliveryActivities sends through it too."""

    def __init__(
        self,
        *,
        smtp_url: str,
        mail_from: str,
        links: PortalLinks,
        operator_email: str | None = None,
    ) -> None:
        self._mailer = Mailer(smtp_url=smtp_url, mail_from=mail_from)
        self._links = links
        self._operator_email = operator_email or parseaddr(mail_from)[1]

    async def close(self) -> None:
        """Say QUIT on the SMTP connections kept open between mails."""
        await self._mailer.close()

    async def send(
        self,
        *,
        deal_id: str,
        kind: EmailKind,
        to: str,
        subject: str,
        message_key: str,
        context: Mapping[str, Any],
        attachments: Iterable[Attachment] = (),
    ) -> str:
        """Render `kind` with `context` and send it; return the stable Message-ID."""
        link = (
            self._links.url(deal_id)
            if kind in CLIENT_KINDS
            else self._links.url(deal_id, party="vendor")
            if kind in VENDOR_LINK_KINDS
            else None
        )
        if to == OPERATOR_MAILBOX:
            to = self._operator_email
        if context.get("demo") is True:
            subject = DEMO_SUBJECT_PREFIX + subject
        links = {"subject": subject, "portal_url": link}
        if kind in VENDOR_PAGE_KINDS:
            vendor_id = context.get("vendor_id")
            links["vendor_page_url"] = self._links.vendor_page(vendor_id) if vendor_id else None
        text, html = render(kind, {**context, **links})
        mail = OutgoingMail(
            deal_id=deal_id,
            kind=kind.value,
            to=to,
            subject=subject,
            message_key=message_key,
            text=text,
            html=html,
            attachments=tuple(attachments),
        )
        message_id = await self._mailer.send(mail)
        activity.logger.info("sent %s mail %s for deal %s", kind.value, message_id, deal_id)
        return message_id

    async def _send_input(self, email: EmailInput, context: Mapping[str, Any]) -> str:
        return await self.send(
            deal_id=email.deal_id,
            kind=email.kind,
            to=email.to,
            subject=email.subject,
            message_key=email.message_key,
            context=context,
            attachments=[_decoded(attachment) for attachment in email.attachments],
        )

    @activity.defn
    @heartbeating
    async def send_email(self, input: EmailInput) -> EmailResult:
        return EmailResult(message_id=await self._send_input(input, input.context))

    @activity.defn
    @heartbeating
    async def send_access_code(self, input: AccessCodeMail) -> AccessCodeSent:
        """The code, made here from the secret key (the same on a retry), mailed on its own; the
        deal gets back only its digest."""
        email = input.email
        if email.kind is not EmailKind.ACCESS_CODE:
            raise ApplicationError(
                f"send_access_code sends access_code mails, not {email.kind.value}",
                type=TEMPLATE_ERROR,
                non_retryable=True,
            )
        code = access_code(self._links.secret_key, email.deal_id, input.issue)
        message_id = await self._send_input(email, {**email.context, "access_code": code})
        return AccessCodeSent(
            message_id=message_id, digest=access_code_digest(email.deal_id, input.issue, code)
        )


def _decoded(attachment: EmailAttachment) -> Attachment:
    try:
        data = base64.b64decode(attachment.content_b64, validate=True)
    except binascii.Error as error:
        raise ApplicationError(
            f"attachment {attachment.filename!r} is not valid base64",
            type=INVALID_ATTACHMENT,
            non_retryable=True,
        ) from error
    return Attachment(filename=attachment.filename, content_type=attachment.content_type, data=data)
