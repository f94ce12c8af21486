"""Stripe's error envelope, so the `stripe` library raises the same exception class it would
for the real API: the HTTP status picks the class (400/404 invalid request, 401 authentication,
402 card, 429 rate limit, 5xx API error) and `type`/`code`/`param` fill it in.
"""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An error answered in Stripe's `{"error": {...}}` envelope."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        """The body Stripe sends: absent fields are left out, as Stripe does."""
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        if self.decline_code:
            error["decline_code"] = self.decline_code
        error.update(self.extra)
        return {"error": error}


def invalid_request(
    message: str, *, param: str | None = None, code: str | None = None, status: int = 400
) -> StripeError:
    return StripeError(status, "invalid_request_error", message, code=code, param=param)


def unknown_parameter(param: str) -> StripeError:
    return invalid_request(
        f"Received unknown parameter: {param}", param=param, code="parameter_unknown"
    )


def missing_parameter(param: str) -> StripeError:
    return invalid_request(
        f"Missing required param: {param}.", param=param, code="parameter_missing"
    )


def resource_missing(kind: str, object_id: str, param: str) -> StripeError:
    return invalid_request(
        f"No such {kind}: '{object_id}'", param=param, code="resource_missing", status=404
    )


def unexpected_state(
    message: str,
    *,
    code: str = "payment_intent_unexpected_state",
    payment_intent: dict[str, Any] | None = None,
) -> StripeError:
    """An object in the wrong state; Stripe's error names the payment intent (as it is) too."""
    extra = {"payment_intent": payment_intent} if payment_intent is not None else None
    return StripeError(400, "invalid_request_error", message, code=code, extra=extra)


def authentication(message: str) -> StripeError:
    return StripeError(401, "invalid_request_error", message)


def idempotency_conflict(message: str) -> StripeError:
    return StripeError(400, "idempotency_error", message)


def unrecognized_url(method: str, path: str) -> StripeError:
    return invalid_request(
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can "
        "help at https://support.stripe.com/.",
        status=404,
    )
