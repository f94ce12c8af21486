"""`/v1/events`: what happened, as webhooks carried it, for a poller that missed some."""

from __future__ import annotations

from stripe_sandbox.engine import Sandbox
from stripe_sandbox.objects import Obj
from stripe_sandbox.params import LIST_PAGE, Array, Boolean, Hash, String, TimestampRange
from stripe_sandbox.routes.call import EXPAND_ONLY, Call, page, retrieve, route

EVENT_LIST = Hash(
    {
        **LIST_PAGE,
        "type": String(),
        "types": Array(String(), max_items=20),
        "created": TimestampRange(),
        "delivery_success": Boolean(),
    }
)


def _list_events(sandbox: Sandbox, call: Call) -> Obj:
    return page(sandbox, sandbox.events(call.params), call)


ROUTES = (
    route("GET", "/v1/events", EVENT_LIST, _list_events),
    route("GET", "/v1/events/{id}", EXPAND_ONLY, retrieve("event", "id")),
)
