"""`/v1/accounts`: the connected accounts (vendors) transfers go to."""

from __future__ import annotations

from stripe_sandbox.engine import Sandbox
from stripe_sandbox.objects import Obj
from stripe_sandbox.params import EXPAND, Boolean, Enum, Hash, Metadata, String, required
from stripe_sandbox.routes.call import CURRENCY, Call, expand, list_and_retrieve, route

_CAPABILITY = Hash({"requested": Boolean()})

ACCOUNT_CREATE = Hash(
    {
        "type": required(Enum("custom", "express", "standard")),
        "country": String(max_length=2),
        "email": String(max_length=800),
        "business_type": Enum("company", "government_entity", "individual", "non_profit"),
        "default_currency": CURRENCY,
        "capabilities": Hash({"transfers": _CAPABILITY, "card_payments": _CAPABILITY}),
        "metadata": Metadata(),
        "expand": EXPAND,
    }
)


def _create_account(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.create_account(call.params), expand(call))


ROUTES = (
    route("POST", "/v1/accounts", ACCOUNT_CREATE, _create_account),
    *list_and_retrieve("/v1/accounts", "account", "account"),
)
