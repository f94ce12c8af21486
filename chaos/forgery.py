"""Forged Stripe webhooks, POSTed to the bridge as an attacker (or a confused proxy) would.

Three are signed wrongly (another secret, a timestamp an hour old, one an hour ahead) and must be
refused with 400. Two are signed with the real secret, which this run knows: a payment of the
wrong amount for a deal waiting to be paid, and another deal's real payment presented as this
deal's. The bridge stores those as hints; the workflow must re-read Stripe and fund nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from chaos.money import Movement, sandbox_movements
from chaos.plan import Forgery
from dealflow.messages import DealSummary, MilestoneState
from stripe_sandbox.control import SandboxControl
from stripe_sandbox.webhooks import sign

log = logging.getLogger("dealflow.chaos.forgery")

#: An hour away: far outside the bridge's five minutes either way.
CLOCK_SKEW_SECONDS = 3600
#: How long a forgery waits for a deal to be waiting for its payment before it makes one up.
TARGET_PATIENCE = 60.0
FORGED_PREFIX = "forged_"


@dataclass(frozen=True)
class ForgedWebhook:
    forgery: Forgery
    event_id: str
    event_type: str
    deal_id: str
    milestone_key: str
    #: The Stripe object the event names: made up, the target's own, or another deal's.
    object_id: str
    #: The bridge's answer (0: never answered).
    status_code: int
    answer: str

    @property
    def refused(self) -> bool:
        return self.status_code == 400

    @property
    def answered_as_expected(self) -> bool:
        """Badly signed ones refused; validly signed ones taken as hints (2xx) or refused."""
        return self.refused or (self.forgery.signed_validly and 200 <= self.status_code < 300)


@dataclass(frozen=True)
class _Target:
    deal_id: str
    milestone_key: str
    amount: int
    currency: str
    session_id: str | None


class Forger:
    """Makes and sends forged events against the deals of a running chaos run."""

    def __init__(
        self,
        *,
        bridge_url: str,
        webhook_secret: str,
        sandbox: SandboxControl,
        summaries: Callable[[], list[DealSummary]],
        rng: random.Random,
    ) -> None:
        self._url = f"{bridge_url.rstrip('/')}/webhooks/stripe"
        self._secret = webhook_secret
        self._sandbox = sandbox
        self._summaries = summaries
        self._rng = rng
        self.sent: list[ForgedWebhook] = []

    async def forge(self, forgery: Forgery) -> ForgedWebhook:
        target = await self._target(waiting=forgery.signed_validly)
        if forgery is Forgery.OTHER_DEALS_PAYMENT:
            event_type, obj = await self._other_deals_payment(target)
        else:
            event_type, obj = self._completed_session(target, wrong_amount=forgery is Forgery.WRONG_AMOUNT)
        event = {
            "id": f"evt_{FORGED_PREFIX}{secrets.token_hex(8)}",
            "object": "event",
            "api_version": "2025-06-30.basil",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
            "data": {"object": obj},
        }
        status_code, answer = await self._post(json.dumps(event, indent=2), forgery)
        sent = ForgedWebhook(
            forgery, event["id"], event_type, target.deal_id, target.milestone_key, obj["id"], status_code, answer
        )
        self.sent.append(sent)
        log.info("forged %s for %s/%s: HTTP %s", forgery, target.deal_id, target.milestone_key, status_code)
        return sent

    async def _target(self, *, waiting: bool) -> _Target:
        """A deal waiting for a milestone's payment (its open session named), or any deal."""
        deadline = asyncio.get_running_loop().time() + (TARGET_PATIENCE if waiting else 0)
        while True:
            summaries = self._summaries()
            awaiting = [
                (deal, m)
                for deal in summaries
                for m in deal.milestones
                if m.state == MilestoneState.AWAITING_FUNDING and m.checkout_session_id
            ]
            if awaiting:
                deal, m = self._rng.choice(awaiting)
                return _Target(deal.deal_id, m.key, m.amount, deal.currency, m.checkout_session_id)
            if summaries and asyncio.get_running_loop().time() >= deadline:
                deal = self._rng.choice(summaries)
                m = deal.milestones[0]
                return _Target(deal.deal_id, m.key, m.amount, deal.currency, None)
            await asyncio.sleep(1.0)

    def _completed_session(self, target: _Target, *, wrong_amount: bool) -> tuple[str, dict[str, Any]]:
        amount = target.amount * 10 + 1 if wrong_amount else target.amount
        return "checkout.session.completed", {
            "id": target.session_id or f"cs_test_{FORGED_PREFIX}{secrets.token_hex(8)}",
            "object": "checkout.session",
            "amount_total": amount,
            "currency": target.currency,
            "status": "complete",
            "payment_status": "paid",
            "payment_intent": f"pi_{FORGED_PREFIX}{secrets.token_hex(8)}",
            "client_reference_id": target.deal_id,
            "livemode": False,
            "metadata": {"deal_id": target.deal_id, "milestone_key": target.milestone_key},
        }

    async def _other_deals_payment(self, target: _Target) -> tuple[str, dict[str, Any]]:
        """Another deal's real payment intent, its metadata rewritten to name the target; the
        same amount and currency where such a payment exists, so only the owner check is left."""
        paid = [
            m
            for m in await sandbox_movements(self._sandbox)
            if m.kind in ("charge", "authorization") and m.deal_id not in (None, target.deal_id) and m.payment_intent
        ]
        alike = [m for m in paid if (m.amount, m.currency) == (target.amount, target.currency)]
        chosen: Movement | None = self._rng.choice(alike or paid) if paid else None
        intent_id = chosen.payment_intent if chosen and chosen.payment_intent else f"pi_{FORGED_PREFIX}{secrets.token_hex(8)}"
        return "payment_intent.succeeded", {
            "id": intent_id,
            "object": "payment_intent",
            "amount": target.amount,
            "amount_received": target.amount,
            "currency": target.currency,
            "status": "succeeded",
            "capture_method": "automatic",
            "livemode": False,
            "metadata": {"deal_id": target.deal_id, "milestone_key": target.milestone_key},
        }

    async def _post(self, payload: str, forgery: Forgery) -> tuple[int, str]:
        now = int(time.time())
        secret, timestamp = self._secret, now
        if forgery is Forgery.BAD_SIGNATURE:
            secret = "whsec_" + secrets.token_hex(24)
        elif forgery is Forgery.STALE_TIMESTAMP:
            timestamp = now - CLOCK_SKEW_SECONDS
        elif forgery is Forgery.FUTURE_TIMESTAMP:
            timestamp = now + CLOCK_SKEW_SECONDS
        headers = {"Content-Type": "application/json", "Stripe-Signature": sign(payload, secret, timestamp)}
        deadline = asyncio.get_running_loop().time() + TARGET_PATIENCE
        async with httpx.AsyncClient(timeout=10) as http:
            while True:  # the bridge may be down right now (this run kills it too)
                try:
                    response = await http.post(self._url, content=payload.encode(), headers=headers)
                    return response.status_code, response.text[:300]
                except httpx.TransportError as error:
                    if asyncio.get_running_loop().time() > deadline:
                        return 0, f"{type(error).__name__}: {error}"
                    await asyncio.sleep(1.0)
