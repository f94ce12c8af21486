"""`/v1/checkout/sessions`: the hosted checkout sessions a client pays through."""

from __future__ import annotations

from stripe_sandbox.engine import Sandbox
from stripe_sandbox.objects import Obj
from stripe_sandbox.params import (
    EXPAND,
    LIST_PAGE,
    Array,
    Enum,
    Hash,
    Integer,
    Metadata,
    String,
    TimestampRange,
    required,
)
from stripe_sandbox.routes.call import CURRENCY, EXPAND_ONLY, Call, expand, page, retrieve, route

SESSION_CREATE = Hash(
    {
        "mode": required(Enum("payment", "setup", "subscription")),
        "line_items": Array(
            Hash(
                {
                    "price": String(),
                    "quantity": Integer(minimum=1, maximum=999_999),
                    "price_data": Hash(
                        {
                            "currency": required(CURRENCY),
                            "unit_amount": required(Integer(minimum=0, maximum=99_999_999)),
                            "product_data": required(
                                Hash(
                                    {
                                        "name": required(String(max_length=250)),
                                        "description": String(),
                                        "metadata": Metadata(),
                                    }
                                )
                            ),
                        }
                    ),
                }
            )
        ),
        "customer": String(),
        "customer_email": String(max_length=800),
        "client_reference_id": String(max_length=200),
        "metadata": Metadata(),
        "payment_intent_data": Hash(
            {
                "capture_method": Enum("automatic", "automatic_async", "manual"),
                "metadata": Metadata(),
                "description": String(max_length=1000),
                "transfer_group": String(),
                "receipt_email": String(max_length=800),
            }
        ),
        "expires_at": Integer(minimum=0),
        "success_url": String(),
        "cancel_url": String(),
        "payment_method_types": Array(Enum("card", "us_bank_account", "sepa_debit")),
        "locale": String(max_length=10),
        "expand": EXPAND,
    }
)
SESSION_LIST = Hash(
    {
        **LIST_PAGE,
        "status": Enum("open", "complete", "expired"),
        "payment_intent": String(),
        "created": TimestampRange(),
    }
)


def _create_session(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(
        sandbox.create_session(call.params, public_url=call.public_url), expand(call)
    )


def _list_sessions(sandbox: Sandbox, call: Call) -> Obj:
    return page(sandbox, sandbox.sessions(call.params), call)


def _expire_session(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.expire_session(call.ids["id"]), expand(call))


ROUTES = (
    route("POST", "/v1/checkout/sessions", SESSION_CREATE, _create_session),
    route("GET", "/v1/checkout/sessions", SESSION_LIST, _list_sessions),
    route(
        "GET", "/v1/checkout/sessions/{id}", EXPAND_ONLY, retrieve("checkout.session", "session")
    ),
    route("POST", "/v1/checkout/sessions/{id}/expire", EXPAND_ONLY, _expire_session),
)
