"""Bank debits (ACH Direct Debit, SEPA Direct Debit) as Stripe runs them: paying one completes
the Checkout Session `unpaid` with its payment intent `processing`; days later the debit
settles, by itself when the sandbox clock reaches it or at once through `/_sandbox/`, and
succeeds (`checkout.session.async_payment_succeeded`, the money in the balance from then, pending
as card money is) or fails (`checkout.session.async_payment_failed`, no money moved)."""

from __future__ import annotations

from typing import Literal

from stripe_sandbox import payment_objects
from stripe_sandbox.banks import DEBIT_SECONDS, BankAccount
from stripe_sandbox.errors import invalid_request, unexpected_state
from stripe_sandbox.intents import PaymentIntents
from stripe_sandbox.objects import Obj

Outcome = Literal["succeeded", "failed"]


class BankDebits(PaymentIntents):
    def _start_debit(self, intent: Obj, account: BankAccount) -> Obj:
        """The customer authorized a debit of `account`: processing until it settles."""
        charge = self._new_charge(intent, payment_objects.debit_charge, "py_", account=account)
        intent["last_payment_error"] = None
        intent["status"] = "processing"
        intent["_debit_due"] = self.now() + DEBIT_SECONDS[account.method]
        failure = account.failure
        intent["_debit_failure"] = [failure.code, failure.message] if failure else None
        self._emit("charge.pending", charge)
        self._emit("payment_intent.processing", intent, {"status": "requires_payment_method"})
        return charge

    def settle_debit(self, intent_id: str, outcome: Outcome | None = None) -> Obj:
        """Settle a processing debit now: as its account decides, or as `outcome` says."""
        intent = self.get(intent_id, "payment_intent", "intent")
        if intent["status"] != "processing":
            raise unexpected_state(
                f"This PaymentIntent's bank debit cannot settle because it has a status of "
                f"{intent['status']}; only a processing PaymentIntent settles."
            )
        failure = intent["_debit_failure"]
        if outcome == "failed" and failure is None:
            failure = ["generic_could_not_process", "The payment could not be processed."]
        elif outcome == "succeeded":
            failure = None
        self._settle(intent, failure)
        return intent

    def _settle_due_debits(self) -> list[str]:
        """Debits whose processing days are over on the sandbox clock: settled."""
        settled = []
        for intent_id in self.store.indexes.debits.pop_due(self.now()):
            intent = self.state.objects[intent_id]
            if intent["status"] == "processing":
                self._settle(intent, intent["_debit_failure"])
                settled.append(intent_id)
        return settled

    def _settle(self, intent: Obj, failure: list[str] | None) -> None:
        charge = self.state.objects[intent["latest_charge"]]
        session = self.state.objects.get(intent["_checkout_session"] or "")
        intent["_debit_due"] = None
        if failure is None:
            self._debit_succeeded(intent, charge, session)
        else:
            self._debit_failed(intent, charge, session, failure)

    def _debit_succeeded(self, intent: Obj, charge: Obj, session: Obj | None) -> None:
        amount = intent["amount"]
        charge.update(status="succeeded", paid=True, captured=True, amount_captured=amount)
        charge["outcome"]["seller_message"] = "Payment complete."
        self._record_money("charge", charge, amount, payment_intent=intent["id"])
        self._credit_charge(charge, amount)
        self._emit("charge.succeeded", charge, {"status": "pending"})
        intent["status"] = "succeeded"
        intent["amount_received"] = amount
        self._emit("payment_intent.succeeded", intent, {"status": "processing"})
        if session is not None:
            session["payment_status"] = "paid"
            self._emit(
                "checkout.session.async_payment_succeeded", session, {"payment_status": "unpaid"}
            )

    def _debit_failed(
        self, intent: Obj, charge: Obj, session: Obj | None, failure: list[str]
    ) -> None:
        code, message = failure
        charge.update(status="failed", failure_code=code, failure_message=message)
        charge["outcome"].update(
            network_status="declined_by_network",
            reason=code,
            seller_message="The bank did not pay the debit.",
            type="issuer_declined",
        )
        self._emit("charge.failed", charge, {"status": "pending"})
        intent["status"] = "requires_payment_method"
        intent["last_payment_error"] = {
            "type": "invalid_request_error",
            "code": code,
            "decline_code": None,
            "message": message,
            "charge": charge["id"],
            "payment_method": payment_objects.payment_method_of(charge),
        }
        self._emit("payment_intent.payment_failed", intent, {"status": "processing"})
        if session is not None:
            self._emit("checkout.session.async_payment_failed", session)

    def _check_method_allowed(self, session: Obj, method: str) -> None:
        """A session is paid only by a method it offers (cards too)."""
        if method not in session["payment_method_types"]:
            raise invalid_request(
                f"This Checkout Session does not accept {method} payments "
                f"(payment_method_types: {', '.join(session['payment_method_types'])}).",
                param="payment_method_types",
            )
