"""Checkout Sessions: created, listed, expired, and paid on the hosted page."""

from __future__ import annotations

from typing import Any

from stripe_sandbox import payment_objects
from stripe_sandbox.banks import DEBIT_CURRENCY, BankAccount
from stripe_sandbox.cards import Card
from stripe_sandbox.core import CANCELABLE
from stripe_sandbox.customers import Customers
from stripe_sandbox.debits import BankDebits
from stripe_sandbox.errors import (
    invalid_request,
    missing_parameter,
    resource_missing,
)
from stripe_sandbox.indexes import Listing
from stripe_sandbox.objects import Obj, public
from stripe_sandbox.store import new_id

SESSION_MIN_LIFETIME = 30 * 60
SESSION_MAX_LIFETIME = 24 * 3600


class CheckoutSessions(BankDebits, Customers):
    def create_session(self, params: dict[str, Any], *, public_url: str) -> Obj:
        if params["mode"] != "payment":
            raise invalid_request("The dealflow sandbox supports only mode=payment.", param="mode")
        if "customer" in params:
            if "customer_email" in params:
                raise invalid_request(
                    "You may only specify one of these parameters: customer, customer_email."
                )
            self.live_customer(params["customer"], "customer")
        line_items = params.get("line_items")
        if not line_items:
            raise missing_parameter("line_items")
        currency: str | None = None
        amount_total = 0
        for index, item in enumerate(line_items):
            name = f"line_items[{index}]"
            if "price" in item:
                raise resource_missing("price", item["price"], f"{name}[price]")
            if "price_data" not in item:
                raise missing_parameter(f"{name}[price_data]")
            if "quantity" not in item:
                raise missing_parameter(f"{name}[quantity]")
            price = item["price_data"]
            if currency is not None and price["currency"] != currency:
                raise invalid_request(
                    "All line items must use the same currency.",
                    param=f"{name}[price_data][currency]",
                )
            currency = price["currency"]
            amount_total += price["unit_amount"] * item["quantity"]
        if amount_total <= 0:
            raise invalid_request(
                "The Checkout Session's total amount due must be greater than 0.",
                param="line_items",
            )
        _check_payment_method_types(params, currency or "usd")
        now = self.now()
        expires_at = params.get("expires_at", now + SESSION_MAX_LIFETIME)
        if expires_at < now + SESSION_MIN_LIFETIME:
            raise invalid_request(
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
                param="expires_at",
            )
        if expires_at > now + SESSION_MAX_LIFETIME:
            raise invalid_request(
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
                param="expires_at",
            )
        session_id = new_id("cs_test_", 58)
        session = payment_objects.checkout_session(
            id=session_id,
            created=now,
            expires_at=expires_at,
            url=f"{public_url.rstrip('/')}/c/pay/{session_id}",
            amount_total=amount_total,
            currency=currency or "usd",
            params=params,
            line_items=line_items,
        )
        self.store.put(session)
        return session

    def sessions(self, filters: dict[str, Any]) -> Listing:
        """Checkout Sessions, newest first, filtered as Stripe's list endpoint does."""
        listing = self.listing(
            "checkout.session",
            filters,
            lambda session: "status" not in filters or session["status"] == filters["status"],
        )
        if "payment_intent" in filters:
            return listing.narrowed_to(
                self.store.indexes.session_by_intent.get(filters["payment_intent"])
            )
        return listing

    def expire_session(self, session_id: str) -> Obj:
        session = self.get(session_id, "checkout.session", "session")
        if session["status"] != "open":
            raise invalid_request(
                f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
                f'Session has a status of "{session["status"]}".',
                param="session",
            )
        self._expire_session(session)
        return session

    def _expire_session(self, session: Obj) -> None:
        intent_id = session["payment_intent"]
        if intent_id:
            intent = self.state.objects[intent_id]
            if intent["status"] in CANCELABLE:
                self._cancel_intent(intent, "abandoned")
        session["status"] = "expired"
        session["url"] = None
        self._emit("checkout.session.expired", session, {"status": "open"})

    def pay_session(self, session_id: str, card: Card) -> dict[str, Any]:
        """What the hosted page does when the customer submits a card; also `/_sandbox/` pay."""
        session = self._payable_session(session_id, "card")
        intent = self._session_intent(session)
        charge = self._charge(intent, card)
        if card.failure is not None:
            return {
                "outcome": "declined",
                "error": card.failure.error(),
                "session": public(session),
                "payment_intent": public(intent),
                "charge": public(charge),
            }
        manual = intent["capture_method"] == "manual"
        self._complete(session, "unpaid" if manual else "paid")
        return {
            "outcome": "authorized" if manual else "paid",
            "session": public(session),
            "payment_intent": public(intent),
            "charge": public(charge),
        }

    def pay_session_by_bank(self, session_id: str, account: BankAccount) -> dict[str, Any]:
        """The customer authorizes a bank debit: the session completes `unpaid` and its payment
        intent is processing until the debit settles (`settle_debit`, or the clock)."""
        session = self._payable_session(session_id, account.method)
        intent = self._session_intent(session)
        charge = self._start_debit(intent, account)
        self._complete(session, "unpaid")
        return {
            "outcome": "processing",
            "session": public(session),
            "payment_intent": public(intent),
            "charge": public(charge),
        }

    def _payable_session(self, session_id: str, method: str) -> Obj:
        session = self.get(session_id, "checkout.session", "session")
        self.sweep()
        if session["status"] != "open":
            raise invalid_request(
                f"This Checkout Session is {session['status']} and can no longer be paid.",
                param="session",
            )
        self._check_method_allowed(session, method)
        return session

    def _complete(self, session: Obj, payment_status: str) -> None:
        session["status"] = "complete"
        session["payment_status"] = payment_status
        session["customer_details"] = {"email": self.checkout_email(session), "name": None}
        session["url"] = None
        self._emit("checkout.session.completed", session)

    def _session_intent(self, session: Obj) -> Obj:
        """The session's payment intent, made at the first payment attempt as Stripe does."""
        if session["payment_intent"]:
            return self.state.objects[session["payment_intent"]]
        data = session["_payment_intent_data"]
        intent = payment_objects.payment_intent(
            id=new_id("pi_"),
            created=self.now(),
            amount=session["amount_total"],
            currency=session["currency"],
            capture_method=data["capture_method"],
            metadata=dict(data["metadata"]),
            description=data["description"],
            transfer_group=data["transfer_group"],
            receipt_email=data["receipt_email"] or session["customer_email"],
            checkout_session=session["id"],
            customer=session["customer"],
            payment_method_types=session["payment_method_types"],
        )
        session["payment_intent"] = intent["id"]
        self.store.put(session)
        self._emit("payment_intent.created", intent)
        return intent

    def checkout_email(self, session: Obj) -> str | None:
        """The email the hosted page shows and the session records: the customer's, when the
        session names one (Checkout then does not let it be changed)."""
        if session["customer"]:
            return self.state.objects[session["customer"]]["email"]
        return session["customer_email"]


def _check_payment_method_types(params: dict[str, Any], currency: str) -> None:
    """Bank debits collect one currency each and cannot hold money for a later capture."""
    manual = params.get("payment_intent_data", {}).get("capture_method") == "manual"
    for method in params.get("payment_method_types", ()):
        needs = DEBIT_CURRENCY.get(method)
        if needs is None:
            continue
        if currency != needs:
            raise invalid_request(
                f"The currency provided ({currency}) is invalid for one or more payment method "
                f"types: {method} (it supports {needs}).",
                param="payment_method_types",
            )
        if manual:
            raise invalid_request(
                f"The payment method type {method} does not support capture_method manual.",
                param="payment_intent_data[capture_method]",
            )
