"""What every part agrees on about a deal workflow, so no name is typed twice.

The starter, the bridge, the CLI and the workflow itself use these: DealWorkflow's signal, update
and query names, the kinds of event it writes to its ledger, the search attributes the Temporal UI
finds deals by (and the one function that fills them), and the milestone states a dispute may be
opened in. A name changed here changes everywhere; a name typed as a string elsewhere can drift.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from dealflow.messages import (
    AcceptAmendment,
    ApproveMilestone,
    CancelDeal,
    DealStage,
    DeclineAmendment,
    MilestoneState,
    OpenDispute,
    ProposeAmendment,
    RequestRevision,
    ResendAccessCode,
    ResolveDispute,
    SettleReversal,
    SignSow,
    SubmitDeliverable,
)
from dealflow.models import DealSpec

WORKFLOW_TYPE: Final = "DealWorkflow"

# Human actions: each is a signal (operators, external senders) and an update (portal, APIs)
# of the same name, and both run one method of the workflow.
SIGN_SOW: Final = "sign_sow"
SUBMIT_DELIVERABLE: Final = "submit_deliverable"
APPROVE_MILESTONE: Final = "approve_milestone"
REQUEST_REVISION: Final = "request_revision"
OPEN_DISPUTE: Final = "open_dispute"
RESOLVE_DISPUTE: Final = "resolve_dispute"
SETTLE_REVERSAL: Final = "settle_reversal"
CANCEL_DEAL: Final = "cancel_deal"
# Change orders: the operator or the vendor proposes new terms, the client accepts or declines.
PROPOSE_AMENDMENT: Final = "propose_amendment"
ACCEPT_AMENDMENT: Final = "accept_amendment"
DECLINE_AMENDMENT: Final = "decline_amendment"
RESEND_ACCESS_CODE: Final = "resend_access_code"

#: Signal: a signature-verified Stripe webhook, as a hint the workflow checks against Stripe.
STRIPE_EVENT: Final = "stripe_event"
#: Query: the whole deal as a `DealStatus`.
STATUS: Final = "status"
#: Query: where the deal stands as a `DealSummary` (stage, milestone states, money), for pollers.
SUMMARY: Final = "summary"

#: Each human action's name and its input model, in the order the portal walks them.
ACTIONS: Final[dict[str, type[BaseModel]]] = {
    SIGN_SOW: SignSow,
    SUBMIT_DELIVERABLE: SubmitDeliverable,
    APPROVE_MILESTONE: ApproveMilestone,
    REQUEST_REVISION: RequestRevision,
    OPEN_DISPUTE: OpenDispute,
    RESOLVE_DISPUTE: ResolveDispute,
    SETTLE_REVERSAL: SettleReversal,
    CANCEL_DEAL: CancelDeal,
    PROPOSE_AMENDMENT: ProposeAmendment,
    ACCEPT_AMENDMENT: AcceptAmendment,
    DECLINE_AMENDMENT: DeclineAmendment,
    RESEND_ACCESS_CODE: ResendAccessCode,
}

#: Milestone states in which the client's money is at stake, so a dispute can be opened.
DISPUTABLE: Final = frozenset(
    {
        MilestoneState.FUNDED,
        MilestoneState.IN_PROGRESS,
        MilestoneState.DELIVERED,
        MilestoneState.REVISION_REQUESTED,
    }
)


class EventKind(StrEnum):
    """The kind of a timeline entry and its `deal_events` row; the reports count by these."""

    SOW_SENT = "sow_sent"
    SIGN_REMINDER = "sign_reminder"
    #: One party's signature of a countersigned SOW; SIGNED follows once every party signed.
    SIGNATURE = "signature"
    SIGNED = "signed"
    SIGNING_CERTIFICATE = "signing_certificate"
    AMENDMENT_PROPOSED = "amendment_proposed"
    AMENDMENT_ACCEPTED = "amendment_accepted"
    AMENDMENT_DECLINED = "amendment_declined"
    #: A milestone added, changed or removed by an accepted amendment.
    MILESTONE_AMENDED = "milestone_amended"
    ACCESS_CODE_SENT = "access_code_sent"
    ACCESS_CODE_WRONG = "access_code_wrong"
    SIGNING_LOCKED = "signing_locked"
    AWAITING_FUNDING = "awaiting_funding"
    PAYMENT_LINK = "payment_link"
    PAYMENT_LINK_EXPIRED = "payment_link_expired"
    CHECKOUT_RETRY = "checkout_retry"
    FUND_REMINDER = "fund_reminder"
    LATE_FEE = "late_fee"
    PAYMENT_PENDING = "payment_pending"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_PROCESSING = "payment_processing"
    DEBIT_FAILED = "debit_failed"
    FUNDED = "funded"
    CAPTURED = "captured"
    AUTHORIZATION_CANCELLED = "authorization_cancelled"
    DUPLICATE_PAYMENT = "duplicate_payment"
    WORK_STARTED = "work_started"
    DELIVERY_OVERDUE = "delivery_overdue"
    DELIVERED = "delivered"
    REVIEW_REMINDER = "review_reminder"
    REVISION_REQUESTED = "revision_requested"
    WORK_RESUMED = "work_resumed"
    APPROVED = "approved"
    RELEASED = "released"
    #: The vendor's Stripe account cannot receive the payout yet; the deal waits for it.
    PAYOUT_WAITING = "payout_waiting"
    PAYOUT_ACCOUNT_READY = "payout_account_ready"
    TRANSFER_REVERSED = "transfer_reversed"
    LOSS_ABSORBED = "loss_absorbed"
    REVERSAL_REFUSED = "reversal_refused"
    REVERSAL_SETTLEMENT = "reversal_settlement"
    RECEIPT = "receipt"
    DISPUTE_OPENED = "dispute_opened"
    DISPUTE_RESOLVED = "dispute_resolved"
    CHARGEBACK = "chargeback"
    DISPUTE_EVIDENCE_SUBMITTED = "dispute_evidence_submitted"
    DISPUTE_FUNDS_WITHDRAWN = "dispute_funds_withdrawn"
    DISPUTE_FUNDS_REINSTATED = "dispute_funds_reinstated"
    REFUNDED = "refunded"
    REFUND_CONFIRMED = "refund_confirmed"
    REFUND_OUTSIDE = "refund_outside"
    CANCELLED_REQUESTED = "cancelled_requested"
    CANCELLED = "cancelled"
    EXPIRED_REQUESTED = "expired_requested"
    EXPIRED = "expired"
    COMPLETED = "completed"
    REJECTED = "rejected"
    STRIPE_EVENT = "stripe_event"
    STRIPE_EVENT_IGNORED = "stripe_event_ignored"
    DUPLICATE_EVENT = "duplicate_event"
    RECONCILIATION = "reconciliation"
    ANOMALY = "anomaly"


DEAL_STAGE = SearchAttributeKey.for_keyword("DealStage")
DEAL_CLIENT = SearchAttributeKey.for_keyword("DealClient")
DEAL_AMOUNT_CENTS = SearchAttributeKey.for_int("DealAmountCents")
DEAL_COLLECTED_CENTS = SearchAttributeKey.for_int("DealCollectedCents")
#: When the deal entered its stage: "awaiting funding for more than 7 days" is a query on it.
DEAL_STAGE_SINCE = SearchAttributeKey.for_datetime("DealStageSince")
SEARCH_ATTRIBUTES: Final = (
    DEAL_STAGE,
    DEAL_CLIENT,
    DEAL_AMOUNT_CENTS,
    DEAL_COLLECTED_CENTS,
    DEAL_STAGE_SINCE,
)


def client_search_value(email: str, secret: str | None) -> str:
    """What `DealClient` holds for a client: a keyed hash of the address, so search attributes
    (which the payload codec cannot encrypt) never hold it in clear, yet "this client's deals" is
    one exact-match query. Without a secret (dev stacks and tests that set none), the address."""
    address = email.strip().lower()
    if secret is None:
        return address
    digest = hmac.new(secret.encode(), address.encode(), hashlib.sha256).hexdigest()
    return f"client-{digest[:32]}"


def search_attribute_updates(
    stage: DealStage, client: str, amount: int, collected: int
) -> list[SearchAttributeUpdate[Any]]:
    """Every search attribute of a deal: the workflow upserts these, the starter starts with them.

    `client` is the deal's `client_search_value`; `collected` is client money Stripe confirmed
    and nobody gave back (held or paid out)."""
    return [
        DEAL_STAGE.value_set(stage.value),
        DEAL_CLIENT.value_set(client),
        DEAL_AMOUNT_CENTS.value_set(amount),
        DEAL_COLLECTED_CENTS.value_set(collected),
    ]


def starting_search_attributes(
    spec: DealSpec, now: datetime, client_search_secret: str | None
) -> TypedSearchAttributes:
    """A new deal's attributes, so it can be found from its first moment: SOW sent since `now`,
    nothing collected. The workflow keeps the `DealClient` value it was started with."""
    client = client_search_value(str(spec.client.email), client_search_secret)
    updates = search_attribute_updates(DealStage.SOW_SENT, client, spec.total_amount, 0)
    pairs = [SearchAttributePair(u.key, u.value) for u in updates]
    return TypedSearchAttributes([*pairs, SearchAttributePair(DEAL_STAGE_SINCE, now)])
