"""`/v1/accounts`: the connected accounts (vendors) transfers go to; `/v1/account_links`: the
hosted onboarding that enables them."""

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


ACCOUNT_LINK_CREATE = Hash(
    {
        "account": required(String(max_length=100)),
        "type": required(Enum("account_onboarding", "account_update")),
        "refresh_url": String(),
        "return_url": String(),
        "collect": Enum("currently_due", "eventually_due"),
        "collection_options": Hash(
            {
                "fields": Enum("currently_due", "eventually_due"),
                "future_requirements": Enum("include", "omit"),
            }
        ),
        "expand": EXPAND,
    }
)


def _create_account(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.create_account(call.params), expand(call))


def _create_account_link(sandbox: Sandbox, call: Call) -> Obj:
    """Stripe's account link has no id (the sandbox keeps one to find the link by its URL)."""
    link = sandbox.render(sandbox.create_account_link(call.params, public_url=call.public_url))
    return {key: value for key, value in link.items() if key != "id"}


ROUTES = (
    route("POST", "/v1/accounts", ACCOUNT_CREATE, _create_account),
    route("POST", "/v1/account_links", ACCOUNT_LINK_CREATE, _create_account_link),
    *list_and_retrieve("/v1/accounts", "account", "account"),
)
