"""`/v1/refunds`, `/v1/transfers` and their reversals: the money that leaves the platform, back
to a client or on to a vendor, and what comes back from the vendor."""

from __future__ import annotations

from stripe_sandbox.engine import Sandbox
from stripe_sandbox.objects import Obj
from stripe_sandbox.params import EXPAND, Enum, Hash, Metadata, String, required
from stripe_sandbox.routes.call import AMOUNT, CURRENCY, Call, expand, list_and_retrieve, route

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


TRANSFER_REVERSAL_CREATE = Hash(
    {"amount": AMOUNT, "description": String(), "metadata": Metadata(), "expand": EXPAND}
)


def _create_refund(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.create_refund(call.params), expand(call))


def _create_transfer(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.create_transfer(call.params), expand(call))


def _reverse_transfer(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.reverse_transfer(call.ids["id"], call.params), expand(call))


ROUTES = (
    route("POST", "/v1/refunds", REFUND_CREATE, _create_refund),
    *list_and_retrieve("/v1/refunds", "refund", "refund"),
    route("POST", "/v1/transfers", TRANSFER_CREATE, _create_transfer),
    *list_and_retrieve("/v1/transfers", "transfer", "transfer"),
    route("POST", "/v1/transfers/{id}/reversals", TRANSFER_REVERSAL_CREATE, _reverse_transfer),
)
