"""`POST /webhooks/stripe`: verify, store in the inbox, acknowledge. The relay signals the deal.

The body is verified exactly as received (never re-serialised): Stripe signs the bytes. The
library's check only refuses old timestamps; ours also refuses ones from the future, so a
captured-and-replayed or a clock-skewed delivery outside 5 minutes either way is refused.
A signed body Postgres could not store (NaN, a NUL or a lone surrogate anywhere in it) is a 400
too: stored, it would fail the insert on every one of Stripe's retries.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import stripe
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from bridge.connect_events import ACCOUNT_UPDATED, record_account_event
from bridge.errors import ApiError
from bridge.inbox import InboxStatus
from bridge.state import Bridge, webhook_rate_limit
from bridge.stripe_events import MalformedEvent, concerns_deals, deal_event, funding_intent
from dealflow.text_rules import TextProblem, TextRule, text_problem

#: Seconds a signed timestamp may be away from our clock, in either direction.
SIGNATURE_TOLERANCE = 300

router = APIRouter(tags=["stripe"])


class InvalidSignature(ValueError):
    """Missing, forged, or signed too long ago or too far ahead."""


class WebhookAck(BaseModel):
    received: Literal[True] = True
    event_id: str
    status: Literal["pending", "orphan", "ignored", "folded", "duplicate"]


def verify_stripe_event(
    payload: bytes, signature_header: str | None, secret: str, *, now: float | None = None
) -> dict[str, Any]:
    """The event as a dict if Stripe signed exactly these bytes within the tolerance.

    Only the signature is checked by the library (`verify_header`): its `construct_event` would
    parse the JSON as well, accepting NaN and failing with a RecursionError on deep nesting."""
    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(text, signature_header, secret, tolerance=SIGNATURE_TOLERANCE)
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as error:
        raise InvalidSignature(_first_sentence(str(error)) or "invalid signature") from error
    skew = abs((time.time() if now is None else now) - _signed_timestamp(signature_header or ""))
    if skew > SIGNATURE_TOLERANCE:
        raise InvalidSignature("the signature's timestamp is more than 5 minutes away from now")
    return _storable_event(text)


def _signed_timestamp(header: str) -> int:
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key.strip() == "t":
            try:
                return int(value)
            except ValueError as error:
                raise InvalidSignature("the Stripe-Signature header's timestamp is not a number") from error
    raise InvalidSignature("the Stripe-Signature header has no timestamp")


def _storable_event(text: str) -> dict[str, Any]:
    """The signed body as a JSON object the inbox's jsonb column accepts."""
    try:
        event = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise MalformedEvent(f"the signed body is not JSON: {error}") from error
    if not isinstance(event, dict):
        raise MalformedEvent("the signed body is not a Stripe event: not a JSON object")
    if problem := _unstorable_text(event):
        raise MalformedEvent(f"the signed body cannot be stored: {problem}")
    return event


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _unstorable_text(event: dict[str, Any]) -> TextProblem | None:
    """The first key or string that Postgres refuses (walked without recursion: nesting is deep
    as the sender likes). Stripe's own strings are kept verbatim, controls included."""
    pending: list[tuple[str, object]] = [("", event)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if problem := text_problem(key, TextRule.VERBATIM):
                    return TextProblem(path or "(body)", f"a key {problem}")
                pending.append((f"{path}.{key}" if path else key, item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
        elif isinstance(value, str) and (problem := text_problem(value, TextRule.VERBATIM)):
            return TextProblem(path, problem)
    return None


def _first_sentence(message: str) -> str:
    return message.split(". ")[0].strip()


def inbox_status(event_type: str, deal_id: str | None) -> InboxStatus:
    if not concerns_deals(event_type):
        return InboxStatus.IGNORED
    return InboxStatus.PENDING if deal_id else InboxStatus.ORPHAN


@router.post(
    "/webhooks/stripe",
    dependencies=[Depends(webhook_rate_limit)],
    responses={400: {"description": "bad signature or not a Stripe event"}, 413: {}, 429: {}},
)
async def stripe_webhook(request: Request, bridge: Bridge) -> WebhookAck:
    """Store a signed Stripe event once; its deal is signalled by the relay right after."""
    payload = await request.body()
    try:
        event = verify_stripe_event(
            payload, request.headers.get("stripe-signature"), bridge.settings.stripe_webhook_secret or ""
        )
        deal_id, signal = deal_event(event)
    except InvalidSignature as error:
        bridge.metrics.signature_failed()
        bridge.metrics.webhooks.labels("rejected").inc()
        raise ApiError(400, str(error), code="invalid_signature", field="Stripe-Signature") from error
    except MalformedEvent as error:
        bridge.metrics.webhooks.labels("rejected").inc()
        raise ApiError(400, str(error), code="malformed_event") from error
    if deal_id is None and signal.payment_intent_id:
        deal_id = await bridge.inbox.deal_of_payment_intent(signal.payment_intent_id)
    status = inbox_status(signal.type, deal_id)
    stored = await bridge.inbox.store(
        event_id=signal.event_id,
        event_type=signal.type,
        livemode=signal.livemode,
        deal_id=deal_id,
        raw_body=payload.decode("utf-8"),
        status=status,
        note="the event names no deal (no deal_id metadata)" if status is InboxStatus.ORPHAN else None,
        funding_intent_id=funding_intent(signal) if status is InboxStatus.PENDING else None,
        orphan_intent_id=signal.payment_intent_id if status is InboxStatus.ORPHAN else None,
    )
    if stored is None:
        bridge.metrics.webhooks.labels("duplicate").inc()
        return WebhookAck(event_id=signal.event_id, status="duplicate")
    bridge.metrics.webhooks.labels(stored.value).inc()
    if signal.type == ACCOUNT_UPDATED:
        await record_account_event(bridge.pool, event)
    if stored is InboxStatus.PENDING:
        bridge.relay.wake()
    return WebhookAck(event_id=signal.event_id, status=stored.value)
