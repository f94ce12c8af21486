"""Messages that cross the workflow boundary: signal and update inputs, the status query, and the
inputs and results of every activity. One model per message, so each can evolve on its own.

    stages     where a deal and its milestones are
    actions    the human actions and their answer
    payments   the Stripe event signal and the payment activities' messages
    status     the `status` query's answer
    summary    the `summary` query's answer: the little a poller needs
    notices    mails to the parties, work orders and artifact deliveries
    ledger     what the workflow hands the ledger
    receipts   receipts for released money

Every name is importable from `dealflow.messages` itself.
"""

from dealflow.messages.actions import (
    ActionResult,
    ApproveMilestone,
    Artifact,
    CancelDeal,
    DisputeResolution,
    OpenDispute,
    RequestRevision,
    ResolveDispute,
    SignSow,
    SubmitDeliverable,
)
from dealflow.messages.ledger import (
    DealSnapshot,
    LedgerBatch,
    LedgerEvent,
    LedgerWriteResult,
    PaymentKind,
    PaymentRecord,
    QuarantinedRow,
)
from dealflow.messages.notices import (
    ArtifactDeliveryInput,
    DeliveryResult,
    EmailAttachment,
    EmailInput,
    EmailKind,
    EmailResult,
    WorkOrderInput,
)
from dealflow.messages.payments import (
    CaptureMethod,
    ChargeState,
    CheckoutSession,
    CheckoutSessionState,
    CreateCheckoutInput,
    DisputeState,
    ExpireCheckoutInput,
    PaymentIntentAction,
    PaymentIntentState,
    RefundInput,
    RefundResult,
    RefundState,
    StripeEventSignal,
    TransferInput,
    TransferResult,
)
from dealflow.messages.receipts import (
    ReceiptInput,
    ReceiptResult,
)
from dealflow.messages.stages import (
    TERMINAL_STAGES,
    DealStage,
    MilestoneState,
)
from dealflow.messages.status import (
    Deadline,
    DealStatus,
    Deliverable,
    MilestoneStatus,
    MoneyTotals,
    Signature,
    TimelineEntry,
)
from dealflow.messages.summary import (
    DealSummary,
    MilestoneSummary,
)

__all__ = [
    "TERMINAL_STAGES",
    "ActionResult",
    "ApproveMilestone",
    "Artifact",
    "ArtifactDeliveryInput",
    "CancelDeal",
    "CaptureMethod",
    "ChargeState",
    "CheckoutSession",
    "CheckoutSessionState",
    "CreateCheckoutInput",
    "Deadline",
    "DealSnapshot",
    "DealStage",
    "DealStatus",
    "DealSummary",
    "Deliverable",
    "DeliveryResult",
    "DisputeResolution",
    "DisputeState",
    "EmailAttachment",
    "EmailInput",
    "EmailKind",
    "EmailResult",
    "ExpireCheckoutInput",
    "LedgerBatch",
    "LedgerEvent",
    "LedgerWriteResult",
    "MilestoneState",
    "MilestoneStatus",
    "MilestoneSummary",
    "MoneyTotals",
    "OpenDispute",
    "PaymentIntentAction",
    "PaymentIntentState",
    "PaymentKind",
    "PaymentRecord",
    "QuarantinedRow",
    "ReceiptInput",
    "ReceiptResult",
    "RefundInput",
    "RefundResult",
    "RefundState",
    "RequestRevision",
    "ResolveDispute",
    "SignSow",
    "Signature",
    "StripeEventSignal",
    "SubmitDeliverable",
    "TimelineEntry",
    "TransferInput",
    "TransferResult",
    "WorkOrderInput",
]
