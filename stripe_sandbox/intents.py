"""Payment intents: created by a session or the API, charged with a test card, captured or
cancelled, each change an event and, where money moved, a money log entry (and, once captured,
the charge's balance transaction)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stripe_sandbox import payment_objects
from stripe_sandbox.balance import BalanceTransactions
from stripe_sandbox.cards import Card, card_for_payment_method
from stripe_sandbox.core import CANCELABLE, amount_up_to
from stripe_sandbox.errors import (
    StripeError,
    invalid_request,
    resource_missing,
    unexpected_state,
)
from stripe_sandbox.objects import Obj, public
from stripe_sandbox.store import new_id


class PaymentIntents(BalanceTransactions):
    def create_payment_intent(self, params: dict[str, Any]) -> Obj:
        """A payment intent, charged at once with `confirm` and a test payment method
        (`pm_card_visa`, `pm_card_chargeDeclined`, ...) as in Stripe's test mode."""
        payment_method = params.get("payment_method")
        card = None
        if payment_method is not None:
            card = card_for_payment_method(payment_method)
            if card is None:
                raise resource_missing("PaymentMethod", payment_method, "payment_method")
        elif params.get("confirm"):
            raise invalid_request(
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                param="payment_method",
                code="payment_intent_unexpected_state",
            )
        intent = payment_objects.payment_intent(
            id=new_id("pi_"),
            created=self.now(),
            amount=params["amount"],
            currency=params["currency"],
            capture_method=params.get("capture_method", "automatic"),
            metadata=params.get("metadata", {}),
            description=params.get("description"),
            transfer_group=params.get("transfer_group"),
            receipt_email=params.get("receipt_email"),
        )
        if card is not None:
            intent["status"] = "requires_confirmation"
        self._emit("payment_intent.created", intent)
        if card is not None and params.get("confirm"):
            charge = self._charge(intent, card)
            if card.failure is not None:
                raise StripeError(
                    402,
                    "card_error",
                    card.failure.message,
                    code=card.failure.code,
                    decline_code=card.failure.decline_code,
                    extra={"charge": charge["id"], "payment_intent": public(intent)},
                )
        return intent

    def _new_charge(
        self, intent: Obj, build: Callable[..., Obj], id_prefix: str, **paid_with: Any
    ) -> Obj:
        """A charge of `intent` (`build` makes it) with a new payment method, both the intent's."""
        payment_method = new_id("pm_")
        charge = build(
            id=new_id(id_prefix),
            created=self.now(),
            intent=intent,
            payment_method=payment_method,
            **paid_with,
        )
        intent["latest_charge"] = charge["id"]
        intent["payment_method"] = payment_method
        return charge

    def _charge(self, intent: Obj, card: Card) -> Obj:
        charge = self._new_charge(intent, payment_objects.charge, "ch_", card=card)
        if card.failure is not None:
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {
                "type": "card_error",
                **card.failure.error(),
                "charge": charge["id"],
                "payment_method": payment_objects.payment_method_of(charge),
            }
            self._emit("charge.failed", charge)
            self._emit("payment_intent.payment_failed", intent)
            return charge
        intent["last_payment_error"] = None
        if intent["capture_method"] == "manual":
            intent["status"] = "requires_capture"
            intent["amount_capturable"] = intent["amount"]
            intent["_authorized_at"] = self.now()
            self._record_money(
                "authorization", charge, charge["amount"], payment_intent=intent["id"]
            )
            self._emit("charge.succeeded", charge)
            self._emit("payment_intent.amount_capturable_updated", intent, {"amount_capturable": 0})
        else:
            intent["status"] = "succeeded"
            intent["amount_received"] = intent["amount"]
            charge["captured"] = True
            charge["amount_captured"] = charge["amount"]
            self._record_money("charge", charge, charge["amount"], payment_intent=intent["id"])
            self._credit_charge(charge, charge["amount"])
            self._emit("charge.succeeded", charge)
            self._emit("payment_intent.succeeded", intent)
        return charge

    def capture(self, intent_id: str, params: dict[str, Any]) -> Obj:
        intent = self.get(intent_id, "payment_intent", "intent")
        if intent["status"] != "requires_capture":
            raise unexpected_state(
                f"This PaymentIntent could not be captured because it has a status of {intent['status']}. "
                "Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
                payment_intent=public(intent),
            )
        capturable = intent["amount_capturable"]
        amount = amount_up_to(
            params,
            "amount_to_capture",
            capturable,
            lambda amount: (
                f"The amount_to_capture ({amount}) must be less than or equal to the "
                f"PaymentIntent's amount_capturable ({capturable})."
            ),
        )
        intent["metadata"].update(params.get("metadata", {}))
        intent["status"] = "succeeded"
        intent["amount_received"] = amount
        intent["amount_capturable"] = 0
        charge = self.state.objects[intent["latest_charge"]]
        charge["captured"] = True
        charge["amount_captured"] = amount
        self._record_money("capture", charge, amount, payment_intent=intent["id"])
        self._credit_charge(charge, amount)
        if amount < capturable:
            charge["amount_refunded"] = capturable - amount
            self._record_money(
                "authorization_released", charge, capturable - amount, payment_intent=intent["id"]
            )
        self._emit("charge.captured", charge, {"captured": False, "amount_captured": 0})
        self._emit("payment_intent.succeeded", intent, {"status": "requires_capture"})
        return intent

    def cancel(self, intent_id: str, params: dict[str, Any]) -> Obj:
        intent = self.get(intent_id, "payment_intent", "intent")
        if intent["status"] not in CANCELABLE:
            raise unexpected_state(
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}. "
                "Only a PaymentIntent with one of the following statuses may be canceled: "
                + ", ".join(CANCELABLE)
                + ".",
                payment_intent=public(intent),
            )
        session_id = intent["_checkout_session"]
        if session_id and self.state.objects[session_id]["status"] == "open":
            raise unexpected_state(
                "You cannot cancel this PaymentIntent because it was created by a Checkout Session that "
                "is still open. Expire the Checkout Session instead.",
                payment_intent=public(intent),
            )
        self._cancel_intent(intent, params.get("cancellation_reason"))
        return intent

    def _cancel_intent(self, intent: Obj, reason: str | None) -> None:
        """Cancel `intent`, releasing a held authorization (`charge.expired` when it lapsed:
        reason `automatic`)."""
        previous_status = intent["status"]
        if previous_status == "requires_capture":
            charge = self.state.objects[intent["latest_charge"]]
            charge["amount_refunded"] = charge["amount"]
            charge["refunded"] = True
            self._record_money(
                "authorization_released", charge, charge["amount"], payment_intent=intent["id"]
            )
            if reason == "automatic":
                self._emit("charge.expired", charge, {"amount_refunded": 0, "refunded": False})
            else:
                self.store.put(charge)
        intent["status"] = "canceled"
        intent["canceled_at"] = self.now()
        intent["cancellation_reason"] = reason
        intent["amount_capturable"] = 0
        self._emit("payment_intent.canceled", intent, {"status": previous_status})
