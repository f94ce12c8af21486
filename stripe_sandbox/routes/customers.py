"""`/v1/customers`: who pays, created once and named by the Checkout Sessions they pay."""

from __future__ import annotations

from stripe_sandbox.engine import Sandbox
from stripe_sandbox.objects import Obj
from stripe_sandbox.params import (
    EXPAND,
    LIST_PAGE,
    Hash,
    Metadata,
    String,
    TimestampRange,
)
from stripe_sandbox.routes.call import EXPAND_ONLY, Call, expand, page, route

#: Stripe's limits: email 512 characters, name 256, phone 20.
CUSTOMER_CREATE = Hash(
    {
        "email": String(max_length=512),
        "name": String(max_length=256),
        "phone": String(max_length=20),
        "description": String(),
        "metadata": Metadata(),
        "expand": EXPAND,
    }
)
CUSTOMER_LIST = Hash({**LIST_PAGE, "email": String(max_length=512), "created": TimestampRange()})


def _create_customer(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.create_customer(call.params), expand(call))


def _retrieve_customer(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render_customer(sandbox.get(call.ids["id"], "customer", "id"), expand(call))


def _list_customers(sandbox: Sandbox, call: Call) -> Obj:
    return page(sandbox, sandbox.customers(call.params), call)


def _delete_customer(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render_customer(sandbox.delete_customer(call.ids["id"]), [])


ROUTES = (
    route("POST", "/v1/customers", CUSTOMER_CREATE, _create_customer),
    route("GET", "/v1/customers", CUSTOMER_LIST, _list_customers),
    route("GET", "/v1/customers/{id}", EXPAND_ONLY, _retrieve_customer),
    route("DELETE", "/v1/customers/{id}", Hash(), _delete_customer),
)
