"""Messages that cross the workflow boundary: signal and update inputs, the status query, and the
inputs and results of every activity. One model per message, so each can evolve on its own.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from dealflow.models import MilestoneKey, MultiLineText, SingleLineText, VerbatimText


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- stages


class DealStage(StrEnum):
    """The deal's stage. While milestones run, it is the stage of the active milestone."""

    SOW_SENT = "sow_sent"
    SIGNED = "signed"
    AWAITING_FUNDING = "awaiting_funding"
    FUNDED = "funded"
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    REVISION_REQUESTED = "revision_requested"
    APPROVED = "approved"
    RELEASED = "released"
    DISPUTED = "disputed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


TERMINAL_STAGES = frozenset({DealStage.COMPLETED, DealStage.CANCELLED, DealStage.EXPIRED})


class MilestoneState(StrEnum):
    """Where one milestone is. `pending` waits for earlier milestones; milestones run in order."""

    PENDING = "pending"
    AWAITING_FUNDING = "awaiting_funding"
    FUNDED = "funded"
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    REVISION_REQUESTED = "revision_requested"
    APPROVED = "approved"
    RELEASED = "released"
    DISPUTED = "disputed"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"


# --------------------------------------------------------------------------- human actions
# Each is both a signal and an update of DealWorkflow; both paths run one method.


class Artifact(_Message):
    name: SingleLineText = Field(min_length=1, max_length=200)
    url: HttpUrl
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class SignSow(_Message):
    signer_name: SingleLineText = Field(min_length=2, max_length=200)
    consent: bool
    sow_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="hash the signer saw; must match"
    )
    #: Evidence the bridge takes from the connection, kept as received.
    ip: VerbatimText | None = None
    user_agent: VerbatimText | None = Field(default=None, max_length=500)


class SubmitDeliverable(_Message):
    milestone_key: MilestoneKey
    summary: MultiLineText = Field(min_length=1, max_length=5000)
    artifacts: list[Artifact] = Field(default_factory=list, max_length=50)


class ApproveMilestone(_Message):
    milestone_key: MilestoneKey
    approved_by: SingleLineText | None = Field(default=None, max_length=200)


class RequestRevision(_Message):
    milestone_key: MilestoneKey
    notes: MultiLineText = Field(min_length=1, max_length=5000)


class OpenDispute(_Message):
    milestone_key: MilestoneKey
    reason: MultiLineText = Field(min_length=1, max_length=5000)
    opened_by: Literal["client", "vendor", "operator", "stripe"] = "client"


class DisputeResolution(StrEnum):
    RESUME = "resume"  # back to where the milestone was, timers restart
    RELEASE = "release"  # pay the vendor
    REFUND = "refund"  # give the client their money back


class ResolveDispute(_Message):
    milestone_key: MilestoneKey
    resolution: DisputeResolution
    notes: MultiLineText = Field(default="", max_length=5000)


class CancelDeal(_Message):
    reason: MultiLineText = Field(min_length=1, max_length=2000)
    requested_by: SingleLineText = Field(default="operator", max_length=200)


class ActionResult(_Message):
    """What an update returns to the person who clicked."""

    stage: DealStage
    message: str


# --------------------------------------------------------------------------- Stripe events


class StripeEventSignal(_Message):
    """The parts of a verified Stripe event the workflow needs. A hint: activities re-read Stripe."""

    event_id: SingleLineText
    type: SingleLineText
    livemode: bool
    created: datetime
    object_id: SingleLineText
    milestone_key: SingleLineText | None = None
    checkout_session_id: SingleLineText | None = None
    payment_intent_id: SingleLineText | None = None
    amount: int | None = None
    currency: SingleLineText | None = None
    #: The object's status where the event type needs it: a closed dispute's "won" or "lost".
    status: SingleLineText | None = None


# --------------------------------------------------------------------------- status query


class Deliverable(_Message):
    summary: str
    artifacts: list[Artifact]
    submitted_at: datetime
    revision: int


class MilestoneStatus(_Message):
    key: str
    title: str
    amount: int
    due: str | None
    state: MilestoneState
    checkout_url: str | None = None
    checkout_session_id: str | None = None
    checkout_expires_at: datetime | None = None
    payment_intent_id: str | None = None
    funded: int = 0
    captured: int = 0
    released: int = 0
    refunded: int = 0
    revisions: int = 0
    deliverables: list[Deliverable] = Field(default_factory=list)
    dispute_reason: str | None = None
    transfer_id: str | None = None


class TimelineEntry(_Message):
    at: datetime
    source: Literal["workflow", "client", "vendor", "operator", "stripe", "timer", "system"]
    kind: str
    message: str
    milestone_key: str | None = None


class Deadline(_Message):
    at: datetime
    action: str


