"""The two places the contract tests run: the offline sandbox, and real Stripe test mode when
STRIPE_TEST_API_KEY is set. A test takes the `target` fixture and runs once for each."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import stripe

from stripe_sandbox.control import SandboxControl
from tests.stripe_contract.harness import WebhookReceiver, running_sandbox


@dataclass
class Target:
    name: str
    api_key: str
    client: stripe.StripeClient
    api_base: str | None
    control: SandboxControl | None
    receiver: WebhookReceiver | None

    def sandbox(self, reason: str) -> tuple[SandboxControl, WebhookReceiver]:
        """The sandbox's controls and webhook receiver; skips the test on real Stripe."""
        if self.control is None or self.receiver is None:
            pytest.skip(f"sandbox only: {reason}")
        return self.control, self.receiver

    def other_client(self, api_key: str) -> stripe.StripeClient:
        base = {"api": self.api_base} if self.api_base else None
        return stripe.StripeClient(api_key, base_addresses=base, max_network_retries=0)


@pytest.fixture(scope="module", params=["sandbox", "stripe"])
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    if request.param == "stripe":
        key = os.environ.get("STRIPE_TEST_API_KEY")
        if not key:
            pytest.skip("STRIPE_TEST_API_KEY not set")
        yield Target(
            "stripe", key, stripe.StripeClient(key, max_network_retries=2), None, None, None
        )
        return
    async with running_sandbox() as sandbox:
        yield Target(
            "sandbox",
            sandbox.api_key,
            sandbox.client(max_network_retries=2),
            sandbox.url,
            sandbox.control,
            sandbox.receiver,
        )


def key() -> str:
    return f"contract-{uuid.uuid4()}"


async def vendor_account(target: Target) -> str:
    """A new connected account to transfer to (an unknown `acct_` is refused, on both); on the
    sandbox its onboarding is completed, as a vendor does on Stripe's hosted page."""
    account = await target.client.v1.accounts.create_async(
        {"type": "express", "country": "US", "capabilities": {"transfers": {"requested": True}}}
    )
    if target.control is not None:
        await target.control.onboard_account(account.id)
    return account.id


async def paid_intent(target: Target, amount: int = 1000, **extra: Any) -> stripe.PaymentIntent:
    """A confirmed card payment through the PaymentIntents API (works on both targets)."""
    params = {
        "amount": amount,
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "payment_method_types": ["card"],
        "confirm": True,
        **extra,
    }
    return await target.client.v1.payment_intents.create_async(params)
