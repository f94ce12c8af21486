"""`/v1/disputes`: chargebacks the bank opened, read, answered with evidence, or accepted."""

from __future__ import annotations

from stripe_sandbox.engine import Sandbox
from stripe_sandbox.money_objects import FILE_EVIDENCE, TEXT_EVIDENCE
from stripe_sandbox.objects import Obj
from stripe_sandbox.params import EXPAND, Boolean, Enum, Hash, Metadata, String
from stripe_sandbox.routes.call import (
    CREATED_PAGE,
    EXPAND_ONLY,
    Call,
    expand,
    page,
    retrieve,
    route,
)

#: Stripe's longest evidence text field; the whole evidence is limited too (`disputes`).
EVIDENCE_TEXT_MAX = 20_000
DISPUTE_UPDATE = Hash(
    {
        "evidence": Hash(
            {
                **{name: String(max_length=EVIDENCE_TEXT_MAX) for name in TEXT_EVIDENCE},
                **{name: String() for name in FILE_EVIDENCE},
            }
        ),
        "intended_submission_method": Enum(
            "manual", "prefer_manual", "prefer_smart_disputes", "smart_disputes"
        ),
        "metadata": Metadata(),
        "submit": Boolean(),
        "expand": EXPAND,
    }
)
DISPUTE_LIST = Hash({**CREATED_PAGE, "charge": String(), "payment_intent": String()})


def _list(sandbox: Sandbox, call: Call) -> Obj:
    return page(sandbox, sandbox.disputes(call.params), call)


def _update(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.update_dispute(call.ids["id"], call.params), expand(call))


def _close(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.accept_dispute(call.ids["id"]), expand(call))


ROUTES = (
    route("GET", "/v1/disputes", DISPUTE_LIST, _list),
    route("GET", "/v1/disputes/{id}", EXPAND_ONLY, retrieve("dispute", "dispute")),
    route("POST", "/v1/disputes/{id}", DISPUTE_UPDATE, _update),
    route("POST", "/v1/disputes/{id}/close", EXPAND_ONLY, _close),
)