class Signature(_Message):
    signer_name: str
    signed_at: datetime
    sow_sha256: str
    ip: str | None = None
    user_agent: str | None = None


class MoneyTotals(_Message):
    """Integer minor units. `funded` is held client money; `released` is paid out to the vendor."""

    contract: int
    funded: int = 0
    released: int = 0
    refunded: int = 0
    disputed: int = 0


class DealStatus(_Message):
    deal_id: str
    title: str
    currency: str
    stage: DealStage
    client_email: str
    vendor_email: str
    sow_sha256: str
    livemode: bool | None = None
    signature: Signature | None = None
    milestones: list[MilestoneStatus]
    money: MoneyTotals
    timeline: list[TimelineEntry]
    anomalies: list[str] = Field(default_factory=list)
    next_deadline: Deadline | None = None
    demo: bool = False


# --------------------------------------------------------------------------- activity I/O


class CaptureMethod(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


class CreateCheckoutInput(_Message):
    deal_id: str
    milestone_key: str
    generation: int = Field(ge=1, description="1 for the first session, +1 for each replacement")
    title: str
    amount: int
    currency: str
    client_email: str
    capture_method: CaptureMethod
    expires_at: datetime


class CheckoutSession(_Message):
    session_id: str
    url: str
    expires_at: datetime
    livemode: bool


class CheckoutSessionState(_Message):
    session_id: str
    status: Literal["open", "complete", "expired"]
    payment_status: Literal["paid", "unpaid", "no_payment_required"]
    payment_intent_id: str | None
    amount_total: int | None
    currency: str | None
    livemode: bool
    metadata: dict[str, str] = Field(default_factory=dict)


class PaymentIntentState(_Message):
    payment_intent_id: str
    status: str  # Stripe's: requires_payment_method, requires_capture, succeeded, canceled, ...
    amount: int
    amount_capturable: int
    amount_received: int
    currency: str
    livemode: bool
    latest_charge: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    #: Read from the offline sandbox rather than Stripe: such money is never real.
    sandbox: bool = False


class ChargeState(_Message):
    """A charge as Stripe reports it, re-read before a refund or dispute event moves money.
    A charge made by a PaymentIntent carries the intent's metadata (deal and milestone)."""

    charge_id: str
    payment_intent_id: str | None
    amount: int
    amount_captured: int
    amount_refunded: int
    currency: str
    refunded: bool
    livemode: bool
    metadata: dict[str, str] = Field(default_factory=dict)
    disputed: bool


class RefundState(_Message):
    refund_id: str
    payment_intent_id: str | None
    charge_id: str | None
    amount: int
    currency: str
    status: str  # Stripe's: pending, requires_action, succeeded, failed, canceled
    #: Refund objects carry no livemode; it is the API key's mode.
    livemode: bool
    metadata: dict[str, str] = Field(default_factory=dict)


class DisputeState(_Message):
    dispute_id: str
    charge_id: str
    payment_intent_id: str | None
    amount: int
    currency: str
    status: str  # Stripe's: needs_response, under_review, won, lost, warning_*, ...
    reason: str
    livemode: bool
    #: None when the card network allows no response.
    evidence_due_by: datetime | None


class PaymentIntentAction(_Message):
    """Capture or cancel one payment intent of a milestone."""

    deal_id: str
    milestone_key: str
    payment_intent_id: str


class ExpireCheckoutInput(_Message):
    deal_id: str
    milestone_key: str
    session_id: str


class RefundInput(_Message):
    deal_id: str
    milestone_key: str
    payment_intent_id: str
    amount: int | None = Field(default=None, gt=0, description="None refunds what is left")
    reason: Literal["duplicate", "requested_by_customer", "fraudulent"]
    purpose: str = Field(description="why, part of the idempotency key: 'cancel', 'duplicate', ...")


class RefundResult(_Message):
    refund_id: str
    amount: int
    currency: str
    status: str
    livemode: bool


class TransferInput(_Message):
    deal_id: str
    milestone_key: str
    destination_account: str
    amount: int
    currency: str


class TransferResult(_Message):
    transfer_id: str
    amount: int
    currency: str
    livemode: bool


class EmailKind(StrEnum):
    """Every mail dealflow sends; each has an HTML and a text template of the same name."""

    SOW_SENT = "sow_sent"
    SIGN_REMINDER = "sign_reminder"
    PAYMENT_LINK = "payment_link"
    FUND_REMINDER = "fund_reminder"
    PAYMENT_RECEIVED = "payment_received"
    WORK_ORDER = "work_order"
    DELIVERY_OVERDUE = "delivery_overdue"
    DELIVERABLE_READY = "deliverable_ready"
    REVIEW_REMINDER = "review_reminder"
    REVISION_REQUESTED = "revision_requested"
    APPROVED_RECEIPT = "approved_receipt"
    PAYOUT_SENT = "payout_sent"
    DISPUTE_OPENED = "dispute_opened"
    DISPUTE_RESOLVED = "dispute_resolved"
    DEAL_CANCELLED = "deal_cancelled"
    DEAL_EXPIRED = "deal_expired"
    DEAL_COMPLETED = "deal_completed"
    ARTIFACTS_DELIVERED = "artifacts_delivered"


class EmailAttachment(_Message):
    filename: str
    content_type: str
    content_b64: str


class EmailInput(_Message):
    """One mail. The activity adds `portal_url` (a fresh signed link) to the template context.

    Context keys the templates use:
    - always: deal_id, deal_title, client_name, vendor_name, demo (bool)
    - per milestone: milestone_key, milestone_title, amount_display
    - sow_sent: sow, sow_sha256, milestones [{title, amount_display, due}], total_display
    - payment_link, fund_reminder: checkout_url, checkout_expires_at (ISO text)
    - deliverable_ready: summary, artifacts [{name, url, sha256}], review_deadline (ISO text)
    - revision_requested: notes; dispute_opened: reason; dispute_resolved: resolution, notes
    - approved_receipt: receipt_number, released_display, artifacts; payout_sent: transfer_id
    - deal_cancelled: reason, refunds [{milestone_title, amount_display}]; deal_expired: reason
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


class EmailResult(_Message):
    message_id: str


class WorkOrderInput(_Message):
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


class ArtifactDeliveryInput(_Message):
    """Approved artifacts go to the client by mail (and to their delivery URL, where they gave one)."""

    deal_id: str
    milestone_key: str
    client_email: str
    title: str
    artifacts: list[Artifact]
    #: Demo deals' mails say "DEMO — sandbox money" (as EmailInput's context key `demo` does).
    demo: bool = False


class DeliveryResult(_Message):
    status_code: int
    delivery_id: str


class LedgerEvent(_Message):
    """One append-only audit row; `event_key` is unique, so a retried activity writes once."""

    event_key: str
    deal_id: str
    milestone_key: str | None = None
    kind: str
    source: str
    occurred_at: datetime
    detail: dict[str, Any] = Field(default_factory=dict)


class DealSnapshot(_Message):
    """The `deals` read model row, upserted on each stage change."""

    deal_id: str
    workflow_id: str
    title: str
    client_email: str
    vendor_email: str
    currency: str
    stage: DealStage
    amount_total: int
    funded: int
    released: int
    refunded: int
    livemode: bool | None
    demo: bool
    updated_at: datetime
    #: The deal's timeline length when taken: ledger batches may land in any order (and several
    #: in the same instant), and the row keeps the highest. 0 in snapshots recorded before.
    version: int = 0


class PaymentKind(StrEnum):
    CHARGE = "charge"  # money captured from the client
    AUTHORIZATION = "authorization"  # held on the card, not yet captured
    REFUND = "refund"
    TRANSFER = "transfer"  # paid out to the vendor's connected account
    RELEASE = "release"  # released to the vendor without a Connect transfer


class PaymentRecord(_Message):
    """Money Stripe confirmed. `stripe_id` is unique per kind; `source` says who confirmed it."""

    stripe_id: str
    deal_id: str
    milestone_key: str
    kind: PaymentKind
    amount: int
    currency: str
    livemode: bool
    sandbox: bool
    status: str
    occurred_at: datetime


class LedgerBatch(_Message):
    """Everything one step of a deal's workflow wrote down, for one ledger transaction."""

    deal_id: str
    events: list[LedgerEvent] = Field(default_factory=list)
    payments: list[PaymentRecord] = Field(default_factory=list)
    #: The newest read-model row of the step, if the stage or money changed.
    snapshot: DealSnapshot | None = None


class QuarantinedRow(_Message):
    """A ledger row Postgres refused for good: kept aside in `ledger_quarantine`, not retried."""

    entry: Literal["event", "payment", "snapshot"]
    key: str
    error: str


class LedgerWriteResult(_Message):
    written: int
    quarantined: list[QuarantinedRow] = Field(default_factory=list)


class ReceiptInput(_Message):
    """Everything printed on the immutable receipt of one released milestone."""

    deal_id: str
    milestone_key: str
    milestone_title: str
    deal_title: str
    client_name: str
    client_email: str
    vendor_name: str
    vendor_email: str
    amount: int
    currency: str
    livemode: bool
    sandbox: bool
    payment_intent_id: str | None
    charge_id: str | None = None
    transfer_id: str | None
    released_at: datetime


class ReceiptResult(_Message):
    receipt_number: str
    pdf_b64: str
    sha256: str
