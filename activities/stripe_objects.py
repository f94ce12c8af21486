"""Stripe's objects as the workflow sees them: the few fields of a session, payment intent,
charge, refund or dispute that decide what a deal does next, and what the ledger keeps of a
payment (its fee and net)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dealflow.messages import (
    ChargeState,
    CheckoutSessionState,
    DisputeState,
    PaymentIntentState,
    RefundState,
)


def timestamp(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _metadata(metadata: Any) -> dict[str, str]:
    return metadata.to_dict() if metadata is not None else {}


def _id(field: Any) -> str | None:
    """The id in an expandable field, whether Stripe sent the id or the expanded object."""
    return field if isinstance(field, str) or field is None else field.id


def session_state(session: Any) -> CheckoutSessionState:
    return CheckoutSessionState.from_attributes(
        session,
        session_id=session.id,
        payment_intent_id=_id(session.payment_intent),
        metadata=_metadata(session.metadata),
    )


#: Read a payment intent with this, and its fee and net come in the same answer.
WITH_BALANCE_TRANSACTION = ["latest_charge.balance_transaction"]


def _balance(charge: Any) -> dict[str, Any]:
    """fee, net and fee_currency of a charge's balance transaction, when Stripe sent both
    expanded (a charge not captured yet has none)."""
    transaction = None if charge is None or isinstance(charge, str) else charge.balance_transaction
    if transaction is None or isinstance(transaction, str):
        return dict.fromkeys(("fee", "net", "fee_currency"))
    return {"fee": transaction.fee, "net": transaction.net, "fee_currency": transaction.currency}


def intent_state(intent: Any, *, sandbox: bool) -> PaymentIntentState:
    return PaymentIntentState.from_attributes(
        intent,
        payment_intent_id=intent.id,
        latest_charge=_id(intent.latest_charge),
        metadata=_metadata(intent.metadata),
        sandbox=sandbox,
        **_balance(intent.latest_charge),
    )


def charge_state(charge: Any) -> ChargeState:
    return ChargeState.from_attributes(
        charge,
        charge_id=charge.id,
        payment_intent_id=_id(charge.payment_intent),
        metadata=_metadata(charge.metadata),
    )


def refund_state(refund: Any, *, livemode: bool) -> RefundState:
    return RefundState.from_attributes(
        refund,
        refund_id=refund.id,
        payment_intent_id=_id(refund.payment_intent),
        charge_id=_id(refund.charge),
        status=refund.status or "pending",
        livemode=livemode,
        metadata=_metadata(refund.metadata),
    )


def dispute_state(dispute: Any) -> DisputeState:
    details = dispute.evidence_details
    return DisputeState.from_attributes(
        dispute,
        dispute_id=dispute.id,
        charge_id=_id(dispute.charge),
        payment_intent_id=_id(dispute.payment_intent),
        evidence_due_by=timestamp(details.due_by) if details.due_by else None,
        has_evidence=details.has_evidence,
        submission_count=details.submission_count,
        past_due=details.past_due,
    )
