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
import secrets
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from stripe_sandbox.engine import Sandbox
from stripe_sandbox.errors import (
    StripeError,
    authentication,
    idempotency_conflict,
    invalid_request,
    unrecognized_url,
)
from stripe_sandbox.faults import FaultInjector
from stripe_sandbox.objects import API_VERSION, Obj
from stripe_sandbox.params import decode_form, validate
from stripe_sandbox.routes import (
    accounts,
    balance,
    checkout,
    customers,
    disputes,
    events,
    money_out,
    payments,
)
from stripe_sandbox.routes.call import Call, Route
from stripe_sandbox.store import Store, new_id

#: Stripe keeps idempotency keys for at least 24 hours.
IDEMPOTENCY_KEY_LIFETIME = 24 * 3600
IDEMPOTENCY_KEY_MAX_LENGTH = 255

ROUTES: tuple[Route, ...] = (
    *checkout.ROUTES,
    *payments.ROUTES,
    *disputes.ROUTES,
    *money_out.ROUTES,
    *balance.ROUTES,
    *events.ROUTES,
    *customers.ROUTES,
    *accounts.ROUTES,
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


def authenticate(authorization: str | None, issued: str) -> str:
    """The request's key, which must be the one the sandbox issued (`issued`)."""
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
    if not secrets.compare_digest(key.encode(), issued.encode()):
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
            authenticate(request.headers.get("authorization"), self._store.state.api_key)
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
            now = self._sandbox.now()
            self._store.forget_answers_before(now - IDEMPOTENCY_KEY_LIFETIME)
            self._store.remember_answer(
                key,
                {
                    **fingerprint,
                    "status": status,
                    "body": body,
                    "request_id": request_id,
                    "created": now,
                },
            )
        self._store.commit()
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
