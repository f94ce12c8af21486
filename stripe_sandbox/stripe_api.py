"""The `/v1/` API: the part of Stripe's REST API dealflow calls, on Stripe's wire format.

One endpoint handles every `/v1/` request in Stripe's order: injected faults, then the API key,
then the URL, then the parameters, then `Idempotency-Key`, then the operation. Answers are
Stripe's JSON objects or its error envelope, with `Request-Id` and, for a replay,
`Idempotent-Replayed: true`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from stripe_sandbox.currencies import SUPPORTED
from stripe_sandbox.engine import Sandbox
from stripe_sandbox.errors import (
    StripeError,
    authentication,
    idempotency_conflict,
    invalid_request,
    unrecognized_url,
)
from stripe_sandbox.faults import FaultInjector
from stripe_sandbox.objects import API_VERSION, Obj, list_object
from stripe_sandbox.params import (
    EXPAND,
    LIST_PAGE,
    Array,
    Boolean,
    Currency,
    Enum,
    Hash,
    Integer,
    Metadata,
    String,
    TimestampRange,
    decode_form,
    required,
    validate,
)
from stripe_sandbox.store import Store, new_id

#: Stripe keeps idempotency keys for at least 24 hours.
IDEMPOTENCY_KEY_LIFETIME = 24 * 3600
IDEMPOTENCY_KEY_MAX_LENGTH = 255
_TEST_KEY = re.compile(r"^sk_test_[!-~]{1,247}$")

CURRENCY = Currency(SUPPORTED)
AMOUNT = Integer(minimum=1, maximum=99_999_999)

EXPAND_ONLY = Hash({"expand": EXPAND})
SESSION_CREATE = Hash(
    {
        "mode": required(Enum("payment", "setup", "subscription")),
        "line_items": Array(
            Hash(
                {
                    "price": String(),
                    "quantity": Integer(minimum=1, maximum=999_999),
                    "price_data": Hash(
                        {
                            "currency": required(CURRENCY),
                            "unit_amount": required(Integer(minimum=0, maximum=99_999_999)),
                            "product_data": required(
                                Hash(
                                    {
                                        "name": required(String(max_length=250)),
                                        "description": String(),
                                        "metadata": Metadata(),
                                    }
                                )
                            ),
                        }
                    ),
                }
            )
        ),
        "customer_email": String(max_length=800),
        "client_reference_id": String(max_length=200),
        "metadata": Metadata(),
        "payment_intent_data": Hash(
            {
                "capture_method": Enum("automatic", "automatic_async", "manual"),
                "metadata": Metadata(),
                "description": String(max_length=1000),
                "transfer_group": String(),
                "receipt_email": String(max_length=800),
            }
        ),
        "expires_at": Integer(minimum=0),
        "success_url": String(),
        "cancel_url": String(),
        "payment_method_types": Array(Enum("card")),
        "locale": String(max_length=10),
        "expand": EXPAND,
    }
)
SESSION_LIST = Hash(
    {
        **LIST_PAGE,
        "status": Enum("open", "complete", "expired"),
        "payment_intent": String(),
        "created": TimestampRange(),
    }
)
INTENT_CREATE = Hash(
    {
        "amount": required(AMOUNT),
        "currency": required(CURRENCY),
        "capture_method": Enum("automatic", "automatic_async", "manual"),
        "confirm": Boolean(),
        "payment_method": String(),
        "payment_method_types": Array(Enum("card")),
        "automatic_payment_methods": Hash(
            {"enabled": required(Boolean()), "allow_redirects": Enum("always", "never")}
        ),
        "metadata": Metadata(),
        "description": String(max_length=1000),
        "transfer_group": String(),
        "receipt_email": String(max_length=800),
        "expand": EXPAND,
    }
)
INTENT_RETRIEVE = Hash({"expand": EXPAND, "client_secret": String()})
INTENT_CAPTURE = Hash({"amount_to_capture": AMOUNT, "metadata": Metadata(), "expand": EXPAND})
INTENT_CANCEL = Hash(
    {
        "cancellation_reason": Enum(
            "duplicate", "fraudulent", "requested_by_customer", "abandoned"
        ),
        "expand": EXPAND,
    }
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
EVENT_LIST = Hash(
    {
        **LIST_PAGE,
        "type": String(),
        "types": Array(String(), max_items=20),
        "created": TimestampRange(),
        "delivery_success": Boolean(),
    }
)


@dataclass(frozen=True)
class Call:
    """One parsed API call, as a handler sees it."""

    ids: dict[str, str]
    params: dict[str, Any]
    public_url: str
    path: str


Handler = Callable[[Sandbox, Call], Obj]


def _expand(call: Call) -> list[str]:
    return call.params.get("expand", [])


def _page(sandbox: Sandbox, items: list[Obj], call: Call) -> Obj:
    """Stripe's cursor pagination over `items` (already newest first)."""
    params = call.params
    limit = params.get("limit", 10)
    ids = [item["id"] for item in items]
    if "starting_after" in params:
        cursor = params["starting_after"]
        if cursor not in ids:
            raise invalid_request(
                f"No such object: '{cursor}'", param="starting_after", code="resource_missing"
            )
        window = items[ids.index(cursor) + 1 :]
        selected, has_more = window[:limit], len(window) > limit
    elif "ending_before" in params:
        cursor = params["ending_before"]
        if cursor not in ids:
            raise invalid_request(
                f"No such object: '{cursor}'", param="ending_before", code="resource_missing"
            )
        window = items[: ids.index(cursor)]
        selected, has_more = window[-limit:], len(window) > limit
    else:
        selected, has_more = items[:limit], len(items) > limit
    expand = [path.removeprefix("data.") for path in _expand(call)]
    return list_object(
        [sandbox.render(item, expand) for item in selected], has_more=has_more, url=call.path
    )


