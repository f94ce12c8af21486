"""Stripe as the workflow sees it: the webhook signal, and the payment activities' inputs and
results (Checkout, payment intents, charges, refunds, disputes, transfers)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from dealflow.messages.base import Message
from dealflow.text_rules import SingleLineText

__all__ = [
    "CaptureMethod",
    "ChargeState",
    "CheckoutSession",
    "CheckoutSessionState",
    "CreateCheckoutInput",
    "DisputeState",
    "ExpireCheckoutInput",
    "PaymentIntentAction",
    "PaymentIntentState",
    "RefundInput",
    "RefundResult",
    "RefundState",
    "ReverseTransferInput",
    "StripeEventSignal",
    "TransferInput",
    "TransferResult",
    "TransferReversalResult",
]


class StripeEventSignal(Message):
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


class CaptureMethod(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


class CreateCheckoutInput(Message):
    deal_id: str
    milestone_key: str
    generation: int = Field(ge=1, description="1 for the first session, +1 for each replacement")
    title: str
    amount: int
    currency: str
    client_email: str
    capture_method: CaptureMethod
    expires_at: datetime
    #: Stripe's `payment_method_types` for the session; None leaves them to the account's
    #: settings (as sessions were created before bank debits).
    payment_method_types: list[str] | None = None


class CheckoutSession(Message):
    session_id: str
    url: str
    expires_at: datetime
    livemode: bool


class CheckoutSessionState(Message):
    session_id: str
    status: Literal["open", "complete", "expired"]
    payment_status: Literal["paid", "unpaid", "no_payment_required"]
    payment_intent_id: str | None
    amount_total: int | None
    currency: str | None
    livemode: bool
    metadata: dict[str, str] = Field(default_factory=dict)


class PaymentIntentState(Message):
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
    #: How the latest charge was paid (`card`, `us_bank_account`, `sepa_debit`), and, when it
    #: failed, Stripe's reason: a bank debit that failed after days of processing says so here.
    payment_method_type: str | None = None
    failure_message: str | None = None
    #: The latest charge's balance transaction, once captured: Stripe's fee and what reached the
    #: balance (`amount - fee`), in minor units of `fee_currency` (the account's settlement
    #: currency). None before capture, and in results recorded before fees were read.
    fee: int | None = None
    net: int | None = None
    fee_currency: str | None = None


class ChargeState(Message):
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


class RefundState(Message):
    refund_id: str
    payment_intent_id: str | None
    charge_id: str | None
    amount: int
    currency: str
    status: str  # Stripe's: pending, requires_action, succeeded, failed, canceled
    #: Refund objects carry no livemode; it is the API key's mode.
    livemode: bool
    metadata: dict[str, str] = Field(default_factory=dict)


class DisputeState(Message):
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
    has_evidence: bool = False
    submission_count: int = 0
    #: Whether the last submission came after `evidence_due_by`.
    past_due: bool = False


class PaymentIntentAction(Message):
    """Capture or cancel one payment intent of a milestone."""

    deal_id: str
    milestone_key: str
    payment_intent_id: str


class ExpireCheckoutInput(Message):
    deal_id: str
    milestone_key: str
    session_id: str


class RefundInput(Message):
    deal_id: str
    milestone_key: str
    payment_intent_id: str
    amount: int | None = Field(default=None, gt=0, description="None refunds what is left")
    reason: Literal["duplicate", "requested_by_customer", "fraudulent"]
    purpose: str = Field(description="why, part of the idempotency key: 'cancel', 'duplicate', ...")


class RefundResult(Message):
    refund_id: str
    amount: int
    currency: str
    status: str
    livemode: bool


class TransferInput(Message):
    deal_id: str
    milestone_key: str
    destination_account: str
    amount: int
    currency: str
    #: The milestone's charge: Stripe then transfers from that payment's funds once they are
    #: available, instead of refusing while the platform's balance is still pending.
    source_transaction: str | None = None


class TransferResult(Message):
    transfer_id: str
    amount: int
    currency: str
    livemode: bool


class ReverseTransferInput(Message):
    """Take (part of) a vendor's payout back: `purpose` says what it follows (a refund's or a
    lost dispute's id), so each compensating reversal has an idempotency key of its own."""

    deal_id: str
    milestone_key: str
    transfer_id: str
    amount: int = Field(gt=0)
    purpose: str


class TransferReversalResult(Message):
    reversal_id: str
    amount: int
    currency: str
