"""How a Stripe error reaches Temporal: non-retryable `ApplicationError`s the workflow handles
(declined card, invalid request, reused idempotency key, bad key), retryable ones for rate limits,
5xx and the network."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import stripe
from temporalio.exceptions import ApplicationError

#: Error types the workflow can match on (ApplicationError.type).
STRIPE_NOT_CONFIGURED = "StripeNotConfigured"
CARD_DECLINED = "CardDeclined"
STRIPE_INVALID_REQUEST = "StripeInvalidRequest"
STRIPE_IDEMPOTENCY_CONFLICT = "StripeIdempotencyConflict"
STRIPE_AUTHENTICATION = "StripeAuthentication"
STRIPE_RATE_LIMITED = "StripeRateLimited"
STRIPE_UNAVAILABLE = "StripeUnavailable"
NON_RETRYABLE_ERROR_TYPES = (
    STRIPE_NOT_CONFIGURED,
    CARD_DECLINED,
    STRIPE_INVALID_REQUEST,
    STRIPE_IDEMPOTENCY_CONFLICT,
    STRIPE_AUTHENTICATION,
)


def classify(error: stripe.StripeError) -> ApplicationError:
    """The ApplicationError Temporal should see for a Stripe error: retryable or not, and why."""
    message = f"Stripe: {error.user_message or error}"
    details = {
        "http_status": error.http_status,
        "code": error.code,
        "request_id": error.request_id,
        # What the chain of causes would say, in a line: Temporal keeps a retrying activity's
        # last failure only while it is small (4 KB on the server), and a network error's chain
        # of stack traces through stripe and httpx is not.
        "error": _causes(error),
    }
    if isinstance(error, stripe.CardError):
        decline_code = (error.json_body or {}).get("error", {}).get("decline_code")
        return ApplicationError(
            message,
            {**details, "decline_code": decline_code},
            type=CARD_DECLINED,
            non_retryable=True,
        )
    if isinstance(error, stripe.IdempotencyError):
        return ApplicationError(
            message, details, type=STRIPE_IDEMPOTENCY_CONFLICT, non_retryable=True
        )
    if isinstance(error, stripe.RateLimitError):
        return ApplicationError(message, details, type=STRIPE_RATE_LIMITED)
    if isinstance(error, stripe.InvalidRequestError):
        return ApplicationError(
            message,
            {**details, "param": error.param},
            type=STRIPE_INVALID_REQUEST,
            non_retryable=True,
        )
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return ApplicationError(message, details, type=STRIPE_AUTHENTICATION, non_retryable=True)
    return ApplicationError(message, details, type=STRIPE_UNAVAILABLE)


def _causes(error: BaseException, limit: int = 600) -> str:
    chain = []
    seen: BaseException | None = error
    while seen is not None and len(chain) < 5:
        chain.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(chain)[:limit]


@contextmanager
def stripe_errors() -> Iterator[None]:
    try:
        yield
    except stripe.StripeError as error:
        raise classify(error) from None  # the chain is in its details, in a line