def _create_session(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(
        sandbox.create_session(call.params, public_url=call.public_url), _expand(call)
    )


def _list_sessions(sandbox: Sandbox, call: Call) -> Obj:
    return _page(sandbox, sandbox.sessions(call.params), call)


def _retrieve(kind: str, param: str) -> Handler:
    def handler(sandbox: Sandbox, call: Call) -> Obj:
        return sandbox.render(sandbox.get(call.ids["id"], kind, param), _expand(call))

    return handler


def _expire_session(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.expire_session(call.ids["id"]), _expand(call))


def _create_intent(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.create_payment_intent(call.params), _expand(call))


def _capture(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.capture(call.ids["id"], call.params), _expand(call))


def _cancel(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.cancel(call.ids["id"], call.params), _expand(call))


def _create_refund(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.create_refund(call.params), _expand(call))


def _create_transfer(sandbox: Sandbox, call: Call) -> Obj:
    return sandbox.render(sandbox.create_transfer(call.params), _expand(call))


def _list_events(sandbox: Sandbox, call: Call) -> Obj:
    return _page(sandbox, sandbox.events(call.params), call)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    schema: Hash
    handler: Handler


def _route(method: str, path: str, schema: Hash, handler: Handler) -> Route:
    return Route(
        method, re.compile("^" + path.replace("{id}", r"(?P<id>[^/]+)") + "$"), schema, handler
    )


ROUTES = (
    _route("POST", "/v1/checkout/sessions", SESSION_CREATE, _create_session),
    _route("GET", "/v1/checkout/sessions", SESSION_LIST, _list_sessions),
    _route(
        "GET", "/v1/checkout/sessions/{id}", EXPAND_ONLY, _retrieve("checkout.session", "session")
    ),
    _route("POST", "/v1/checkout/sessions/{id}/expire", EXPAND_ONLY, _expire_session),
    _route("POST", "/v1/payment_intents", INTENT_CREATE, _create_intent),
    _route(
        "GET", "/v1/payment_intents/{id}", INTENT_RETRIEVE, _retrieve("payment_intent", "intent")
    ),
    _route("POST", "/v1/payment_intents/{id}/capture", INTENT_CAPTURE, _capture),
    _route("POST", "/v1/payment_intents/{id}/cancel", INTENT_CANCEL, _cancel),
    _route("GET", "/v1/charges/{id}", EXPAND_ONLY, _retrieve("charge", "charge")),
    _route("POST", "/v1/refunds", REFUND_CREATE, _create_refund),
    _route("GET", "/v1/refunds/{id}", EXPAND_ONLY, _retrieve("refund", "refund")),
    _route("POST", "/v1/transfers", TRANSFER_CREATE, _create_transfer),
    _route("GET", "/v1/transfers/{id}", EXPAND_ONLY, _retrieve("transfer", "transfer")),
    _route("GET", "/v1/disputes/{id}", EXPAND_ONLY, _retrieve("dispute", "dispute")),
    _route("GET", "/v1/events", EVENT_LIST, _list_events),
    _route("GET", "/v1/events/{id}", EXPAND_ONLY, _retrieve("event", "id")),
)


def _match(method: str, path: str) -> tuple[Route, dict[str, str]]:
    for route in ROUTES:
        match = route.pattern.match(path)
        if match and route.method == method:
            return route, match.groupdict()
    raise unrecognized_url(method, path)


def api_key_of(authorization: str | None) -> str | None:
    """The key from `Authorization: Bearer sk_...` or Basic auth (`curl -u sk_...:`)."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip()).decode().split(":", 1)[0] or None
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


def authenticate(authorization: str | None) -> str:
    key = api_key_of(authorization)
    if key is None:
        raise authentication(
            "You did not provide an API key. You need to provide your API key in the Authorization "
            "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
            "https://stripe.com/docs/api#authentication for details."
        )
    if key.startswith(("sk_live_", "rk_live_")):
        raise authentication(
            "The dealflow sandbox only accepts test keys (sk_test_...): a live key moves real money "
            "and never belongs here."
        )
    if not _TEST_KEY.match(key):
        masked = (
            key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else "*" * len(key)
        )
        raise authentication(f"Invalid API Key provided: {masked}")
    return key


def _json(status: int, body: Obj, headers: dict[str, str]) -> Response:
    return Response(
        json.dumps(body, indent=2),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


class StripeApi:
    """The ASGI endpoint for `/v1/{path}`."""

    def __init__(
        self, sandbox: Sandbox, store: Store, faults: FaultInjector, public_url: str | None
    ) -> None:
        self._sandbox = sandbox
        self._store = store
        self._faults = faults
        self._public_url = public_url

    async def handle(self, request: Request) -> Response:
        request_id = new_id("req_", 14)
        headers = {
            "Request-Id": request_id,
            "Stripe-Version": request.headers.get("stripe-version", API_VERSION),
        }
        key = request.headers.get("idempotency-key") if request.method == "POST" else None
        if key:
            headers["Idempotency-Key"] = key
        try:
            fault = await self._faults.before_api_request()
            if fault is not None:
                headers.update(fault.headers)
                raise fault
            authenticate(request.headers.get("authorization"))
            route, ids = _match(request.method, request.url.path)
            text = (
                (await request.body()).decode() if request.method == "POST" else request.url.query
            )
            raw = decode_form(parse_qsl(text, keep_blank_values=True))
            params = validate(route.schema, raw)
            fingerprint = {"method": request.method, "path": request.url.path, "params": raw}
            replay = self._replay(key, fingerprint) if key else None
        except StripeError as error:
            return _json(error.status, error.envelope(), headers)
        if replay is not None:
            status, body, original = replay
            return _json(
                status,
                body,
                {**headers, "Idempotent-Replayed": "true", "Original-Request": original},
            )
        self._sandbox.sweep()
        call = Call(
            ids, params, self._public_url or str(request.base_url).rstrip("/"), request.url.path
        )
        with self._sandbox.request(request_id, key):
            try:
                status, body = 200, route.handler(self._sandbox, call)
            except StripeError as error:
                status, body = error.status, error.envelope()
        if key:
            self._store.state.idempotency[key] = {
                **fingerprint,
                "status": status,
                "body": body,
                "request_id": request_id,
                "created": self._sandbox.now(),
            }
        self._store.save()
        return _json(status, body, headers)

    def _replay(self, key: str, fingerprint: dict[str, Any]) -> tuple[int, Obj, str] | None:
        """The stored answer for a reused key, or None for a fresh one; a misuse raises."""
        if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
            raise invalid_request(
                f"Idempotency-Key must be at most {IDEMPOTENCY_KEY_MAX_LENGTH} characters.",
                param="Idempotency-Key",
            )
        record = self._store.state.idempotency.get(key)
        if record is None or record["created"] + IDEMPOTENCY_KEY_LIFETIME <= self._sandbox.now():
            return None
        if (record["method"], record["path"]) != (fingerprint["method"], fingerprint["path"]):
            raise idempotency_conflict(
                "Keys for idempotent requests can only be used for the same endpoint they were first "
                f"used for ('{record['method']} {record['path']}' vs '{fingerprint['method']} "
                f"{fingerprint['path']}'). Try using a key other than '{key}' if you meant to execute a "
                "different request."
            )
        if record["params"] != fingerprint["params"]:
            raise idempotency_conflict(
                "Keys for idempotent requests can only be used with the same parameters they were first "
                f"used with. Try using a key other than '{key}' if you meant to execute a different request."
            )
        return record["status"], record["body"], record["request_id"]
