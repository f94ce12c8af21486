"""What a route is, and what every resource's routes share: the parsed call, retrieval by id,
Stripe's cursor pagination and the common parameters."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from stripe_sandbox.currencies import SUPPORTED
from stripe_sandbox.engine import Sandbox
from stripe_sandbox.errors import invalid_request
from stripe_sandbox.indexes import Listing
from stripe_sandbox.objects import Obj, list_object
from stripe_sandbox.params import EXPAND, LIST_PAGE, Currency, Hash, Integer, TimestampRange

CURRENCY = Currency(SUPPORTED)
AMOUNT = Integer(minimum=1, maximum=99_999_999)
EXPAND_ONLY = Hash({"expand": EXPAND})
MAX_EXPAND_DEPTH = 4
#: A list endpoint's page, optionally within a `created` range.
CREATED_PAGE = {**LIST_PAGE, "created": TimestampRange()}


@dataclass(frozen=True)
class Call:
    """One parsed API call, as a handler sees it."""

    ids: dict[str, str]
    params: dict[str, Any]
    public_url: str
    path: str


Handler = Callable[[Sandbox, Call], Obj]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    schema: Hash
    handler: Handler


def route(method: str, path: str, schema: Hash, handler: Handler) -> Route:
    return Route(
        method, re.compile("^" + path.replace("{id}", r"(?P<id>[^/]+)") + "$"), schema, handler
    )


def expand(call: Call) -> list[str]:
    """The paths to expand, at most four levels deep as in Stripe (`data.` of a list counts)."""
    paths = call.params.get("expand", [])
    for path in paths:
        if path.count(".") >= MAX_EXPAND_DEPTH:
            raise invalid_request(
                f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property ({path}).",
                param="expand",
            )
    return paths


def retrieve(kind: str, param: str) -> Handler:
    def handler(sandbox: Sandbox, call: Call) -> Obj:
        return sandbox.render(sandbox.get(call.ids["id"], kind, param), expand(call))

    return handler


def list_all(path: str, kind: str) -> Route:
    """GET `path`: every object of `kind` in the `created` range, newest first."""

    def listed(sandbox: Sandbox, call: Call) -> Obj:
        return page(sandbox, sandbox.listing(kind, call.params), call)

    return route("GET", path, Hash(CREATED_PAGE), listed)


def list_and_retrieve(path: str, kind: str, param: str) -> tuple[Route, Route]:
    """GET `path` (`list_all`) and GET `path`/{id}."""
    return list_all(path, kind), route("GET", path + "/{id}", EXPAND_ONLY, retrieve(kind, param))


def page(sandbox: Sandbox, listing: Listing, call: Call) -> Obj:
    """Stripe's cursor pagination over `listing`, newest first; reads only about one page."""
    params = call.params
    limit = params.get("limit", 10)
    for cursor in ("starting_after", "ending_before"):
        if cursor in params and not listing.knows(params[cursor]):
            raise invalid_request(
                f"No such object: '{params[cursor]}'", param=cursor, code="resource_missing"
            )
    if "ending_before" in params and "starting_after" not in params:
        newer = list(islice(listing.newer_than(params["ending_before"]), limit + 1))
        selected, has_more = newer[:limit][::-1], len(newer) > limit
    else:
        older = list(islice(listing.older_than(params.get("starting_after")), limit + 1))
        selected, has_more = older[:limit], len(older) > limit
    expanded = [path.removeprefix("data.") for path in expand(call)]
    return list_object(
        [sandbox.render(item, expanded) for item in selected], has_more=has_more, url=call.path
    )
