"""Stripe's object shapes, as the API and webhooks carry them (the fields dealflow and the
`stripe` library read, with Stripe's names, id prefixes and `livemode: false`).

Fields starting with `_` are the sandbox's own bookkeeping; `public()` strips them before an
object leaves the sandbox, so no invented field ever appears on a Stripe object.

This module holds what every object shares (and the event that carries any of them); the
objects themselves are in `payment_objects` (checkout, intents, charges) and `money_objects`
(refunds, transfers, balance transactions, disputes).
"""

from __future__ import annotations

import copy
from typing import Any

#: Stripe's API version named on events (the one the installed `stripe` library pins).
API_VERSION = "2026-10-28.endive"

Obj = dict[str, Any]


def public(obj: Obj) -> Obj:
    return {key: copy.deepcopy(value) for key, value in obj.items() if not key.startswith("_")}


def list_object(data: list[Obj], *, has_more: bool, url: str) -> Obj:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def nulls(names: str) -> Obj:
    """Fields of Stripe's object that the sandbox never sets: present, as null, as Stripe sends
    them."""
    return dict.fromkeys(names.split())


def event(
    *,
    id: str,
    type: str,
    created: int,
    obj: Obj,
    request_id: str | None,
    idempotency_key: str | None,
    previous_attributes: Obj | None,
    pending_webhooks: int,
) -> Obj:
    data: Obj = {"object": obj}
    if previous_attributes:
        data["previous_attributes"] = previous_attributes
    return {
        "id": id,
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": pending_webhooks,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": type,
    }
