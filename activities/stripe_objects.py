"""Stripe's objects as the workflow sees them: the few fields of a session, payment intent,
charge, refund or dispute that decide what a deal does next."""

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
    return CheckoutSessionState(
        session_id=session.id,
        status=session.status,
        payment_status=session.payment_status,
        payment_intent_id=_id(session.payment_intent),
        amount_total=session.amount_total,
        currency=session.currency,
        livemode=session.livemode,
        metadata=_metadata(session.metadata),
    )


def intent_state(intent: Any, *, sandbox: bool) -> PaymentIntentState:
    return PaymentIntentState(
        payment_intent_id=intent.id,
        status=intent.status,
        amount=intent.amount,
        amount_capturable=intent.amount_capturable,
        amount_received=intent.amount_received,
        currency=intent.currency,
        livemode=intent.livemode,
        latest_charge=_id(intent.latest_charge),
        metadata=_metadata(intent.metadata),
        sandbox=sandbox,
    )


def charge_state(charge: Any) -> ChargeState:
    return ChargeState(
        charge_id=charge.id,
        payment_intent_id=_id(charge.payment_intent),
        amount=charge.amount,
        amount_captured=charge.amount_captured,
        amount_refunded=charge.amount_refunded,
        currency=charge.currency,
        refunded=charge.refunded,
        livemode=charge.livemode,
        metadata=_metadata(charge.metadata),
        disputed=charge.disputed,
    )


def refund_state(refund: Any, *, livemode: bool) -> RefundState:
    return RefundState(
        refund_id=refund.id,
        payment_intent_id=_id(refund.payment_intent),
        charge_id=_id(refund.charge),
        amount=refund.amount,
        currency=refund.currency,
        status=refund.status or "pending",
        livemode=livemode,
        metadata=_metadata(refund.metadata),
    )


def dispute_state(dispute: Any) -> DisputeState:
    due_by = dispute.evidence_details.due_by
    return DisputeState(
        dispute_id=dispute.id,
        charge_id=_id(dispute.charge),
        payment_intent_id=_id(dispute.payment_intent),
        amount=dispute.amount,
        currency=dispute.currency,
        status=dispute.status,
        reason=dispute.reason,
        livemode=dispute.livemode,
        evidence_due_by=timestamp(due_by) if due_by else None,
    )
