"""From a verified Stripe event to the deal it concerns and the signal its workflow receives.

Stripe objects carry dealflow's `deal_id` / `milestone_key` in their metadata (the payments
activity puts them on the Checkout Session and on `payment_intent_data`). Charges, refunds and
disputes may only name their payment intent; when Stripe expanded it into the object, its
metadata counts too. An event whose object names no deal is an orphan: kept, never guessed at.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dealflow.messages import StripeEventSignal
from dealflow.text_rules import TextRule, first_text_problem, text_problem

#: Event families a deal reacts to. Anything else on the account (customers, products, ...)
#: is stored in the inbox and ignored, so it does not crowd the orphan list.
DEAL_EVENT_PREFIXES = ("checkout.session.", "payment_intent.", "charge.", "refund.")
#: The events Stripe sends for one card payment through Checkout (a held card's intent reports
#: `amount_capturable_updated`, a captured one's `succeeded`). The deal verifies each by reading
#: Stripe, so the inbox relays the first of them per payment intent and folds the others.
#: The `async_payment_*` events report a later outcome and are never folded.
FUNDING_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "payment_intent.succeeded",
        "payment_intent.amount_capturable_updated",
    }
)
#: Events that only echo a payment_intent.* event the deal already gets (created: nothing to do
#: yet; a charge's succeeded, captured, pending, failed or expired: its intent's succeeded,
#: processing, payment_failed or canceled), so the inbox keeps them and relays none.
ECHO_EVENTS = frozenset(
    {
        "payment_intent.created",
        "charge.succeeded",
        "charge.captured",
        "charge.pending",
        "charge.failed",
        "charge.expired",
    }
)
#: Amounts must fit the ledger's bigint columns; Stripe's own limit is far below.
MAX_AMOUNT = 2**63 - 1


class MalformedEvent(ValueError):
    """The event lacks a field every Stripe event has (id, type, created, data.object.id), or one
    of the values dealflow keeps is out of range or is text no deal may hold."""


def concerns_deals(event_type: str) -> bool:
    return event_type.startswith(DEAL_EVENT_PREFIXES) and event_type not in ECHO_EVENTS


def funding_intent(signal: StripeEventSignal) -> str | None:
    """The payment intent whose funding this event reports, if it is one of FUNDING_EVENTS."""
    return signal.payment_intent_id if signal.type in FUNDING_EVENTS else None


def deal_event(event: dict[str, Any]) -> tuple[str | None, StripeEventSignal]:
    """(deal_id or None for an orphan, the workflow's signal) for one verified event."""
    try:
        obj = event["data"]["object"]
        signal = StripeEventSignal(
            event_id=str(event["id"]),
            type=str(event["type"]),
            livemode=bool(event.get("livemode", False)),
            created=datetime.fromtimestamp(int(event["created"]), UTC),
            object_id=str(obj["id"]),
            milestone_key=_metadata(obj).get("milestone_key"),
            checkout_session_id=obj["id"] if obj.get("object") == "checkout.session" else None,
            payment_intent_id=_payment_intent_id(obj),
            amount=_amount(str(event["type"]), obj),
            currency=obj.get("currency"),
            status=obj.get("status") if str(event["type"]) == "charge.dispute.closed" else None,
        )
    # OverflowError and OSError: a `created` no datetime can hold.
    except (KeyError, TypeError, ValueError, OverflowError, OSError) as error:
        raise MalformedEvent(f"not a Stripe event: {error}") from error
    deal_id = _metadata(obj).get("deal_id")
    if problem := first_text_problem(signal):
        raise MalformedEvent(f"not a Stripe event dealflow can keep: {problem}")
    if deal_id is not None and (problem := text_problem(deal_id, TextRule.SINGLE_LINE)):
        raise MalformedEvent(f"not a Stripe event dealflow can keep: metadata.deal_id: {problem}")
    return deal_id, signal


def _metadata(obj: dict[str, Any]) -> dict[str, str]:
    """The object's own metadata, completed by its expanded payment intent's metadata."""
    merged: dict[str, str] = {}
    intent = obj.get("payment_intent")
    if isinstance(intent, dict):
        merged.update(_string_values(intent.get("metadata")))
    merged.update(_string_values(obj.get("metadata")))
    return merged


def _string_values(metadata: object) -> dict[str, str]:
    if not isinstance(metadata, dict):
        return {}
    return {str(key): str(value) for key, value in metadata.items() if value}


def _payment_intent_id(obj: dict[str, Any]) -> str | None:
    if obj.get("object") == "payment_intent":
        return str(obj["id"])
    intent = obj.get("payment_intent")
    if isinstance(intent, dict):
        return str(intent["id"])
    return str(intent) if intent else None


def _amount(event_type: str, obj: dict[str, Any]) -> int | None:
    """The amount the event is about, in minor units, by the object's kind."""
    if obj.get("object") == "checkout.session":
        value = obj.get("amount_total")
    elif event_type == "charge.refunded":
        value = obj.get("amount_refunded")
    else:
        value = obj.get("amount")
    if value is None:
        return None
    amount = int(value)
    if not 0 <= amount <= MAX_AMOUNT:
        raise ValueError(f"amount {amount} is out of range")
    return amount
