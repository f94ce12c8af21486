"""`/v1/payment_intents` and `/v1/charges`: the money a client pays in, and what happens to it
on the card's side (its disputes are in `disputes`)."""

from __future__ import annotations

from stripe_sandbox.engine import Sandbox
from stripe_sandbox.objects import Obj
from stripe_sandbox.params import EXPAND, Array, Boolean, Enum, Hash, Metadata, String, required
from stripe_sandbox.routes.call import (
    AMOUNT,
    CURRENCY,
    Call,
    expand,
    list_all,
    list_and_retrieve,
    retrieve,
    route,
)

INTENT_CREATE = Hash(
    {
        "amount": required(AMOUNT),
        "currency": required(CURRENCY),
        "capture_method": Enum("automatic", "automatic_async", "manual"),
        "confirm": Boolean(),
        "payment_method": String(),
        "payment_method_types": Array(Enum("card")),
        "automatic_payment_methods": Hash(
            {"enabled": required(Boolean()), "allow_redirects": Enum("always", "never")}
        ),
        "metadata": Metadata(),
        "description": String(max_length=1000),
        "transfer_group": String(),
        "receipt_email": String(max_length=800),
        "expand": EXPAND,
    }
)
INTENT_RETRIEVE = Hash({"expand": EXPAND, "client_secret": String()})
INTENT_CAPTURE = Hash({"amount_to_capture": AMOUNT, "metadata": Metadata(), "expand": EXPAND})
INTENT_CANCEL = Hash(
    {
        "cancellation_reason": Enum(
            "duplicate", "fraudulent", "requested_by_customer", "abandoned"
        ),
        "expand": EXPAND,
    }
)


def _create_intent(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.create_payment_intent(call.params), expand(call))


def _capture(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.capture(call.ids["id"], call.params), expand(call))


def _cancel(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.cancel(call.ids["id"], call.params), expand(call))


ROUTES = (
    route("POST", "/v1/payment_intents", INTENT_CREATE, _create_intent),
    list_all("/v1/payment_intents", "payment_intent"),
    route("GET", "/v1/payment_intents/{id}", INTENT_RETRIEVE, retrieve("payment_intent", "intent")),
    route("POST", "/v1/payment_intents/{id}/capture", INTENT_CAPTURE, _capture),
    route("POST", "/v1/payment_intents/{id}/cancel", INTENT_CANCEL, _cancel),
    *list_and_retrieve("/v1/charges", "charge", "charge"),
)
