"""What the sandbox does with money: Checkout Sessions, payment intents, charges, refunds,
transfers and disputes, each change recorded as a Stripe event and, where money moved, in the
money log.

Every method here is synchronous and finishes before the event loop runs anything else, so an
operation and its idempotency record can never interleave with another request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from stripe_sandbox import objects
from stripe_sandbox.cards import Card, card_for_payment_method
from stripe_sandbox.errors import (
    StripeError,
    invalid_request,
    missing_parameter,
    resource_missing,
    unexpected_state,
)
from stripe_sandbox.objects import Obj, public
from stripe_sandbox.store import Store, new_id

SESSION_MIN_LIFETIME = 30 * 60
SESSION_MAX_LIFETIME = 24 * 3600
#: Card authorizations lapse after about seven days; Stripe then cancels the payment intent.
AUTHORIZATION_LIFETIME = 7 * 86400

_CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)
_ACCOUNT_ID = re.compile(r"^acct_[A-Za-z0-9]+$")

#: Money log kinds and their effect on the available balance.
_BALANCE_EFFECT = {
    "charge": 1,
    "capture": 1,
    "refund": -1,
    "transfer": -1,
    "dispute_withdrawn": -1,
    "dispute_reinstated": 1,
    "authorization": 0,
    "authorization_released": 0,
}

#: Which fields of which object may be expanded (`expand[]=payment_intent`).
EXPANDABLE = {
    "checkout.session": ("payment_intent",),
    "payment_intent": ("latest_charge",),
    "refund": ("charge", "payment_intent"),
    "charge": ("payment_intent",),
    "dispute": ("charge", "payment_intent"),
    "transfer": (),
    "event": (),
}


@dataclass(frozen=True)
class RequestContext:
    """The API request that caused a change, named on its events as Stripe does."""

    request_id: str | None = None
    idempotency_key: str | None = None


class Sandbox:
    def __init__(self, store: Store, on_event: Callable[[Obj], None]) -> None:
        self.store = store
        self.state = store.state
        self._on_event = on_event
        self._request = RequestContext()

    # ------------------------------------------------------------------ plumbing

    def now(self) -> int:
        return self.state.now()

    @contextmanager
    def request(self, request_id: str | None, idempotency_key: str | None) -> Iterator[None]:
        self._request = RequestContext(request_id, idempotency_key)
        try:
            yield
        finally:
            self._request = RequestContext()

    def get(self, object_id: str, kind: str, param: str) -> Obj:
        obj = self.state.objects.get(object_id)
        if obj is None or obj["object"] != kind:
            raise resource_missing(kind.replace(".", " ").replace("_", " "), object_id, param)
        return obj

    def _emit(self, type: str, obj: Obj, previous: Obj | None = None) -> None:
        event = objects.event(
            id=new_id("evt_"),
            type=type,
            created=self.now(),
            obj=public(obj),
            request_id=self._request.request_id,
            idempotency_key=self._request.idempotency_key,
            previous_attributes=previous,
            pending_webhooks=1 if self.state.webhook_url else 0,
        )
        self.state.objects[event["id"]] = event
        self.state.event_ids.append(event["id"])
        self._on_event(event)

    def _record_money(self, kind: str, obj: Obj, amount: int, **detail: Any) -> None:
        self.state.money.append(
            {
                "kind": kind,
                "object_id": obj["id"],
                "amount": amount,
                "currency": obj["currency"],
                "created": self.now(),
                "metadata": dict(obj.get("metadata") or {}),
                **detail,
            }
        )

    def available_balance(self, currency: str) -> int:
        return sum(
            _BALANCE_EFFECT[entry["kind"]] * entry["amount"]
            for entry in self.state.money
            if entry["currency"] == currency
        )

    def render(self, obj: Obj, expand: list[str] | None = None) -> Obj:
        """The object as Stripe answers it, with the requested fields expanded."""
        result = public(obj)
        for path in expand or ():
            if path not in EXPANDABLE.get(obj["object"], ()):
                raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
            value = result.get(path)
            if isinstance(value, str) and value in self.state.objects:
                result[path] = public(self.state.objects[value])
        return result

    # ------------------------------------------------------------------ time

    def sweep(self) -> dict[str, list[str]]:
        """Expire sessions past `expires_at` and lapse authorizations older than seven days."""
        now = self.now()
        expired, lapsed = [], []
        for obj in list(self.state.objects.values()):
            if (
                obj["object"] == "checkout.session"
                and obj["status"] == "open"
                and obj["expires_at"] <= now
            ):
                self._expire_session(obj)
                expired.append(obj["id"])
            elif (
                obj["object"] == "payment_intent"
                and obj["status"] == "requires_capture"
                and obj["_authorized_at"] is not None
                and obj["_authorized_at"] + AUTHORIZATION_LIFETIME <= now
            ):
                self._cancel_intent(obj, "automatic")
                lapsed.append(obj["id"])
        return {"expired_sessions": expired, "lapsed_authorizations": lapsed}

    def advance_clock(self, seconds: int) -> dict[str, Any]:
        self.state.clock_offset += seconds
        return {"now": self.now(), **self.sweep()}

    # ------------------------------------------------------------------ checkout sessions

    def create_session(self, params: dict[str, Any], *, public_url: str) -> Obj:
        if params["mode"] != "payment":
            raise invalid_request("The dealflow sandbox supports only mode=payment.", param="mode")
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
        session = objects.checkout_session(
            id=session_id,
            created=now,
            expires_at=expires_at,
            url=f"{public_url.rstrip('/')}/c/pay/{session_id}",
            amount_total=amount_total,
            currency=currency or "usd",
            params=params,
            line_items=line_items,
        )
        self.state.objects[session_id] = session
        return session

    def sessions(self, filters: dict[str, Any]) -> list[Obj]:
        """Checkout Sessions, newest first, filtered as Stripe's list endpoint does."""
        found = [
            obj
            for obj in self.state.objects.values()
            if obj["object"] == "checkout.session"
            and ("status" not in filters or obj["status"] == filters["status"])
            and (
                "payment_intent" not in filters
                or obj["payment_intent"] == filters["payment_intent"]
            )
            and _in_range(obj["created"], filters.get("created"))
        ]
        return list(reversed(found))

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
            if intent["status"] in _CANCELABLE:
                self._cancel_intent(intent, "abandoned")
        session["status"] = "expired"
        session["url"] = None
        self._emit("checkout.session.expired", session, {"status": "open"})

    def pay_session(self, session_id: str, card: Card) -> dict[str, Any]:
        """What the hosted page does when the customer submits a card; also `/_sandbox/` pay."""
        session = self.get(session_id, "checkout.session", "session")
        self.sweep()
        if session["status"] != "open":
            raise invalid_request(
                f"This Checkout Session is {session['status']} and can no longer be paid.",
                param="session",
            )
        intent = self._session_intent(session)
        charge = self._charge(intent, card)
        if card.declined:
            return {
                "outcome": "declined",
                "error": {
                    "code": card.code,
                    "decline_code": card.decline_code,
                    "message": card.message,
                },
                "session": public(session),
                "payment_intent": public(intent),
                "charge": public(charge),
            }
        manual = intent["capture_method"] == "manual"
        session["status"] = "complete"
        session["payment_status"] = "unpaid" if manual else "paid"
        session["customer_details"] = {"email": session["customer_email"], "name": None}
        session["url"] = None
        self._emit("checkout.session.completed", session)
        return {
            "outcome": "authorized" if manual else "paid",
            "session": public(session),
            "payment_intent": public(intent),
            "charge": public(charge),
        }

    def _session_intent(self, session: Obj) -> Obj:
        """The session's payment intent, made at the first payment attempt as Stripe does."""
        if session["payment_intent"]:
            return self.state.objects[session["payment_intent"]]
        data = session["_payment_intent_data"]
        intent = objects.payment_intent(
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
        )
        self.state.objects[intent["id"]] = intent
        session["payment_intent"] = intent["id"]
        return intent

    # ------------------------------------------------------------------ payment intents

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
        intent = objects.payment_intent(
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
        self.state.objects[intent["id"]] = intent
        if card is not None and params.get("confirm"):
            charge = self._charge(intent, card)
            if card.declined:
                raise StripeError(
                    402,
                    "card_error",
                    card.message or "Your card was declined.",
                    code=card.code,
                    decline_code=card.decline_code,
                    extra={"charge": charge["id"], "payment_intent": public(intent)},
                )
        return intent

    def _charge(self, intent: Obj, card: Card) -> Obj:
        payment_method = new_id("pm_")
        charge = objects.charge(
            id=new_id("ch_"),
            created=self.now(),
            intent=intent,
            card=card,
            payment_method=payment_method,
        )
        self.state.objects[charge["id"]] = charge
        intent["latest_charge"] = charge["id"]
        intent["payment_method"] = payment_method
        if card.declined:
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {
                "type": "card_error",
                "code": card.code,
                "decline_code": card.decline_code,
                "message": card.message,
                "charge": charge["id"],
                "payment_method": {
                    "id": payment_method,
                    "object": "payment_method",
                    "type": "card",
                },
            }
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
            self._emit("payment_intent.amount_capturable_updated", intent, {"amount_capturable": 0})
        else:
            intent["status"] = "succeeded"
            intent["amount_received"] = intent["amount"]
            charge["captured"] = True
            charge["amount_captured"] = charge["amount"]
            self._record_money("charge", charge, charge["amount"], payment_intent=intent["id"])
            self._emit("payment_intent.succeeded", intent)
        return charge

    def capture(self, intent_id: str, params: dict[str, Any]) -> Obj:
        intent = self.get(intent_id, "payment_intent", "intent")
        if intent["status"] != "requires_capture":
            raise unexpected_state(
                f"This PaymentIntent could not be captured because it has a status of {intent['status']}. "
                "Only a PaymentIntent with one of the following statuses may be captured: requires_capture."
            )
        capturable = intent["amount_capturable"]
        amount = params.get("amount_to_capture", capturable)
        if amount > capturable:
            raise invalid_request(
                f"The amount_to_capture ({amount}) must be less than or equal to the PaymentIntent's "
                f"amount_capturable ({capturable}).",
                param="amount_to_capture",
            )
        intent["metadata"].update(params.get("metadata", {}))
        intent["status"] = "succeeded"
        intent["amount_received"] = amount
        intent["amount_capturable"] = 0
        charge = self.state.objects[intent["latest_charge"]]
        charge["captured"] = True
        charge["amount_captured"] = amount
        self._record_money("capture", charge, amount, payment_intent=intent["id"])
        if amount < capturable:
            charge["amount_refunded"] = capturable - amount
            self._record_money(
                "authorization_released", charge, capturable - amount, payment_intent=intent["id"]
            )
        self._emit("payment_intent.succeeded", intent, {"status": "requires_capture"})
        return intent

    def cancel(self, intent_id: str, params: dict[str, Any]) -> Obj:
        intent = self.get(intent_id, "payment_intent", "intent")
        if intent["status"] not in _CANCELABLE:
            raise unexpected_state(
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}. "
                "Only a PaymentIntent with one of the following statuses may be canceled: "
                + ", ".join(_CANCELABLE)
                + "."
            )
        session_id = intent["_checkout_session"]
        if session_id and self.state.objects[session_id]["status"] == "open":
            raise unexpected_state(
                "You cannot cancel this PaymentIntent because it was created by a Checkout Session that "
                "is still open. Expire the Checkout Session instead."
            )
        self._cancel_intent(intent, params.get("cancellation_reason"))
        return intent

    def _cancel_intent(self, intent: Obj, reason: str | None) -> None:
        previous_status = intent["status"]
        if previous_status == "requires_capture":
            charge = self.state.objects[intent["latest_charge"]]
            charge["amount_refunded"] = charge["amount"]
            charge["refunded"] = True
            self._record_money(
                "authorization_released", charge, charge["amount"], payment_intent=intent["id"]
            )
        intent["status"] = "canceled"
        intent["canceled_at"] = self.now()
        intent["cancellation_reason"] = reason
        intent["amount_capturable"] = 0
        self._emit("payment_intent.canceled", intent, {"status": previous_status})

    # ------------------------------------------------------------------ refunds

    def create_refund(self, params: dict[str, Any]) -> Obj:
        if "payment_intent" in params:
            intent = self.get(params["payment_intent"], "payment_intent", "payment_intent")
            if intent["status"] != "succeeded":
                raise unexpected_state(
                    f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund."
                )
            charge = self.state.objects[intent["latest_charge"]]
        elif "charge" in params:
            charge = self.get(params["charge"], "charge", "charge")
            if not charge["captured"]:
                raise unexpected_state(
                    f"Charge {charge['id']} has not been captured; cancel its payment intent instead.",
                    code="charge_not_refundable",
                )
        else:
            raise invalid_request(
                "One of `charge` or `payment_intent` is required.", code="parameter_missing"
            )
        if charge["disputed"]:
            raise invalid_request(
                f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
        refundable = charge["amount_captured"] - charge["_refunds_total"]
        if refundable <= 0:
            raise invalid_request(
                f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
            )
        amount = params.get("amount", refundable)
        if amount > refundable:
            raise invalid_request(
                f"Refund amount ({amount} {charge['currency']}) is greater than unrefunded amount on "
                f"charge ({refundable} {charge['currency']})",
                param="amount",
                code="amount_too_large",
            )
        refund = objects.refund(
            id=new_id("re_"),
            created=self.now(),
            amount=amount,
            charge=charge,
            reason=params.get("reason"),
            metadata=params.get("metadata", {}),
        )
        self.state.objects[refund["id"]] = refund
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["_refunds_total"] += amount
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self._record_money(
            "refund", refund, amount, payment_intent=charge["payment_intent"], charge=charge["id"]
        )
        self._emit("charge.refunded", charge, previous)
        self._emit("refund.created", refund)
        return refund

    # ------------------------------------------------------------------ transfers

    def create_transfer(self, params: dict[str, Any]) -> Obj:
        destination = params["destination"]
        if not _ACCOUNT_ID.match(destination):
            raise resource_missing("destination", destination, "destination")
        if "source_transaction" in params:
            self.get(params["source_transaction"], "charge", "source_transaction")
        available = self.available_balance(params["currency"])
        if params["amount"] > available:
            raise invalid_request(
                "You have insufficient available funds in your Stripe account "
                f"({available} {params['currency']} available in the sandbox).",
                code="balance_insufficient",
            )
        transfer = objects.transfer(
            id=new_id("tr_"), created=self.now(), params=params, destination_payment=new_id("py_")
        )
        self.state.objects[transfer["id"]] = transfer
        self._record_money(
            "transfer",
            transfer,
            transfer["amount"],
            destination=destination,
            transfer_group=transfer["transfer_group"],
        )
        self._emit("transfer.created", transfer)
        return transfer

    # ------------------------------------------------------------------ disputes (sandbox control)

    def open_dispute(
        self, *, payment_intent: str | None, charge_id: str | None, reason: str, amount: int | None
    ) -> Obj:
        if payment_intent:
            intent = self.get(payment_intent, "payment_intent", "payment_intent")
            if intent["latest_charge"] is None:
                raise unexpected_state(f"PaymentIntent {payment_intent} has no charge to dispute.")
            charge = self.state.objects[intent["latest_charge"]]
        elif charge_id:
            charge = self.get(charge_id, "charge", "charge")
        else:
            raise invalid_request(
                "One of `charge` or `payment_intent` is required.", code="parameter_missing"
            )
        disputable = charge["amount_captured"] - charge["_refunds_total"]
        if not charge["captured"] or charge["disputed"] or disputable <= 0:
            raise unexpected_state(
                f"Charge {charge['id']} cannot be disputed: nothing captured is left on it.",
                code="charge_not_disputable",
            )
        amount = disputable if amount is None else amount
        if not 0 < amount <= disputable:
            raise invalid_request(
                f"A dispute amount must be between 1 and {disputable}.", param="amount"
            )
        dispute = objects.dispute(
            id=new_id("dp_"), created=self.now(), charge=charge, amount=amount, reason=reason
        )
        self.state.objects[dispute["id"]] = dispute
        charge["disputed"] = True
        self._record_money(
            "dispute_withdrawn",
            dispute,
            amount,
            payment_intent=charge["payment_intent"],
            charge=charge["id"],
        )
        self._emit("charge.dispute.created", dispute)
        return dispute

    def close_dispute(self, dispute_id: str, status: str) -> Obj:
        dispute = self.get(dispute_id, "dispute", "dispute")
        if dispute["status"] in ("won", "lost"):
            raise unexpected_state(
                f"Dispute {dispute_id} is already closed ({dispute['status']}).",
                code="dispute_already_closed",
            )
        previous = {"status": dispute["status"]}
        dispute["status"] = status
        if status == "won":
            self._record_money(
                "dispute_reinstated",
                dispute,
                dispute["amount"],
                payment_intent=dispute["payment_intent"],
                charge=dispute["charge"],
            )
        self._emit("charge.dispute.closed", dispute, previous)
        return dispute

    # ------------------------------------------------------------------ events

    def events(self, filters: dict[str, Any]) -> list[Obj]:
        """Events, newest first; `type` may end in `*` as in Stripe (`checkout.session.*`)."""
        wanted = filters.get("types") or ([filters["type"]] if "type" in filters else [])
        found = []
        for event_id in reversed(self.state.event_ids):
            event = self.state.objects[event_id]
            if wanted and not any(_type_matches(event["type"], pattern) for pattern in wanted):
                continue
            if not _in_range(event["created"], filters.get("created")):
                continue
            found.append(event)
        return found


def _type_matches(event_type: str, pattern: str) -> bool:
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return event_type == pattern


def _in_range(value: int, bounds: dict[str, int] | None) -> bool:
    if not bounds:
        return True
    checks = {
        "eq": value == bounds.get("eq", value),
        "gt": value > bounds.get("gt", value - 1),
        "gte": value >= bounds.get("gte", value),
        "lt": value < bounds.get("lt", value + 1),
        "lte": value <= bounds.get("lte", value),
    }
    return all(checks.values())
