"""What the mail and delivery activities take and return: mails to the parties, work orders and
artifacts to the vendor and the client."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from dealflow.messages.actions import Artifact
from dealflow.messages.base import Message

__all__ = [
    "OPERATOR_MAILBOX",
    "AccessCodeMail",
    "AccessCodeSent",
    "ArtifactDeliveryInput",
    "DeliveryResult",
    "EmailAttachment",
    "EmailInput",
    "EmailKind",
    "EmailResult",
    "WorkOrderInput",
]

#: The `to` of a mail for the platform's operator: the mail activity sends it to
#: DEALFLOW_OPERATOR_EMAIL, an address a deal does not carry (it may change while deals run).
OPERATOR_MAILBOX = "operator"


class EmailKind(StrEnum):
    """Every mail dealflow sends; each has an HTML and a text template of the same name."""

    SOW_SENT = "sow_sent"
    SIGN_REMINDER = "sign_reminder"
    #: The SOW to the vendor for their signature (countersigned deals), or a reminder of it.
    VENDOR_SIGN_REQUEST = "vendor_sign_request"
    #: Every party signed: to each, with the signing certificate attached.
    SOW_SIGNED = "sow_signed"
    #: A change order to the client: old and new terms side by side, to accept or decline.
    AMENDMENT_PROPOSED = "amendment_proposed"
    #: The client's answer to a change order, to both parties.
    AMENDMENT_ANSWERED = "amendment_answered"
    PAYMENT_LINK = "payment_link"
    FUND_REMINDER = "fund_reminder"
    PAYMENT_RECEIVED = "payment_received"
    DEBIT_FAILED = "debit_failed"
    WORK_ORDER = "work_order"
    DELIVERY_OVERDUE = "delivery_overdue"
    DELIVERABLE_READY = "deliverable_ready"
    REVIEW_REMINDER = "review_reminder"
    REVISION_REQUESTED = "revision_requested"
    APPROVED_RECEIPT = "approved_receipt"
    PAYOUT_SENT = "payout_sent"
    PAYOUT_WAITING = "payout_waiting"
    DISPUTE_OPENED = "dispute_opened"
    DISPUTE_RESOLVED = "dispute_resolved"
    DEAL_CANCELLED = "deal_cancelled"
    DEAL_EXPIRED = "deal_expired"
    DEAL_COMPLETED = "deal_completed"
    ARTIFACTS_DELIVERED = "artifacts_delivered"
    DISPUTE_EVIDENCE = "dispute_evidence"
    ACCESS_CODE = "access_code"
    SIGNING_LOCKED = "signing_locked"


class EmailAttachment(Message):
    filename: str
    content_type: str
    content_b64: str


class EmailInput(Message):
    """One mail. The activity adds `portal_url` (a fresh signed link) to the template context.

    Context keys the templates use:
    - always: deal_id, deal_title, client_name, vendor_name, demo (bool)
    - per milestone: milestone_key, milestone_title, amount_display
    - sow_sent: sow, sow_sha256, milestones [{title, amount_display, due}], total_display
    - vendor_sign_request: the same as sow_sent, and reminder (0 for the request, then 1, 2 ...)
    - sow_signed: sow_sha256, sow_version, certificate_sha256 (the certificate PDF attached)
    - amendment_proposed: version, sow_sha256, reason, proposed_by, changes [{key, before,
      after}], total_before, total_after; amendment_answered: version, accepted (bool),
      sow_sha256, reason, certificate_sha256 (the version's signing certificate attached, in a
      countersigned deal; None otherwise)
    - payment_link, fund_reminder: checkout_url, checkout_expires_at (ISO text),
      late_fee_notice (the late fee added or to come, or "")
    - deliverable_ready: summary, artifacts [{name, url, sha256}], review_deadline (ISO text)
    - debit_failed: reason (Stripe's, why the bank debit failed)
    - revision_requested: notes; dispute_opened: reason; dispute_resolved: resolution, notes
    - dispute_evidence (to OPERATOR_MAILBOX): dispute_id, dispute_amount_display, due_by (ISO
      text), submitted (bool), problem (why not, or ""), evidence [{field, text}]
    - approved_receipt: receipt_number, released_display, artifacts; payout_sent: transfer_id
    - deal_cancelled: reason, refunds [{milestone_title, amount_display}]; deal_expired: reason
    - access_code: access_code (never in another mail; None in an `AccessCodeMail`, whose
      activity puts the code in); signing_locked (to the client and to
      OPERATOR_MAILBOX): attempts, for_operator (bool)
    Every kind needs the "always" keys (artifacts_delivered is built by deliver_artifacts).
    A missing key fails the activity with a non-retryable TemplateError naming it. Only the
    client's kinds (activities.email.CLIENT_KINDS) carry the portal link: never send them to
    the vendor. `demo: True` prefixes the subject with "[DEMO] " and marks the body.
    """

    deal_id: str
    kind: EmailKind
    to: str
    subject: str
    #: Unique per logical mail within the deal (e.g. 'sign_reminder:2'); the Message-ID derives from it.
    message_key: str
    context: dict[str, Any] = Field(default_factory=dict)
    attachments: list[EmailAttachment] = Field(default_factory=list, max_length=5)


class EmailResult(Message):
    message_id: str


class AccessCodeMail(Message):
    """The client's `issue`-th access code, to be made by the worker and mailed (`email`, its
    `access_code` None): the code is never in the deal's history."""

    email: EmailInput
    issue: int = Field(ge=1)


class AccessCodeSent(Message):
    message_id: str
    #: What the deal keeps of the code (`dealflow.access_codes.access_code_digest`).
    digest: str


class WorkOrderInput(Message):
    deal_id: str
    milestone_key: str
    fulfillment_url: str
    title: str
    description: str | None
    amount: int
    currency: str
    due: str | None
    sow_sha256: str
    revision: int = 0
    notes: str | None = None


class ArtifactDeliveryInput(Message):
    """Approved artifacts go to the client by mail (and to their delivery URL, where they gave one)."""

    deal_id: str
    milestone_key: str
    client_email: str
    title: str
    artifacts: list[Artifact]
    #: Demo deals' mails say "DEMO — sandbox money" (as EmailInput's context key `demo` does).
    demo: bool = False


class DeliveryResult(Message):
    status_code: int
    delivery_id: str
