"""Stripe's objects as the workflow sees them: the few fields of a session, payment intent,
charge, refund or dispute that decide what a deal does next, and what the ledger keeps of a
payment (its fee and net)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from dealflow.messages import (
    ChargeState,
    CheckoutSessionState,
    DisputeState,
    PaymentIntentState,
    RefundState,
)
from dealflow.messages.base import Message

M = TypeVar("M", bound=Message)


def timestamp(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _id(field: Any) -> str | None:
    """The id in an expandable field, whether Stripe sent the id or the expanded object."""
    return field if isinstance(field, str) or field is None else field.id


def _state(
    model: type[M], obj: Any, own_id: str, *, links: tuple[str, ...] = (), **given: Any
) -> M:
    """A Stripe object as our message: its id under our name for it (`charge_id`, ...), each
    expandable field in `links` as `<field>_id`, its metadata (where the message keeps it) as a
    plain dict, every other field read under its own name."""
    if "metadata" in model.model_fields:
        given["metadata"] = obj.metadata.to_dict() if obj.metadata is not None else {}
    linked = {f"{link}_id": _id(getattr(obj, link)) for link in links}
    return model.from_attributes(obj, **{own_id: obj.id}, **linked, **given)


def session_state(session: Any) -> CheckoutSessionState:
    return _state(CheckoutSessionState, session, "session_id", links=("payment_intent",))


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
    return _state(
        PaymentIntentState,
        intent,
        "payment_intent_id",
        latest_charge=_id(intent.latest_charge),
        sandbox=sandbox,
        payment_method_type=_method_type(intent.latest_charge),
        failure_message=intent.last_payment_error.message if intent.last_payment_error else None,
        **_balance(intent.latest_charge),
    )


def _method_type(charge: Any) -> str | None:
    """How an expanded charge was paid (`card`, `us_bank_account`, `sepa_debit`)."""
    if charge is None or isinstance(charge, str) or charge.payment_method_details is None:
        return None
    return charge.payment_method_details.type


def charge_state(charge: Any) -> ChargeState:
    return _state(ChargeState, charge, "charge_id", links=("payment_intent",))


def refund_state(refund: Any, *, livemode: bool) -> RefundState:
    return _state(
        RefundState,
        refund,
        "refund_id",
        links=("payment_intent", "charge"),
        status=refund.status or "pending",
        livemode=livemode,
    )


def dispute_state(dispute: Any) -> DisputeState:
    details = dispute.evidence_details
    return _state(
        DisputeState,
        dispute,
        "dispute_id",
        links=("charge", "payment_intent"),
        evidence_due_by=timestamp(details.due_by) if details.due_by else None,
        has_evidence=details.has_evidence,
        submission_count=details.submission_count,
        past_due=details.past_due,
    )
