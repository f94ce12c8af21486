"""`/v1/refunds`, `/v1/transfers` and their reversals: the money that leaves the platform, back
to a client or on to a vendor, and what comes back from the vendor."""

from __future__ import annotations

from stripe_sandbox.engine import Sandbox
from stripe_sandbox.objects import Obj
from stripe_sandbox.params import (
    EXPAND,
    LIST_PAGE,
    Enum,
    Hash,
    Metadata,
    String,
    TimestampRange,
    required,
)
from stripe_sandbox.routes.call import (
    AMOUNT,
    CURRENCY,
    EXPAND_ONLY,
    Call,
    expand,
    page,
    retrieve,
    route,
)

REFUND_CREATE = Hash(
    {
        "payment_intent": String(),
        "charge": String(),
        "amount": AMOUNT,
        "reason": Enum("duplicate", "fraudulent", "requested_by_customer"),
        "metadata": Metadata(),
        "expand": EXPAND,
    }
)
TRANSFER_CREATE = Hash(
    {
        "amount": required(AMOUNT),
        "currency": required(CURRENCY),
        "destination": required(String()),
        "transfer_group": String(),
        "description": String(),
        "source_transaction": String(),
        "metadata": Metadata(),
        "expand": EXPAND,
    }
)


REFUND_LIST = Hash(
    {**LIST_PAGE, "payment_intent": String(), "charge": String(), "created": TimestampRange()}
)
TRANSFER_LIST = Hash(
    {**LIST_PAGE, "transfer_group": String(), "destination": String(), "created": TimestampRange()}
)
REVERSAL_LIST = Hash(LIST_PAGE)
TRANSFER_REVERSAL_CREATE = Hash(
    {"amount": AMOUNT, "description": String(), "metadata": Metadata(), "expand": EXPAND}
)


def _create_refund(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.create_refund(call.params), expand(call))


def _create_transfer(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.create_transfer(call.params), expand(call))


def _reverse_transfer(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.reverse_transfer(call.ids["id"], call.params), expand(call))


def _list_refunds(sandbox: Sandbox, call: Call) -> Obj:
    return page(sandbox, sandbox.refunds(call.params), call)


def _list_transfers(sandbox: Sandbox, call: Call) -> Obj:
    return page(sandbox, sandbox.transfers(call.params), call)


def _list_reversals(sandbox: Sandbox, call: Call) -> Obj:
    return page(sandbox, sandbox.reversals(call.ids["id"]), call)


ROUTES = (
    route("POST", "/v1/refunds", REFUND_CREATE, _create_refund),
    route("GET", "/v1/refunds", REFUND_LIST, _list_refunds),
    route("GET", "/v1/refunds/{id}", EXPAND_ONLY, retrieve("refund", "refund")),
    route("POST", "/v1/transfers", TRANSFER_CREATE, _create_transfer),
    route("GET", "/v1/transfers", TRANSFER_LIST, _list_transfers),
    route("GET", "/v1/transfers/{id}", EXPAND_ONLY, retrieve("transfer", "transfer")),
    route("POST", "/v1/transfers/{id}/reversals", TRANSFER_REVERSAL_CREATE, _reverse_transfer),
    route("GET", "/v1/transfers/{id}/reversals", REVERSAL_LIST, _list_reversals),
)
