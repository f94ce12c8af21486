"""`/v1/balance` and `/v1/balance_transactions`: what the platform holds (available and still
pending) and every movement of it, with Stripe's fee."""

from __future__ import annotations

from stripe_sandbox.engine import Sandbox
from stripe_sandbox.objects import Obj
from stripe_sandbox.params import Hash, String
from stripe_sandbox.routes.call import CREATED_PAGE, EXPAND_ONLY, Call, page, retrieve, route

BALANCE_TRANSACTION_LIST = Hash({**CREATED_PAGE, "source": String()})


def _balance(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.balance_object()


def _list_balance_transactions(sandbox: Sandbox, call: Call) -> Obj:
    return page(sandbox, sandbox.balance_transactions(call.params), call)


ROUTES = (
    route("GET", "/v1/balance", Hash(), _balance),
    route("GET", "/v1/balance_transactions", BALANCE_TRANSACTION_LIST, _list_balance_transactions),
    route(
        "GET",
        "/v1/balance_transactions/{id}",
        EXPAND_ONLY,
        retrieve("balance_transaction", "id"),
    ),
)
