"""The `status` query's answer: the whole deal, as the portal, the APIs and the CLI show it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dealflow.messages.actions import Artifact
from dealflow.messages.amendments import SowVersion
from dealflow.messages.base import Message
from dealflow.messages.stages import DealStage, MilestoneState
from dealflow.models import DealSpec
from dealflow.signers import Signer

__all__ = [
    "AccessCodeStatus",
    "ContinuedDeal",
    "Deadline",
    "DealStatus",
    "Deliverable",
    "MilestoneProgress",
    "MilestoneStatus",
    "MoneyTotals",
    "Signature",
    "TimelineEntry",
]


class Deliverable(Message):
    summary: str
    artifacts: list[Artifact]
    submitted_at: datetime
    revision: int


class MilestoneProgress(Message):
    """What the workflow tracks of a milestone and its status shows as it is: declared once for
    both the workflow's own state (`workflows.milestone.MilestoneRun`) and `MilestoneStatus`."""

    state: MilestoneState
    payment_intent_id: str | None = None
    #: While a bank debit is processing: its payment, its method and when Stripe should have
    #: settled it.
    processing_intent_id: str | None = None
    processing_method: str | None = None
    processing_until: datetime | None = None
    funded: int = 0
    captured: int = 0
    released: int = 0
    #: Of `released`, what the platform kept; the vendor got the rest.
    platform_fee: int = 0
    revisions: int = 0
    deliverables: list[Deliverable] = Field(default_factory=list)
    dispute_reason: str | None = None
    transfer_id: str | None = None
    #: Late fees added to the amount due so far, when the payment is due, and the next fee
    #: (its amount and when it is added if the milestone is still unpaid).
    late_fee: int = 0
    payment_due_at: datetime | None = None
    next_late_fee: int = 0
    next_late_fee_at: datetime | None = None


class MilestoneStatus(MilestoneProgress):
    key: str
    title: str
    amount: int
    due: str | None
    checkout_url: str | None = None
    checkout_session_id: str | None = None
    checkout_expires_at: datetime | None = None
    refunded: int = 0
    #: What open chargebacks took from the balance for this milestone's payment.
    withdrawn: int = 0
    #: Due at signature, for no deliverable.
    deposit: bool = False


class TimelineEntry(Message):
    at: datetime
    source: Literal["workflow", "client", "vendor", "operator", "stripe", "timer", "system"]
    kind: str
    message: str
    milestone_key: str | None = None
    #: The operator who took the action (`OperatorAction.operator`, or UNNAMED_OPERATOR).
    operator: str | None = None


class Deadline(Message):
    at: datetime
    action: str


class Signature(Message):
    signer_name: str
    signed_at: datetime
    sow_sha256: str
    ip: str | None = None
    user_agent: str | None = None
    #: Who signed, and which numbered version of the SOW the signature covers.
    party: Signer = "client"
    sow_version: int = 1
    consent: bool = True
    #: The signer entered the access code mailed apart from the SOW (policy.access_code_above).
    access_code_checked: bool = False


class AccessCodeStatus(Message):
    """Where the signer's access code stands; never the code (nor its hash)."""

    codes_sent: int
    wrong_attempts: int
    attempts_left: int
    locked: bool


class MoneyTotals(Message):
    """Integer minor units. `funded` is held client money; `released` left escrow, of which
    `platform_fees` the platform kept and the rest went to the vendor. `withdrawn` is what
    chargebacks took from the balance and the bank has not decided on yet."""

    contract: int
    funded: int = 0
    released: int = 0
    platform_fees: int = 0
    refunded: int = 0
    disputed: int = 0
    withdrawn: int = 0
    #: Late fees added to milestones' amounts (beyond `contract`).
    late_fees: int = 0


class DealStatus(Message):
    deal_id: str
    title: str
    currency: str
    stage: DealStage
    client_email: str
    vendor_email: str
    #: The vendor's record (`spec.vendor.vendor_id`): only their key reaches this deal.
    vendor_id: str | None = None
    sow_sha256: str
    livemode: bool | None = None
    #: The client's signature (also in `signatures`).
    signature: Signature | None = None
    #: Every signature given, in the order given; `signing_order` says who signs, and
    #: `awaiting_signature` whose signature the deal waits for (None once all have signed).
    signatures: list[Signature] = Field(default_factory=list)
    signing_order: list[Signer] = Field(default_factory=lambda: ["client"])
    awaiting_signature: Signer | None = None
    #: SHA-256 of the newest signing certificate PDF of a countersigned SOW: once every party
    #: signed, then of each change order the client accepted.
    certificate_sha256: str | None = None
    #: The version of the SOW and its terms in force (`sow_sha256` is its hash), and every
    #: version, numbered, with proposals (change orders) and their answers.
    sow_version: int = 1
    sow_versions: list[SowVersion] = Field(default_factory=list)
    #: Set when signing needs an access code.
    access_code: AccessCodeStatus | None = None
    milestones: list[MilestoneStatus]
    money: MoneyTotals
    timeline: list[TimelineEntry]
    anomalies: list[str] = Field(default_factory=list)
    next_deadline: Deadline | None = None
    demo: bool = False


class ContinuedDeal(BaseModel):
    """The input of a deal's run after it continued as new, as far as anyone but the workflow
    reads it: the spec. The workflow's own model (`workflows.deal.continuation.DealCarry`) adds
    the deal's state; the deal's first run has the `DealSpec` alone as its input."""

    model_config = ConfigDict(extra="ignore")

    spec: DealSpec
